"""AWS IoT Core's MQTT limits and the MQTT reason codes the broker answers with.

Values from the AWS general reference ("AWS IoT Core endpoints and quotas", message broker and
protocol limits) and the IoT developer guide ("MQTT 5 supported features", "MQTT persistent
sessions", "iot-basic-ingest").
"""

from __future__ import annotations

from emulator.constants import BASIC_INGEST_PREFIX, DEFAULT_HOST, IOT_MESSAGE_MAX_BYTES

HOST = DEFAULT_HOST
MAX_PAYLOAD_BYTES = IOT_MESSAGE_MAX_BYTES
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
# Messages kept for one persistent session. AWS stores them "according to account limit.
# Messages that exceed the limit will be dropped" (MQTT persistent sessions,
# https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html): the new message is dropped,
# what is queued stays. The account-wide rate is the quotas page's "Queued messages per second
# per account" (500); the count and byte bounds per session and per broker are this emulator's
# memory bounds (AWS stores on disk and bills per message).
QUEUED_PER_SECOND_PER_ACCOUNT = 500
MAX_QUEUED_PER_SESSION = 100_000
MAX_QUEUED_BYTES_PER_SESSION = 32 * 1024 * 1024
MAX_QUEUED_BYTES_TOTAL = 256 * 1024 * 1024
# "Maximum number of retained messages per account" (quotas page, message broker limits,
# https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits; adjustable
# on AWS): past it a retained PUBLISH with a payload is throttled (mqtt.html#mqtt-retain).
MAX_RETAINED_MESSAGES = 500_000
# Shared subscriptions, "$share/{ShareName}/{TopicFilter}": the share name has no '/', '+' or
# '#' and at most 128 UTF-8 characters; the topic filter at most 256; the two slashes of the
# prefix do not count against the 7 of a topic filter
# (https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt5-shared-subscription).
SHARED_PREFIX = "$share/"
MAX_SHARE_NAME_CHARS = 128
# Outbound flow control per connection: above the high-water mark of the TLS transport's write
# buffer the client is not reading fast enough; QoS 0 messages to it are dropped (at most once,
# MQTT 3.1.1 section 4.3.1) and QoS 1 messages wait in its session until it drains to the low mark.
OUTBOUND_HIGH_WATER_BYTES = 1024 * 1024
OUTBOUND_LOW_WATER_BYTES = 256 * 1024
# A connection must send CONNECT this soon after the TCP accept, TLS handshake included: MQTT
# 3.1.1 section 3.1.4 / MQTT 5 section 3.1.4 ("If the Server does not receive a CONNECT packet
# within a reasonable amount of time after the Network Connection is established, the Server
# SHOULD close the Network Connection"). Real clients send it within milliseconds of the
# handshake; 10 s leaves room for a slow device while freeing a silent socket's descriptor soon.
CONNECT_TIMEOUT_S = 10
# Descriptors kept for the HTTP endpoint, moto's files, spools and Lambda workers: the MQTT side
# takes at most RLIMIT_NOFILE minus this (and at most half of its share before CONNECT).
DESCRIPTOR_RESERVE_MIN = 256

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
RC_QUOTA_EXCEEDED = 0x97


def mqtt_connection_limit() -> int:
    """How many MQTT connections the broker accepts at once: the process's descriptor limit
    minus a reserve (a quarter, at least DESCRIPTOR_RESERVE_MIN) for everything else, so the
    HTTP endpoint and the files keep working when MQTT clients pile up."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 65_536
    return max(16, soft - max(DESCRIPTOR_RESERVE_MIN, soft // 4))


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


def shared_subscription(topic_filter: str) -> tuple[str, str] | None:
    """(share name, topic filter) of a "$share/{ShareName}/{TopicFilter}" filter, else None."""
    if not topic_filter.startswith(SHARED_PREFIX):
        return None
    group, _, inner = topic_filter[len(SHARED_PREFIX) :].partition("/")
    return group, inner


def shared_subscription_error(group: str, topic_filter: str) -> str | None:
    """Why AWS IoT refuses this shared subscription's share name or filter, or None."""
    if not group or any(c in group for c in "/+#"):
        return (
            "a shared subscription is $share/{ShareName}/{TopicFilter}: the share name must be "
            "non-empty, without '/', '+' or '#'"
        )
    if len(group) > MAX_SHARE_NAME_CHARS:
        return f"the share name has {len(group)} characters, more than {MAX_SHARE_NAME_CHARS}"
    if not topic_filter:
        return "a shared subscription needs a topic filter after $share/{ShareName}/"
    return topic_limit_error(topic_filter)
