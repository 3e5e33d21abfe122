"""A Lambda transformation processor on a real delivery stream: transformed records reach the
destination, untransformed ones the backup, and ProcessingFailed / failing invocations reach
the processing-failed error output as JSON lines with AWS's fields."""

from __future__ import annotations

import json
import re

import pytest
from firehose_helpers import (
    KEY_SUFFIX,
    ROLE,
    TIME_PATH,
    deploy_functions,
    lambda_processing,
    make_stream,
    read_object,
    wait_for_objects,
)
from support.firehose_lambdas import SOURCE


@pytest.fixture(scope="module")
def transform_function(aws):
    """Real functions in the emulator's Lambda runtime: a transform and a broken one."""
    handlers = ("transform", "broken")
    return deploy_functions(aws, "firehose-transform", "processors", SOURCE, handlers)


def test_transformed_records_and_processing_failed_output(aws, unique, transform_function):
    # Given a GZIP stream whose Lambda uppercases, drops "drop…" and fails "bad…" records,
    # with the source records backed up
    stream, bucket, raw = f"tf-{unique}", f"tf-{unique}", f"tf-raw-{unique}"
    aws("s3").create_bucket(Bucket=raw)
    make_stream(
        aws, stream, bucket,
        Prefix="parsed/",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
        CompressionFormat="GZIP",
        ProcessingConfiguration=lambda_processing(transform_function["transform"]),
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{raw}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )  # fmt: skip
    sent = [b"one\n", b"drop me\n", b"bad record\n", b"two\n"]

    # When the records are put
    aws("firehose").put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in sent])

    # Then the destination holds the transformed Ok records, in order
    s3 = aws("s3")
    objects = wait_for_objects(s3, bucket, count=2, prefix="parsed/")
    (parsed,) = [o for o in objects if not o["Key"].startswith("parsed/processing-failed/")]
    suffix = KEY_SUFFIX.format(stream=stream, version=1)
    assert re.fullmatch("parsed/" + TIME_PATH + suffix + r"\.gz", parsed["Key"])
    assert read_object(s3, bucket, parsed["Key"])[0] == b"ONE\nTWO\n"
    # and the failed record is one JSON line under <Prefix>processing-failed/<time path>
    (failed,) = wait_for_objects(s3, bucket, prefix="parsed/processing-failed/")
    assert re.fullmatch("parsed/processing-failed/" + TIME_PATH + suffix + r"\.gz", failed["Key"])
    (line,) = read_object(s3, bucket, failed["Key"])[0].splitlines()
    error = json.loads(line)
    assert list(error) == [
        "attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
        "attemptEndingTimestamp", "rawData", "lambdaArn",
    ]  # fmt: skip
    assert error["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert error["rawData"] == "YmFkIHJlY29yZAo="  # base64 of b"bad record\n"
    assert error["lambdaArn"] == transform_function["transform"]
    assert error["attemptEndingTimestamp"] >= error["arrivalTimestamp"]
    # and the backup holds every source record, untransformed
    (backup,) = wait_for_objects(s3, raw)
    assert read_object(s3, raw, backup["Key"])[0] == b"".join(sent)


def test_failing_function_sends_the_batch_to_error_output(aws, unique, transform_function):
    # Given a stream whose function always raises, one retry, and an ErrorOutputPrefix
    stream, bucket = f"tfe-{unique}", f"tfe-{unique}"
    make_stream(
        aws, stream, bucket,
        Prefix="ok/!{timestamp:yyyy}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/!{timestamp:yyyy}/",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
        ProcessingConfiguration=lambda_processing(transform_function["broken"], retries=1),
    )  # fmt: skip

    # When two records are put
    aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": b"a"}, {"Data": b"b"}]
    )

    # Then both are processing-failed with Lambda.FunctionError after 2 attempts; nothing else
    s3 = aws("s3")
    (obj,) = wait_for_objects(s3, bucket, prefix="errors/processing-failed/")
    lines = [json.loads(x) for x in read_object(s3, bucket, obj["Key"])[0].splitlines()]
    assert [x["rawData"] for x in lines] == ["YQ==", "Yg=="]
    assert {(x["errorCode"], x["attemptsMade"]) for x in lines} == {("Lambda.FunctionError", 2)}
    assert lines[0]["errorMessage"] == (
        "The Lambda function was successfully invoked but it returned an error result."
    )
    assert s3.list_objects_v2(Bucket=bucket, Prefix="ok/").get("KeyCount", 0) == 0
