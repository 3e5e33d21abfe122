"""The workbook's steps, one function per thing a notebook does, for the local and AWS targets.

Each function takes the `Target` (clients for the emulator or the account) and the stack's
outputs, so the notebooks hold parameters and calls only. Every AWS call here runs on both
targets; what is AWS-only (credentials, a real artifacts bucket's region) is marked.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline import batches, certificates, objects, progress, runs, settings, stack, transform
from pipeline.ledger import Ledger
from pipeline.paths import TEMPLATE
from pipeline.target import Target, open_target

# Where the stack's Firehose writes, relative to its Environment (see template.yaml).
RULE_ERRORS_PREFIX = "errors/iot-rule/"


def prefixes(environment: str) -> dict[str, str]:
    return {
        "data": f"{environment}/data/",
        "errors": f"{environment}/errors/",
        "processing_failed": f"{environment}/errors/processing-failed/",
        # With dynamic partitioning and record format conversion (Firehose guide,
        # "dynamic-partitioning-error-handling", "record-format-conversion-error-handling").
        "partitioning_failed": f"{environment}/errors/partitioning-failed/",
        "conversion_failed": f"{environment}/errors/format-conversion-failed/",
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
    """Package the Lambda code, deploy template.yaml, return the stack's outputs.

    On AWS the buckets get a per-deployment name (BucketNamePrefix with a random suffix, kept
    on updates): S3 may refuse a just-deleted bucket name for a while, so a deploy after a
    teardown must not reuse it. A fresh Firehose role can take a few seconds to be assumable
    (IAM is eventually consistent), so a creation that fails on it is retried once."""
    bucket = artifacts_bucket(target, stack_name)
    template = stack.package_template(TEMPLATE, bucket, target.client("s3"))
    delay = 1 if target.name == "local" else 10
    cfn = target.client("cloudformation")
    parameters = dict(parameters)
    if target.name == "aws" and "BucketNamePrefix" not in parameters:
        parameters["BucketNamePrefix"] = _bucket_prefix(cfn, stack_name)
    try:
        return stack.deploy_stack(cfn, stack_name, template, parameters, delay=delay)
    except stack.StackError as exc:
        if target.name != "aws" or "assume" not in str(exc).lower():
            raise
        stack.delete_stack(cfn, stack_name, delay=delay)
        time.sleep(15)
        return stack.deploy_stack(cfn, stack_name, template, parameters, delay=delay)


def _bucket_prefix(cfn: Any, stack_name: str) -> str:
    """The deployed stack's BucketNamePrefix, or a new one with a random suffix."""
    try:
        described = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError:
        described = {}
    for parameter in described.get("Parameters", []):
        if parameter["ParameterKey"] == "BucketNamePrefix":
            return parameter["ParameterValue"]
    import secrets

    return f"iot-pipeline-{secrets.token_hex(3)}"


def outputs(target: Target, stack_name: str) -> dict[str, str]:
    rows = stack.stack_outputs(target.client("cloudformation"), stack_name)
    return {row["OutputKey"]: row["OutputValue"] for row in rows}


# ------------------------------------------------------------------------ prerequisites
def connect(config: settings.Settings) -> Target:
    """The target the workbook's settings name (the emulator is started if needed)."""
    return open_target(config.target, config.region)


def require_stack(target: Target, stack_name: str) -> dict[str, str]:
    """The deployed stack's outputs, or a PrerequisiteError saying to run (or wait for) 01."""
    where = f"{stack_name} ({target.name}, {target.region})"
    try:
        described = target.client("cloudformation").describe_stacks(StackName=stack_name)
    except ClientError as exc:
        if "does not exist" not in str(exc):
            raise
        raise runs.PrerequisiteError(
            f"stack {where} does not exist: run 01-deploy-stack first"
        ) from None
    status = described["Stacks"][0]["StackStatus"]
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"):
        raise runs.PrerequisiteError(f"stack {where} is {status}: {stack.advice(status)}")
    return outputs(target, stack_name)


def require_certificate(target: Target, thing_name: str) -> certificates.DeviceCertificate:
    """The device certificate 02 made, ACTIVE and still registered, or a PrerequisiteError."""
    try:
        device = certificates.load_device(target.client("iot"), thing_name)
    except (FileNotFoundError, ClientError):
        raise runs.PrerequisiteError(
            f"no device certificate for {thing_name} on this target: run 02-certificates first"
        ) from None
    if device.status != "ACTIVE":
        raise runs.PrerequisiteError(
            f"the device certificate of {thing_name} is {device.status}: run 02-certificates again"
        )
    return device


