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
from http.client import HTTPException
from pathlib import Path

from emulator.constants import DEFAULT_HOST, DEFAULT_MQTT_PORT, DEFAULT_PORT, NOT_READY


@dataclass(frozen=True)
class EmulatorInfo:
    endpoint_url: str
    region: str
    mqtt_host: str
    mqtt_port: int
    root_ca_path: str
    data_dir: str
    pid: int

    @property
    def port(self) -> int:
        """The AWS API port (of `endpoint_url`)."""
        return int(self.endpoint_url.rsplit(":", 1)[1])


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


def _probe(endpoint_url: str, timeout: float = 1.0) -> EmulatorInfo | str | None:
    """One request to `endpoint_url`: the emulator's info; NOT_READY when an emulator answers that
    it is starting or stopping; None when nothing answers or what answers is not an emulator
    (another program on the port, e.g. a notebook kernel's socket)."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/_emulator/info", timeout=timeout) as response:
            data = json.loads(response.read())
        return EmulatorInfo(**{k: data[k] for k in EmulatorInfo.__dataclass_fields__})
    except urllib.error.HTTPError as exc:
        with exc:
            return NOT_READY if exc.code == 503 and NOT_READY.encode() in exc.read(200) else None
    except (OSError, ValueError, HTTPException, KeyError, TypeError):
        return None


def fetch_info(endpoint_url: str, timeout: float = 1.0) -> EmulatorInfo | None:
    """The info of the emulator answering at `endpoint_url`, or None if nothing answers, what
    answers is not an emulator, or the emulator is not ready."""
    found = _probe(endpoint_url, timeout)
    return found if isinstance(found, EmulatorInfo) else None


def _answering(endpoint_url: str, timeout: float) -> EmulatorInfo | None:
    """The emulator at `endpoint_url`, waiting for one that is still starting; None when none
    answers, or one that was stopping is gone."""
    deadline = time.monotonic() + timeout
    while (found := _probe(endpoint_url)) == NOT_READY and time.monotonic() < deadline:
        time.sleep(0.1)
    return found if isinstance(found, EmulatorInfo) else None


def wait_started(
    child: subprocess.Popen,
    *,
    endpoint_url: str | None = None,
    data_dir: str | Path | None = None,
    timeout: float = 60.0,
    log_path: str | Path | None = None,
) -> EmulatorInfo:
    """The info of the emulator `child` (a `python -m emulator`) once it answers at
    `endpoint_url`, or, without one, at the endpoint its state file in `data_dir` names (so that
    `--port 0` works). Only an answer with the child's own pid counts, never another emulator
    that took the port in the meantime."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(
                f"the emulator exited with code {child.returncode} while starting"
                + (f"; see {log_path}" if log_path else "")
            )
        url = endpoint_url
        if url is None and data_dir is not None:
            state = read_state(data_dir) or {}
            url = state.get("endpoint_url") if state.get("pid") == child.pid else None
        info = fetch_info(url) if url else None
        if info is not None and info.pid == child.pid:
            return info
        time.sleep(0.1)
    child.kill()
    where = endpoint_url or f"the endpoint in {Path(data_dir or '.') / STATE_FILE}"
    raise TimeoutError(f"the emulator did not answer on {where} within {timeout:.0f} s")


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
    of an emulator that exits at once. `port=0` always starts a new emulator on free ports (it
    needs a `data_dir`, not ephemeral, where the emulator writes the endpoint it got)."""
    if port == 0 and (data_dir is None or ephemeral):
        raise ValueError(
            "port=0 needs a data_dir (not ephemeral): the emulator names its endpoint there"
        )
    endpoint_url = f"http://{DEFAULT_HOST}:{port}" if port else None
    info = _answering(endpoint_url, timeout) if endpoint_url else None
    if info is not None:
        return info
    for taken, variable in ((port, "IOT_EMULATOR_PORT"), (mqtt_port, "IOT_EMULATOR_MQTT_PORT")):
        if taken and port_in_use(taken):
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
    return wait_started(
        process, endpoint_url=endpoint_url, data_dir=data_dir, timeout=timeout, log_path=log_path
    )


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
