"""Faults inside one emulator process: a device that hangs up right after its last PUBACK, a
transform Lambda that raises, times out or answers nonsense, a destination bucket that does not
exist yet, and a certificate revoked while its device publishes. Each test ends with every
acknowledged message in a raw batch, a parsed row or an error output that says why."""

from __future__ import annotations

import base64
import threading
import time

import pytest
from reliability_harness import (
    Publisher,
    assert_every_acknowledged_message_accounted,
    faulty_zip,
    message,
)


def publish(publisher: Publisher, topic: str, count: int) -> list[bytes]:
    for seq in range(count):
        publisher.publish(topic, message(publisher.device.thing_name, seq))
    assert publisher.wait_acked(count), f"{len(publisher.acked)} of {count} acknowledged"
    return list(publisher.acked)


def test_device_hanging_up_right_after_its_last_puback_loses_nothing(pipeline, connect, tmp_path):
    # Given a device publishing 500 messages
    pipeline.create()
    device = pipeline.device(0, tmp_path)
    publisher = connect(device)

    # When it disconnects the moment its last PUBACK arrives
    acknowledged = publish(publisher, pipeline.topic(device), 500)
    publisher.close()

    # Then all 500 are delivered, transformed
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert len(found.parsed) == 500


@pytest.mark.parametrize(
    ("handler", "timeout", "retries", "code", "attempts"),
    [
        # A function error is retried NumberOfRetries times (Firehose developer guide,
        # "data-transformation-failure-handling"), then each record is processing-failed.
        ("faulty.raises", 30, 2, "Lambda.FunctionError", 3),
        ("faulty.sleeps", 1, 1, "Lambda.FunctionError", 2),
        # A response that lacks the batch's record ids is judged once, not re-invoked.
        ("faulty.malformed", 30, 2, "Lambda.MissingRecordId", 1),
    ],
    ids=["raises", "times-out", "malformed-response"],
)
def test_a_failing_transform_sends_records_to_processing_failed_with_the_reason(
    pipeline, connect, tmp_path, handler, timeout, retries, code, attempts
):
    # Given a stream whose Lambda processor fails in one way
    pipeline.create(handler=handler, code=faulty_zip(), function_timeout=timeout, retries=retries)
    device = pipeline.device(0, tmp_path)

    # When a device publishes 20 messages
    acknowledged = publish(connect(device), pipeline.topic(device), 20)

    # Then every record is in the raw bucket and in processing-failed, with the error code, the
    # message, the attempts made and the untouched raw data
    found = pipeline.wait_accounted(len(acknowledged), timeout=40)
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert found.parsed == []
    assert len(found.failed) == 20
    for record in found.failed:
        assert record["errorCode"] == code, record
        assert record["errorMessage"]
        assert record["attemptsMade"] == attempts, record
        assert record["lambdaArn"].endswith(f":function:{pipeline.function}")
    # rawData is the record as the rule sent it, separator included
    assert sorted(base64.b64decode(r["rawData"]) for r in found.failed) == sorted(
        line + b"\n" for line in found.raw
    )


def test_records_wait_for_a_missing_destination_bucket(pipeline, connect, tmp_path, aws):
    # Given a stream whose parsed bucket does not exist yet
    pipeline.create(create_parsed_bucket=False)
    device = pipeline.device(0, tmp_path)

    # When 50 messages are acknowledged and a few buffer intervals pass
    acknowledged = publish(connect(device), pipeline.topic(device), 50)
    time.sleep(3)
    before = pipeline.account()

    # Then the backup reached the raw bucket, nothing was dropped meanwhile, and once the bucket
    # is created every record is delivered to it
    assert len(before.raw) == 50 and before.parsed == [] and before.failed == []
    aws("s3").create_bucket(Bucket=pipeline.parsed_bucket)
    found = pipeline.wait_accounted(len(acknowledged), timeout=45)
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert len(found.parsed) == 50


def test_certificate_revoked_mid_stream(pipeline, connect, tmp_path, aws, emulator):
    # Given a device publishing continuously
    pipeline.create()
    device = pipeline.device(0, tmp_path)
    publisher = connect(device)
    topic = pipeline.topic(device)
    stop = threading.Event()

    def keep_publishing() -> None:
        seq = 0
        while not stop.is_set() and not publisher.disconnected.is_set():
            publisher.publish(topic, message(device.thing_name, seq))
            seq += 1
            time.sleep(0.002)

    worker = threading.Thread(target=keep_publishing)
    worker.start()
    try:
        assert publisher.wait_acked(200)
        # When its certificate is revoked
        aws("iot").update_certificate(certificateId=device.certificate_id, newStatus="REVOKED")
        # Then the connection is dropped ("AWS IoT disconnects all devices that used that
        # certificate", API reference, UpdateCertificate) and a reconnection is refused
        assert publisher.disconnected.wait(15), "the device stayed connected after REVOKED"
    finally:
        stop.set()
        worker.join(10)
    publisher.client.loop_stop()  # no automatic reconnection from here on
    with pytest.raises((ConnectionRefusedError, OSError)):
        connect(device)
    acknowledged = list(publisher.acked)
    # and what was acknowledged before is delivered
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert len(found.parsed) == len(acknowledged) >= 200
