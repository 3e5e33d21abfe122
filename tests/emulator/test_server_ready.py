"""The emulator's own views (`/_emulator/info`, `/_emulator/health`) answer only once every
component has started: whoever waits for them (process.ensure_running, notebooks) gets a whole
emulator, e.g. its MQTT port rather than None."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from emulator import process

CHILD = Path(__file__).resolve().parents[1] / "support" / "slow_start_child.py"
ROOT = Path(__file__).resolve().parents[2]


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_info_and_health_answer_503_until_every_component_has_started():
    # Given an emulator whose API server is up while a component is still starting
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
        # Then its views say it is not ready yet, and no emulator is found there
        assert status_of(f"{endpoint}/_emulator/info") == 503
        assert status_of(f"{endpoint}/_emulator/health") == 503
        assert process.fetch_info(endpoint) is None
        # When the component has started
        child.stdin.write("go\n")
        child.stdin.flush()
        deadline = time.monotonic() + 30
        while (info := process.fetch_info(endpoint)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        # Then it answers, as itself
        assert info is not None and info.pid == child.pid
        assert status_of(f"{endpoint}/_emulator/health") == 200
    finally:
        child.kill()
        child.wait(timeout=30)
