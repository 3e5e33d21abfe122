"""iot-data Publish (`POST /topics/{topic}?qos=&retain=`): IoT Core's HTTP way in.

The message passes the same topic rules as an MQTT PUBLISH (emulator/mqtt/topics.py), then
`Broker.ingest` hands it to the rules engine and to MQTT subscribers; the answer is HTTP 200
with an empty body, as AWS's
(https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from emulator.gateway import AwsRequest, AwsResponse, json_error
from emulator.iot.messages import NO_CLIENT_ID, InboundMessage
from emulator.mqtt.limits import MAX_PAYLOAD_BYTES
from emulator.mqtt.topics import publish_topic_error

if TYPE_CHECKING:
    from emulator.gateway import Gateway
    from emulator.mqtt.broker import Broker


def register(gateway: Gateway, broker: Broker) -> None:
    publish = _publisher(broker)
    gateway.on("iot-data", "Publish", publish)
    # A topic with '/' arrives percent-encoded and is decoded before routing, so the operation
    # may not be identified; such requests reach the (service, "") handlers.
    gateway.on("iot-data", "", publish)


def _publisher(broker: Broker):
    def publish(request: AwsRequest) -> AwsResponse | None:
        topic = _topic_of(request)
        if topic is None:
            return None
        retain = (request.query_value("retain") or "false").lower() == "true"
        refusal = publish_topic_error(topic, retain)
        if refusal is not None:
            # The same topic rules as an MQTT PUBLISH (emulator/mqtt/topics.py); the data plane
            # answers a bad request with InvalidRequestException, HTTP 400
            # (https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html).
            return json_error("InvalidRequestException", f"Publish refused: {refusal[1]}")
        qos_text = request.query_value("qos") or "0"
        if qos_text not in ("0", "1"):
            return json_error("InvalidRequestException", f"qos must be 0 or 1, not {qos_text}")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return json_error(
                "RequestEntityTooLargeException",
                f"The payload is {len(request.body)} bytes; the limit is {MAX_PAYLOAD_BYTES}",
                413,
            )
        message = InboundMessage(
            topic=topic,
            payload=request.body,
            qos=int(qos_text),
            # "iot-sql-functions" clientid(): "n/a" when the message was not sent over MQTT.
            client_id=NO_CLIENT_ID,
            # "iot-sql-functions" principal(): the IAM user id for HTTP publishes; the access
            # key id stands in for it here.
            principal=_access_key(request),
            timestamp_ms=int(time.time() * 1000),
            account_id=request.account_id,
            region=request.region,
            retain=retain,
            user_properties=_user_properties(request),
        )
        broker.ingest(message)
        return AwsResponse(200, b"", {"Content-Type": "application/json"})

    return publish


def _topic_of(request: AwsRequest) -> str | None:
    if request.method != "POST":
        return None
    topic = request.path_params.get("topic")
    if topic:
        return topic
    match = re.match(r"^/topics/(.+)$", request.path)
    return unquote(match.group(1)) if match else None


def _access_key(request: AwsRequest) -> str | None:
    match = re.search(r"Credential=([^/]+)/", request.headers.get("authorization", ""))
    return match.group(1) if match else None


def _user_properties(request: AwsRequest) -> tuple[tuple[str, str], ...]:
    # iot-data Publish sends MQTT 5 user properties as base64 JSON [{"k": "v"}, ...].
    raw = request.headers.get("x-amz-mqtt5-user-properties")
    if not raw:
        return ()
    try:
        items: Any = json.loads(base64.b64decode(raw))
        if isinstance(items, str):  # botocore JSON-encodes the (already JSON) string once more
            items = json.loads(items)
    except (ValueError, binascii.Error):
        return ()
    pairs = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            pairs.extend((str(k), str(v)) for k, v in item.items())
    return tuple(pairs)
