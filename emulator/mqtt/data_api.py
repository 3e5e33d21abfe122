"""iot-data Publish (`POST /topics/{topic}?qos=&retain=`): IoT Core's HTTP way in; and the
retained messages' API, ListRetainedMessages (`GET /retainedMessage`) and GetRetainedMessage
(`GET /retainedMessage/{topic}`).

The message passes the same topic rules as an MQTT PUBLISH (emulator/mqtt/topics.py), then
`Broker.ingest` hands it to the rules engine and to MQTT subscribers; the answer is HTTP 200
with an empty body, as AWS's
(https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_Publish.html).

The emulator does not authenticate HTTP callers (any credentials are accepted), so
iot:Publish, iot:RetainPublish, iot:ListRetainedMessages and iot:GetRetainedMessage are not
evaluated for them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response
from emulator.iot.messages import NO_CLIENT_ID, InboundMessage
from emulator.mqtt.limits import MAX_PAYLOAD_BYTES
from emulator.mqtt.topics import publish_topic_error

if TYPE_CHECKING:
    from emulator.gateway import Gateway
    from emulator.mqtt.broker import Broker


# ListRetainedMessages: "maxResults ... Valid Range: Minimum value of 1. Maximum value of 200"
# (https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_ListRetainedMessages.html).
MAX_LIST_RESULTS = 200


def register(gateway: Gateway, broker: Broker) -> None:
    publish = _publisher(broker)
    gateway.on("iot-data", "Publish", publish)
    # A topic with '/' arrives percent-encoded and is decoded before routing, so the operation
    # may not be identified; such requests reach the (service, "") handlers.
    gateway.on("iot-data", "", publish)
    gateway.on("iot-data", "ListRetainedMessages", lambda request: _list_retained(broker, request))
    get_retained = _retained_getter(broker)
    gateway.on("iot-data", "GetRetainedMessage", get_retained)
    gateway.on("iot-data", "", get_retained)


def _list_retained(broker: Broker, request: AwsRequest) -> AwsResponse:
    """ListRetainedMessages: topics in a stable (sorted) order, `nextToken` the last topic
    of the page, base64 so that it is opaque."""
    size_text = request.query_value("maxResults")
    size = MAX_LIST_RESULTS
    if size_text is not None:
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_LIST_RESULTS:
            return json_error(
                "InvalidRequestException",
                f"maxResults must be an integer from 1 to {MAX_LIST_RESULTS}, not {size_text!r}",
            )
        size = int(size_text)
    topics = broker.retained.topics()
    token = request.query_value("nextToken")
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode()).decode("utf-8")
        except (ValueError, binascii.Error):
            return json_error(
                "InvalidRequestException",
                "nextToken is not a token of ListRetainedMessages: pass the nextToken of the "
                "previous answer unchanged",
            )
        topics = [t for t in topics if t > after]
    page = topics[:size]
    summaries = []
    for topic in page:
        message = broker.retained.get(topic)
        if message is not None:
            summaries.append(
                {
                    "topic": topic,
                    "payloadSize": len(message.payload),
                    "qos": message.qos,
                    "lastModifiedTime": message.last_modified_ms,
                }
            )
    body: dict[str, Any] = {"retainedTopics": summaries}
    if len(topics) > size:
        body["nextToken"] = base64.urlsafe_b64encode(page[-1].encode("utf-8")).decode()
    return json_response(body)


def _retained_getter(broker: Broker):
    def get_retained(request: AwsRequest) -> AwsResponse | None:
        if request.method != "GET":
            return None
        topic = request.path_params.get("topic")
        if not topic:
            match = re.match(r"^/retainedMessage/(.+)$", request.path)
            if match is None:
                return None
            topic = unquote(match.group(1))
        message = broker.retained.get(topic)
        if message is None:
            # GetRetainedMessage: "ResourceNotFoundException ... HTTP Status Code: 404"
            # (https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_GetRetainedMessage.html).
            return json_error(
                "ResourceNotFoundException", f"No retained message exists on topic {topic!r}", 404
            )
        body: dict[str, Any] = {
            "topic": topic,
            "payload": base64.b64encode(message.payload).decode(),
            "qos": message.qos,
            "lastModifiedTime": message.last_modified_ms,
        }
        user_properties = message.user_properties()
        if user_properties:
            # "A base64-encoded JSON string that includes an array of JSON objects"
            body["userProperties"] = base64.b64encode(
                json.dumps([{k: v} for k, v in user_properties]).encode()
            ).decode()
        return json_response(body)

    return get_retained


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
        if retain:
            problem = broker.retain_refusal(topic, len(request.body))
            if problem:
                # "a throttled response to messages published with RETAIN set" (mqtt.html);
                # iot-data's throttling error is ThrottlingException, HTTP 429.
                return json_error("ThrottlingException", f"Publish refused: {problem}", 429)
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
