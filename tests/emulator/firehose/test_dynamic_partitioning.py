"""Dynamic partitioning on real delivery streams: partition keys from jq (MetadataExtraction)
and from a real Lambda function (`metadata.partitionKeys`), deaggregation, one buffer per
partition, records whose keys cannot be extracted in `partitioning-failed`, the active-partition
limit, and AWS's create-time rules."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from firehose_helpers import (
    KEY_SUFFIX,
    create_stream,
    deploy_functions,
    make_stream,
    processing,
    processor,
    read_object,
    wait_for_deliveries,
    wait_for_objects,
)
from support.firehose_lambdas import SOURCE

from emulator.firehose import partitioning


@pytest.fixture(scope="module")
def keys_function(aws):
    """A real function in the emulator's Lambda runtime that returns partition keys."""
    functions = deploy_functions(
        aws, "firehose-partition-keys", "processors", SOURCE, ("partition_keys",)
    )
    return functions["partition_keys"]


def jq_processing(query: str, *extra: dict) -> dict:
    return processing(
        *extra,
        processor("MetadataExtraction", MetadataExtractionQuery=query, JsonParsingEngine="JQ-1.6"),
        processor("AppendDelimiterToRecord"),
    )


def lambda_processor(arn: str) -> dict:
    return processor("Lambda", LambdaArn=arn)


DEAGGREGATE_JSON = processor("RecordDeAggregation", SubRecordType="JSON")
PARTITIONED = {"DynamicPartitioningConfiguration": {"Enabled": True}}
ERRORS = "errors/!{firehose:error-output-type}/"


def _day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _lines(s3, bucket: str, key: str) -> list[bytes]:
    return read_object(s3, bucket, key)[0].splitlines()


def make_k_stream(aws, stream: str, interval: int, *processors: dict) -> None:
    """A stream (and its bucket of the same name) partitioned by the records' `k` with jq,
    1 MiB / `interval` s buffering hints; `processors` run before the jq extraction."""
    make_partitioned_stream(
        aws,
        stream,
        "k=!{partitionKeyFromQuery:k}/",
        jq_processing("{k: .k}", *processors),
        interval,
    )


def make_partitioned_stream(aws, stream: str, prefix: str, config: dict, interval: int = 1):
    """A stream with dynamic partitioning into the bucket of its name: `prefix` (its partition
    keys), the ERRORS error prefix, 1 MiB / `interval` s buffering hints, and `config` as its
    ProcessingConfiguration."""
    make_stream(
        aws, stream, stream,
        Prefix=prefix,
        ErrorOutputPrefix=ERRORS,
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": interval},
        ProcessingConfiguration=config,
        **PARTITIONED,
    )  # fmt: skip


def test_jq_keys_and_timestamp_make_one_object_per_partition(aws, unique):
    # Given a stream partitioned by device (jq) and day, newline-delimited
    stream = bucket = f"dpq-{unique}"
    make_partitioned_stream(
        aws, stream,
        "device=!{partitionKeyFromQuery:device}/dt=!{timestamp:yyyy-MM-dd}/",
        jq_processing("{device: .meta.device}"),
    )  # fmt: skip
    sent = [
        b'{"meta":{"device":"a"},"v":1}',
        b'{"meta":{"device":"b"},"v":2}',
        b'{"meta":{"device":"a"},"v":3}',
        b'{"meta":{},"v":4}',
        b"not json",
    ]

    # When the records are put in one batch
    aws("firehose").put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in sent])

    # Then each device has its own object under its evaluated prefix, records in order
    s3 = aws("s3")
    suffix = KEY_SUFFIX.format(stream=stream, version=1)
    (a,) = wait_for_objects(s3, bucket, prefix="device=a/")
    (b,) = wait_for_objects(s3, bucket, prefix="device=b/")
    assert re.fullmatch(f"device=a/dt={_day()}/" + suffix, a["Key"])
    assert _lines(s3, bucket, a["Key"]) == [sent[0], sent[2]]
    assert _lines(s3, bucket, b["Key"]) == [sent[1]]
    # and the records without the key, or not JSON, are in partitioning-failed with the source
    (failed,) = wait_for_objects(s3, bucket, prefix="errors/partitioning-failed/")
    errors = [json.loads(x) for x in _lines(s3, bucket, failed["Key"])]
    assert [base64.b64decode(e["rawData"]) for e in errors] == [sent[3], sent[4]]
    assert {e["errorCode"] for e in errors} == {"DynamicPartitioning.MetadataExtractionFailed"}
    assert list(errors[0]) == [
        "attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
        "attemptEndingTimestamp", "rawData",
    ]  # fmt: skip
    assert "device" in errors[0]["errorMessage"]


