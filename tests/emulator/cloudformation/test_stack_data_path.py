"""The stack deployed by CloudFormation is the one the data path runs: records put into the
stack's delivery stream go through the stack's Lambda processor into the stack's buckets."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq


def test_records_flow_through_the_deployed_stack(aws, packaged_body):
    # Given the project's stack deployed with a 1-second buffer
    from pipeline.stack import deploy_stack

    suffix = uuid.uuid4().hex[:6]
    outputs = deploy_stack(
        aws("cloudformation"),
        f"datapath-{suffix}",
        packaged_body,
        {"Environment": f"p{suffix}", "BufferIntervalSeconds": 1},
        delay=1,
    )
    record = {"topic": "iot-test-topic/d1", "device_id": "d1", "temperature_c": 21.5,
              "timestamp": 1795000000000}  # fmt: skip
    # When a record is put into the stack's delivery stream
    aws("firehose").put_record(
        DeliveryStreamName=outputs["DeliveryStreamName"],
        Record={"Data": json.dumps(record).encode() + b"\n"},
    )
    s3 = aws("s3")
    deadline = time.monotonic() + 30
    parsed = raw = []
    while time.monotonic() < deadline and not (parsed and raw):
        parsed = s3.list_objects_v2(Bucket=outputs["ParsedBucketName"]).get("Contents", [])
        raw = s3.list_objects_v2(Bucket=outputs["RawBucketName"]).get("Contents", [])
        time.sleep(0.25)
    # Then the transformed record lands in the parsed bucket as Parquet, partitioned by the
    # equipment the stack's Lambda processor returned and the day, and the raw one in the raw
    # bucket, under the template's prefixes
    assert parsed and raw, "nothing was delivered within 30 s"
    assert parsed[0]["Key"].startswith(f"p{suffix}/data/equipment_id=d1/dt=")
    assert parsed[0]["Key"].endswith(".parquet")
    body = s3.get_object(Bucket=outputs["ParsedBucketName"], Key=parsed[0]["Key"])["Body"].read()
    (transformed,) = pq.read_table(pa.BufferReader(body)).to_pylist()
    assert transformed["temperature_c"] == 21.5 and transformed["topic_2"] == "d1"
    assert transformed["device_time"] == datetime(2026, 11, 18, 11, 6, 40)  # the device clock
    raw_body = gzip.decompress(
        s3.get_object(Bucket=outputs["RawBucketName"], Key=raw[0]["Key"])["Body"].read()
    )
    assert json.loads(raw_body.splitlines()[0]) == record
