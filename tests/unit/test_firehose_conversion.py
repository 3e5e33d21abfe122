"""The pure parts of record format conversion: Hive types, the two JSON SerDes' key and value
rules, Joda-Time patterns, and the create-time configuration checks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from emulator.firehose import conversion
from emulator.firehose.conversion import Conversion, RecordError, Schema


def conv(**changes) -> Conversion:
    base = {"deserializer": "OpenX", "output": "Parquet", "database": "d", "table": "t",
            "region": "us-east-1", "catalog_id": "123456789012", "version_id": "LATEST",
            "role_arn": "r"}  # fmt: skip
    return Conversion(**{**base, **changes})


def schema(**columns: str) -> Schema:
    return Schema(tuple((n, conversion.hive_type(t)) for n, t in columns.items()), "1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("string", pa.string()),
        ("varchar(20)", pa.string()),
        ("BIGINT", pa.int64()),
        ("decimal(12,3)", pa.decimal128(12, 3)),
        ("decimal", pa.decimal128(10, 0)),
        ("array<struct<a:int,b:map<string,double>>>",
         pa.list_(pa.struct([("a", pa.int32()), ("b", pa.map_(pa.string(), pa.float64()))]))),
    ],
)  # fmt: skip
def test_hive_types(text, expected):
    assert conversion.hive_type(text) == expected


def test_an_unknown_type_is_refused():
    with pytest.raises(ValueError, match="uniontype"):
        conversion.hive_type("uniontype<int,string>")


def test_openx_matches_keys_case_insensitively_unless_told_not_to():
    cols = schema(equipment_id="string")
    assert conversion.rows(b'{"Equipment_Id": "x"}', conv(), cols) == [{"equipment_id": "x"}]
    sensitive = conv(case_insensitive=False)
    assert conversion.rows(b'{"Equipment_Id": "x"}', sensitive, cols) == [{"equipment_id": None}]


def test_openx_dots_and_key_mappings():
    cols = schema(a_b="int", ts="bigint")
    options = conv(dots_to_underscores=True, key_mappings={"ts": "timestamp"})
    assert conversion.rows(b'{"a.b": 1, "timestamp": 2}', options, cols) == [{"a_b": 1, "ts": 2}]
    assert conversion.rows(b'{"a.b": 1}', conv(), cols) == [{"a_b": None, "ts": None}]


def test_several_documents_in_one_record_and_arrays_refused():
    cols = schema(a="int")
    assert conversion.rows(b'{"a": 1} {"a": 2}\n', conv(), cols) == [{"a": 1}, {"a": 2}]
    with pytest.raises(RecordError, match="array"):
        conversion.rows(b'[{"a": 1}]', conv(), cols)


@pytest.mark.parametrize(
    ("value", "column", "message"),
    [("hot", "double", "not a number"), (300, "tinyint", "out of range"),
     (1.5, "int", "not an integer"), ("yes", "boolean", "not a boolean")],
)  # fmt: skip
def test_values_that_do_not_fit_the_column(value, column, message):
    cols = schema(v=column)
    with pytest.raises(RecordError, match=message):
        conversion.rows(f'{{"v": {value!r}}}'.replace("'", '"').encode(), conv(), cols)


def test_openx_timestamps():
    cols = schema(t="timestamp")
    for text in ('"2017-02-07T15:13:01.39256Z"', '"2017-2-7 15:13:01.39256"', "1486480381.39256",
                 "1486480381392"):  # fmt: skip
        (row,) = conversion.rows(b'{"t": ' + text.encode() + b"}", conv(), cols)
        assert row["t"].replace(microsecond=0) == datetime(2017, 2, 7, 15, 13, 1), text


def test_hive_timestamp_formats_and_the_default():
    cols = schema(t="timestamp")
    hive = conv(deserializer="Hive", timestamp_formats=("dd.MM.yyyy HH:mm:ssZ", "millis"))
    (row,) = conversion.rows(b'{"t": "07.02.2017 16:13:01+01:00"}', hive, cols)
    assert row["t"] == datetime(2017, 2, 7, 15, 13, 1)
    (row,) = conversion.rows(b'{"t": 1486480381000}', hive, cols)
    assert row["t"] == datetime(2017, 2, 7, 15, 13, 1)
    (row,) = conversion.rows(b'{"t": "2017-02-07 15:13:01.5"}', conv(deserializer="Hive"), cols)
    assert row["t"] == datetime(2017, 2, 7, 15, 13, 1, 500000)
    with pytest.raises(RecordError, match="TimestampFormats"):
        conversion.rows(b'{"t": "2017-02-07T15:13:01Z"}', conv(deserializer="Hive"), cols)


def test_decimal_and_nested_values():
    cols = schema(d="decimal(5,2)", s="struct<x:int>", m="map<string,int>")
    (row,) = conversion.rows(b'{"d": 1.5, "s": {"X": 3}, "m": {"k": "4"}}', conv(), cols)
    assert row == {"d": Decimal("1.50"), "s": {"x": 3}, "m": [("k", 4)]}


def test_configuration_problems():
    assert conversion.config_problems({}) == [
        "DataFormatConversionConfiguration.InputFormatConfiguration is required when it is enabled",
        "DataFormatConversionConfiguration.OutputFormatConfiguration is required when it is "
        "enabled",
        "DataFormatConversionConfiguration.SchemaConfiguration is required when it is enabled",
    ]
    assert conversion.enabled({}) and not conversion.enabled({"Enabled": False})
    assert not conversion.enabled(None)


def test_a_value_beyond_the_column_type_is_a_record_error():
    cols = schema(d="decimal(5,2)")
    found = conversion.rows(b'{"d": 12345.6}', conv(), cols)
    with pytest.raises(RecordError, match="does not fit its column"):
        conversion.check_fits(found, cols)
    conversion.check_fits(conversion.rows(b'{"d": 123.4}', conv(), cols), cols)
