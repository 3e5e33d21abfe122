"""`load_parsed` on Parquet objects as Firehose's record format conversion writes them (made
here by the emulator's serializer from transform output lines and a Glue schema)."""

from __future__ import annotations

import pandas as pd

from emulator.firehose import conversion
from pipeline.analysis import is_parquet, load_parsed
from pipeline.transform import transform_data

SCHEMA = conversion.Schema(
    tuple(
        (name, conversion.hive_type(kind))
        for name, kind in (
            ("equipment_id", "string"), ("arrival_time", "timestamp"),
            ("device_time", "timestamp"), ("temperature_c", "double"),
        )
    ),
    "1",
)  # fmt: skip
CONVERSION = conversion.Conversion("OpenX", "Parquet", "d", "t", "us-east-1", "1", "LATEST", "r")


def parquet_object(*payloads: bytes, arrival_ms: int = 1_795_000_000_123) -> bytes:
    rows = []
    for payload in payloads:
        rows += conversion.rows(transform_data(payload, arrival_ms), CONVERSION, SCHEMA)
    return conversion.serialize(rows, CONVERSION, SCHEMA)


def test_parquet_objects_load_with_utc_time_columns():
    # Given two Parquet objects of transformed messages
    first = parquet_object(
        b'{"topic": "t/pump-01", "timestamp": 1795000000030, "temperature_c": 47.5}'
    )
    second = parquet_object(b'{"topic": "t/pump-02", "temperature_c": 50}')
    assert is_parquet(first) and not is_parquet(b'{"a": 1}\n')

    # When they are loaded
    frame = load_parsed([first, second])

    # Then there is one row each, typed, with the time columns in UTC milliseconds
    assert list(frame["equipment_id"]) == ["pump-01", "pump-02"]
    assert list(frame["temperature_c"]) == [47.5, 50.0]
    assert str(frame["arrival_time"].dtype) == "datetime64[ms, UTC]"
    assert frame["arrival_time"][0] == pd.Timestamp(1_795_000_000_123, unit="ms", tz="UTC")
    assert frame["device_time"][0] == pd.Timestamp(1_795_000_000_030, unit="ms", tz="UTC")
    assert pd.isna(frame["device_time"][1])
