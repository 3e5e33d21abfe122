"""The IAM switch: enforced by default; `--no-iam` or IOT_EMULATOR_IAM=off turn it off, and
start-up says which mode is on. Each case runs `python -m emulator` as its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from queue import Empty, Queue

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[3]


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    child = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--ephemeral", "--port", "0", "--mqtt-port", "0",
         *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment, cwd=ROOT, text=True,
    )  # fmt: skip
    # A thread reads the output, so a line that never comes (no IAM line) cannot block the test.
    queue: Queue[str] = Queue()
    threading.Thread(target=lambda: [queue.put(x) for x in child.stdout], daemon=True).start()
    lines: dict[str, str] = {}
    while "IAM" not in lines:
        try:
            line = queue.get(timeout=5 if "Data dir" in lines else 60)
        except Empty:
            break
        key, _, value = line.partition(":")
        lines[key.strip()] = value.strip()
    if "IAM" not in lines:
        child.kill()
        pytest.fail(f"the emulator printed no IAM line: {lines}")
    return child, lines


def stop(child: subprocess.Popen) -> None:
    child.terminate()
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()


def endpoint(lines: dict[str, str]) -> str:
    return lines["AWS endpoint"].split()[0]


def info(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_emulator/info", timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(
    ("variable", "mode"), [("", "enforced"), ("off", "off")], ids=["default", "variable-off"]
)
def test_default_is_enforced_and_the_environment_variable_turns_it_off(variable, mode):
    child, lines = start(env={"IOT_EMULATOR_IAM": variable})
    try:
        assert lines["IAM"].startswith(mode)
        assert info(endpoint(lines))["iam"] == mode
    finally:
        stop(child)


def test_no_iam_flag_turns_it_off_and_any_role_delivers():
    # Given an emulator started with --no-iam
    child, lines = start("--no-iam")
    try:
        url = endpoint(lines)
        assert lines["IAM"].startswith("off")

        # When a stream names a role that does not exist
        def client(service: str):
            return boto3.client(service, endpoint_url=url, region_name="us-east-1")

        client("s3").create_bucket(Bucket="noiam")
        client("firehose").create_delivery_stream(
            DeliveryStreamName="noiam",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/does-not-exist",
                "BucketARN": "arn:aws:s3:::noiam",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            },
        )
        client("firehose").put_record(DeliveryStreamName="noiam", Record={"Data": b"x\n"})

        # Then the record is delivered all the same
        deadline = time.monotonic() + 20
        count = 0
        while count == 0 and time.monotonic() < deadline:
            count = client("s3").list_objects_v2(Bucket="noiam").get("KeyCount", 0)
            time.sleep(0.1)
        assert count == 1
    finally:
        stop(child)
