"""The emulator's own views (`/_emulator/info`, `/_emulator/health`) answer only once every
component has started: whoever waits for them (process.ensure_running, notebooks) gets a whole
emulator, e.g. its MQTT port rather than None."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from emulator import process
from emulator.process import free_port

CHILD = Path(__file__).resolve().parents[1] / "support" / "slow_start_child.py"
ROOT = Path(__file__).resolve().parents[2]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def starting():
    """A child emulator whose API server is up while a component is still starting: (the
    process, its endpoint); writing a line to its stdin lets the component finish."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        endpoint = child.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:"), endpoint
        yield child, endpoint
    finally:
        child.kill()
        child.wait(timeout=30)


def let_it_start(child: subprocess.Popen) -> None:
    child.stdin.write("go\n")
    child.stdin.flush()


def test_info_and_health_answer_503_until_every_component_has_started(starting):
    # Given an emulator whose API server is up while a component is still starting
    child, endpoint = starting
    # Then its views say it is not ready yet, and no emulator is found there
    assert status_of(f"{endpoint}/_emulator/info") == 503
    assert status_of(f"{endpoint}/_emulator/health") == 503
    assert process.fetch_info(endpoint) is None
    # When the component has started
    let_it_start(child)
    deadline = time.monotonic() + 30
    while (info := process.fetch_info(endpoint)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Then it answers, as itself
    assert info is not None and info.pid == child.pid
    assert status_of(f"{endpoint}/_emulator/health") == 200


def test_ensure_running_waits_for_an_emulator_that_is_still_starting_on_its_port(starting):
    # Given an emulator still starting on the port a notebook is told to use
    child, endpoint = starting
    found = []
    waiting = threading.Thread(
        target=lambda: found.append(
            process.ensure_running(port=urlsplit(endpoint).port, mqtt_port=free_port())
        )
    )
    # When ensure_running is called meanwhile
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive() and not found  # (not refused as a port taken by something else)
    let_it_start(child)
    waiting.join(30)
    # Then it returns that emulator once started, rather than refusing the port or starting one
    assert [info.pid for info in found] == [child.pid]
