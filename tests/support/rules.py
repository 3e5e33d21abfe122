"""Topic rules and their S3 targets, made with boto3 as a user would, for the rules tests."""

from __future__ import annotations

import json
from typing import Any


def create_rule(
    iot: Any,
    name: str,
    sql: str,
    actions: list[dict[str, Any]],
    error_action: dict[str, Any] | None = None,
    disabled: bool | None = None,
    version: str | None = "2016-03-23",
) -> None:
    """CreateTopicRule; `version` None leaves awsIotSqlVersion out (IoT's default applies)."""
    payload: dict[str, Any] = {"sql": sql, "actions": actions}
    if version is not None:
        payload["awsIotSqlVersion"] = version
    if disabled is not None:
        payload["ruleDisabled"] = disabled
    if error_action:
        payload["errorAction"] = error_action
    iot.create_topic_rule(ruleName=name, topicRulePayload=payload)


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


def s3_rule(aws: Any, name: str, sql: str, bucket: str, role_arn: str) -> Any:
    """`bucket`, and rule `name` writing its output to `out` there and its errorAction message
    to `error`; the S3 client."""
    s3 = new_bucket(aws, bucket)
    actions = [s3_action(bucket, "out", role_arn)]
    create_rule(aws("iot"), name, sql, actions, error_action=s3_action(bucket, "error", role_arn))
    return s3
