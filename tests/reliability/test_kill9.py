"""kill -9 of the emulator process while Firehose holds acknowledged records in its buffers, then
a restart on the same --data-dir: every acknowledged message is delivered, once.

The emulator runs as `python -m emulator` (what `make run` starts); the pipeline's resources are
created with boto3 before the kill and must still exist after the restart (moto's state is
saved under the data dir)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import boto3
import pytest
from reliability_harness import (
    Pipeline,
    Publisher,
    assert_every_acknowledged_message_accounted,
    message,
)

from emulator import process

MESSAGES = 300


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def start(data_dir: Path, log: Path) -> process.EmulatorInfo:
    """A new emulator process on `data_dir`, on ports it chooses itself (free at that moment)."""
    return process.ensure_running(port=0, mqtt_port=0, data_dir=data_dir, timeout=60, log_path=log)


def kill_9(info: process.EmulatorInfo) -> None:
    """SIGKILL the emulator, then its Lambda workers it can no longer stop itself."""
    orphans = children_of(info.pid)
    os.kill(info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process.fetch_info(info.endpoint_url, timeout=0.2) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in orphans:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def emulator_process(tmp_path):
    data_dir = tmp_path / "data"
    running: list[process.EmulatorInfo] = []

    def launch() -> process.EmulatorInfo:
        info = start(data_dir, tmp_path / "emulator.log")
        running.append(info)
        return info

    yield launch
    for info in running:
        answering = process.fetch_info(info.endpoint_url, timeout=0.2)
        if answering is not None and answering.pid == info.pid:
            kill_9(info)


def clients(info: process.EmulatorInfo):
    def client(service: str):
        return boto3.client(service, endpoint_url=info.endpoint_url, region_name=info.region)

    return client


def test_kill_9_with_records_buffered_then_restart_delivers_everything(
    emulator_process, tmp_path, unique
):
    # Given an emulator process and a pipeline whose Firehose buffers for 900 s
    first = emulator_process()
    pipeline = Pipeline(clients(first), unique).create(buffer_interval=900)
    device = pipeline.device(0, tmp_path)
    publisher = Publisher(device, first.root_ca_path, "localhost", first.mqtt_port)
    for seq in range(MESSAGES):
        publisher.publish(pipeline.topic(device), message(device.thing_name, seq))
    assert publisher.wait_acked(MESSAGES)
    acknowledged = list(publisher.acked)
    publisher.client.loop_stop()
    assert pipeline.account().raw == []  # still buffered

    # When the process is killed with SIGKILL and started again on the same data dir
    kill_9(first)
    second = emulator_process()
    assert second.pid != first.pid
    pipeline.client = clients(second)
    firehose = pipeline.client("firehose")
    stream = firehose.describe_delivery_stream(DeliveryStreamName=pipeline.stream)
    description = stream["DeliveryStreamDescription"]
    # (a shorter interval, so that the test does not wait 900 s)
    firehose.update_destination(
        DeliveryStreamName=pipeline.stream,
        CurrentDeliveryStreamVersionId=description["VersionId"],
        DestinationId=description["Destinations"][0]["DestinationId"],
        ExtendedS3DestinationUpdate={
            "BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1},
            "S3BackupUpdate": {"BufferingHints": {"IntervalInSeconds": 1, "SizeInMBs": 1}},
        },
    )

    # Then every acknowledged message reaches the raw bucket and, transformed, the parsed one
    found = pipeline.wait_accounted(len(acknowledged), timeout=60)
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert len(found.parsed) == MESSAGES
