"""Pure functions of the Firehose transformation: one IoT message in, one flat JSON line out.

Standard library only: this module is shipped in the Lambda zip (see `pipeline.package`).

What arrives, what leaves (the column layout, flattening, collisions) and when a record fails
is described in docs/parsed-records.md; the functions below say what each step does.
"""

from __future__ import annotations

import binascii
import json
import math
from bisect import bisect_right
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

# Result values of the contract (Firehose developer guide, "data-transformation-status-model").
OK = "Ok"
PROCESSING_FAILED = "ProcessingFailed"
DROPPED = "Dropped"

# Top-level payload keys read as the device's clock, in this order of preference.
DEVICE_TIME_KEYS = ("timestamp", "ts", "time")
# What the template's NotJsonTopicRule sends for a payload that is not a JSON object
# (`SELECT topic() AS topic, encode(*, 'base64') AS payload_base64`).
NOT_JSON_FIELD = "payload_base64"
NOT_JSON_RECORD_KEYS = frozenset({"topic", NOT_JSON_FIELD})
# Fields the transformation adds before the payload's own; they win a name collision.
EQUIPMENT_ID = "equipment_id"
ARRIVAL_TIME = "arrival_time"
DEVICE_TIME = "device_time"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch units told apart by magnitude: below 1e11 seconds, 1e14 milliseconds, 1e17 microseconds,
# else nanoseconds. Unambiguous for clocks between 1973 (1e11 ms) and 5138 (1e11 s).
_UNIT_BOUNDS = (1e11, 1e14, 1e17)
_UNITS_PER_SECOND = (1, 1000, 10**6, 10**9)


class RecordError(ValueError):
    """A record that cannot be transformed; the message says why, for the function's log."""


class AlreadyDelivered(Exception):
    """A record to drop (result `Dropped`): another record already carries its message."""


class TransformedRecord(NamedTuple):
    """One entry of the Lambda response, plus why it failed (never sent to Firehose)."""

    record_id: str
    result: str
    data: str  # base64, as the contract wants it
    reason: str | None = None
    # `metadata.partitionKeys` for dynamic partitioning (Firehose guide,
    # "dynamic-partitioning-partitioning-keys"): the equipment id of an Ok record.
    partition_keys: dict[str, str] | None = None


def _reject_constant(name: str) -> Any:
    raise RecordError(f"not valid JSON: {name} is not a JSON value (RFC 8259)")


# Made once (json.loads/dumps given an option build one per call); parsed JSON has no cycles.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`: `2026-11-18T11:06:40.030Z`."""
    # isoformat zero-pads the year to 4 digits on every platform (strftime does not).
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=4096)
def _second_text(epoch_second: int) -> str:
    # Cached: a batch's records share their seconds; formatting one costs a third of a parse.
    return iso_utc(_EPOCH + timedelta(seconds=epoch_second))[:19]


def epoch_ms_to_iso(epoch_ms: int | float) -> str:
    """Epoch milliseconds (Firehose's approximateArrivalTimestamp) as ISO 8601 UTC."""
    # Integers stay exact; a timedelta from the epoch avoids datetime.fromtimestamp's limits.
    if isinstance(epoch_ms, int):
        second, milli = divmod(epoch_ms, 1000)
        return f"{_second_text(second)}.{milli:03d}Z"
    return iso_utc(_EPOCH + timedelta(seconds=epoch_ms / 1000))


def device_time(value: Any) -> str | None:
    """The device's timestamp as ISO 8601 UTC, or None (docs/parsed-records.md, `device_time`)."""
    try:
        if isinstance(value, str):
            value = _parse_clock(value.strip())
            if isinstance(value, datetime):
                return iso_utc(value)
        if type(value) not in (int, float) or not math.isfinite(value):  # (a bool is no time)
            return None
        per_second = _UNITS_PER_SECOND[bisect_right(_UNIT_BOUNDS, abs(value))]
        if isinstance(value, int):  # exact, finer digits cut toward the past
            return epoch_ms_to_iso(value * 1000 // per_second)
        return iso_utc(_EPOCH + timedelta(seconds=value / per_second))
    except (OverflowError, ValueError):  # not a time, or out of datetime's range
        return None


def _parse_clock(text: str) -> int | float | datetime:
    """A clock sent as text: the number it spells, else its ISO 8601 time (ValueError)."""
    for number in (int, float):
        with suppress(ValueError):
            return number(text)
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=moment.tzinfo or UTC)


def flatten(obj: dict[str, Any], out: dict[str, Any] | None = None, prefix: str = "") -> dict:
    """Flatten a parsed JSON object into `out` (`a.b` -> `a_b`); arrays and `{}` become JSON
    text; a name already taken gets the first free `__N` suffix (N >= 2)."""
    out = {} if out is None else out
    for key, value in obj.items():
        name = prefix + key
        kind = type(value)
        if kind is dict and value:
            flatten(value, out, name + "_")
            continue
        if kind is dict or kind is list:
            value = _COMPACT.encode(value)  # an array or {}: its JSON text
        if name in out:
            base, n = name, 2
            while name in out:
                name, n = f"{base}__{n}", n + 1
        out[name] = value
    return out


