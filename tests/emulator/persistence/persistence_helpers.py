"""The emulator as a subprocess on a data directory, and its CLI (for the persistence tests).

A module of its own: `from conftest import ...` is ambiguous in a suite with several conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
from support.cli import run_module

from emulator import process

ROOT = Path(__file__).resolve().parents[3]


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m emulator <args>` to completion (status, --reset)."""
    return run_module("emulator", *args, timeout=120, input=stdin)


class EmulatorProcess:
    """`python -m emulator --port 0 --mqtt-port 0 --data-dir <dir>` as a child process; its
    endpoint (and port) are known once it started (read from the state file it writes, so no port
    chosen beforehand can be taken by another process in the meantime)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.endpoint_url = ""
        self.child: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-emulator.log"

    def start(self, timeout: float = 60.0) -> EmulatorProcess:
        command = [sys.executable, "-m", "emulator", "--port", "0", "--mqtt-port", "0"]
        command += ["--data-dir", str(self.data_dir)]
        with open(self.log, "ab") as log:
            self.child = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
            )
        try:
            info = process.wait_started(self.child, data_dir=self.data_dir, timeout=timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise type(exc)(f"{exc}: {self.output()}") from None
        self.endpoint_url = info.endpoint_url
        self.port = info.port
        return self

    def stop(self) -> int:
        """A clean stop (SIGTERM); the exit code."""
        assert self.child is not None
        self.child.send_signal(signal.SIGTERM)
        return self.child.wait(timeout=60)

    def kill9(self) -> None:
        assert self.child is not None
        os.kill(self.child.pid, signal.SIGKILL)
        self.child.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1")


def started_emulators(data_dir: Path):
    """A fixture body: yields `start()`, which starts an EmulatorProcess on `data_dir`; any still
    running at the end are killed."""
    started: list[EmulatorProcess] = []

    def start() -> EmulatorProcess:
        emu = EmulatorProcess(data_dir).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        if emu.child is not None and emu.child.poll() is None:
            emu.child.kill()
            emu.child.wait(timeout=30)
