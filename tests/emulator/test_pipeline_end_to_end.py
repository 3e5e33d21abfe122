"""The whole pipeline on the emulator, checked against AWS's formats rather than against counts.

Deploys the unchanged template.yaml, connects a device created from a CSR with awsiotsdk over
mutual TLS, publishes good and bad telemetry, also puts records with PutRecordBatch, and checks
what lands in both buckets: AWS's object key format, gzip with Content-Encoding, raw lines equal
to what the rule sent, parsed rows equal to the Lambda's output, and the error outputs' fields.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.targets import deployed_with_device
from support.waiting import wait_until

from pipeline import batches, publish, workbook

pytestmark = pytest.mark.timeout(180)

ENV = "e2e"


@pytest.fixture(scope="module")
def deployed(emulator, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("secrets")
    with deployed_with_device(emulator, "e2e-pipeline", ENV, secrets) as deployment:
        yield deployment


def test_messages_published_over_mqtt_land_in_aws_formats(deployed):
    target, out, credentials = deployed
    s3 = target.client("s3")
    topic_root, stream = out["TopicName"], out["DeliveryStreamName"]
    good = [
        {"device_id": "pump-01", "timestamp": 1_795_000_000_000 + i, "sequence": i, "run_id": "e2e"}
        for i in range(20)
    ]
    # given a device on the policy's client id, publishing 20 good messages, one JSON message
    # whose own `topic` replaces the rule's (the Lambda fails it) and one that is not JSON (the
    # first rule's SQL cannot evaluate it; the second rule forwards it base64-encoded). Every
    # JSON object carries `run_id`, as the workbook's do.
    device = publish.Device.for_target(target, credentials, client_id=out["ThingName"])
    device.connect()
    for message in good:
        device.publish(f"{topic_root}/pump-01", json.dumps(message).encode())
    device.publish(f"{topic_root}/pump-01", b'{"topic": 7, "t": -1, "run_id": "e2e"}')
    device.publish(f"{topic_root}/pump-01", b"not json at all")
    device.disconnect()
    # and two records put straight into the stream with PutRecordBatch
    direct = [
        {"topic": f"{topic_root}/direct", "sequence": 100},
        {"topic": f"{topic_root}/direct", "sequence": 101},
    ]
    target.client("firehose").put_record_batch(
        DeliveryStreamName=stream,
        Records=[{"Data": json.dumps(r).encode() + b"\n"} for r in direct],
    )

    # when Firehose has flushed: 24 raw records, 22 parsed rows + 2 processing-failed
    def raw_lines():
        return workbook.count_raw_lines(target, out, ENV)

    assert wait_until(
        lambda: raw_lines() == 24 and workbook.count_parsed_rows(target, out, ENV) == 24,
        timeout=60,
        interval=0.3,
    )
    found = workbook.collect(target, out, ENV)

    # then every object key has AWS's shape: raw batches gzip under the default time path,
    # parsed objects Parquet under the equipment and day partitions
    suffix = rf"{stream}-1-\d{{4}}(-\d{{2}}){{5}}-[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}"
    raw_key = re.compile(rf"^{ENV}/data/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/{suffix}\.gz$")
    parsed_key = re.compile(
        rf"^{ENV}/data/equipment_id=(pump-01|direct)/dt=\d{{4}}-\d{{2}}-\d{{2}}/{suffix}\.parquet$"
    )
    for obj in found.raw:
        assert raw_key.match(obj.key), obj.key
        assert s3.head_object(Bucket=obj.bucket, Key=obj.key)["ContentEncoding"] == "gzip"
    for obj in found.parsed:
        assert parsed_key.match(obj.key), obj.key
    # and the raw lines are exactly what the rule sent: `topic` first, then the payload's fields
    raw = [
        line.value
        for obj in found.raw
        for line in batches.iter_batch_records(
            s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read()
        )
    ]
    not_json = {
        "topic": f"{topic_root}/pump-01",
        "payload_base64": base64.b64encode(b"not json at all").decode(),
    }
    sent = (
        [{"topic": f"{topic_root}/pump-01", **m} for m in good]
        + [{"topic": 7, "t": -1, "run_id": "e2e"}, not_json]
        + direct
    )
    assert sorted(map(json.dumps, raw)) == sorted(map(json.dumps, sent))
    # and the parsed rows are the Lambda's flat output for every good record, in the Glue
    # table's columns, in the partition of their equipment
    rows = [
        {**row, "key": obj.key}
        for obj in found.parsed
        for row in pq.read_table(
            pa.BufferReader(s3.get_object(Bucket=obj.bucket, Key=obj.key)["Body"].read())
        ).to_pylist()
    ]
    assert sorted(r["sequence"] for r in rows) == list(range(20)) + [100, 101]
    assert all(f"equipment_id={r['topic_2']}/" in r["key"] for r in rows)
    assert all(isinstance(r["arrival_time"], datetime) for r in rows)
    # and the records the Lambda failed are under the error prefix with Firehose's fields
    failed_records = found.failed_records
    assert sorted(json.dumps(json.loads(f.raw_data)) for f in failed_records) == sorted(
        json.dumps(r) for r in ({"topic": 7, "t": -1, "run_id": "e2e"}, not_json)
    )
    for failed in failed_records:
        assert (
            failed.error_code
            and failed.attempts_made >= 1
            and failed.lambda_arn.endswith(out["FunctionName"])
        )
    assert set(failed_records[0].document) >= {
        "attemptsMade",
        "arrivalTimestamp",
        "errorCode",
        "errorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "lambdaArn",
    }
    # and nothing went to the rules' errorAction: a SQL evaluation failure is not an action
    # failure ("rule-error-handling"), and no action failed
    assert workbook.count_rule_errors(target, out) == 0
