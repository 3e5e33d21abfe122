"""pipeline.transform: an IoT message in, one flat JSON line out; bad records fail with a reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.layout import LEADING_COLUMNS

from pipeline import transform
from pipeline.handler import firehose_response
from pipeline.transform import (
    OK,
    PROCESSING_FAILED,
    RecordError,
    device_time,
    epoch_ms_to_iso,
    flatten,
    parse_message,
    transform_data,
    transform_record,
)

ARRIVAL_MS = 1_795_000_000_412  # 2026-11-18T11:06:40.412Z


def line_of(data: bytes, arrival_ms: int | None = ARRIVAL_MS) -> dict:
    out = transform_data(data, arrival_ms)
    assert out.endswith(b"\n") and out.count(b"\n") == 1, "exactly one line, newline-terminated"
    return json.loads(out)


def record(data: bytes, record_id: str = "r-1", arrival_ms: int = ARRIVAL_MS) -> dict:
    return {
        "recordId": record_id,
        "approximateArrivalTimestamp": arrival_ms,
        "data": base64.b64encode(data).decode(),
    }


def test_a_telemetry_message_becomes_the_documented_flat_line():
    # given what the rule `SELECT topic() AS topic, *` sends, with its "\n" separator
    data = (
        b'{"topic":"iot-test-topic/pump-01","device_id":"pump-01","timestamp":1795000000030,'
        b'"temperature_c":47.47,"status":{"code":0,"message":"ok"}}\n'
    )
    # when it is transformed
    out = line_of(data)
    # then the fields, written out by hand from the module's rules, come in this order
    assert list(out.items()) == [
        ("topic", "iot-test-topic/pump-01"),
        ("topic_1", "iot-test-topic"),
        ("topic_2", "pump-01"),
        ("equipment_id", "pump-01"),
        ("arrival_time", "2026-11-18T11:06:40.412Z"),
        ("device_time", "2026-11-18T11:06:40.030Z"),
        ("device_id", "pump-01"),
        ("timestamp", 1795000000030),
        ("temperature_c", 47.47),
        ("status_code", 0),
        ("status_message", "ok"),
    ]


def test_every_topic_level_is_a_field_and_the_last_one_names_the_equipment():
    # given a deeper topic than the template's
    out = line_of(b'{"topic":"plant/line-2/press-7","v":1}')
    # then each level is numbered from 1 and the last is the equipment id
    assert (out["topic_1"], out["topic_2"], out["topic_3"]) == ("plant", "line-2", "press-7")
    assert out["equipment_id"] == "press-7"
    assert "topic_4" not in out


def test_output_is_compact_utf8_json():
    # given a payload with non-ASCII text
    out = transform_data('{"topic":"t/é","note":"température"}'.encode(), ARRIVAL_MS)
    # then it stays UTF-8 (not \\u escapes) with compact separators
    assert "température".encode() in out and b'"note":"temp' in out
    assert b", " not in out and b": " not in out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1795000000, "2026-11-18T11:06:40.000Z"),  # epoch seconds
        (1795000000.25, "2026-11-18T11:06:40.250Z"),  # fractional seconds
        (1795000000030, "2026-11-18T11:06:40.030Z"),  # epoch milliseconds
        (1795000000030123, "2026-11-18T11:06:40.030Z"),  # microseconds, cut to ms
        (1795000000030123456, "2026-11-18T11:06:40.030Z"),  # nanoseconds
        ("1795000000030", "2026-11-18T11:06:40.030Z"),  # digits in a string
        ("2026-11-18T11:06:40.03Z", "2026-11-18T11:06:40.030Z"),  # ISO with Z
        ("2026-11-18T12:06:40+01:00", "2026-11-18T11:06:40.000Z"),  # ISO with an offset
        ("2026-11-18 11:06:40", "2026-11-18T11:06:40.000Z"),  # no offset: taken as UTC
    ],
)
def test_device_clock_forms_are_normalised_to_iso_utc(value, expected):
    assert device_time(value) == expected


@pytest.mark.parametrize("value", ["yesterday", True, None, 1e30, "nan", {"s": 1}, [1]])
def test_an_unreadable_device_clock_gives_none(value):
    assert device_time(value) is None


def test_device_time_key_preference_and_absence():
    # given payloads with `ts` and `time`, `time` only, and no clock at all
    both = line_of(b'{"topic":"t/x","time":1795000000,"ts":1795000001000}')
    only_time = line_of(b'{"topic":"t/x","time":"2026-11-18T11:06:40Z"}')
    none = line_of(b'{"topic":"t/x","v":1}')
    bad = line_of(b'{"topic":"t/x","timestamp":"soon"}')
    # then `ts` is preferred over `time`; missing or unreadable clocks are null, data kept
    assert both["device_time"] == "2026-11-18T11:06:41.000Z"
    assert only_time["device_time"] == "2026-11-18T11:06:40.000Z"
    assert none["device_time"] is None
    assert bad["device_time"] is None and bad["timestamp"] == "soon"


def test_arrival_time_is_exact_to_the_millisecond():
    # given arrival times whose float division would round the wrong way
    for ms in (1_795_000_000_001, 1_795_000_000_999, 1_000, 0):
        # then the ISO form keeps the exact milliseconds
        assert epoch_ms_to_iso(ms)[-5:-1] == f".{ms % 1000:03d}"


def test_arrays_and_empty_objects_are_kept_as_json_text():
    # given nested objects, arrays (of objects too) and an empty object
    flat = flatten({"a": {"b": {"c": 1}}, "xs": [1, {"y": 2}], "e": {}, "n": None})
    # then objects join with "_", arrays and {} are compact JSON text, null stays null
    assert flat == {"a_b_c": 1, "xs": '[1,{"y":2}]', "e": "{}", "n": None}


def test_collisions_never_overwrite_and_added_fields_win():
    # given a payload whose names collide with each other and with the added fields
    out = line_of(
        b'{"topic":"t/pump","equipment_id":"P-1","arrival_time":5,"a_b":1,"a":{"b":2},"a_b__2":3}'
    )
    # then the first comer keeps the name and later ones take the first free __N suffix
    assert out["equipment_id"] == "pump" and out["equipment_id__2"] == "P-1"
    assert out["arrival_time"] == "2026-11-18T11:06:40.412Z" and out["arrival_time__2"] == 5
    assert (out["a_b"], out["a_b__2"], out["a_b__2__2"]) == (1, 2, 3)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty record"),
        (b"\n", "empty record"),
        (b"temperature=48.2\n", "not valid JSON"),
        (b'{"topic":"t/x","v": \n', "not valid JSON"),
        (b'{"topic":"t/x","v":NaN}', "NaN is not a JSON value"),
        (b"[1, 2, 3]\n", "not a JSON object but a JSON array"),
        (b'"text"', "not a JSON object but a JSON string"),
        (b"null", "not a JSON object but a JSON null"),
        (b"\xff\xfe\x00bad\n", "not valid UTF-8 at byte 0"),
        (b'{"v":1}', "no 'topic' field with a non-empty string"),
        (b'{"topic":7}', "no 'topic' field with a non-empty string"),
        (b'{"topic":""}', "no 'topic' field with a non-empty string"),
    ],
)
def test_bad_messages_raise_with_the_reason(data, reason):
    with pytest.raises(RecordError, match=reason):
        transform_data(data, ARRIVAL_MS)


@pytest.mark.parametrize("separator", [b"", b"\n", b"\t", b"\r\n", b","])
def test_parse_message_accepts_each_separator_the_rule_action_allows(separator):
    assert parse_message(b'{"topic":"t/x"}' + separator) == {"topic": "t/x"}


def test_a_good_record_comes_back_ok_with_base64_data():
    # given a Firehose input record
    given = record(b'{"topic":"t/x","v":1}\n', "rid-7")
    # when it is transformed
    result = transform_record(given)
    # then it is Ok, keeps its recordId and carries the base64 of the line; no reason
    assert (result.record_id, result.result, result.reason) == ("rid-7", OK, None)
    assert json.loads(base64.b64decode(result.data))["v"] == 1
    assert firehose_response([result]) == {
        "records": [
            {
                "recordId": "rid-7",
                "result": OK,
                "data": result.data,
                "metadata": {"partitionKeys": {"equipment_id": "x"}},
            }
        ]
    }


@pytest.mark.parametrize("data", [b"[1]", b"\xff", b"", b"nope"])
def test_a_bad_record_fails_with_its_original_data_and_a_reason(data):
    # given a record whose data cannot be transformed
    given = record(data)
    # when it is transformed
    result = transform_record(given)
    # then it is ProcessingFailed, with the input's base64 unchanged and a reason
    assert result.result == PROCESSING_FAILED
    assert result.data == given["data"]
    assert result.reason


def test_data_that_is_not_base64_fails_unchanged():
    given = {"recordId": "r", "approximateArrivalTimestamp": 0, "data": "not base64!"}
    result = transform_record(given)
    assert (result.result, result.data, result.reason) == (
        PROCESSING_FAILED,
        "not base64!",
        "data is not valid base64",
    )


def test_deep_nesting_fails_the_record_not_the_batch():
    # given messages nested deeper than Python's parser or the flattener can follow
    for data in (b"[" * 100_000, b'{"topic":"t/x","a":' + b"[" * 5000 + b"]" * 5000 + b"}"):
        # when transformed
        result = transform_record(record(data))
        # then only that record fails, with a reason
        assert result.result == PROCESSING_FAILED and "nested too deeply" in result.reason


# Property tests: whatever the bytes, the contract holds.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def leaves(obj: dict) -> int:
    """Values a flattening must keep: scalars, arrays, and empty objects."""
    return sum(leaves(v) if isinstance(v, dict) and v else 1 for v in obj.values())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_ok_or_processing_failed_never_an_exception(data):
    result = transform_record(record(data))
    if result.result == PROCESSING_FAILED:
        assert result.data == record(data)["data"] and result.reason
    else:
        line = base64.b64decode(result.data)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert isinstance(json.loads(line), dict)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.text(min_size=1))
def test_any_object_with_a_topic_becomes_one_flat_line_keeping_every_value(payload, topic):
    # given any JSON object the rule could send
    payload.pop("topic", None)
    message = {"topic": topic, **payload}
    # when it is transformed
    result = transform_record(record(json.dumps(message).encode() + b"\n"))
    # then it is Ok, one line, flat (no nested object or array), and nothing was overwritten
    assert result.result == OK, result.reason
    line = base64.b64decode(result.data)
    assert line.count(b"\n") == 1
    out = json.loads(line)
    assert not any(isinstance(v, dict | list) for v in out.values())
    added = 4 + len(topic.split("/"))  # topic, topic_N..., equipment_id, arrival/device time
    assert len(out) == added + leaves(payload)


# The per-second cache of the ISO text and the one JSON decoder/encoder made at import must give
# what the plain computation gives: checked here against independent references.


def reference_iso(epoch_ms: int) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC by datetime alone; None out of datetime's range."""
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)
    except OverflowError:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@settings(max_examples=300, deadline=None)
