"""Start, find and stop an emulator running in its own process (for notebooks and `make run`).

`ensure_running()` reuses an emulator that already answers on the port, or starts
`python -m emulator` in the background and waits for its health check. A running emulator
writes `<data dir>/emulator.json` (endpoint, ports, pid, log); `find_running()` reads it back,
so notebooks find an emulator that had to move to free ports, and `python -m emulator stop`
stops it.
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

from emulator.constants import DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_PORT


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
        sock.bind((DEFAULT_HOST, 0))
        return sock.getsockname()[1]


class PortTakenError(RuntimeError):
    """A port the emulator was told to use is held by another program."""


STATE_FILE = "emulator.json"  # written by `python -m emulator` while it runs


def port_in_use(port: int, host: str = DEFAULT_HOST) -> bool:
    """True when something accepts TCP connections on `host:port` (or the port cannot be bound)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) == 0:
            return True
    with socket.socket() as sock:
        # As the emulator's own servers bind: connections of a process that just died (TIME_WAIT)
        # do not keep the port from being listened on again.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def choose_port(preferred: int, what: str) -> tuple[int, str | None]:
    """`preferred` when it is free, else a free port and a sentence saying so."""
    if not port_in_use(preferred):
        return preferred, None
    port = free_port()
    return port, f"port {preferred} ({what}) is taken by another program: using {port} instead"


def read_state(data_dir: str | Path) -> dict | None:
    """What `<data_dir>/emulator.json` says about the emulator running on that data dir."""
    path = Path(data_dir) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def find_running(data_dir: str | Path) -> EmulatorInfo | None:
    """The emulator running on `data_dir`, if its state file names one that answers with the
    same pid (a stale file from a killed emulator is ignored)."""
    state = read_state(data_dir)
    if not state or "endpoint_url" not in state:
        return None
    info = fetch_info(state["endpoint_url"])
    if info is None or info.pid != state.get("pid"):
        return None
    return info


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
    """Return the running emulator on `port`, starting one in the background if needed.

    A port held by another program is refused with the one-line fix (PortTakenError) instead
    of an emulator that exits at once."""
    endpoint_url = f"http://{DEFAULT_HOST}:{port}"
    info = fetch_info(endpoint_url)
    if info is not None:
        return info
    for taken, variable in ((port, "IOT_EMULATOR_PORT"), (mqtt_port, "IOT_EMULATOR_MQTT_PORT")):
        if port_in_use(taken):
            raise PortTakenError(
                f"port {taken} is taken by another program (not the emulator): stop it, or set"
                f" {variable} to a free port (e.g. {variable}={free_port()}) and restart the kernel"
            )
    command = [sys.executable, "-m", "emulator", "--port", str(port), "--mqtt-port", str(mqtt_port)]
    if ephemeral:
        command.append("--ephemeral")
    elif data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    if log_path:
        command += ["--log-path", str(log_path)]
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a child of ours that exited but was not reaped yet is gone too
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(info: EmulatorInfo, timeout: float = 30.0) -> None:
    """Stop the emulator process described by `info` (SIGTERM, then SIGKILL) and wait until the
    process is gone, so that its ports are free when this returns."""
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(info.pid):
            return
        time.sleep(0.1)
    os.kill(info.pid, signal.SIGKILL)
