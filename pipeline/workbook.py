"""The workbook's steps, one function per thing a notebook does, for the local and AWS targets.

Each function takes the `Target` (clients for the emulator or the account) and the stack's
outputs, so the notebooks hold parameters and calls only. Every AWS call here runs on both
targets; what is AWS-only (credentials, a real artifacts bucket's region) is marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from pipeline import batches, certificates, objects, stack
from pipeline.paths import TEMPLATE
from pipeline.target import Target

# Where the stack's Firehose writes, relative to its Environment (see template.yaml).
RULE_ERRORS_PREFIX = "errors/iot-rule/"


def prefixes(environment: str) -> dict[str, str]:
    return {
        "data": f"{environment}/data/",
        "errors": f"{environment}/errors/",
        "processing_failed": f"{environment}/errors/processing-failed/",
    }


# ------------------------------------------------------------------------------ 01 deploy
def artifacts_bucket(target: Target, stack_name: str) -> str:
    """A bucket for the packaged Lambda code (what `sam deploy --resolve-s3` would make)."""
    name = f"{stack_name}-artifacts-{target.account_id}-{target.region}".lower()[:63]
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=name)
    except ClientError:
        if target.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:  # AWS requires the location outside us-east-1
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": target.region}
            )
    return name


def deploy(target: Target, stack_name: str, parameters: dict[str, Any]) -> dict[str, str]:
    """Package the Lambda code, deploy template.yaml, return the stack's outputs."""
    bucket = artifacts_bucket(target, stack_name)
    template = stack.package_template(TEMPLATE, bucket, target.client("s3"))
    delay = 1 if target.name == "local" else 10
    return stack.deploy_stack(
        target.client("cloudformation"), stack_name, template, parameters, delay=delay
    )


def outputs(target: Target, stack_name: str) -> dict[str, str]:
    rows = stack.stack_outputs(target.client("cloudformation"), stack_name)
    return {row["OutputKey"]: row["OutputValue"] for row in rows}


# -------------------------------------------------------------------- 04 inspect batches
@dataclass
class Delivered:
    """Everything Firehose and the rule's errorAction wrote for one run."""

    raw: list[objects.DeliveredObject] = field(default_factory=list)
    parsed: list[objects.DeliveredObject] = field(default_factory=list)
    processing_failed: list[objects.DeliveredObject] = field(default_factory=list)
    rule_errors: list[objects.DeliveredObject] = field(default_factory=list)
    raw_lines: list[int] = field(default_factory=list)
    parsed_lines: list[int] = field(default_factory=list)
    raw_bytes: list[int] = field(default_factory=list)
    failed_records: list[batches.FailedRecord] = field(default_factory=list)
    bad_lines: list[batches.BatchLine] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "raw_objects": len(self.raw),
            "raw_lines": sum(self.raw_lines),
            "parsed_objects": len(self.parsed),
            "parsed_rows": sum(self.parsed_lines),
            "processing_failed": len(self.failed_records),
            "rule_errors": len(self.rule_errors),
            "unreadable_lines": len(self.bad_lines),
        }


# Firehose never rewrites an object, so a batch's line count is read once per (bucket, key).
_LINE_COUNTS: dict[tuple[str, str], int] = {}


def _count_lines(s3: Any, bucket: str, prefix: str) -> int:
    total = 0
    for obj in objects.list_objects(s3, bucket, prefix):
        key = (obj.bucket, obj.key)
        if key not in _LINE_COUNTS:
            body = objects.read_object(s3, obj)
            _LINE_COUNTS[key] = len(batches.split_lines(batches.decompress(body)))
        total += _LINE_COUNTS[key]
    return total


def count_raw_lines(target: Target, out: dict[str, str], environment: str) -> int:
    """Records in the raw bucket's batches so far (what Firehose backed up)."""
    return _count_lines(target.client("s3"), out["RawBucketName"], prefixes(environment)["data"])


def count_parsed_rows(target: Target, out: dict[str, str], environment: str) -> int:
    """Rows in the parsed bucket plus processing-failed records so far."""
    s3, where = target.client("s3"), prefixes(environment)
    bucket = out["ParsedBucketName"]
    return _count_lines(s3, bucket, where["data"]) + _count_lines(
        s3, bucket, where["processing_failed"]
    )


def count_rule_errors(target: Target, out: dict[str, str]) -> int:
    s3 = target.client("s3")
    return len(objects.list_objects(s3, out["RawBucketName"], RULE_ERRORS_PREFIX))


def wait_delivered(
    target: Target, out: dict[str, str], environment: str, acknowledged: int, timeout: float
) -> dict[str, int]:
    """Wait until the raw side accounts for every acknowledged message (raw records + rule
    errors), then until the parsed side accounts for every raw record (rows + failures)."""
    raw = objects.wait_for(
        lambda: count_raw_lines(target, out, environment) + count_rule_errors(target, out),
        acknowledged,
        timeout,
    )
    raw_lines = count_raw_lines(target, out, environment)
    parsed = objects.wait_for(
        lambda: count_parsed_rows(target, out, environment), raw_lines, timeout
    )
    return {"acknowledged": acknowledged, "raw side": raw, "parsed side": parsed}