def require_delivered(found: Delivered) -> None:
    """At least one parsed row of the current run, or a PrerequisiteError saying what to do."""
    if not found.figures()["parsed_rows"]:
        raise runs.PrerequisiteError(
            f"nothing of run {found.scope.run_id} has been delivered to the parsed bucket:"
            " run 04-inspect-batches (it waits for Firehose's buffer) and check its error"
            " tables; every message of the run may have failed"
        )


# -------------------------------------------------------------------- 04 inspect batches
@dataclass(frozen=True)
class Record:
    """One record found in a delivered object: the run it belongs to and, for the error
    outputs, what the tables show."""

    run_id: str | None
    detail: Any = None


@dataclass
class Delivered:
    """What Firehose and the rule's errorAction wrote: this run's records, and earlier runs'."""

    scope: runs.RunScope
    raw: list[objects.DeliveredObject] = field(default_factory=list)
    parsed: list[objects.DeliveredObject] = field(default_factory=list)
    processing_failed: list[objects.DeliveredObject] = field(default_factory=list)
    partitioning_failed: list[objects.DeliveredObject] = field(default_factory=list)
    conversion_failed: list[objects.DeliveredObject] = field(default_factory=list)
    rule_errors: list[objects.DeliveredObject] = field(default_factory=list)
    records: dict[tuple[str, str], list[Record]] = field(default_factory=dict)
    raw_bytes: dict[tuple[str, str], int] = field(default_factory=dict)

    def mine(self, obj: objects.DeliveredObject) -> int:
        found = self.records[obj.bucket, obj.key]
        if self.scope.run_id == runs.ALL_RUNS:
            return len(found)
        return sum(r.run_id == self.scope.run_id for r in found)

    def others(self, obj: objects.DeliveredObject) -> int:
        return len(self.records[obj.bucket, obj.key]) - self.mine(obj)

    def ours(self, found: list[objects.DeliveredObject]) -> list[objects.DeliveredObject]:
        """The objects that hold at least one record of this run."""
        return [obj for obj in found if self.mine(obj)]

    def details(self, found: list[objects.DeliveredObject]) -> list[Any]:
        return [
            r.detail
            for obj in found
            for r in self.records[obj.bucket, obj.key]
            if r.detail is not None and self.scope.run_id in (r.run_id, runs.ALL_RUNS)
        ]

    def failed_in(self, found: list[objects.DeliveredObject]) -> list[batches.FailedRecord]:
        return [d for d in self.details(found) if isinstance(d, batches.FailedRecord)]

    @property
    def failed_records(self) -> list[batches.FailedRecord]:
        return self.failed_in(self.processing_failed)

    @property
    def error_outputs(self) -> list[objects.DeliveredObject]:
        return self.processing_failed + self.partitioning_failed + self.conversion_failed

    @property
    def bad_lines(self) -> list[batches.BatchLine]:
        return [
            d
            for d in self.details(self.parsed + self.error_outputs)
            if isinstance(d, batches.BatchLine)
        ]

    def figures(self) -> dict[str, Any]:
        """This run's counts (what the reconciliation uses)."""
        return {
            "run_id": self.scope.run_id,
            "raw_objects": len(self.ours(self.raw)),
            "raw_lines": sum(map(self.mine, self.raw)),
            "parsed_objects": len(self.ours(self.parsed)),
            "parsed_rows": sum(map(self.mine, self.parsed)),
            "processing_failed": len(self.failed_records),
            "partitioning_failed": len(self.failed_in(self.partitioning_failed)),
            "conversion_failed": len(self.failed_in(self.conversion_failed)),
            "not_json_objects": sum(map(is_not_json_record, self.failed_records)),
            "rule_errors": sum(map(self.mine, self.rule_errors)),
            "unreadable_lines": len(self.bad_lines),
        }

    def earlier(self) -> dict[str, int]:
        """What the buckets hold of other (earlier) runs, shown apart from this run."""
        return {
            "raw lines": sum(map(self.others, self.raw)),
            "parsed rows": sum(map(self.others, self.parsed)),
            "processing-failed records": sum(map(self.others, self.processing_failed)),
            "partitioning-failed records": sum(map(self.others, self.partitioning_failed)),
            "format-conversion-failed records": sum(map(self.others, self.conversion_failed)),
            "rule errors": sum(map(self.others, self.rule_errors)),
        }


