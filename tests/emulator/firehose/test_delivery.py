"""Delivery to S3 through boto3: buffering by size and by interval, GZIP objects named as
Firehose names them, the S3 backup of source records, and the delivery log."""

from __future__ import annotations

import gzip
import json
import re
import time
import urllib.request

from firehose_helpers import (
    IMMEDIATE,
    KEY_SUFFIX,
    ROLE,
    TIME_PATH,
    create_stream,
    error_log,
    error_log_events,
    make_stream,
    read_object,
    wait_for_deliveries,
    wait_for_objects,
)


def test_gzip_objects_have_aws_names_and_hold_the_records(aws, unique, firehose):
    # Given a GZIP stream with a 1 s interval
    stream, bucket = f"gz-{unique}", f"gz-{unique}"
    make_stream(
        aws, stream, bucket,
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
        CompressionFormat="GZIP",
    )  # fmt: skip
    records = [f'{{"n": {i}}}\n'.encode() for i in range(20)]

    # When a batch is put
    answer = aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": d} for d in records]
    )

    # Then every record has an id, and one gzip object holds them concatenated, in order
    assert answer["FailedPutCount"] == 0
    assert answer["Encrypted"] is False
    assert len({r["RecordId"] for r in answer["RequestResponses"]}) == 20
    s3 = aws("s3")
    (obj,) = wait_for_objects(s3, bucket)
    assert re.fullmatch(
        TIME_PATH + KEY_SUFFIX.format(stream=stream, version=1) + r"\.gz", obj["Key"]
    )
    body, response = read_object(s3, bucket, obj["Key"])
    assert response["ContentEncoding"] == "gzip"
    assert body == b"".join(records)
    (entry,) = wait_for_deliveries(firehose, stream)
    assert entry["reason"] == "interval" and entry["records"] == 20 and entry["key"] == obj["Key"]


