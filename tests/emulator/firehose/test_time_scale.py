"""The emulator-only clock control: `--time-scale N` / IOT_EMULATOR_TIME_SCALE divide every
Firehose buffer interval by N, so a stream keeping AWS-valid hints flushes in seconds, and
start-up says so."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from firehose_helpers import make_stream, wait_for_objects

from emulator.__main__ import main

ROOT = Path(__file__).resolve().parents[3]


def test_a_sixty_second_interval_flushes_in_about_a_second(aws, unique, firehose, monkeypatch):
    # Given a stream with AWS's usual 60 s interval on an emulator running 60x faster
    monkeypatch.setattr(firehose, "time_scale", 60.0)
    stream = f"ts-{unique}"
    make_stream(aws, stream, stream, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 60})

    # When one record is put
    started = time.monotonic()
    aws("firehose").put_record(DeliveryStreamName=stream, Record={"Data": b"x\n"})

    # Then it is delivered after about a second, not a minute, and the stream keeps its hints
    wait_for_objects(aws("s3"), stream, timeout=10)
    assert 0.8 <= time.monotonic() - started < 10
    description = aws("firehose").describe_delivery_stream(DeliveryStreamName=stream)
    (destination,) = description["DeliveryStreamDescription"]["Destinations"]
    assert destination["ExtendedS3DestinationDescription"]["BufferingHints"] == {
        "SizeInMBs": 5,
        "IntervalInSeconds": 60,
    }


def test_start_up_shows_the_time_scale():
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("IOT_EMULATOR_TIME_SCALE", None)
    child = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--ephemeral", "--port", "0", "--mqtt-port", "0",
         "--time-scale", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=environment, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        lines = []
        for line in child.stdout:
            lines.append(line)
            if line.startswith("IAM:"):  # the time scale is the next line
                lines.append(child.stdout.readline())
                break
    finally:
        child.terminate()
        child.wait(timeout=20)
    assert any(line.startswith("Time scale:    20x") for line in lines), lines


def test_a_time_scale_below_one_is_refused(capsys, monkeypatch):
    monkeypatch.delenv("IOT_EMULATOR_TIME_SCALE", raising=False)
    assert main(["--ephemeral", "--port", "0", "--mqtt-port", "0", "--time-scale", "0.5"]) == 2
    assert "give a number >= 1" in capsys.readouterr().err
    monkeypatch.delenv("IOT_EMULATOR_TIME_SCALE", raising=False)
