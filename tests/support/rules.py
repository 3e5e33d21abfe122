"""Topic rules for the rules engine's tests, made with boto3 as a user would: create one, hand
the engine a message as the broker would, and read back what its actions wrote (S3 objects,
errorAction documents, Kinesis records)."""

from __future__ import annotations

import json
import time
from typing import Any

from emulator.iot.messages import InboundMessage
from emulator.rules.actions import ActionRun
from emulator.rules.sql import MessageContext


def create_rule(
    iot: Any,
    name: str,
    sql: str,
    actions: list[dict[str, Any]],
    error_action: dict[str, Any] | None = None,
    disabled: bool | None = None,
    version: str | None = "2016-03-23",
) -> str:
    """CreateTopicRule; `version` None leaves awsIotSqlVersion out (IoT's default applies).
    The rule's ARN."""
    payload: dict[str, Any] = {"sql": sql, "actions": actions}
    if version is not None:
        payload["awsIotSqlVersion"] = version
    if disabled is not None:
        payload["ruleDisabled"] = disabled
    if error_action:
        payload["errorAction"] = error_action
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
    return iot.get_topic_rule(ruleName=name)["ruleArn"]


def message(
    topic: str, payload: bytes, account_id: str, region: str, **sender: Any
) -> InboundMessage:
    """A QoS 1 message as the broker hands it to the rules engine; `sender` sets client_id,
    principal and timestamp_ms (default "c", None, 0)."""
    fields = {"client_id": "c", "principal": None, "timestamp_ms": 0, **sender}
    return InboundMessage(topic, payload, qos=1, account_id=account_id, region=region, **fields)


def inbound(
    emulator: Any, topic: str, payload: bytes, client_id: str = "sensor-7"
) -> InboundMessage:
    """A device's message to the session emulator, now, as the broker hands it to the engine."""
    now_ms = int(time.time() * 1000)
    return message(
        topic,
        payload,
        emulator.account_id,
        emulator.region,
        client_id=client_id,
        principal="ab" * 32,
        timestamp_ms=now_ms,
    )


def action_run(
    kind: str,
    params: dict[str, Any],
    run_message: InboundMessage,
    rule: str = "r",
    services: Any = None,
) -> ActionRun:
    """Action `kind` of rule `rule` for `run_message`, outside an engine (`services` stands in
    for the engine's ActionContext where the code under test reads it)."""
    context = MessageContext(topic=run_message.topic)
    return ActionRun(services, kind, params, run_message, context, rule, 0)


def s3_action(bucket: str, key: str, role_arn: str) -> dict[str, Any]:
    """An S3 rule action (or errorAction) writing object `key` of `bucket`."""
    return {"s3": {"bucketName": bucket, "key": key, "roleArn": role_arn}}


def new_bucket(aws: Any, bucket: str) -> Any:
    """Create `bucket`; the S3 client."""
    s3 = aws("s3")
    s3.create_bucket(Bucket=bucket)
    return s3


def keys(s3: Any, bucket: str) -> list[str]:
    """The keys in `bucket` (the first page: the tests write a handful)."""
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def error_message(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """The errorAction message an S3 errorAction wrote at `key` (JSON)."""
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def error_documents(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every errorAction document written to `bucket`, oldest key first."""
    return [error_message(s3, bucket, key) for key in sorted(keys(s3, bucket))]


def s3_rule(aws: Any, name: str, sql: str, bucket: str, role_arn: str) -> Any:
    """`bucket`, and rule `name` writing its output to `out` there and its errorAction message
    to `error`; the S3 client."""
    s3 = new_bucket(aws, bucket)
    actions = [s3_action(bucket, "out", role_arn)]
    create_rule(aws("iot"), name, sql, actions, error_action=s3_action(bucket, "error", role_arn))
    return s3


def kinesis_records(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    """The records of a one-shard stream, from its start (TRIM_HORIZON)."""
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return kinesis.get_records(ShardIterator=iterator)["Records"]