def test_lambda_keys_with_json_deaggregation(aws, unique, keys_function):
    # Given a stream that deaggregates JSON and partitions by the Lambda's partitionKeys
    stream = bucket = f"dpl-{unique}"
    make_partitioned_stream(
        aws, stream,
        "equipment=!{partitionKeyFromLambda:equipment}/!{timestamp:yyyy}/",
        processing(DEAGGREGATE_JSON, lambda_processor(keys_function)),
    )  # fmt: skip
    # one record holding three JSON objects, the last without the key (as AWS's own test)
    record = b'{"equipment":"p1","t":1}{"equipment":"p2","t":2}\n{"t":3}'

    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": record})

    s3 = aws("s3")
    year = datetime.now(UTC).strftime("%Y")
    (p1,) = wait_for_objects(s3, bucket, prefix=f"equipment=p1/{year}/")
    (p2,) = wait_for_objects(s3, bucket, prefix=f"equipment=p2/{year}/")
    assert json.loads(read_object(s3, bucket, p1["Key"])[0]) == {"equipment": "p1", "t": 1}
    assert json.loads(read_object(s3, bucket, p2["Key"])[0]) == {"equipment": "p2", "t": 2}
    (failed,) = wait_for_objects(s3, bucket, prefix="errors/partitioning-failed/")
    (error,) = [json.loads(x) for x in _lines(s3, bucket, failed["Key"])]
    assert base64.b64decode(error["rawData"]) == b'{"t":3}'


def test_delimited_deaggregation_with_jq_keys(aws, unique):
    # Given records aggregated with the delimiter "####" (base64 IyMjIw==)
    stream = bucket = f"dpd-{unique}"
    deaggregate = {
        "Type": "RecordDeAggregation",
        "Parameters": [
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": "IyMjIw=="},
        ],
    }
    make_k_stream(aws, stream, 1, deaggregate)

    aws("firehose").put_record(
        DeliveryStreamName=stream, Record={"Data": b'{"k":1}####{"k":2}####{"k":1,"x":0}'}
    )

    s3 = aws("s3")
    (one,) = wait_for_objects(s3, bucket, prefix="k=1/")
    (two,) = wait_for_objects(s3, bucket, prefix="k=2/")
    assert _lines(s3, bucket, one["Key"]) == [b'{"k":1}', b'{"k":1,"x":0}']
    assert _lines(s3, bucket, two["Key"]) == [b'{"k":2}']


def test_each_partition_has_its_own_size_and_interval(aws, unique, firehose):
    # Given 1 MiB / 3 s buffering hints
    stream = bucket = f"dpb-{unique}"
    make_k_stream(aws, stream, 3)
    # two records and their newlines fill the 1 MiB size hint exactly: one object holds both
    head = b'{"k":"big","pad":"'
    big = head + b"x" * (512 * 1024 - 1 - len(head) - 2) + b'"}'
    small = b'{"k":"small"}'

    # When partition "big" receives 1.5 MiB and "small" one record
    started = time.monotonic()
    aws("firehose").put_record_batch(
        DeliveryStreamName=stream,
        Records=[{"Data": big}, {"Data": small}, {"Data": big}, {"Data": big}],
    )

    # Then "big" is written at once for its size, "small" only when its own interval expires
    s3 = aws("s3")
    wait_for_objects(s3, bucket, prefix="k=big/", timeout=2.5)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="k=small/").get("KeyCount", 0) == 0
    wait_for_objects(s3, bucket, prefix="k=small/", timeout=10)
    assert time.monotonic() - started >= 3
    # and the rest of "big", under the size hint, waits for the interval too
    entries = wait_for_deliveries(firehose, stream, count=3)
    assert sorted((e["partition"], e["reason"], e["records"]) for e in entries) == [
        ("k=big/", "interval", 1),
        ("k=big/", "size", 2),
        ("k=small/", "interval", 1),
    ]