def test_size_hint_flushes_before_the_interval(aws, unique, firehose):
    # Given a stream with a 1 MiB size hint and a long interval
    stream, bucket = f"size-{unique}", f"size-{unique}"
    make_stream(aws, stream, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    chunk = b"x" * 100_000

    # When 1.2 MB arrive in 12 records
    client = aws("firehose")
    for _ in range(12):
        client.put_record(DeliveryStreamName=stream, Record={"Data": chunk})

    # Then one object of at most 1 MiB is written at once, flushed for size; the rest waits
    (obj,) = wait_for_objects(aws("s3"), bucket)
    assert obj["Size"] == 10 * len(chunk)
    assert not obj["Key"].endswith(".gz")
    time.sleep(0.5)
    assert len(aws("s3").list_objects_v2(Bucket=bucket)["Contents"]) == 1
    (entry,) = wait_for_deliveries(firehose, stream)
    assert entry["reason"] == "size" and entry["records"] == 10


def test_custom_prefix_with_timestamp_expression(aws, unique):
    # Given a prefix with timestamp and random-string expressions
    stream, bucket = f"pfx-{unique}", f"pfx-{unique}"
    make_stream(
        aws, stream, bucket,
        Prefix="data/year=!{timestamp:yyyy}/r=!{firehose:random-string}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        BufferingHints=IMMEDIATE,
    )  # fmt: skip

    # When one record is put
    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": b"hello"})

    # Then the key is the evaluated prefix (no default time path added) and AWS's suffix
    (obj,) = wait_for_objects(aws("s3"), bucket)
    year = time.gmtime().tm_year
    suffix = KEY_SUFFIX.format(stream=stream, version=1)
    assert re.fullmatch(rf"data/year={year}/r=[0-9a-f-]{{11}}/{suffix}", obj["Key"]), obj["Key"]


def test_backup_bucket_receives_the_source_records(aws, unique, firehose):
    # Given a stream with S3 backup enabled into its own bucket, prefix and compression
    stream, bucket, backup = f"bk-{unique}", f"bk-{unique}", f"bk-raw-{unique}"
    aws("s3").create_bucket(Bucket=backup)
    make_stream(
        aws, stream, bucket,
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{backup}",
            "Prefix": "raw/",
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )  # fmt: skip

    # When records are put
    data = [b"a\n", b"b\n", b"c\n"]
    aws("firehose").put_record_batch(DeliveryStreamName=stream, Records=[{"Data": d} for d in data])

    # Then both the destination and the backup hold them; the backup under its own prefix, gzip
    s3 = aws("s3")
    (dest,) = wait_for_objects(s3, bucket)
    (raw,) = wait_for_objects(s3, backup)
    assert read_object(s3, bucket, dest["Key"])[0] == b"a\nb\nc\n"
    assert re.fullmatch(
        r"raw/" + TIME_PATH + KEY_SUFFIX.format(stream=stream, version=1) + r"\.gz", raw["Key"]
    )
    assert (
        gzip.decompress(s3.get_object(Bucket=backup, Key=raw["Key"])["Body"].read()) == b"a\nb\nc\n"
    )
    kinds = sorted(e["kind"] for e in wait_for_deliveries(firehose, stream, 2))
    assert kinds == ["backup", "destination"]


def test_missing_bucket_is_retried_until_it_exists(aws, unique, firehose):
    # Given a stream whose bucket does not exist yet
    stream, bucket = f"nb-{unique}", f"nb-{unique}"
    create_stream(aws, stream, bucket, BufferingHints=IMMEDIATE)

    # When a record is put, delivery fails with S3.NoSuchBucket and is kept
    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": b"kept"})
    deadline = time.monotonic() + 10
    while not firehose.errors(stream) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert firehose.errors(stream)[0]["errorCode"] == "S3.NoSuchBucket"

    # Then once the bucket is created the record is delivered
    aws("s3").create_bucket(Bucket=bucket)
    (obj,) = wait_for_objects(aws("s3"), bucket, timeout=20)
    assert read_object(aws("s3"), bucket, obj["Key"])[0] == b"kept"


def test_deliveries_route_lists_objects(aws, unique, emulator, firehose):
    # Given a stream that delivered one object
    stream, bucket = f"rt-{unique}", f"rt-{unique}"
    make_stream(aws, stream, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": b"r"})
    (obj,) = wait_for_objects(aws("s3"), bucket)
    wait_for_deliveries(firehose, stream)

    # When the emulator's route is read
    url = f"{emulator.endpoint_url}/_emulator/firehose/deliveries?stream={stream}"
    with urllib.request.urlopen(url) as response:
        entries = json.loads(response.read())

    # Then it names the object, its size and why it was flushed
    assert entries[0]["key"] == obj["Key"] and entries[0]["bucket"] == bucket
    assert entries[0]["records"] == 1 and entries[0]["bytes"] == 1
    assert entries[0]["reason"] in ("interval", "size")


def test_update_destination_takes_effect_with_the_next_version(aws, unique):
    # Given a stream delivering under "v1/"
    stream, bucket = f"upd-{unique}", f"upd-{unique}"
    make_stream(
        aws, stream, bucket, Prefix="v1/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}
    )
    client = aws("firehose")
    description = client.describe_delivery_stream(DeliveryStreamName=stream)
    version = description["DeliveryStreamDescription"]["VersionId"]
    destination_id = description["DeliveryStreamDescription"]["Destinations"][0]["DestinationId"]

    # When the destination's prefix is updated and a record is put
    client.update_destination(
        DeliveryStreamName=stream,
        CurrentDeliveryStreamVersionId=version,
        DestinationId=destination_id,
        ExtendedS3DestinationUpdate={"Prefix": "v2/"},
    )
    client.put_record(DeliveryStreamName=stream, Record={"Data": b"after update"})

    # Then the object is under the new prefix and named with stream version 2
    (obj,) = wait_for_objects(aws("s3"), bucket)
    assert re.fullmatch("v2/" + TIME_PATH + KEY_SUFFIX.format(stream=stream, version=2), obj["Key"])


def test_delivery_errors_go_to_the_cloudwatch_logging_destination(aws, unique, firehose):
    # Given a stream with CloudWatch error logging and no bucket
    stream, bucket = f"cw-{unique}", f"cw-{unique}"
    logs = aws("logs")
    group, logging = error_log(logs, stream)
    create_stream(aws, stream, bucket, BufferingHints=IMMEDIATE, CloudWatchLoggingOptions=logging)

    # When a record cannot be delivered
    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": b"x"})
    events = error_log_events(logs, group)

    # Then the error is logged with Firehose's error code and the stream's ARN
    message = json.loads(events[0]["message"])
    assert message["errorCode"] == "S3.NoSuchBucket"
    assert message["deliveryStreamARN"].endswith(f":deliverystream/{stream}")
    assert message["destination"] == f"arn:aws:s3:::{bucket}"


def test_deleting_a_stream_deletes_its_buffered_data(aws, unique, firehose):
    # Given a stream holding a buffered record (900 s interval)
    stream, bucket = f"del-{unique}", f"del-{unique}"
    make_stream(aws, stream, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    client = aws("firehose")
    client.put_record(DeliveryStreamName=stream, Record={"Data": b"old\n"})

    # When it is deleted ("deletes a Firehose stream and its data") and created again
    client.delete_delivery_stream(DeliveryStreamName=stream)
    create_stream(aws, stream, bucket, BufferingHints=IMMEDIATE)
    client.put_record(DeliveryStreamName=stream, Record={"Data": b"new\n"})

    # Then only the new stream's record is delivered
    (obj,) = wait_for_objects(aws("s3"), bucket)
    assert read_object(aws("s3"), bucket, obj["Key"])[0] == b"new\n"


def test_updated_buffering_hints_apply_to_buffered_records(aws, unique):
    # Given a record buffered under a 900 s interval
    stream, bucket = f"hint-{unique}", f"hint-{unique}"
    make_stream(aws, stream, bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900})
    client = aws("firehose")
    client.put_record(DeliveryStreamName=stream, Record={"Data": b"waiting"})
    description = client.describe_delivery_stream(DeliveryStreamName=stream)
    destination_id = description["DeliveryStreamDescription"]["Destinations"][0]["DestinationId"]

    # When the interval is lowered to 0
    client.update_destination(
        DeliveryStreamName=stream,
        CurrentDeliveryStreamVersionId=description["DeliveryStreamDescription"]["VersionId"],
        DestinationId=destination_id,
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}},
    )

    # Then the record is delivered at once, in an object named with version 2
    (obj,) = wait_for_objects(aws("s3"), bucket, timeout=5)
    assert f"{stream}-2-" in obj["Key"]