@given(st.integers(-62_135_596_800_000, 253_402_300_799_999), st.integers(0, 999))
def test_arrival_times_from_the_second_cache_are_exact(epoch_ms, other_ms):
    # given a millisecond time and another millisecond of the same second
    same_second = epoch_ms - epoch_ms % 1000 + other_ms
    # when both are formatted (the first fills the cache, the second reads it) and again
    first, second, again = (epoch_ms_to_iso(v) for v in (epoch_ms, same_second, epoch_ms))
    # then each is the datetime's own ISO text
    assert first == again == reference_iso(epoch_ms)
    assert second == reference_iso(same_second)


def test_an_arrival_time_out_of_datetimes_range_still_fails_the_record():
    # given an arrival time after year 9999
    data = base64.b64encode(b'{"topic":"t/x"}').decode()
    result = transform_record(
        {"recordId": "r", "data": data, "approximateArrivalTimestamp": 10**16}
    )
    # then the record fails (and the one cache entry of a good second is unaffected)
    assert result.result == PROCESSING_FAILED and "OverflowError" in result.reason
    assert epoch_ms_to_iso(ARRIVAL_MS) == "2026-11-18T11:06:40.412Z"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([(1, 1000), (1000, 1), (10**6, 1), (10**9, 1)]),
    st.integers(-(10**11) + 1, 10**11 - 1),
)
def test_integer_device_clocks_of_every_unit_match_datetime(unit, count):
    # given an integer clock in seconds, milliseconds, microseconds or nanoseconds, large
    # enough to be read in that unit (`_EPOCH_UNITS`)
    per_second, ms_per_unit = unit
    bounds = {1: 0, 1000: 10**11, 10**6: 10**14, 10**9: 10**17}
    value = (
        count if per_second == 1 else (bounds[per_second] + abs(count)) * (1 if count >= 0 else -1)
    )
    # when it is read (twice: cache miss, then hit)
    got = device_time(value), device_time(value)
    # then it is the datetime of its milliseconds (finer digits cut, toward the past)
    epoch_ms = value * ms_per_unit if per_second == 1 else value * 1000 // per_second
    assert got == (reference_iso(epoch_ms),) * 2


