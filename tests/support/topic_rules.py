"""Topic rules for the rules engine's tests: create one with boto3, hand the engine a message as
the broker would, and read back the errorAction documents an S3 errorAction wrote."""

from __future__ import annotations

import json
import time
from typing import Any

from emulator.iot.messages import InboundMessage


def create_rule(
    iot: Any, name: str, sql: str, actions: list[dict], error_action: dict | None = None
) -> str:
    """CreateTopicRule with SQL version 2016-03-23; the rule's ARN."""
    payload: dict[str, Any] = {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions}
    if error_action:
        payload["errorAction"] = error_action
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload)
    return iot.get_topic_rule(ruleName=name)["ruleArn"]


def inbound(
    emulator: Any, topic: str, payload: bytes, client_id: str = "sensor-7"
) -> InboundMessage:
    """A QoS 1 message as the broker hands it to the rules engine."""
    return InboundMessage(
        topic=topic,
        payload=payload,
        qos=1,
        client_id=client_id,
        principal="ab" * 32,
        timestamp_ms=int(time.time() * 1000),
        account_id=emulator.account_id,
        region=emulator.region,
    )


def error_documents(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """Every errorAction document written to `bucket`, oldest key first."""
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read()) for k in keys]
