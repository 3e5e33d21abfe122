"""Pure functions of the Firehose transformation: one IoT message in, one flat JSON line out.

Standard library only: this module is shipped in the Lambda zip (see `pipeline.package`).

What arrives. The topic rule `SELECT topic() AS topic, * FROM '<T>/+'` with a Firehose action
whose separator is "\\n" sends each MQTT message as one record: the payload's JSON object with a
`topic` field merged in, followed by "\\n" (IoT developer guide, "firehose-rule-action"). Firehose
hands records to the Lambda base64-encoded, with `approximateArrivalTimestamp` in epoch
milliseconds (Firehose developer guide, "data-transformation").

What leaves, for a good record (result `Ok`): ONE flat JSON object followed by "\\n", UTF-8,
compact separators, keys in this order:

- `topic`: the full topic, as the rule selected it;
- `topic_1`, `topic_2`, ...: each topic level, 1-based like IoT SQL's `topic(n)`;
- `equipment_id`: the last topic level. The template's topic layout is `<T>/<equipment id>`
  (the rule reads `<T>/+`), so the last level names the equipment;
- `arrival_time`: `approximateArrivalTimestamp` as ISO 8601 UTC with milliseconds and `Z`;
- `device_time`: the device's own clock, from the first of the payload's top-level keys
  `timestamp`, `ts`, `time` that is present (see `device_time`), same format; null when the
  payload has none of them or its value cannot be read as a time;
- then every payload field, flattened (see `flatten`).

Flattening: nested objects join their keys with "_" (`{"status": {"code": 2}}` ->
`status_code`). Arrays and empty objects are kept as their compact JSON text
(`{"samples": [1, 2]}` -> `"samples": "[1,2]"`), so a column has one scalar type whatever the
array's length or content: that is what a columnar reader (pandas, pyarrow, Parquet) needs.
Collisions: names are claimed first come, first served, in the order above (our fields, then the
payload in document order). A later field whose name is taken gets the first free suffix among
`__2`, `__3`, ...: a payload field `arrival_time` becomes `arrival_time__2`, and of
`{"a_b": 1, "a": {"b": 2}}` the second becomes `a_b__2`. Nothing is silently overwritten.

A record fails (result `ProcessingFailed`, data = the ORIGINAL base64 data, so Firehose writes the
untouched bytes to its `processing-failed/` error output) when its data is not base64, is empty,
is not UTF-8, is not JSON (NaN and Infinity included: they are not JSON), is not a JSON object,
or has no string `topic` field, or nests too deeply for Python's parser, or is what the
template's second rule sends for a payload that is not a JSON object (exactly the fields `topic`
and `payload_base64`: the first rule's SQL cannot evaluate such a payload, so without the second
rule IoT Core would acknowledge it and deliver it nowhere). When what that rule forwarded is a
JSON object after all (one without `run_id`, which both rules match), the record is `Dropped`:
the first rule delivered that message already. The reason is returned
alongside, for the function's log. Any other error while transforming one record (a bug) also
fails only that record, with the exception as its reason: the rest of the batch goes on.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Result values of the transformation contract (Firehose developer guide,
# "data-transformation-status-model").
OK = "Ok"
DROPPED = "Dropped"
PROCESSING_FAILED = "ProcessingFailed"

# Top-level payload keys read as the device's clock, in this order of preference.
DEVICE_TIME_KEYS = ("timestamp", "ts", "time")
# What the template's NotJsonTopicRule sends for a payload that is not a JSON object
# (`SELECT topic() AS topic, encode(*, 'base64') AS payload_base64`): always ProcessingFailed.
NOT_JSON_FIELD = "payload_base64"
NOT_JSON_RECORD_KEYS = frozenset({"topic", NOT_JSON_FIELD})
# Fields the transformation adds before the payload's own; they win a name collision.
EQUIPMENT_ID = "equipment_id"
ARRIVAL_TIME = "arrival_time"
DEVICE_TIME = "device_time"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Made once: json.dumps/json.loads with any option build a new encoder/decoder on every call,
# which cost ~0.5-1 µs per record (py-spy, bench/transform.py). Both are stateless between calls.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _line_encoder() -> Callable[[dict[str, Any], int], Any]:
    """`_COMPACT.encode` for the output object as chunks to join, minus two per-call costs.

    JSONEncoder.encode builds its C encoder, and a dict of the containers it is inside (to
    detect a circular reference), on every call. The output object comes from json.loads, so it
    cannot be circular (a cycle would still end in RecursionError, caught like deep nesting):
    one C encoder without that dict is made here, with the arguments JSONEncoder.iterencode
    gives it. It is checked against `_COMPACT` on a sample; where the C encoder is missing or
    differs (another Python), `_COMPACT.encode` is used. Measured: 2.7 µs -> 2.1 µs a line.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    sample = {"a": 'é\u2028"\n', "b": [1, 2.5, None, True, {"c": -0.0}], "d": {}, "1e400": 1e400}
    try:
        encode = make(
            None,  # markers: no circular reference check
            _COMPACT.default,
            json.encoder.encode_basestring,  # ensure_ascii=False
            None,  # indent
            _COMPACT.key_separator,
            _COMPACT.item_separator,
            _COMPACT.sort_keys,
            _COMPACT.skipkeys,
            _COMPACT.allow_nan,
        )
        if "".join(encode(sample, 0)) == _COMPACT.encode(sample):
            return encode
    except Exception:  # no usable C encoder: the plain one
        pass
    return lambda value, _level: (_COMPACT.encode(value),)


