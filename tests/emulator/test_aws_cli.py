"""The AWS CLI (awscli from PyPI) works unchanged against the one endpoint."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

AWS = str(Path(sys.executable).with_name("aws"))


def cli(emulator, *args: str) -> str:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_DEFAULT_REGION": emulator.region,
        "AWS_ACCESS_KEY_ID": "cli",
        "AWS_SECRET_ACCESS_KEY": "cli",
    }
    done = subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_iot_list_things(emulator, aws, unique):
    aws("iot").create_thing(thingName=f"cli-{unique}")
    things = json.loads(cli(emulator, "iot", "list-things", "--max-results", "250"))["things"]
    assert f"cli-{unique}" in [t["thingName"] for t in things]


def test_firehose_put_record_lands_in_s3_as_gzip_listed_by_s3_ls(emulator, aws, unique):
    # given a bucket and a delivery stream that flushes at once
    bucket, stream = f"cli-bucket-{unique}", f"cli-stream-{unique}"
    aws("s3").create_bucket(Bucket=bucket)
    aws("firehose").create_delivery_stream(
        DeliveryStreamName=stream,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "cli/",
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    )
    # when a record is put with the CLI (v1 sends a blob argument's text as it is)
    record = json.dumps({"Data": '{"n":1}\n'})
    out = json.loads(
        cli(
            emulator, "firehose", "put-record", "--delivery-stream-name", stream, "--record", record
        )
    )
    assert out["RecordId"]
    # then `aws s3 ls` lists a .gz object whose content is the record
    deadline, listing = time.monotonic() + 20, ""
    while ".gz" not in listing and time.monotonic() < deadline:
        time.sleep(0.2)
        listing = cli(emulator, "s3", "ls", f"s3://{bucket}/", "--recursive")
    key = listing.split()[-1]
    assert key.startswith("cli/") and key.endswith(".gz")
    body = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert gzip.decompress(body) == b'{"n":1}\n'
