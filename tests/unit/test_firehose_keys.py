"""Prefix expressions and object names (Firehose developer guide: "s3-prefixes",
"s3-object-name"), checked against the guide's own examples."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from emulator.firehose import keys

WHEN = datetime(2018, 8, 27, 10, 30, 5, 123456, tzinfo=UTC)


def fixed_random() -> str:
    return "5abf82daaa5"


def test_no_prefix_gets_the_default_time_path():
    assert keys.destination_prefix(None, WHEN) == "2018/08/27/10/"


def test_static_prefix_gets_the_time_path_appended_as_written():
    # "Firehose appends the expression !{timestamp:yyyy/MM/dd/HH/} to the value in Prefix"
    assert keys.destination_prefix("myApp/", WHEN) == "myApp/2018/08/27/10/"


def test_guide_example_with_timestamp_and_random_string():
    prefix = "myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}"
    assert (
        keys.destination_prefix(prefix, WHEN, random=fixed_random)
        == "myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5"
    )


def test_guide_example_with_quoted_literals_in_error_prefix():
    error = (
        "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/"
        "!{firehose:error-output-type}"
    )
    assert (
        keys.error_prefix("p/", error, WHEN)
        == "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed"
    )


def test_error_prefix_defaults_to_prefix_then_type_then_time():
    assert keys.error_prefix(None, None, WHEN) == "processing-failed/2018/08/27/10/"
    assert keys.error_prefix("data/", None, WHEN) == "data/processing-failed/2018/08/27/10/"


def test_error_prefix_with_expressions_is_evaluated_as_written():
    error = "myFirehoseFailures/!{firehose:error-output-type}/"
    assert keys.error_prefix(None, error, WHEN) == "myFirehoseFailures/processing-failed/"


def test_error_prefix_rules_are_enforced():
    with pytest.raises(keys.PrefixError, match="error-output-type"):
        keys.error_prefix("p/", "errors/!{timestamp:yyyy}/", WHEN)
    with pytest.raises(keys.PrefixError, match="can't be null"):
        keys.error_prefix("p/!{timestamp:yyyy}/", None, WHEN)
    with pytest.raises(keys.PrefixError, match="only be used in ErrorOutputPrefix"):
        keys.destination_prefix("p/!{firehose:error-output-type}/", WHEN)


def test_random_string_is_eleven_characters_and_new_each_time():
    prefix = keys.destination_prefix(
        "!{firehose:random-string}/!{firehose:random-string}/!{timestamp:yyyy}/", WHEN
    )
    first, second, _year, _ = prefix.split("/")
    assert len(first) == len(second) == 11 and first != second


def test_bad_expressions_are_errors():
    with pytest.raises(keys.PrefixError, match="unknown namespace"):
        keys.destination_prefix("!{nope:x}/", WHEN)
    with pytest.raises(keys.PrefixError, match="can only appear"):
        keys.destination_prefix("a!{b", WHEN)
    with pytest.raises(keys.PrefixError, match="dynamic partitioning"):
        keys.destination_prefix("!{partitionKeyFromQuery:id}/", WHEN)
    with pytest.raises(keys.PrefixError, match="512"):
        keys.destination_prefix("x" * 600 + "!{timestamp:yyyy}", WHEN)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy-MM-dd HH:mm:ss", "2018-08-27 10:30:05"),
        ("yy/M/d/H", "18/8/27/10"),
        ("MMM MMMM EEE EEEE", "Aug August Mon Monday"),
        ("hh a", "10 AM"),
        ("SSS", "123"),
        ("DDD", "239"),
        ("'it''s' yyyy", "it's 2018"),
        ("''", "'"),
        ("''''", "'"),  # one quoted quote, as Java reads it
        ("yyyy''MM", "2018'08"),
    ],
)
def test_java_date_time_formatter_patterns(pattern, expected):
    assert keys.format_java(pattern, WHEN) == expected


def test_timestamp_instances_evaluate_to_the_same_instant():
    prefix = keys.destination_prefix("!{timestamp:ss}/!{timestamp:ss}/", WHEN)
    assert prefix == "05/05/"


def test_object_name_has_the_aws_suffix():
    name = keys.object_name("2018/08/27/10/", "my-stream", "3", WHEN, ".gz")
    assert re.fullmatch(r"2018/08/27/10/my-stream-3-2018-08-27-10-30-05-[0-9a-f-]{36}\.gz", name), (
        name
    )


def test_arrival_instant_is_utc_unless_a_time_zone_is_set():
    assert keys.arrival_instant(1_535_365_805_000).hour == 10
    assert keys.arrival_instant(1_535_365_805_000, "Asia/Tokyo").hour == 19
