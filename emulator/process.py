"""Start, find and stop an emulator running in its own process (for notebooks and `make run`).

`ensure_running()` reuses an emulator that already answers on the port, or starts
`python -m emulator` in the background and waits for its health check.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emulator.server import DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_PORT


@dataclass(frozen=True)
class EmulatorInfo:
    endpoint_url: str
    region: str
    mqtt_host: str
    mqtt_port: int
    root_ca_path: str
    data_dir: str
    pid: int


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a new emulator)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch_info(endpoint_url: str, timeout: float = 1.0) -> EmulatorInfo | None:
    """The info of the emulator answering at `endpoint_url`, or None if nothing answers."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/_emulator/info", timeout=timeout) as response:
            data = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return EmulatorInfo(**{k: data[k] for k in EmulatorInfo.__dataclass_fields__})


def ensure_running(
    port: int = DEFAULT_PORT,
    mqtt_port: int = DEFAULT_MQTT_PORT,
    data_dir: str | Path | None = None,
    ephemeral: bool = False,
    timeout: float = 60.0,
    log_path: str | Path | None = None,
) -> EmulatorInfo:
    """Return the running emulator on `port`, starting one in the background if needed."""
    endpoint_url = f"http://{DEFAULT_HOST}:{port}"
    info = fetch_info(endpoint_url)
    if info is not None:
        return info
    command = [sys.executable, "-m", "emulator", "--port", str(port), "--mqtt-port", str(mqtt_port)]
    if ephemeral:
        command.append("--ephemeral")
    elif data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    log_file = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the notebook kernel's restarts
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the emulator exited with code {process.returncode} while starting"
                + (f"; see {log_path}" if log_path else "")
            )
        info = fetch_info(endpoint_url)
        if info is not None:
            return info
        time.sleep(0.2)
    process.kill()
    raise TimeoutError(f"the emulator did not answer on {endpoint_url} within {timeout:.0f} s")


def stop(info: EmulatorInfo, timeout: float = 30.0) -> None:
    """Stop the emulator process described by `info` (SIGTERM, then SIGKILL)."""
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fetch_info(info.endpoint_url, timeout=0.5) is None:
            return
        time.sleep(0.2)
    os.kill(info.pid, signal.SIGKILL)
