"""`python -m emulator` as its own process: started in the background, found again, stopped."""

import subprocess
import sys

from emulator import process
from emulator.process import free_port


def test_ensure_running_starts_once_and_stop_ends_it(tmp_path):
    # given no emulator on a free port
    port, mqtt_port = free_port(), free_port()
    assert process.fetch_info(f"http://127.0.0.1:{port}") is None
    # when it is ensured twice
    first = process.ensure_running(port=port, mqtt_port=mqtt_port, data_dir=tmp_path)
    try:
        second = process.ensure_running(port=port, mqtt_port=mqtt_port, data_dir=tmp_path)
        # then the second call found the first process, and the state file names it
        assert second.pid == first.pid
        assert first.endpoint_url == f"http://127.0.0.1:{port}"
        assert (tmp_path / "emulator.json").exists()
    finally:
        process.stop(first)
    # and after stop nothing answers
    assert process.fetch_info(first.endpoint_url) is None


def test_cli_prints_its_endpoint(tmp_path):
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--mqtt-port", "0", "--ephemeral"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
    finally:
        child.terminate()
        assert child.wait(timeout=30) == 0
