"""Partition buffers survive `kill -9`: the spool's checkpoint moves past a record only once
every piece of it is written, so after a restart the still-buffered partition is delivered and
the partition already written is not written again."""

from __future__ import annotations

import time

from firehose_helpers import ROLE, processing, processor, wait_for_objects
from test_durability import clients, kill, restart, start_child

STREAM = "durable-partitions"


def create(firehose, s3, interval: int) -> None:
    try:
        s3.create_bucket(Bucket=STREAM)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM,
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": f"arn:aws:s3:::{STREAM}",
            "Prefix": "k=!{partitionKeyFromQuery:k}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": processing(
                processor(
                    "MetadataExtraction",
                    MetadataExtractionQuery="{k:.k}",
                    JsonParsingEngine="JQ-1.6",
                )
            ),
        },
    )


def short_interval(firehose, s3) -> None:
    try:
        stream = firehose.describe_delivery_stream(DeliveryStreamName=STREAM)
    except firehose.exceptions.ResourceNotFoundException:
        create(firehose, s3, interval=1)
        return
    description = stream["DeliveryStreamDescription"]
    firehose.update_destination(
        DeliveryStreamName=STREAM,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}},
    )


def test_kill_9_keeps_buffered_partitions_and_does_not_rewrite_delivered_ones(tmp_path):
    # two records fill the 1 MiB size hint exactly: one object (at most the hint) holds both
    head = b'{"k":"big","pad":"'
    big = head + b"x" * (512 * 1024 - len(head) - 2) + b'"}'
    small = b'{"k":"small"}'
    # Given a process where partition "big" was written for its size and "small" is buffered
    first, url = start_child(tmp_path)
    try:
        firehose, s3 = clients(url)
        create(firehose, s3, interval=900)
        records = [{"Data": big}, {"Data": big}, {"Data": small}]
        assert (
            firehose.put_record_batch(DeliveryStreamName=STREAM, Records=records)["FailedPutCount"]
            == 0
        )
        (written,) = wait_for_objects(s3, STREAM, prefix="k=big/")
        assert s3.list_objects_v2(Bucket=STREAM, Prefix="k=small/")["KeyCount"] == 0
        # the checkpoint is committed just after the object is written: a kill between the two
        # would deliver "big" again (at least once, as Firehose); give it that moment
        time.sleep(1.0)
    finally:
        kill(first)

    # When a new process starts on the same data directory
    second, firehose, s3 = restart(tmp_path)
    try:
        short_interval(firehose, s3)
        # Then "small" is delivered and "big" is still the one object written before
        (delivered,) = wait_for_objects(s3, STREAM, prefix="k=small/", timeout=20)
        body = s3.get_object(Bucket=STREAM, Key=delivered["Key"])["Body"].read()
        assert body == small
        big_objects = s3.list_objects_v2(Bucket=STREAM, Prefix="k=big/").get("Contents", [])
        assert [o["Key"] for o in big_objects] == [written["Key"]]
    finally:
        kill(second)