# Firehose never rewrites an object, so each object is read and classified once.
_RECORDS: dict[tuple[str, str], list[Record]] = {}
_RAW_SIZE: dict[tuple[str, str], int] = {}  # a raw batch's size before compression
_KEY_MS = re.compile(r"/(\d{13})-[0-9a-f-]{36}\.json$")


def _by_neighbour(found: list[Record]) -> list[Record]:
    """Lines with no run id (a message whose JSON is not an object) belong to the run of the
    records around them: within one batch, records are in arrival order and runs follow each
    other."""
    known = [r.run_id for r in found]
    for i, run in enumerate(known):
        if run is None:
            before = next((x for x in reversed(known[:i]) if x), None)
            after = next((x for x in known[i + 1 :] if x), None)
            found[i] = Record(before or after, found[i].detail)
    return found


def _classify(s3: Any, obj: objects.DeliveredObject, kind: str, scope: runs.RunScope) -> list:
    cache_key = (obj.bucket, obj.key)
    if kind != "rule" and cache_key in _RECORDS:
        return _RECORDS[cache_key]
    body = objects.read_object(s3, obj)
    from pipeline.analysis import is_parquet

    if kind == "parsed" and is_parquet(body):  # record format conversion
        found = [Record(run, None) for run in _parquet_run_ids(body)]
    elif kind in ("raw", "parsed"):
        if kind == "raw":
            _RAW_SIZE[cache_key] = len(batches.decompress(body))
        lines = list(batches.iter_batch_records(body))
        found = _by_neighbour(
            [
                Record(runs.run_of(line.value) if line.ok else None, None if line.ok else line)
                for line in lines
            ]
        )
        if kind == "parsed":  # unreadable lines are shown, but still counted as rows
            found = [
                Record(r.run_id, line if not line.ok else None)
                for r, line in zip(found, lines, strict=True)
            ]
    elif kind in FAILED_KINDS:
        found = []
        for item in batches.iter_processing_failed(body):
            run = None
            if isinstance(item, batches.FailedRecord):
                run = runs.run_of_bytes(item.raw_data)
                if run is None and item.arrival_time is not None:
                    # placed by time; cached for this scope only (see below)
                    run = (
                        scope.run_id
                        if scope.owns_time(item.arrival_time.timestamp() * 1000)
                        else "earlier"
                    )
            found.append(Record(run, item))
        return found  # time-placed records depend on the scope: not cached
    else:  # one errorAction message per object
        message = json.loads(body)
        payload = base64.b64decode(message.get("base64OriginalPayload", ""))
        run = runs.run_of_bytes(payload)
        match = _KEY_MS.search(obj.key)
        if run is None and match:
            run = scope.run_id if scope.owns_time(int(match.group(1))) else "earlier"
        return [Record(run, (obj, message))]
    _RECORDS[cache_key] = found
    return found


FAILED_KINDS = ("failed", "partitioning_failed", "conversion_failed")


def _parquet_run_ids(body: bytes) -> list[str | None]:
    """The `run_id` of each row of a Parquet object (None for every row without the column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(pa.BufferReader(body))
    if "run_id" not in parquet.schema_arrow.names:
        return [None] * parquet.metadata.num_rows
    return parquet.read(columns=["run_id"]).column("run_id").to_pylist()


def _list(target: Target, out: dict[str, str], environment: str) -> dict[str, list]:
    s3, where = target.client("s3"), prefixes(environment)
    raw, parsed = out["RawBucketName"], out["ParsedBucketName"]
    failed = objects.list_objects(s3, parsed, where["processing_failed"])
    return {
        "raw": objects.list_objects(s3, raw, where["data"]),
        "parsed": objects.list_objects(s3, parsed, where["data"]),
        "failed": failed,
        "partitioning_failed": objects.list_objects(s3, parsed, where["partitioning_failed"]),
        "conversion_failed": objects.list_objects(s3, parsed, where["conversion_failed"]),
        "rule": objects.list_objects(s3, raw, RULE_ERRORS_PREFIX),
    }


def collect(
    target: Target, out: dict[str, str], environment: str, scope: runs.RunScope | None = None
) -> Delivered:
    """List and classify every object in both buckets: this run's records and earlier runs'
    (without a scope, every record counts)."""
    scope = scope or runs.RunScope(runs.ALL_RUNS, 0, 0)
    s3 = target.client("s3")
    listed = _list(target, out, environment)
    found = Delivered(
        scope,
        raw=listed["raw"],
        parsed=listed["parsed"],
        processing_failed=listed["failed"],
        partitioning_failed=listed["partitioning_failed"],
        conversion_failed=listed["conversion_failed"],
        rule_errors=listed["rule"],
    )
    for kind, objs in listed.items():
        for obj in objs:
            found.records[obj.bucket, obj.key] = _classify(s3, obj, kind, scope)
    found.raw_bytes = {(o.bucket, o.key): _RAW_SIZE[o.bucket, o.key] for o in found.raw}
    return found


def count_raw_lines(target: Target, out: dict[str, str], environment: str) -> int:
    """Records in the raw bucket's batches so far, of every run."""
    return collect(target, out, environment).figures()["raw_lines"]


