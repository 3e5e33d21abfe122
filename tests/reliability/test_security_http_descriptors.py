"""An emulator process with few descriptors, flooded with connections that never finish their
headers: the HTTP server stays below its descriptor limit (extra connections get a 503 at
once) instead of running out and spinning on a failing accept(), and serves again as soon as
the held connections reach their header deadline."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config

from emulator.process import wait_started

ROOT = Path(__file__).resolve().parents[2]
NOFILE = 300  # the emulator's cap is then 300 - 256 reserved = 44 connections


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _limit_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def test_a_flood_beyond_the_descriptor_limit_neither_spins_nor_stops_the_api(tmp_path):
    data_dir = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--data-dir", str(data_dir), "--port", "0"]
        + ["--mqtt-port", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limit_descriptors,  # noqa: PLW1509 (only setrlimit, before exec)
    )
    held: list[socket.socket] = []
    try:
        started = wait_started(child, data_dir=data_dir, timeout=60)
        endpoint, port = started.endpoint_url, started.port
        # When more connections than the process has descriptors hold incomplete headers
        for _ in range(NOFILE + 100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            try:
                sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\nX-Never: ")
            except OSError:
                pass  # refused already
            held.append(sock)
        flooded = time.monotonic()
        # Then the server does not spin (a failing accept() in a loop burns a whole core)
        before = _cpu_seconds(child.pid)
        time.sleep(3)
        spent = _cpu_seconds(child.pid) - before
        print(f"CPU seconds in 3 s of flood: {spent:.2f}")
        assert spent < 0.5
        # And it answers again once the held connections reach their 10 s header deadline
        iot = boto3.client(
            "iot",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 10, "mode": "standard"}, connect_timeout=5),
        )
        while True:
            try:
                iot.list_things(maxResults=1)
                break
            except Exception:
                assert time.monotonic() - flooded < 30
                time.sleep(0.5)
        assert child.poll() is None
    finally:
        for sock in held:
            sock.close()
        child.terminate()
        child.wait(timeout=60)