def test_records_beyond_the_active_partition_limit_go_to_the_error_output(aws, unique, monkeypatch):
    # Given a limit of 2 active partitions (500 on AWS)
    monkeypatch.setattr(partitioning, "MAX_ACTIVE_PARTITIONS", 2)
    stream = bucket = f"dpa-{unique}"
    make_k_stream(aws, stream, 2)

    # When records for three partitions arrive while two are buffered
    sent = [b'{"k":1}', b'{"k":2}', b'{"k":3}', b'{"k":1}']
    aws("firehose").put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in sent])

    # Then the third partition's record is in activePartitionExceeded, the others delivered
    s3 = aws("s3")
    (failed,) = wait_for_objects(s3, bucket, prefix="errors/activePartitionExceeded/")
    (error,) = [json.loads(x) for x in _lines(s3, bucket, failed["Key"])]
    assert base64.b64decode(error["rawData"]) == b'{"k":3}'
    (one,) = wait_for_objects(s3, bucket, prefix="k=1/")
    assert _lines(s3, bucket, one["Key"]) == [b'{"k":1}', b'{"k":1}']
    wait_for_objects(s3, bucket, prefix="k=2/")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="k=3/").get("KeyCount", 0) == 0


# Create-time rules ------------------------------------------------------------------------------
JQ = jq_processing("{k: .k}")
RULES = {
    "error-output-prefix-required": (
        {"Prefix": "k=!{partitionKeyFromQuery:k}/", "ProcessingConfiguration": JQ},
        "ErrorOutputPrefix",  # the s3-prefixes rule for a Prefix with expressions comes first
    ),
    "static-prefix-still-needs-error-output-prefix": (
        {"Prefix": "static/", "ProcessingConfiguration": JQ},
        "ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled",
    ),
    "prefix-required": (
        {"ErrorOutputPrefix": ERRORS, "ProcessingConfiguration": JQ},
        "Prefix is required when DynamicPartitioningConfiguration is enabled",
    ),
    "a-key-method-required": (
        {"Prefix": "static/", "ErrorOutputPrefix": ERRORS},
        "add a MetadataExtraction processor (jq) or a Lambda processor",
    ),
    "query-key-needs-metadata-extraction": (
        {
            "Prefix": "k=!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": ERRORS,
            "ProcessingConfiguration": {"Enabled": True, "Processors": [
                lambda_processor("arn:aws:lambda:us-east-1:123456789012:function:f")]},
        },
        "no MetadataExtraction processor defines partition keys",
    ),
    "lambda-key-needs-lambda": (
        {"Prefix": "k=!{partitionKeyFromLambda:k}/", "ErrorOutputPrefix": ERRORS,
         "ProcessingConfiguration": JQ},
        "there is no Lambda processor to return partition keys",
    ),
    "no-zero-buffering": (
        {"Prefix": "static/", "ErrorOutputPrefix": ERRORS, "ProcessingConfiguration": JQ,
         "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 0}},
        "zero buffering is not available for dynamic partitioning",
    ),
    "invalid-jq": (
        {"Prefix": "static/", "ErrorOutputPrefix": ERRORS,
         "ProcessingConfiguration": jq_processing("{k: .k")},
        "is not a valid jq query",
    ),
    "delimited-needs-delimiter": (
        {"Prefix": "static/", "ErrorOutputPrefix": ERRORS,
         "ProcessingConfiguration": jq_processing("{k: .k}", {
             "Type": "RecordDeAggregation",
             "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"}]})},
        "needs a Delimiter, base64-encoded",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RULES))
def test_create_time_rules(aws, unique, case):
    destination, message = RULES[case]
    with pytest.raises(ClientError) as caught:
        make_stream(aws, f"dpr-{unique}", f"dpr-{unique}", **destination, **PARTITIONED)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidArgumentException"
    assert message in error["Message"], error["Message"]


def test_partition_keys_and_processors_need_dynamic_partitioning(aws, unique):
    aws("s3").create_bucket(Bucket=f"dpn-{unique}")
    for destination in (
        {"Prefix": "k=!{partitionKeyFromQuery:k}/", "ErrorOutputPrefix": ERRORS},
        {"ProcessingConfiguration": JQ},
    ):
        with pytest.raises(ClientError) as caught:
            create_stream(aws, f"dpn-{unique}", f"dpn-{unique}", **destination)
        assert caught.value.response["Error"]["Code"] == "InvalidArgumentException"
        assert "dynamic partitioning" in caught.value.response["Error"]["Message"]