def count_parsed_rows(target: Target, out: dict[str, str], environment: str) -> int:
    """Rows in the parsed bucket plus processing-failed records so far, of every run."""
    return Ledger.of(collect(target, out, environment).figures()).parsed_side


def count_rule_errors(target: Target, out: dict[str, str]) -> int:
    """Messages the topic rule sent to its errorAction so far (one object each)."""
    return len(objects.list_objects(target.client("s3"), out["RawBucketName"], RULE_ERRORS_PREFIX))


def stream_buffering(target: Target, out: dict[str, str]) -> dict[str, int]:
    """The delivery stream's buffering hints as deployed (not as a notebook believes them)."""
    stream = target.client("firehose").describe_delivery_stream(
        DeliveryStreamName=out["DeliveryStreamName"]
    )["DeliveryStreamDescription"]
    destination = stream["Destinations"][0].get("ExtendedS3DestinationDescription", {})
    hints = destination.get("BufferingHints", {})
    found = {
        "interval_seconds": int(hints.get("IntervalInSeconds", 300)),
        "size_mbs": int(hints.get("SizeInMBs", 5)),
        "processor_interval_seconds": 60,  # Lambda processor default (Firehose developer guide)
    }
    for processor in destination.get("ProcessingConfiguration", {}).get("Processors", []):
        for parameter in processor.get("Parameters", []):
            if parameter["ParameterName"] == "BufferIntervalInSeconds":
                found["processor_interval_seconds"] = int(parameter["ParameterValue"])
    return found


def stack_environment(target: Target, stack_name: str) -> str:
    """The deployed stack's Environment parameter: the S3 prefix Firehose writes under."""
    described = target.client("cloudformation").describe_stacks(StackName=stack_name)
    for parameter in described["Stacks"][0].get("Parameters", []):
        if parameter["ParameterKey"] == "Environment":
            return parameter["ParameterValue"]
    return "dev"


