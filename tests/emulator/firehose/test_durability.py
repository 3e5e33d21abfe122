"""Records acknowledged by PutRecordBatch survive `kill -9` of the emulator while buffered, and
are delivered after a restart on the same data directory. Whether moto's state (stream, bucket)
survives the restart depends on the emulator's persistence, so after the restart the test
creates them if they are missing and lowers the buffering interval either way."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from firehose_helpers import ROLE, wait_for_objects
from iam_roles import ensure_firehose_role

CHILD = Path(__file__).with_name("firehose_child.py")
ROOT = Path(__file__).resolve().parents[3]


def restart(data_dir: Path) -> tuple[subprocess.Popen, Any, Any]:
    """A new process on `data_dir`, and Firehose and S3 clients bound to it."""
    child, url = start_child(data_dir)
    return (child, *clients(url))


def kill(child: subprocess.Popen) -> None:
    """SIGKILL: the process gets no chance to flush or to write anything more."""
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)


def start_child(data_dir: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
        text=True,
    )
    url = child.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        child.kill()
        pytest.fail(f"child emulator did not start: {url!r}")
    return child, url


def clients(url: str):
    def client(service):
        return boto3.client(service, endpoint_url=url, region_name="us-east-1")

    return client("firehose"), client("s3")


def create(firehose, s3, interval: int) -> None:
    try:
        s3.create_bucket(Bucket="durable")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass  # the bucket survived the restart, the stream did not
    iam = boto3.client("iam", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1")
    ensure_firehose_role(iam, ROLE.rsplit("/", 1)[-1])
    firehose.create_delivery_stream(
        DeliveryStreamName="durable",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::durable",
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": interval},
            "CompressionFormat": "GZIP",
        },
    )


def recreate_with_short_interval(firehose, s3) -> None:
    try:
        description = firehose.describe_delivery_stream(DeliveryStreamName="durable")
    except firehose.exceptions.ResourceNotFoundException:
        # The control plane did not come back with the process: create the stream again,
        # already with the short interval (its spooled records are delivered once it exists).
        create(firehose, s3, interval=1)
        return
    stream = description["DeliveryStreamDescription"]
    firehose.update_destination(
        DeliveryStreamName="durable",
        CurrentDeliveryStreamVersionId=stream["VersionId"],
        DestinationId=stream["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={"BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 1}},
    )


def test_kill_9_while_buffered_loses_nothing(tmp_path):
    # Given an emulator process whose stream buffers for 900 s
    first, url = start_child(tmp_path)
    try:
        firehose, s3 = clients(url)
        create(firehose, s3, interval=900)
        sent = [b"%04d\n" % i for i in range(1200)]
        # When 1,200 records are acknowledged in batches of 500 and the process is killed
        for start in range(0, len(sent), 500):
            answer = firehose.put_record_batch(
                DeliveryStreamName="durable",
                Records=[{"Data": d} for d in sent[start : start + 500]],
            )
            assert answer["FailedPutCount"] == 0
        assert s3.list_objects_v2(Bucket="durable")["KeyCount"] == 0  # still buffered
    finally:
        kill(first)

    # Then a new process on the same data directory delivers every record once the stream
    # and bucket exist again
    second, firehose, s3 = restart(tmp_path)
    try:
        recreate_with_short_interval(firehose, s3)
        objects = wait_for_objects(s3, "durable", timeout=20)
        delivered = b"".join(
            gzip.decompress(s3.get_object(Bucket="durable", Key=o["Key"])["Body"].read())
            for o in objects
        )
        assert delivered == b"".join(sent)
    finally:
        kill(second)
