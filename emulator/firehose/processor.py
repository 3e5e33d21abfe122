"""The Lambda data-transformation contract: build the event, invoke, check the response.

Guide, "data-transformation" and "data-transformation-status-model": the event is
`{invocationId, deliveryStreamArn, region, records:[{recordId, approximateArrivalTimestamp,
data}]}`; every returned record needs `recordId`, `result` (Ok | Dropped | ProcessingFailed)
and base64 `data`. "data-transformation-failure-handling": a failed invocation is retried
NumberOfRetries times (default 3), then the batch counts as processing-failed. The error codes
and messages are those of "monitoring-with-cloudwatch-logs" (Lambda invocation errors) and of
processing-failed objects observed on AWS, e.g. `{"attemptsMade":4, "errorCode":
"Lambda.FunctionError", "errorMessage":"The Lambda function was successfully invoked but it
returned an error result."}` and `Lambda.MissingRecordId` / `Lambda.DuplicatedRecordId` with
`attemptsMade` 1: a response the function returned is judged once, it is not re-invoked.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.firehose.buffering import BufferedRecord
from emulator.firehose.config import Processor

log = logging.getLogger(__name__)

# Lambda's synchronous payload quota is 6 MB (request and response); base64 adds a third.
MAX_INVOKE_PAYLOAD = 6 * 1024 * 1024
MAX_RAW_PER_INVOCATION = MAX_INVOKE_PAYLOAD * 3 // 4 - 64 * 1024

FUNCTION_ERROR = (
    "Lambda.FunctionError",
    "The Lambda function was successfully invoked but it returned an error result.",
)
MISSING_RECORD_ID = (
    "Lambda.MissingRecordId",
    "One or more record Ids were not returned. Ensure that the Lambda function returns all "
    "received record Ids.",
)
DUPLICATED_RECORD_ID = (
    "Lambda.DuplicatedRecordId",
    "Multiple records were returned with the same record Id. Ensure that the Lambda function "
    "returns a unique record Id for each record.",
)
JSON_PROCESSING = (
    "Lambda.JsonProcessingException",
    "There was an error parsing returned records from the Lambda function. Ensure that the "
    "returned records follow the status model required by Kinesis Firehose.",
)
# As reported by users of processing-failed objects (not listed in the guide).
PROCESSING_FAILED_STATUS = (
    "Lambda.ProcessingFailedStatus",
    "ProcessingFailed status set for record",
)
RESOURCE_NOT_FOUND = (
    "Lambda.ResourceNotFound",
    "The specified Lambda function does not exist. Use a different function that does exist.",
)
INVOKE_LIMIT = (
    "Lambda.InvokeLimitExceeded",
    "The Lambda concurrent execution limit is exceeded. Increase the concurrent execution limit.",
)

Invoke = Callable[[str, str, str, bytes], Any]  # (account, region, function arn, payload)


@dataclass(frozen=True)
class FailedRecord:
    record: BufferedRecord
    error_code: str
    error_message: str
    attempts_made: int
    attempt_ending_ms: int
    lambda_arn: str

    def error_line(self) -> dict[str, Any]:
        """One line of a processing-failed object (guide: data-transformation-failure-handling)."""
        return {
            "attemptsMade": self.attempts_made,
            "arrivalTimestamp": self.record.arrival_ms,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "attemptEndingTimestamp": self.attempt_ending_ms,
            "rawData": base64.b64encode(self.record.data).decode(),
            "lambdaArn": self.lambda_arn,
        }


@dataclass
class ProcessorOutcome:
    delivered: list[bytes] = field(default_factory=list)  # transformed data, in input order
    failed: list[FailedRecord] = field(default_factory=list)
    dropped: int = 0
    invocations: int = 0
    # For dynamic partitioning: the source record and `metadata.partitionKeys` of each
    # delivered record (guide: "dynamic-partitioning-partitioning-keys").
    sources: list[BufferedRecord] = field(default_factory=list)
    partition_keys: list[dict[str, Any]] = field(default_factory=list)


class _InvalidResponse(Exception):
    def __init__(self, code_message: tuple[str, str]) -> None:
        super().__init__(code_message[1])
        self.code, self.message = code_message


def event_for(
    records: Sequence[BufferedRecord], stream_arn: str, region: str, invocation_id: str
) -> dict[str, Any]:
    return {
        "invocationId": invocation_id,
        "deliveryStreamArn": stream_arn,
        "region": region,
        "records": [
            {
                "recordId": r.record_id,
                "approximateArrivalTimestamp": r.arrival_ms,
                "data": base64.b64encode(r.data).decode(),
            }
            for r in records
        ],
    }


def invocation_batches(
    records: Sequence[BufferedRecord], processor: Processor
) -> list[list[BufferedRecord]]:
    """Split a buffer into invocations of at most the processor's BufferSizeInMBs."""
    limit = max(1, min(processor.buffer_bytes, MAX_RAW_PER_INVOCATION))
    batches: list[list[BufferedRecord]] = []
    current: list[BufferedRecord] = []
    size = 0
    for record in records:
        if current and size + len(record.data) > limit:
            batches.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record.data)
    if current:
        batches.append(current)
    return batches