def wait_delivered(
    target: Target,
    out: dict[str, str],
    environment: str,
    scope: runs.RunScope,
    acknowledged: int,
    timeout: float,
    buffering: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Wait until this run's raw side accounts for every acknowledged message (raw records +
    rule errors), then until its parsed side accounts for every raw record (rows + failures).

    Shows a countdown to the flush the buffering hints predict: Firehose closes a batch at most
    `IntervalInSeconds` after its first record, and the Lambda processor gathers records for up
    to its own `BufferIntervalInSeconds` first
    (https://docs.aws.amazon.com/firehose/latest/dev/buffering-hints.html).
    """
    buffering = buffering or stream_buffering(target, out)
    expected_by = (
        scope.finished_ms / 1000
        + buffering["interval_seconds"]
        + buffering["processor_interval_seconds"]
    )
    status = progress.Status()
    deadline = time.monotonic() + timeout
    while True:
        ledger = Ledger.of(collect(target, out, environment, scope).figures())
        raw_side, parsed_side = ledger.raw_side, ledger.parsed_side
        done = ledger.complete(acknowledged)
        left = expected_by - time.time()
        when = datetime.fromtimestamp(expected_by, UTC).strftime("%H:%M:%S UTC")
        status.show(
            f"run {scope.run_id}: {raw_side} of {acknowledged} acknowledged messages in the raw"
            f" bucket or the rule's errors, {parsed_side} of {ledger.raw_lines} raw records"
            " parsed or failed; "
            + (
                "done."
                if done
                else f"last flush expected by {when} (in {left:.0f} s)"
                if left > 0
                else f"expected flush at {when} passed {-left:.0f} s ago; still waiting"
            )
        )
        if done or time.monotonic() > deadline:
            break
        time.sleep(1.0 if target.name == "local" else 5.0)
    return {
        "acknowledged": acknowledged,
        "raw side": ledger.raw_side,
        "parsed side": ledger.parsed_side,
        "waited up to (s)": timeout,
    }


def object_table(found: Delivered, which: list[objects.DeliveredObject]) -> list[dict[str, Any]]:
    """The objects with this run's records, keys whole, and how many records of other runs
    share each object."""
    rows = []
    for row, obj in zip(objects.object_table(which), which, strict=True):
        row["records of this run"] = found.mine(obj)
        row["records of earlier runs"] = found.others(obj)
        rows.append(row)
    return [row for row in rows if row["records of this run"]]


def batching_timeline(found: Delivered, buffer_size_mbs: int) -> list[dict[str, Any]]:
    """One row per raw batch holding this run's records: when it started, when it was
    written, how many records, and what closed it."""
    return [
        {
            "batch started (UTC)": obj.batch_started,
            "written (UTC)": obj.last_modified,
            "records": found.mine(obj) + found.others(obj),
            "records of this run": found.mine(obj),
            "uncompressed bytes": found.raw_bytes[obj.bucket, obj.key],
            "closed by": objects.flush_reason(
                found.raw_bytes[obj.bucket, obj.key], buffer_size_mbs
            ),
        }
        for obj in found.ours(found.raw)
    ]


def forwarded_payload(doc: Any) -> bytes | None:
    """The payload NotJsonTopicRule forwarded in `doc` (a decoded raw line or failed record:
    `topic` + `payload_base64`), or None for any other document."""
    if not isinstance(doc, dict) or doc.keys() != transform.NOT_JSON_RECORD_KEYS:
        return None
    try:
        return base64.b64decode(doc[transform.NOT_JSON_FIELD], validate=True)
    except (ValueError, TypeError):
        return None


def not_json_payload(record: batches.FailedRecord) -> bytes | None:
    """The original payload of a record the template's NotJsonTopicRule forwarded (a message
    whose payload is not a JSON object), or None for any other record."""
    try:
        value = json.loads(record.raw_data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return forwarded_payload(value)


def is_not_json_record(record: batches.FailedRecord) -> bool:
    return not_json_payload(record) is not None


def failure_table(found: Delivered) -> list[dict[str, Any]]:
    """This run's processing-failed records: Firehose's error fields, the payload, and which
    rule sent it (a payload that is not a JSON object comes from NotJsonTopicRule, base64)."""
    rows = []
    for record in found.failed_records:
        original = not_json_payload(record)
        rows.append(
            {
                "error code": record.error_code,
                "message": record.error_message,
                "attempts": record.attempts_made,
                "arrived": record.arrival_time,
                "why": "payload is not a JSON object (NotJsonTopicRule)"
                if original is not None
                else "the transform rejected it",
                "payload": (original if original is not None else record.raw_data).decode(
                    "utf-8", "replace"
                ),
                "raw data": record.raw_data.decode("utf-8", "replace"),
            }
        )
    return rows


def rule_error_table(found: Delivered) -> list[dict[str, Any]]:
    """This run's errorAction messages (one object each): which action failed and why."""
    rows = []
    for obj, message in found.details(found.rule_errors):
        payload = base64.b64decode(message.get("base64OriginalPayload", ""))
        for failure in message.get("failures", []):
            rows.append(
                {
                    "key": obj.key,
                    "topic": message.get("topic"),
                    "client id": message.get("clientId"),
                    "payload": payload.decode("utf-8", "replace"),
                    "failed action": failure.get("failedAction"),
                    "error": failure.get("errorMessage"),
                }
            )
    return rows


def earlier_note(found: Delivered) -> str:
    """One sentence on what the buckets hold besides this run (they keep every pass)."""
    earlier = found.earlier()
    if not any(earlier.values()):
        return f"the buckets hold run {found.scope.run_id} only"
    parts = ", ".join(f"{count:,} {what}" for what, count in earlier.items() if count)
    return (
        f"the buckets also hold {parts} of earlier runs (not counted here; 06-teardown empties"
        " them)"
    )