_encode_chunks = _line_encoder()
# Caches keyed by values that repeat within a batch (see transform_message and _iso_from_int);
# emptied when they reach this many entries, so a long-lived Lambda container stays small.
_CACHE_ENTRIES = 4096
_SECOND_PREFIXES: dict[int, str] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS"
_MILLI_SUFFIXES = tuple(f".{ms:03d}Z" for ms in range(1000))
_TOPIC_FIELDS: dict[str, dict[str, str]] = {}  # topic -> {topic, topic_1.., equipment_id}


class RecordError(ValueError):
    """A record that cannot be transformed; the message says why, for the function's log."""


class AlreadyDelivered(Exception):
    """A record to drop (result `Dropped`): another record already carries its message."""


@dataclass(frozen=True)
class TransformedRecord:
    """One entry of the Lambda response, plus why it failed (never sent to Firehose)."""

    record_id: str
    result: str
    data: str  # base64, as the contract wants it
    reason: str | None = None

    def __init__(self, record_id: str, result: str, data: str, reason: str | None = None) -> None:
        # The generated __init__ of a frozen dataclass calls object.__setattr__ once per field:
        # over twice the cost of filling the instance's dict, and it runs once or twice per record.
        # (A class-defined __init__ is kept by @dataclass; eq, hash, repr and frozen stay.)
        fields = self.__dict__
        fields["record_id"] = record_id
        fields["result"] = result
        fields["data"] = data
        fields["reason"] = reason

    def response_entry(self) -> dict[str, str]:
        """The entry exactly as Firehose expects it: recordId, result, data."""
        return {"recordId": self.record_id, "result": self.result, "data": self.data}


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`: `2026-11-18T11:06:40.030Z`."""
    m = moment.astimezone(UTC)
    # Formatted by hand: strftime does not zero-pad years below 1000 on every platform.
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def epoch_ms_to_iso(epoch_ms: int | float) -> str:
    """Epoch milliseconds (Firehose's approximateArrivalTimestamp) as ISO 8601 UTC."""
    if type(epoch_ms) is int:
        second, milli = divmod(epoch_ms, 1000)
        prefix = _SECOND_PREFIXES.get(second)  # _iso_from_int's cache hit, without the call
        if prefix is not None:
            return prefix + _MILLI_SUFFIXES[milli]
        return _iso_from_int(epoch_ms, 1000)
    return iso_utc(_from_epoch(epoch_ms, 1000))


def _iso_from_int(value: int, per_second: int) -> str:
    """`iso_utc(_from_epoch(value, per_second))` for an integer, with the date and time of day
    formatted once per second: a batch's arrival times (and most device clocks) share their
    seconds, and formatting a datetime costs more than the rest of a record's times."""
    if per_second == 1000:  # milliseconds, the usual unit: the same numbers, fewer operations
        second, milli = divmod(value, 1000)
    else:
        second, rest = divmod(value * 1_000_000 // per_second, 1_000_000)
        milli = rest // 1000
    prefix = _SECOND_PREFIXES.get(second)
    if prefix is None:
        micro = value * 1_000_000 // per_second  # what _from_epoch computes for an int
        # The uncached path raises what _from_epoch raises (OverflowError out of range); a
        # second that is in range keeps every one of its milliseconds in range.
        text = iso_utc(_EPOCH + timedelta(microseconds=micro))
        if len(_SECOND_PREFIXES) >= _CACHE_ENTRIES:
            _SECOND_PREFIXES.clear()
        _SECOND_PREFIXES[second] = text[:-5]  # without ".mmmZ"
        return text
    return prefix + _MILLI_SUFFIXES[milli]


def _from_epoch(value: int | float, per_second: int) -> datetime:
    # Integers stay exact (no float rounding of milliseconds); a timedelta from the epoch also
    # avoids the platform limits of datetime.fromtimestamp.
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value * 1_000_000 // per_second)
    return _EPOCH + timedelta(seconds=value / per_second)


# Epoch units told apart by magnitude: (upper bound, units per second). Unambiguous for device
# clocks between 1973 and 5138: 1e11 s and 1e11 ms are those two years.
_EPOCH_UNITS = ((1e11, 1), (1e14, 1000), (1e17, 10**6), (math.inf, 10**9))


def device_time(value: Any) -> str | None:
    """The device's timestamp as ISO 8601 UTC, or None when it cannot be read as a time.

    Numbers (or strings of a number) are epoch time in seconds, milliseconds, microseconds or
    nanoseconds, told apart by magnitude (`_EPOCH_UNITS`). Other strings are ISO 8601 (`Z` or an
    offset; a time without an offset is taken as UTC). The result keeps milliseconds (finer
    digits are cut). Booleans, objects, arrays and out-of-range values give None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return _iso_string_time(text)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    magnitude = abs(value)
    per_second = _EPOCH_UNITS[-1][1]
    for bound, units in _EPOCH_UNITS:  # a loop, not next(generator): cheaper per record
        if magnitude < bound:
            per_second = units
            break
    try:
        if type(value) is int:
            return _iso_from_int(value, per_second)
        return iso_utc(_from_epoch(value, per_second))
    except (OverflowError, ValueError):
        return None


def _iso_string_time(text: str) -> str | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return iso_utc(moment)
    except (OverflowError, ValueError):  # e.g. year 1 with a positive offset
        return None


def _claim(out: dict[str, Any], name: str, value: Any) -> None:
    """Set `name`, or the first free `name__N` (N >= 2) when `name` is taken."""
    if name in out:
        n = 2
        while f"{name}__{n}" in out:
            n += 1
        name = f"{name}__{n}"
    out[name] = value


def flatten(obj: dict[str, Any], out: dict[str, Any] | None = None, prefix: str = "") -> dict:
    """Flatten nested objects into `out` (`a.b` -> `a_b`); arrays and `{}` become JSON text."""
    out = {} if out is None else out
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flatten(value, out, f"{name}_")
        elif isinstance(value, (list, dict)):
            _claim(out, name, _COMPACT.encode(value))
        elif name in out:
            _claim(out, name, value)
        else:  # the usual case, inlined: a scalar under a free name
            out[name] = value
    return out


# The types json.loads gives a scalar: never flattened, never turned into JSON text.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flatten_payload(message: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """`flatten` of the message without its `topic`, into `out` (which holds `topic`): the same
    result, with the top level (where most telemetry fields are) done here without building a
    copy of the payload. Nested objects go through `flatten`."""
    for key, value in message.items():
        if type(value) in _SCALARS and type(key) is str and key not in out:
            out[key] = value  # the usual field: a scalar under a free name ("topic" is taken)
            continue
        if key == "topic":
            continue
        name = key if type(key) is str else f"{key}"
        if isinstance(value, dict) and value:
            flatten(value, out, f"{name}_")
        elif isinstance(value, (list, dict)):
            _claim(out, name, _COMPACT.encode(value))
        elif name in out:
            _claim(out, name, value)
        else:
            out[name] = value
    return out


def _reject_constant(name: str) -> Any:
    raise RecordError(f"not valid JSON: {name} is not a JSON value (RFC 8259)")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode(text: str) -> Any:
    """`json.loads(text, parse_constant=_reject_constant)`, same result and same errors, with one
    decoder for all records (json.loads builds one per call when given an option)."""
    if text.startswith("\ufeff"):  # json.loads's own refusal (and its message) for a BOM
        return json.loads(text, parse_constant=_reject_constant)
    try:
        # The usual record: a value from the first character to the last (parse_message strips
        # the end). decode() would match the whitespace regex at both ends around this.
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
        value, end = None, -1  # leading whitespace or bad JSON: decode() says which, and where
    if end != len(text):
        return _DECODER.decode(text)
    return value


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
    text = text.rstrip()
    if text.endswith(","):
        text = text[:-1]
    try:
        message = _decode(text)
    except json.JSONDecodeError as exc:
        raise RecordError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise RecordError(
            f"JSON nested too deeply for this transform ({len(data)} bytes)"
        ) from None
    if not isinstance(message, dict):
        raise RecordError(f"not a JSON object but a JSON {_json_type(message)}")
    return message


def _is_json_object(payload: bytes) -> bool:
    try:
        return isinstance(_decode(payload.decode("utf-8")), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def transform_message(message: dict[str, Any], arrival_ms: int | float | None) -> dict[str, Any]:
    """The flat output object of one parsed message (see the module's docstring for the layout)."""
    if message.keys() == NOT_JSON_RECORD_KEYS:
        try:
            payload = binascii.a2b_base64(message[NOT_JSON_FIELD], strict_mode=True)
            size = f"{len(payload)} bytes"
        except (binascii.Error, ValueError, TypeError):
            payload, size = b"", "unreadable base64"
        if _is_json_object(payload):
            # A JSON object without `run_id` (e.g. published from the console): the first rule
            # delivered it already, so this copy is dropped, never a second row.
            raise AlreadyDelivered("a JSON object: the topic rule delivered it")
        raise RecordError(
            f"the payload is not a JSON object ({size}, base64 in {NOT_JSON_FIELD!r}):"
            " the template's not-JSON rule forwarded it"
        )
    topic = message.get("topic")
    if not isinstance(topic, str) or not topic:
        raise RecordError(
            "no 'topic' field with a non-empty string: the topic rule must be "
            "SELECT topic() AS topic, * FROM '<topic root>/+'"
        )
    fields = _TOPIC_FIELDS.get(topic)
    if fields is None:  # the topic fields depend on the topic only: made once per topic
        fields = {"topic": topic}
        levels = topic.split("/")
        for i, level in enumerate(levels, start=1):
            fields[f"topic_{i}"] = level
        fields[EQUIPMENT_ID] = levels[-1]
        if len(_TOPIC_FIELDS) >= _CACHE_ENTRIES:
            _TOPIC_FIELDS.clear()
        _TOPIC_FIELDS[topic] = fields
    out: dict[str, Any] = fields.copy()
    out[ARRIVAL_TIME] = epoch_ms_to_iso(arrival_ms) if arrival_ms is not None else None
    clock = None
    for key in DEVICE_TIME_KEYS:
        if key in message:
            clock = message[key]
            break
    out[DEVICE_TIME] = device_time(clock) if clock is not None else None
    return _flatten_payload(message, out)


def transform_data(data: bytes, arrival_ms: int | float | None) -> bytes:
    """One record's bytes in, one JSON line out; raises RecordError with the reason."""
    message = parse_message(data)
    try:
        flat = transform_message(message, arrival_ms)
        line = "".join(_encode_chunks(flat, 0))
    except RecursionError:
        raise RecordError("JSON nested too deeply to flatten") from None
    return (line + "\n").encode("utf-8")


def transform_record(record: dict[str, Any]) -> TransformedRecord:
    """One Firehose input record -> its response entry. Never raises for bad data."""
    record_id = record["recordId"]
    original = record.get("data", "")
    try:
        try:
            # base64.b64decode(original, validate=True) without its wrapper: that is exactly
            # a2b_base64 in strict mode (Python 3.11+; ASCII str or bytes-like, else an error).
            raw = binascii.a2b_base64(original, strict_mode=True)
        except (binascii.Error, ValueError, TypeError):
            raise RecordError("data is not valid base64") from None
        line = transform_data(raw, record.get("approximateArrivalTimestamp"))
    except AlreadyDelivered as exc:
        return TransformedRecord(record_id, DROPPED, original, str(exc))
    except RecordError as exc:
        return TransformedRecord(record_id, PROCESSING_FAILED, original, str(exc))
    except Exception as exc:  # a bug must not fail the other records of the batch
        reason = f"transform error: {type(exc).__name__}: {exc}"
        return TransformedRecord(record_id, PROCESSING_FAILED, original, reason)
    return TransformedRecord(
        record_id, OK, binascii.b2a_base64(line, newline=False).decode("ascii")
    )