def judge_response(
    payload: bytes,
    records: Sequence[BufferedRecord],
    metadata: dict[str, dict[str, Any]] | None = None,
) -> dict[str, tuple[str, bytes | None]]:
    """recordId -> (result, data) for a returned payload; raises _InvalidResponse."""
    try:
        body = json.loads(payload)
        returned = body["records"]
        if not isinstance(returned, list):
            raise TypeError("records is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise _InvalidResponse(JSON_PROCESSING) from exc
    wanted = {r.record_id for r in records}
    results: dict[str, tuple[str, bytes | None]] = {}
    for item in returned:
        if not isinstance(item, dict) or not isinstance(item.get("recordId"), str):
            raise _InvalidResponse(JSON_PROCESSING)
        record_id, result = item["recordId"], item.get("result")
        if result not in ("Ok", "Dropped", "ProcessingFailed"):
            raise _InvalidResponse(JSON_PROCESSING)
        if record_id not in wanted:
            # Observed on AWS: ids that were not sent are ignored, not an error.
            continue
        if record_id in results:
            raise _InvalidResponse(DUPLICATED_RECORD_ID)
        data = None
        if result == "Ok":
            encoded = item.get("data")
            if not isinstance(encoded, str):
                raise _InvalidResponse(JSON_PROCESSING)
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise _InvalidResponse(JSON_PROCESSING) from exc
        results[record_id] = (result, data)
        if metadata is not None:
            metadata[record_id] = _partition_keys(item)
    if len(results) != len(wanted):
        raise _InvalidResponse(MISSING_RECORD_ID)
    return results


def _partition_keys(item: dict[str, Any]) -> dict[str, Any]:
    meta = item.get("metadata")
    found = meta.get("partitionKeys") if isinstance(meta, dict) else None
    return dict(found) if isinstance(found, dict) else {}


def _invoke_error(exc: Exception) -> tuple[str, str]:
    code = getattr(exc, "code", "") or type(exc).__name__
    message = getattr(exc, "message", "") or str(exc)
    if code == "ResourceNotFoundException":
        return RESOURCE_NOT_FOUND
    if code == "TooManyRequestsException":
        return INVOKE_LIMIT
    return f"Lambda.{code.removesuffix('Exception')}", message


def run(
    invoke: Invoke,
    *,
    account_id: str,
    region: str,
    stream_arn: str,
    processor: Processor,
    records: Sequence[BufferedRecord],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> ProcessorOutcome:
    """Transform `records` with the processor's Lambda function; every record is accounted
    for exactly once in `delivered` (Ok), `dropped` or `failed`."""
    outcome = ProcessorOutcome()
    arn = processor.lambda_arn
    for batch in invocation_batches(records, processor):
        attempts = 0
        failure: tuple[str, str] | None = None
        results: dict[str, tuple[str, bytes | None]] | None = None
        metadata: dict[str, dict[str, Any]] = {}
        while attempts <= processor.retries:
            attempts += 1
            outcome.invocations += 1
            payload = json.dumps(event_for(batch, stream_arn, region, str(uuid.uuid4())))
            try:
                result = invoke(account_id, region, arn, payload.encode())
            except Exception as exc:  # an Invoke API error: retried like a throttle
                failure = _invoke_error(exc)
                log.warning("Firehose processor %s: %s", arn, failure[1])
            else:
                if result.function_error:
                    failure = FUNCTION_ERROR
                else:
                    try:
                        results = judge_response(result.payload, batch, metadata)
                        failure = None
                    except _InvalidResponse as exc:
                        failure = (exc.code, exc.message)
                    break  # a returned response is final, valid or not
            if attempts <= processor.retries:
                sleep(min(0.05 * 2**attempts, 1.0))
        ending = int(clock() * 1000)
        if results is None:
            code, message = failure or FUNCTION_ERROR
            outcome.failed.extend(
                FailedRecord(r, code, message, attempts, ending, arn) for r in batch
            )
            continue
        for record in batch:
            status, data = results[record.record_id]
            if status == "Ok":
                outcome.delivered.append(data or b"")
                outcome.sources.append(record)
                outcome.partition_keys.append(metadata.get(record.record_id, {}))
            elif status == "Dropped":
                outcome.dropped += 1
            else:
                code, message = PROCESSING_FAILED_STATUS
                outcome.failed.append(FailedRecord(record, code, message, attempts, ending, arn))
    return outcome
