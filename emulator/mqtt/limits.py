"""AWS IoT Core's MQTT limits and the MQTT reason codes the broker answers with.

Values from the AWS general reference ("AWS IoT Core endpoints and quotas", message broker and
protocol limits) and the IoT developer guide ("MQTT 5 supported features", "MQTT persistent
sessions", "iot-basic-ingest").
"""

from __future__ import annotations

HOST = "127.0.0.1"
DEFAULT_MQTT_PORT = 8883

MAX_PAYLOAD_BYTES = 131_072
MAX_TOPIC_BYTES = 256
MAX_TOPIC_SLASHES = 7
MAX_CLIENT_ID_BYTES = 128
MAX_KEEP_ALIVE_S = 1200
MIN_KEEP_ALIVE_S = 30
PERSISTENT_SESSION_EXPIRY_S = 3600  # "MQTT persistent sessions": default expiry one hour
# What AWS IoT announces in an MQTT 5 CONNACK ("MQTT 5 supported features").
MAX_PACKET_BYTES = 149_504
RECEIVE_MAXIMUM = 100
OUTBOUND_INFLIGHT_LIMIT = 100  # "Maximum outbound unacknowledged messages" per client
TOPIC_ALIAS_MAXIMUM = 8
# Basic Ingest topics go to the rules engine only, never to subscribers ("iot-basic-ingest").
BASIC_INGEST_PREFIX = "$aws/rules/"
# Messages kept for one offline persistent session (AWS throttles, we bound memory).
MAX_QUEUED_PER_SESSION = 100_000

# Connect return codes (3.1.1) and reason codes (5).
CONNACK_311 = {"version": 1, "identifier": 2, "unavailable": 3, "not_authorized": 5}
CONNACK_5 = {"version": 0x84, "identifier": 0x85, "unavailable": 0x88, "not_authorized": 0x87}
RC_UNSPECIFIED = 0x80
RC_NOT_AUTHORIZED = 0x87
RC_SESSION_TAKEN_OVER = 0x8E
RC_KEEP_ALIVE_TIMEOUT = 0x8D
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_TOO_LARGE = 0x95
RC_QOS_NOT_SUPPORTED = 0x9B
RC_PROTOCOL_ERROR = 0x82
RC_MALFORMED = 0x81
RC_SERVER_SHUTTING_DOWN = 0x8B
RC_SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E


def topic_limit_error(topic: str) -> str | None:
    """Why AWS IoT refuses this topic name or filter, or None.

    The quotas page counts bytes and forward slashes; reserved topics ("$aws/...") are checked
    on what follows the reserved prefix for Basic Ingest ("$aws/rules/<rule>/"), which AWS
    excludes from the limit ("iot-basic-ingest").
    """
    counted = topic
    if topic.startswith(BASIC_INGEST_PREFIX):
        parts = topic.split("/", 3)
        counted = parts[3] if len(parts) > 3 else ""
    size = len(counted.encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        return f"topic is {size} bytes, more than the {MAX_TOPIC_BYTES} bytes AWS IoT allows"
    slashes = counted.count("/")
    if slashes > MAX_TOPIC_SLASHES:
        return f"topic has {slashes} forward slashes, more than the {MAX_TOPIC_SLASHES} allowed"
    return None
