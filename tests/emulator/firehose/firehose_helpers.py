"""Small helpers shared by the Firehose tests: create a bucket and a delivery stream, wait for
objects."""

from __future__ import annotations

import gzip
import time
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/firehose-delivery"
# <prefix><stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid><ext>  (guide: "s3-object-name")
KEY_SUFFIX = r"{stream}-{version}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-[0-9a-f-]{{36}}"
TIME_PATH = r"\d{4}/\d{2}/\d{2}/\d{2}/"


def make_stream(aws, name: str, bucket: str, **destination: Any) -> None:
    aws("s3").create_bucket(Bucket=bucket)
    config = {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", **destination}
    aws("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=config,
    )


def wait_for_objects(s3, bucket: str, count: int = 1, prefix: str = "", timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    contents: list[dict] = []
    while time.monotonic() < deadline:
        contents = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        if len(contents) >= count:
            return sorted(contents, key=lambda o: o["Key"])
        time.sleep(0.1)
    raise AssertionError(f"expected {count} objects in s3://{bucket}/{prefix}, found {contents}")


def read_object(s3, bucket: str, key: str) -> tuple[bytes, dict]:
    response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"].read()
    if response.get("ContentEncoding") == "gzip":
        body = gzip.decompress(body)
    return body, response


def wait_for_deliveries(firehose, stream: str, count: int = 1, timeout: float = 10.0) -> list:
    """The delivery log entries of `stream`; an entry is added just after its object is written,
    so a test that saw the object waits a moment for the entry."""
    deadline = time.monotonic() + timeout
    while len(firehose.deliveries(stream)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return firehose.deliveries(stream)