def collect(target: Target, out: dict[str, str], environment: str) -> Delivered:
    """List and read every object the run produced in both buckets."""
    s3 = target.client("s3")
    where = prefixes(environment)
    found = Delivered(
        raw=objects.list_objects(s3, out["RawBucketName"], where["data"]),
        parsed=objects.list_objects(s3, out["ParsedBucketName"], where["data"]),
        processing_failed=objects.list_objects(
            s3, out["ParsedBucketName"], where["processing_failed"]
        ),
        rule_errors=objects.list_objects(s3, out["RawBucketName"], RULE_ERRORS_PREFIX),
    )
    for body in objects.iter_bodies(s3, found.raw):
        data = batches.decompress(body)
        found.raw_bytes.append(len(data))
        found.raw_lines.append(len(batches.split_lines(data)))
    for body in objects.iter_bodies(s3, found.parsed):
        lines = list(batches.iter_batch_records(body))
        found.parsed_lines.append(len(lines))
        found.bad_lines.extend(line for line in lines if not line.ok)
    for body in objects.iter_bodies(s3, found.processing_failed):
        for item in batches.iter_processing_failed(body):
            if isinstance(item, batches.FailedRecord):
                found.failed_records.append(item)
            else:
                found.bad_lines.append(item)
    return found


def batching_timeline(found: Delivered, buffer_size_mbs: int) -> list[dict[str, Any]]:
    """One row per raw batch: when it started, how many records, and what closed it."""
    return [
        {
            "batch started (UTC)": obj.batch_started,
            "records": lines,
            "uncompressed bytes": size,
            "closed by": objects.flush_reason(size, buffer_size_mbs),
        }
        for obj, lines, size in zip(found.raw, found.raw_lines, found.raw_bytes, strict=True)
    ]


def failure_table(found: Delivered) -> list[dict[str, Any]]:
    return [
        {
            "error code": record.error_code,
            "message": record.error_message,
            "attempts": record.attempts_made,
            "arrived": record.arrival_time,
            "raw data": record.raw_data[:80],
        }
        for record in found.failed_records
    ]


def rule_error_table(target: Target, found: Delivered) -> list[dict[str, Any]]:
    """The topic rule's errorAction messages (one object each): which action failed and why."""
    import json

    s3 = target.client("s3")
    rows = []
    for obj, body in zip(
        found.rule_errors, objects.iter_bodies(s3, found.rule_errors), strict=True
    ):
        message = json.loads(body)
        for failure in message.get("failures", []):
            rows.append(
                {
                    "key": obj.key,
                    "topic": message.get("topic"),
                    "client id": message.get("clientId"),
                    "failed action": failure.get("failedAction"),
                    "error": failure.get("errorMessage"),
                }
            )
    return rows


# -------------------------------------------------------------------------- 06 teardown
def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every object (and version) so that CloudFormation can delete the bucket."""
    deleted = 0
    try:
        pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket))
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucket":
            return 0
        raise
    for page in pages:
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(
                Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True}
            )
            deleted += len(keys[start : start + 1000])
    return deleted


def teardown(target: Target, stack_name: str) -> dict[str, Any]:
    """Detach and delete the thing's certificates, empty the buckets, delete the stack and the
    artifacts bucket. The thing cannot be deleted while a certificate is attached, which is why
    certificates go first."""
    report: dict[str, Any] = {"certificates deleted": [], "objects deleted": 0}
    cfn = target.client("cloudformation")
    try:
        out = outputs(target, stack_name)
    except stack.StackError:
        out = {}
    s3 = target.client("s3")
    if out:
        report["certificates deleted"] = certificates.delete_thing_certificates(
            target.client("iot"), out["ThingName"]
        )
        for key in ("RawBucketName", "ParsedBucketName"):
            report["objects deleted"] += empty_bucket(s3, out[key])
        stack.delete_stack(cfn, stack_name, delay=1 if target.name == "local" else 10)
        report["local files removed"] = certificates.forget_local(out["ThingName"])
    bucket = f"{stack_name}-artifacts-{target.account_id}-{target.region}".lower()[:63]
    report["objects deleted"] += empty_bucket(s3, bucket)
    try:
        s3.delete_bucket(Bucket=bucket)
    except ClientError:
        pass
    report["left over"] = left_over(target, stack_name, out)
    return report


def left_over(target: Target, stack_name: str, out: dict[str, str]) -> list[str]:
    """What still exists of the stack after teardown (empty when everything is gone)."""
    found = []
    checks = [
        ("stack", lambda: target.client("cloudformation").describe_stacks(StackName=stack_name)),
    ]
    if out:
        checks += [
            ("thing", lambda: target.client("iot").describe_thing(thingName=out["ThingName"])),
            ("policy", lambda: target.client("iot").get_policy(policyName=out["PolicyName"])),
            (
                "topic rule",
                lambda: target.client("iot").get_topic_rule(ruleName=out["TopicRuleName"]),
            ),
            (
                "delivery stream",
                lambda: target.client("firehose").describe_delivery_stream(
                    DeliveryStreamName=out["DeliveryStreamName"]
                ),
            ),
            (
                "function",
                lambda: target.client("lambda").get_function(FunctionName=out["FunctionName"]),
            ),
            ("raw bucket", lambda: target.client("s3").head_bucket(Bucket=out["RawBucketName"])),
            (
                "parsed bucket",
                lambda: target.client("s3").head_bucket(Bucket=out["ParsedBucketName"]),
            ),
        ]
    for name, check in checks:
        try:
            check()
        except ClientError:
            continue
        found.append(name)
    return found