def test_times_and_topics_stay_right_past_the_caches_bound():
    # given more distinct seconds than the per-second cache holds, each on its own topic
    for n in range(transform._second_text.cache_info().maxsize * 2 + 5):
        # then every value is still right
        assert epoch_ms_to_iso(n * 1000 + 7) == reference_iso(n * 1000 + 7)
        assert line_of(f'{{"topic":"t/d-{n}"}}'.encode())["equipment_id"] == f"d-{n}"


@pytest.mark.parametrize(
    "clock", [10**400, -(10**400), "1" * 400], ids=["int", "negative int", "digits in a string"]
)
def test_a_device_clock_too_large_for_any_time_is_null_and_the_record_ok(clock):
    # given a device clock that is a number, but beyond any time (and beyond a float)
    data = json.dumps({"topic": "t/x", "timestamp": clock}).encode()
    # when the record is transformed
    result = transform_record(record(data))
    # then it is Ok, with device_time null and the clock kept as sent (out of range: None)
    assert result.result == OK, result.reason
    out = json.loads(base64.b64decode(result.data))
    assert out["device_time"] is None and out["timestamp"] == clock


def test_one_messages_fields_never_leak_into_the_next_of_the_same_topic():
    # given two messages on one topic, the first with fields the second lacks and a collision
    first = line_of(b'{"topic":"t/pump","extra":1,"topic_1":"mine"}')
    second = line_of(b'{"topic":"t/pump","v":2}')
    # then the second line has only its own fields, and the first kept its renamed one
    assert first["topic_1"] == "t" and first["topic_1__2"] == "mine" and first["extra"] == 1
    assert set(second) == {*LEADING_COLUMNS, "v"}


