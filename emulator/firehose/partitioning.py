"""Dynamic partitioning, the pure part: deaggregation, partition keys and partition prefixes.

Firehose developer guide:
- "dynamic-partitioning-partitioning-keys"
  (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-partitioning-keys.html):
  keys come from inline parsing (a `MetadataExtraction` processor, jq 1.6 only) or from the
  transform Lambda (`metadata.partitionKeys` of each returned record), or both.
- "dynamic-partitioning-multirecord-deaggergation"
  (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html):
  `RecordDeAggregation` splits a record into consecutive JSON objects (on one line or JSON lines;
  an array is not valid input) or on a base64-encoded `Delimiter`; "capped at 500 per record".
- "dynamic-partitioning-error-handling": a record whose keys cannot be extracted, or whose prefix
  cannot be evaluated, goes to the error prefix. AWS names that output `partitioning-failed`
  (the aws-cdk integration test of dynamic partitioning with a Lambda lists
  `error-output/partitioning-failed/` for a record without its key).
- "buffering" (https://docs.aws.amazon.com/firehose/latest/dev/buffering.html): a partition is
  an evaluated prefix; at most 500 active partitions per stream, the rest goes to the error
  prefix (`activePartitionExceeded`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import jq

from emulator.firehose import keys
from emulator.firehose.config import Processor

PARTITIONING_FAILED = "partitioning-failed"
ACTIVE_PARTITION_EXCEEDED = "activePartitionExceeded"
METADATA_EXTRACTION_FAILED = "DynamicPartitioning.MetadataExtractionFailed"
# The guide names the output (activePartitionExceeded) but not an error code for it.
ACTIVE_PARTITIONS_EXCEEDED_CODE = "DynamicPartitioning.ActivePartitionsLimitExceeded"
MAX_ACTIVE_PARTITIONS = 500
MAX_SUB_RECORDS = 500
JQ_ENGINE = "JQ-1.6"
QUERY_NAMESPACE = "partitionKeyFromQuery"
LAMBDA_NAMESPACE = "partitionKeyFromLambda"
# Stands for !{firehose:random-string} in a partition's prefix: "every instance evaluates to a
# new random string", so it is drawn per object, not per partition.
RANDOM_MARK = "\x00random\x00"


class PartitioningError(ValueError):
    """A record that cannot be partitioned; the message says why."""


@dataclass
class Piece:
    """One (deaggregated) record on its way to a partition."""

    source: int  # index of the spooled record it comes from
    arrival_ms: int
    raw: bytes  # the source record, for error documents
    data: bytes
    query_keys: dict[str, str] = field(default_factory=dict)
    lambda_keys: dict[str, str] = field(default_factory=dict)


def param(processor: Processor, name: str, default: str | None = None) -> str | None:
    return processor.parameters.get(name, default)


# RecordDeAggregation ----------------------------------------------------------------------------
def deaggregate(data: bytes, processor: Processor) -> list[bytes]:
    """Split one record; raises PartitioningError for input the guide calls invalid."""
    kind = param(processor, "SubRecordType", "JSON")
    if kind == "DELIMITED":
        delimiter = base64.b64decode(param(processor, "Delimiter") or "")
        parts = [p for p in data.split(delimiter) if p] if delimiter else [data]
    else:
        parts = _json_objects(data)
    if len(parts) > MAX_SUB_RECORDS:
        raise PartitioningError(
            f"the record holds {len(parts)} sub-records; deaggregation is capped at "
            f"{MAX_SUB_RECORDS} per record"
        )
    return parts


def _json_objects(data: bytes) -> list[bytes]:
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise PartitioningError("the record is not UTF-8 JSON") from exc
    decoder = json.JSONDecoder()
    parts: list[bytes] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return parts
        try:
            value, end = decoder.raw_decode(text, i)
        except ValueError as exc:
            raise PartitioningError(f"the record is not a sequence of JSON objects: {exc}") from exc
        if not isinstance(value, dict):
            raise PartitioningError(
                "the record holds a JSON value that is not an object (an array of objects is "
                "not valid input for JSON deaggregation)"
            )
        parts.append(text[i:end].encode())
        i = end


# MetadataExtraction (jq) ------------------------------------------------------------------------
@lru_cache(maxsize=64)
def compile_query(query: str) -> Any:
    """The compiled jq program; ValueError if jq cannot compile it."""
    return jq.compile(query)


def extract(data: bytes, processor: Processor) -> dict[str, str]:
    """The keys the MetadataExtractionQuery returns for one JSON record."""
    query = param(processor, "MetadataExtractionQuery") or ""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise PartitioningError(f"the record is not JSON: {exc}") from exc
    try:
        results = compile_query(query).input_value(document).all()
    except ValueError as exc:
        raise PartitioningError(f"the query failed on the record: {exc}") from exc
    if len(results) != 1 or not isinstance(results[0], dict):
        raise PartitioningError("the query must return one JSON object of partition keys")
    return {str(k): v for k, v in results[0].items() if v is not None}


def key_text(value: Any) -> str:
    """A key value as it appears in a prefix: strings as they are, other scalars as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    raise PartitioningError(f"a partition key value must be a string or a number, not {value!r}")


# Prefixes ---------------------------------------------------------------------------------------
def partition_prefix(prefix: str, piece: Piece, when: datetime) -> str:
    """The evaluated prefix that names the piece's partition (random strings left marked)."""
    values = {QUERY_NAMESPACE: piece.query_keys, LAMBDA_NAMESPACE: piece.lambda_keys}
    try:
        return keys.evaluate(prefix, when, random=lambda: RANDOM_MARK, partition_keys=values)
    except keys.PrefixError as exc:
        raise PartitioningError(str(exc)) from exc


def object_prefix(partition: str) -> str:
    """A partition's prefix with a fresh random string for each marked place."""
    while RANDOM_MARK in partition:
        partition = partition.replace(RANDOM_MARK, keys.random_string(), 1)
    return partition


def used_keys(prefix: str) -> dict[str, set[str]]:
    """namespace -> key names that `prefix` reads."""
    found: dict[str, set[str]] = {QUERY_NAMESPACE: set(), LAMBDA_NAMESPACE: set()}
    for match in keys._EXPRESSION.finditer(prefix or ""):
        if match.group(1) in found:
            found[match.group(1)].add(match.group(2))
    return found


def without_keys(prefix: str) -> str:
    """`prefix` without its partition key expressions."""
    return keys._EXPRESSION.sub(
        lambda m: "" if m.group(1) in (QUERY_NAMESPACE, LAMBDA_NAMESPACE) else m.group(0), prefix
    )


def error_line(piece: Piece, code: str, message: str, ending_ms: int) -> bytes:
    """One line of a partitioning error object: the processing-failed document's fields
    (guide: "data-transformation-failure-handling") with the source record."""
    document = {
        "attemptsMade": 1,
        "arrivalTimestamp": piece.arrival_ms,
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": ending_ms,
        "rawData": base64.b64encode(piece.raw).decode(),
    }
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def split_processors(processors: Sequence[Processor]) -> dict[str, Processor]:
    """type -> processor (each type at most once)."""
    return {p.type: p for p in processors}


def decode_delimiter(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PartitioningError(f"Delimiter {text!r} is not base64") from exc
