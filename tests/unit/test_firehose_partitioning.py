"""The pure part of dynamic partitioning: deaggregation, jq keys and partition prefixes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emulator.firehose import partitioning
from emulator.firehose.config import Processor
from emulator.firehose.partitioning import PartitioningError, Piece

JSON = Processor("RecordDeAggregation", {"SubRecordType": "JSON"})
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_json_deaggregation_accepts_concatenated_objects_and_json_lines():
    data = b'{"a":1}{"a":2}\n{"a":3}\n'
    assert partitioning.deaggregate(data, JSON) == [b'{"a":1}', b'{"a":2}', b'{"a":3}']


def test_json_deaggregation_refuses_an_array():
    # guide: "An array of JSON objects is not a valid input."
    with pytest.raises(PartitioningError, match="array"):
        partitioning.deaggregate(b'[{"a":1},{"a":2}]', JSON)


def test_deaggregation_is_capped_at_500_sub_records():
    assert len(partitioning.deaggregate(b"{}" * 500, JSON)) == 500
    with pytest.raises(PartitioningError, match="capped at 500"):
        partitioning.deaggregate(b"{}" * 501, JSON)


def test_delimited_deaggregation_uses_the_base64_delimiter():
    processor = Processor(
        "RecordDeAggregation", {"SubRecordType": "DELIMITED", "Delimiter": "IyMjIw=="}
    )
    assert partitioning.deaggregate(b"a####b####", processor) == [b"a", b"b"]


def test_jq_keys_are_extracted_and_formatted():
    query = Processor(
        "MetadataExtraction",
        {"MetadataExtractionQuery": '{id: .id, n: .n, day: (.ts | strftime("%Y-%m-%d"))}'},
    )
    found = partitioning.extract(b'{"id":"x","n":7,"ts":1565382027}', query)
    assert {k: partitioning.key_text(v) for k, v in found.items()} == {
        "id": "x",
        "n": "7",
        "day": "2019-08-09",
    }


def test_a_query_that_returns_no_object_fails_the_record():
    query = Processor("MetadataExtraction", {"MetadataExtractionQuery": ".id"})
    with pytest.raises(PartitioningError, match="one JSON object"):
        partitioning.extract(b'{"id":"x"}', query)


def test_partition_prefix_uses_both_namespaces_and_the_timestamp():
    piece = Piece(0, 0, b"", b"", query_keys={"a": "1"}, lambda_keys={"b": "2"})
    prefix = "a=!{partitionKeyFromQuery:a}/b=!{partitionKeyFromLambda:b}/!{timestamp:yyyy}/"
    assert partitioning.partition_prefix(prefix, piece, WHEN) == "a=1/b=2/2026/"


def test_a_missing_key_fails_the_record():
    piece = Piece(0, 0, b"", b"", query_keys={"a": "1"})
    with pytest.raises(PartitioningError, match="'b'"):
        partitioning.partition_prefix("!{partitionKeyFromQuery:b}/", piece, WHEN)


def test_random_strings_are_drawn_per_object_not_per_partition():
    piece = Piece(0, 0, b"", b"", query_keys={"a": "1"})
    partition = partitioning.partition_prefix(
        "!{partitionKeyFromQuery:a}/!{firehose:random-string}/", piece, WHEN
    )
    assert partition == partitioning.partition_prefix(
        "!{partitionKeyFromQuery:a}/!{firehose:random-string}/", piece, WHEN
    )
    first, second = partitioning.object_prefix(partition), partitioning.object_prefix(partition)
    assert first != second and first.startswith("1/") and len(first) == len("1/") + 11 + 1