json_like = st.lists(
    st.sampled_from(
        ['{"topic":"t/x"', "}", " ", "\ufeff", "\n", ",", '"a":', "1", "NaN", "[", "]", "x"]
    ),
    max_size=8,
).map("".join)


def reference_parse(text: str) -> object:
    """json.loads as the transform documents it: the value, or the reason it is refused."""
    text = text.rstrip()
    text = text[:-1] if text.endswith(",") else text

    def refuse(name: str) -> None:
        raise LookupError(name)

    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except LookupError as exc:
        return f"not valid JSON: {exc.args[0]} is not a JSON value (RFC 8259)"


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_parse_errors_are_json_loads_own_errors(text):
    # given any non-blank text made of JSON fragments (BOM, whitespace at either end, NaN...)
    data = text.encode()
    assume(data.strip())
    expected = reference_parse(text)
    # when it is parsed
    try:
        got = parse_message(data)
    except RecordError as exc:
        got = str(exc)
    # then the object, or the reason, is the one json.loads gives
    if isinstance(expected, dict | str):
        assert got == expected
    else:
        assert isinstance(got, str) and got.startswith("not a JSON object")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.text(min_size=1))
def test_the_output_line_is_byte_for_byte_what_json_dumps_writes(payload, topic):
    # given any JSON object with a topic, and its flat object
    payload.pop("topic", None)
    message = {"topic": topic, **payload}
    data = json.dumps(message).encode()
    flat = transform.transform_message(json.loads(data), ARRIVAL_MS)
    # when it is transformed to bytes (with the one encoder made at import)
    line = transform_data(data, ARRIVAL_MS)
    # then the line is json.dumps' compact UTF-8 text of that object, and a newline
    assert line == (json.dumps(flat, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