# --------------------------------------------------------------------------- 05 analyse
def athena_query(
    target: Target, database: str, sql: str, output_location: str, timeout: float = 300.0
) -> Any:
    """Run `sql` with Athena against the stack's Glue database; the result as a DataFrame.

    StartQueryExecution, then GetQueryExecution until the state is SUCCEEDED (or FAILED /
    CANCELLED, raised with Athena's reason), then GetQueryResults, whose first row holds the
    column names (Athena API reference, "GetQueryResults"). Results are written under
    `output_location` (an s3:// URI), as Athena requires without a workgroup setting."""
    athena = target.client("athena")
    execution = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": output_location},
    )["QueryExecutionId"]
    deadline = time.monotonic() + timeout
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in ("FAILED", "CANCELLED"):
            raise RuntimeError(f"Athena query {status['State']}: {status.get('StateChangeReason')}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"Athena query {execution} still {status['State']} after {timeout} s"
            )
        time.sleep(1.0)
    pages = athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution)
    return athena_frame([row for page in pages for row in page["ResultSet"]["Rows"]])


def athena_frame(rows: list[dict[str, Any]]) -> Any:
    """GetQueryResults rows as a DataFrame: the first row names the columns (values are text)."""
    import pandas as pd

    values = [[cell.get("VarCharValue") for cell in row["Data"]] for row in rows]
    if not values:
        return pd.DataFrame()
    return pd.DataFrame(values[1:], columns=values[0])


def parsed_frame(target: Target, found: Delivered) -> Any:
    """This run's parsed rows as one typed DataFrame, each row with `written`: when its
    object was written (S3's LastModified), for the latency through the buffer."""
    import pandas as pd

    from pipeline import analysis

    s3 = target.client("s3")
    frames = []
    for obj in found.ours(found.parsed):
        frame = analysis.load_parsed([objects.read_object(s3, obj)])
        # Hive-style partitions of the key (`equipment_id=.../dt=.../`) are columns too.
        partitions = dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=([^/]*)/", obj.key))
        frame = frame.assign(**{k: v for k, v in partitions.items() if k not in frame})
        if runs.RUN_ID_FIELD in frame:
            frame = frame[frame[runs.RUN_ID_FIELD] == found.scope.run_id]
        frames.append(frame.assign(written=pd.Timestamp(obj.last_modified).tz_convert("UTC")))
    if not frames:
        return analysis.load_parsed([])
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------ 01 deploy
def emulator_facts(target: Target) -> dict[str, str]:
    """Where the local emulator runs and keeps its state, and how to stop or reset it."""
    if target.name != "local":
        return {"target": f"AWS, region {target.region}"}
    from emulator import process

    info = process.fetch_info(target.endpoint_url or "")
    data_dir = info.data_dir if info else "?"
    state = process.read_state(data_dir) if info else None
    flag = "" if data_dir == _default_data_dir() else f" --data-dir {data_dir}"
    return {
        "AWS endpoint": str(target.endpoint_url),
        "MQTT (TLS)": f"{target.mqtt_host}:{target.mqtt_port}",
        "process": f"pid {info.pid}" if info else "?",
        "state (data dir)": data_dir,
        "log": (state or {}).get("log_path") or "see `python -m emulator status`",
        "show it": "python -m emulator status" + flag,
        "stop it": "python -m emulator stop" + flag + "   (or: make stop)",
        "forget its state": "python -m emulator stop && python -m emulator --reset" + flag,
    }


def _default_data_dir() -> str:
    from emulator.server import default_data_dir

    return str(default_data_dir())


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
    # Also a stack with no outputs (ROLLBACK_COMPLETE, DELETE_FAILED) is deleted.
    stack.delete_stack(cfn, stack_name, delay=1 if target.name == "local" else 10)
    if out:
        report["local files removed"] = certificates.forget_local(out["ThingName"])
    bucket = f"{stack_name}-artifacts-{target.account_id}-{target.region}".lower()[:63]
    report["objects deleted"] += empty_bucket(s3, bucket)
    if target.name == "aws":
        # Emptied, not deleted: the next deploy reuses the name, which S3 may refuse for a
        # while after a deletion. An empty bucket costs nothing.
        report["artifacts bucket kept (empty)"] = bucket
    else:
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


def read_first(target: Target, found: Delivered, which: list[objects.DeliveredObject]) -> bytes:
    """The first object holding this run's records (for the "open one batch" cells)."""
    ours = found.ours(which)
    if not ours:
        raise runs.PrerequisiteError(
            f"no object holds records of run {found.scope.run_id} yet: wait and re-run, or see"
            " the error tables below"
        )
    return objects.read_object(target.client("s3"), ours[0])
