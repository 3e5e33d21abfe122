"""Gateway handlers of the rules engine: topic rule validation and iot-data Publish.

- iot CreateTopicRule / ReplaceTopicRule: the SQL is compiled before moto stores the rule; a
  statement the engine cannot run is refused with `SqlParseException` (HTTP 400, the error the
  IoT API reference lists for these operations) naming the position and the reason. Actions the
  engine cannot run are refused with `InvalidRequestException`.
- iot-data Publish (`POST /topics/{topic}?qos=`): the message goes to the rules engine and to
  MQTT subscribers; the answer is HTTP 200 with an empty body, as AWS's.
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
from emulator.mqtt.topics import publish_topic_error
from emulator.rules.actions import check_action
from emulator.rules.sql import DEFAULT_VERSION, SqlError, compile_sql

if TYPE_CHECKING:
    from emulator.gateway import Gateway
    from emulator.rules.engine import RulesEngine

MAX_PAYLOAD_BYTES = 128 * 1024  # IoT Core message size limit


def register(gateway: Gateway, engine: RulesEngine) -> None:
    gateway.on("iot", "CreateTopicRule", validate_topic_rule)
    gateway.on("iot", "ReplaceTopicRule", validate_topic_rule)
    publish = _publisher(engine)
    gateway.on("iot-data", "Publish", publish)
    # A topic with '/' arrives percent-encoded and is decoded before routing, so the operation
    # may not be identified; such requests reach the (service, "") handlers.
    gateway.on("iot-data", "", publish)


def validate_sql(sql: str, version: str = DEFAULT_VERSION) -> None:
    """Raise `SqlError` if the rules engine cannot run `sql` (used by CloudFormation too)."""
    compile_sql(sql, version)


def validate_topic_rule(request: AwsRequest) -> AwsResponse | None:
    try:
        payload = request.json()
    except ValueError:
        return None  # let moto answer the malformed request
    sql = payload.get("sql")
    if not isinstance(sql, str):
        return None
    version = payload.get("awsIotSqlVersion")
    if version is None:
        # AWS runs (and GetTopicRule reports) a rule without awsIotSqlVersion as 2015-10-08
        # (https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-sql-version.html);
        # moto would store 2016-03-23, so the version is written into the request it stores.
        version = DEFAULT_VERSION
        payload["awsIotSqlVersion"] = version
        request.body = json.dumps(payload).encode("utf-8")
    if not isinstance(version, str):
        return json_error("InvalidRequestException", "awsIotSqlVersion must be a string")
    try:
        compile_sql(sql, version)
    except SqlError as error:
        return json_error(
            "SqlParseException",
            f"Line {error.line}:{error.column - 1}: {error.reason} "
            f"(line {error.line}, column {error.column}, offset {error.offset}) in {sql!r}",
        )
    actions = list(payload.get("actions") or [])
    if not actions:
        return json_error("InvalidRequestException", "A topic rule needs at least one action")
    error_action = payload.get("errorAction")
    for label, action in [("actions", a) for a in actions] + (
        [("errorAction", error_action)] if error_action else []
    ):
        try:
            reason = check_action(action)
        except SqlError as error:
            reason = f"invalid substitution template: {error.reason}"
        if reason:
            return json_error("InvalidRequestException", f"{label}: {reason}")
    return None


def _publisher(engine: RulesEngine):
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
        engine.accept(message)
        broker = engine.emulator_component("broker")
        if broker is not None:
            broker.publish(message)
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
