"""`python -m emulator` as its own process: started in the background, found again, stopped."""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

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


def test_what_answers_on_the_port_but_is_not_http_is_not_taken_for_an_emulator():
    # given a program on the port that answers a request with bytes that are not HTTP
    # (as a notebook kernel's ZeroMQ socket does)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer():
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7fkernel.status\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        # then no emulator answers there (and nothing is raised)
        assert process.fetch_info(f"http://127.0.0.1:{port}", timeout=5) is None
        thread.join(timeout=5)


def test_port_zero_starts_a_new_emulator_and_trusts_only_its_own_state_file(tmp_path, emulator):
    # given a data dir whose state file names another emulator that answers (this test's own)
    stale = {**emulator.info(), "pid": os.getpid()}
    (tmp_path / "emulator.json").write_text(json.dumps(stale))
    # when an emulator is ensured on ports it chooses itself
    info = process.ensure_running(port=0, mqtt_port=0, data_dir=tmp_path)
    try:
        # then it is a new process, found at the endpoint it wrote, not the one named before
        assert info.pid not in (os.getpid(), 0)
        assert info.endpoint_url != stale["endpoint_url"]
        assert process.fetch_info(info.endpoint_url).pid == info.pid
        assert json.loads((tmp_path / "emulator.json").read_text())["pid"] == info.pid
    finally:
        process.stop(info)


def test_port_zero_needs_a_data_dir_to_learn_the_endpoint():
    with pytest.raises(ValueError, match="data_dir"):
        process.ensure_running(port=0, mqtt_port=0, ephemeral=True)
