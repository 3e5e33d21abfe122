"""Firehose delivery streams made with boto3 as a user would, for every suite that needs one
(the Firehose tests reach these through firehose_helpers)."""

from __future__ import annotations

import time
from typing import Any

# A role tests/iam_roles.py creates on the session emulator, with S3, Lambda and logs access.
ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"
# Buffering hints that flush on the first record (IntervalInSeconds 0 is AWS's minimum:
# https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html).
IMMEDIATE = {"SizeInMBs": 1, "IntervalInSeconds": 0}


def create_stream(aws: Any, name: str, bucket: str, role: str = ROLE, **destination: Any) -> None:
    """A DirectPut stream into `bucket` (which need not exist); `destination` adds settings."""
    config = {"RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}", **destination}
    aws("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=config,
    )


def make_stream(aws: Any, name: str, bucket: str, role: str = ROLE, **destination: Any) -> None:
    """The bucket, then a stream into it."""
    aws("s3").create_bucket(Bucket=bucket)
    create_stream(aws, name, bucket, role, **destination)


def error_log_events(logs: Any, group: str, timeout: float = 10.0) -> list[dict]:
    """The events of the stream's `DestinationDelivery` error log, once there is one."""
    deadline = time.monotonic() + timeout
    events: list[dict] = []
    while not events and time.monotonic() < deadline:
        events = logs.get_log_events(logGroupName=group, logStreamName="DestinationDelivery")[
            "events"
        ]
        time.sleep(0.1)
    return events


def error_log(logs: Any, stream: str) -> tuple[str, dict[str, Any]]:
    """The log group and stream Firehose logs `stream`'s delivery errors to (the console's
    names), created; and the CloudWatchLoggingOptions that name them."""
    group = f"/aws/kinesisfirehose/{stream}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="DestinationDelivery")
    return group, {"Enabled": True, "LogGroupName": group, "LogStreamName": "DestinationDelivery"}


def processor(kind: str, **parameters: str) -> dict[str, Any]:
    """One entry of ProcessingConfiguration.Processors: its Type and its named parameters."""
    return {
        "Type": kind,
        "Parameters": [{"ParameterName": k, "ParameterValue": v} for k, v in parameters.items()],
    }


def processing(*processors: dict[str, Any]) -> dict[str, Any]:
    """An enabled ProcessingConfiguration running `processors` in order."""
    return {"Enabled": True, "Processors": list(processors)}
