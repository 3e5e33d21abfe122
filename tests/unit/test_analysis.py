"""pipeline.analysis.load_parsed: the parsed bucket's lines as one DataFrame with proper dtypes."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
from support.layout import LEADING_COLUMNS

from pipeline.analysis import load_parsed
from pipeline.batches import write_batch
from pipeline.transform import transform_data


def parsed_line(i: int, **extra) -> bytes:
    message = {
        "topic": f"iot-test-topic/pump-{i % 3:02d}",
        "timestamp": 1_795_000_000_000 + 1000 * i,
        "temperature_c": 40.5 + i,
        "status": {"code": i % 2, "message": "ok"},
        **extra,
    }
    return transform_data(json.dumps(message).encode(), 1_795_000_000_412 + 1000 * i)


def test_load_parsed_types_the_columns():
    # given two gzip batch objects of transformed lines, one line without a device clock
    first = write_batch([parsed_line(0), parsed_line(1)])
    no_clock = transform_data(b'{"topic":"iot-test-topic/fan-01","temperature_c":30}', 0)
    second = write_batch([parsed_line(2), no_clock])
    # when they are loaded
    frame = load_parsed([first, second])
    # then there is one row per line, the times are UTC datetimes, numbers and strings typed
    assert len(frame) == 4
    for column in ("arrival_time", "device_time"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype)
        assert str(frame[column].dt.tz) == "UTC"
    assert frame["arrival_time"][0] == pd.Timestamp("2026-11-18T11:06:40.412Z")
    assert frame["device_time"][1] == pd.Timestamp("2026-11-18T11:06:41Z")
    assert pd.isna(frame["device_time"][3])
    assert frame["arrival_time"][3] == pd.Timestamp("1970-01-01T00:00:00Z")
    assert frame["temperature_c"].dtype == "float64"
    assert frame["status_code"].dtype == "float64"  # an int column with a missing value (NaN)
    assert frame["timestamp"].dtype == "float64" and frame["topic_1"].notna().all()
    assert pd.api.types.is_string_dtype(frame["equipment_id"])
    assert list(frame["equipment_id"]) == ["pump-00", "pump-01", "pump-02", "fan-01"]


def test_columns_keep_the_lines_order():
    frame = load_parsed([write_batch([parsed_line(0)])])
    assert list(frame.columns)[:6] == LEADING_COLUMNS


def test_plain_objects_and_a_missing_final_separator_are_read():
    # given an uncompressed object whose last line has no separator, then a gzip one
    plain = parsed_line(0) + parsed_line(1).rstrip(b"\n")
    frame = load_parsed([plain, write_batch([parsed_line(2)])])
    # then no two lines are glued together
    assert list(frame["temperature_c"]) == [40.5, 41.5, 42.5]


def test_a_column_whose_json_type_changes_still_loads():
    # given a field that is a number in one line and a string in a later one
    lines = [parsed_line(i) for i in range(3)] + [parsed_line(3, reading="n/a")]
    lines[0] = parsed_line(0, reading=1.5)
    # when loaded (pyarrow refuses this; the dict path takes over)
    frame = load_parsed([write_batch(lines)])
    # then every row is there and the times are still UTC datetimes
    assert list(frame["reading"].iloc[[0, 3]]) == [1.5, "n/a"]
    assert frame["reading"].dtype == object
    assert isinstance(frame["arrival_time"].dtype, pd.DatetimeTZDtype)
    assert len(frame) == 4


def test_nothing_to_load_gives_an_empty_frame_with_typed_time_columns():
    frame = load_parsed([b"", write_batch([])])
    assert len(frame) == 0
    assert isinstance(frame["arrival_time"].dtype, pd.DatetimeTZDtype)


def test_importing_pipeline_and_the_handler_does_not_import_pandas():
    # the Lambda imports `pipeline`; pandas must only load with pipeline.analysis
    code = "import sys, pipeline.handler, pipeline.batches; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_well_typed_lines_take_the_pyarrow_path(monkeypatch):
    # given the slow path disabled
    import pipeline.analysis as analysis

    def refuse(data):
        raise AssertionError("the dict fallback was used")

    monkeypatch.setattr(analysis, "_via_records", refuse)
    # when ordinary transformed lines are loaded, then pyarrow alone reads them
    frame = load_parsed([write_batch([parsed_line(i) for i in range(100)])])
    assert len(frame) == 100 and frame["status_code"].dtype == "int64"


def load_joined_only(objects: list[bytes]) -> pd.DataFrame:
    """The reference: every object's lines joined into one plain object and read at once."""
    from pipeline.batches import decompress

    joined = b"".join(decompress(o).rstrip(b"\n") + b"\n" for o in objects if decompress(o))
    return load_parsed([joined])


def test_objects_read_one_by_one_give_the_frame_the_joined_lines_give(monkeypatch):
    # given gzip and plain objects, an empty one, a column only in a later object, a column
    # null in the first object, and lines without a device clock
    import pipeline.analysis as analysis

    objects = [
        write_batch([parsed_line(0), parsed_line(1, note=None)]),
        b"",
        parsed_line(2, note="late") + parsed_line(3, extra_only_here=7),
        write_batch([transform_data(b'{"topic":"iot-test-topic/fan-01","v":1.5}', 0)]),
    ]
    expected = load_joined_only(objects)
    # when they are loaded, with the fallback refused
    monkeypatch.setattr(analysis, "_via_records", lambda objects: pytest.fail("fallback"))
    frame = load_parsed(objects)
    # then the frame is the same: rows, column order, dtypes, values
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert list(frame.columns)[:6] == list(expected.columns)[:6] == LEADING_COLUMNS
    assert pd.isna(frame["note"][1]) and frame["note"][2] == "late"


def test_a_column_typed_differently_in_two_objects_is_typed_as_the_joined_lines_type_it():
    # given a field that is an integer in one object and a fraction in the next
    objects = [
        write_batch([parsed_line(0, reading=1)]),
        write_batch([parsed_line(1, reading=2.5)]),
    ]
    # when loaded, then it is one float column, as reading the joined lines makes it
    frame = load_parsed(objects)
    pd.testing.assert_frame_equal(frame, load_joined_only(objects), check_exact=True)
    assert frame["reading"].dtype == "float64" and list(frame["reading"]) == [1.0, 2.5]


def test_a_truncated_gzip_object_after_the_first_is_the_same_clear_error():
    # given a good object, then a gzip object cut short
    objects = [write_batch([parsed_line(0)]), write_batch([parsed_line(1)])[:-10]]
    # then loading says which object cannot be decompressed, as before
    with pytest.raises(ValueError, match="cannot be decompressed.*truncated"):
        load_parsed(objects)
