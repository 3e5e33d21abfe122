"""Topic rules and what their actions wrote, for the rule action suites."""

from __future__ import annotations

from typing import Any


def create_rule(
    aws: Any,
    name: str,
    sql: str,
    actions: list[dict[str, Any]],
    error_action: dict[str, Any] | None = None,
) -> None:
    """CreateTopicRule (SQL version 2016-03-23) through the `aws` client factory."""
    payload: dict[str, Any] = {"sql": sql, "awsIotSqlVersion": "2016-03-23", "actions": actions}
    if error_action:
        payload["errorAction"] = error_action
    aws("iot").create_topic_rule(ruleName=name, topicRulePayload=payload)


def kinesis_records(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    """The records of a one-shard stream, from its start (TRIM_HORIZON)."""
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return kinesis.get_records(ShardIterator=iterator)["Records"]