def parse_message(data: bytes) -> dict[str, Any]:
    """The IoT message of one record's data: a JSON object, trailing separator allowed."""
    if not data.strip():
        raise RecordError("empty record: no message between two separators")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid UTF-8 at byte {exc.start}: {exc.reason}") from None
    # The rule action's separator may be "\n", "\t", "\r\n" or "," (IoT API reference,
    # "FirehoseAction"): whitespace is JSON's own, one trailing comma is removed here.
    text = text.rstrip().removesuffix(",")
    try:
        if text.startswith("\ufeff"):  # json.loads' own refusal, which JSONDecoder lacks
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        message = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise RecordError(reason) from None
    except RecursionError:
        reason = f"JSON nested too deeply for this transform ({len(data)} bytes)"
        raise RecordError(reason) from None
    if not isinstance(message, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}
        raise RecordError(f"not a JSON object but a JSON {kind.get(type(message), 'number')}")
    return message


@lru_cache(maxsize=4096)
def _topic_fields(topic: str) -> dict[str, str]:
    # Cached (a batch comes from a few devices): callers merge it into a new dict, never change it.
    levels = topic.split("/")
    numbered = {f"topic_{i}": level for i, level in enumerate(levels, start=1)}
    return {"topic": topic, **numbered, EQUIPMENT_ID: levels[-1]}


def _forwarded_not_json(encoded: Any) -> Exception:
    """What to raise for a record of the not-JSON rule: a copy to drop, or a failure."""
    try:
        payload = binascii.a2b_base64(encoded, strict_mode=True)
    except (binascii.Error, ValueError, TypeError):
        return RecordError(f"unreadable base64 in {NOT_JSON_FIELD!r}: the not-JSON rule's record")
    try:  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        is_object = isinstance(_DECODER.decode(payload.decode("utf-8")), dict)
    except (ValueError, RecursionError):
        is_object = False
    if is_object:  # a JSON object without `run_id` (e.g. from the console): already delivered
        return AlreadyDelivered("a JSON object: the topic rule delivered it")
    return RecordError(
        f"the payload is not a JSON object ({len(payload)} bytes, base64 in {NOT_JSON_FIELD!r}):"
        " the template's not-JSON rule forwarded it"
    )


def transform_message(message: dict[str, Any], arrival_ms: int | float | None) -> dict[str, Any]:
    """The flat output object of one parsed message (docs/parsed-records.md)."""
    if message.keys() == NOT_JSON_RECORD_KEYS:
        raise _forwarded_not_json(message[NOT_JSON_FIELD])
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic:
        raise RecordError(
            "no 'topic' field with a non-empty string: the topic rule must be "
            "SELECT topic() AS topic, * FROM '<topic root>/+'"
        )
    clock_key = next(filter(message.__contains__, DEVICE_TIME_KEYS), None)  # the first present
    out = _topic_fields(topic) | {
        ARRIVAL_TIME: epoch_ms_to_iso(arrival_ms) if arrival_ms is not None else None,
        DEVICE_TIME: device_time(message[clock_key]) if clock_key else None,
    }
    payload = dict(message)
    del payload["topic"]  # already the first field
    return flatten(payload, out)


def transform_data(data: bytes, arrival_ms: int | float | None) -> bytes:
    """One record's bytes in, one JSON line out; raises RecordError with the reason."""
    return _transformed(data, arrival_ms)[0]


def _transformed(data: bytes, arrival_ms: int | float | None) -> tuple[bytes, str]:
    """The JSON line and the equipment id of one record."""
    message = parse_message(data)
    try:
        row = transform_message(message, arrival_ms)
        line = _COMPACT.encode(row)
    except RecursionError:
        raise RecordError("JSON nested too deeply to flatten") from None
    return (line + "\n").encode("utf-8"), row[EQUIPMENT_ID]


def transform_record(record: dict[str, Any]) -> TransformedRecord:
    """One Firehose input record -> its response entry. Never raises for bad data."""
    record_id = record["recordId"]
    original = record.get("data", "")
    try:
        try:
            # Strict base64 (Python 3.11+): nothing outside the alphabet, exact padding.
            raw = binascii.a2b_base64(original, strict_mode=True)
        except (binascii.Error, ValueError, TypeError):
            raise RecordError("data is not valid base64") from None
        line, equipment = _transformed(raw, record.get("approximateArrivalTimestamp"))
    except AlreadyDelivered as exc:
        return TransformedRecord(record_id, DROPPED, original, str(exc))
    except RecordError as exc:
        return TransformedRecord(record_id, PROCESSING_FAILED, original, str(exc))
    except Exception as exc:  # a bug must not fail the other records of the batch
        reason = f"transform error: {type(exc).__name__}: {exc}"
        return TransformedRecord(record_id, PROCESSING_FAILED, original, reason)
    data = binascii.b2a_base64(line, newline=False).decode()
    return TransformedRecord(record_id, OK, data, None, {EQUIPMENT_ID: equipment})