def test_dynamic_partitioning_cannot_be_enabled_on_an_existing_stream(aws, unique):
    # Given a stream created without dynamic partitioning
    stream = bucket = f"dpu-{unique}"
    make_stream(aws, stream, bucket, Prefix="static/", ErrorOutputPrefix=ERRORS)
    firehose = aws("firehose")
    described = firehose.describe_delivery_stream(DeliveryStreamName=stream)
    description = described["DeliveryStreamDescription"]

    # When an update enables it, Then it is refused
    with pytest.raises(ClientError) as caught:
        firehose.update_destination(
            DeliveryStreamName=stream,
            CurrentDeliveryStreamVersionId=description["VersionId"],
            DestinationId=description["Destinations"][0]["DestinationId"],
            ExtendedS3DestinationUpdate={"ProcessingConfiguration": JQ, **PARTITIONED},
        )
    assert caught.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert (
        "can't enable dynamic partitioning on an existing"
        in (caught.value.response["Error"]["Message"])
    )


def test_a_partitioned_stream_can_be_updated(aws, unique):
    # Given a partitioned stream, an update that keeps partitioning (new prefix) is accepted
    stream = bucket = f"dpk-{unique}"
    make_partitioned_stream(aws, stream, "k=!{partitionKeyFromQuery:k}/", JQ)
    firehose = aws("firehose")
    description = firehose.describe_delivery_stream(DeliveryStreamName=stream)[
        "DeliveryStreamDescription"
    ]
    firehose.update_destination(
        DeliveryStreamName=stream,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={"Prefix": "key=!{partitionKeyFromQuery:k}/", **PARTITIONED},
    )
    firehose.put_record(DeliveryStreamName=stream, Record={"Data": b'{"k":"v"}'})
    wait_for_objects(aws("s3"), bucket, prefix="key=v/")


def test_lambda_and_jq_keys_in_one_prefix(aws, unique, keys_function):
    # Given a Lambda that returns the equipment key and a jq query on its output for the site
    stream = bucket = f"dpj-{unique}"
    both = jq_processing("{site: .site}", lambda_processor(keys_function))
    both["Processors"].pop()  # the function already ends each record with a newline
    make_partitioned_stream(
        aws, stream,
        "e=!{partitionKeyFromLambda:equipment}/s=!{partitionKeyFromQuery:site}/!{timestamp:yyyy}/",
        both,
    )  # fmt: skip
    sent = [{"equipment": "p1", "site": "north"}, {"equipment": "p1", "site": "south"}]

    aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": json.dumps(r).encode()} for r in sent]
    )

    s3 = aws("s3")
    year = datetime.now(UTC).strftime("%Y")
    (north,) = wait_for_objects(s3, bucket, prefix=f"e=p1/s=north/{year}/")
    (south,) = wait_for_objects(s3, bucket, prefix=f"e=p1/s=south/{year}/")
    assert json.loads(read_object(s3, bucket, north["Key"])[0]) == sent[0]
    assert json.loads(read_object(s3, bucket, south["Key"])[0]) == sent[1]


def test_each_partition_interval_runs_from_its_own_first_record(aws, unique, firehose):
    # Given a 3 s interval, partition "a" opened 1.5 s before partition "b"
    stream = bucket = f"dpi-{unique}"
    make_k_stream(aws, stream, 3)
    put = aws("firehose").put_record
    put(DeliveryStreamName=stream, Record={"Data": b'{"k":"a"}'})
    time.sleep(1.5)
    put(DeliveryStreamName=stream, Record={"Data": b'{"k":"b"}'})

    # Then "a" is written when its own interval expires, while "b" is still buffered
    s3 = aws("s3")
    wait_for_objects(s3, bucket, prefix="k=a/", timeout=10)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="k=b/").get("KeyCount", 0) == 0
    wait_for_objects(s3, bucket, prefix="k=b/", timeout=10)
    entries = {e["partition"]: e for e in wait_for_deliveries(firehose, stream, count=2)}
    for entry in entries.values():
        waited = datetime.fromisoformat(entry["delivered_at"]) - datetime.fromisoformat(
            entry["first_arrival"]
        )
        assert entry["reason"] == "interval" and waited.total_seconds() >= 3
