"""How a worker is kept away from the emulator: its own uid when the emulator runs as root.

A handler is user code. On Lambda it runs in a microVM that holds nothing of the service; here
it runs on the same machine as the emulator, whose process environment and data directory (the
root CA's private key) must stay out of its reach. File modes alone cannot do that while both
run as root, so when the emulator is root each worker gets an unused uid/gid of its own, no
supplementary groups and a 077 umask:

- `/proc/<ppid>/environ` of the emulator (and of every ancestor, all root) is unreadable to it;
- the 0700 data directory and the CA key (0600) are unreadable; the code it runs is extracted to
  a 0711 directory outside the data directory, readable but not writable by it (as /var/task);
- at a timeout every process with that uid is killed (`kill(-1)` from a process with the
  worker's uid reaches exactly them), which also catches a double-forked `setsid` child that
  left the worker's process group.

When the emulator is not root it cannot change uid: workers then run as the emulator's own user,
can read what that user can, and only the worker's process group (plus a sweep of the processes
carrying the worker's marker in their environment) is killed at a timeout. That limit is logged
once and shown by `LambdaRuntime.isolation()`.
"""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

# Worker uids come from a range no distribution assigns (useradd stops at 60000, systemd's
# dynamic users at 65519, container sub-uid ranges usually start at 100000 and span 65536 per
# user); a random pick that no account and no process uses is taken.
UID_RANGE = (1_500_000_000, 2_000_000_000)
# The variable that marks a worker's processes when no separate uid is available.
MARKER = "_LAMBDA_EMULATOR_WORKER"

_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


@dataclass(frozen=True)
class Isolation:
    python: str  # the interpreter workers run
    separate_uid: bool  # True: each worker runs under a uid of its own
    reason: str  # why workers share the emulator's uid (empty when they do not)


def _candidates() -> list[str]:
    """Interpreters of this Python version, the emulator's own first."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = [sys.executable, os.path.realpath(sys.executable)]
    for directory in ("/usr/local/bin", "/usr/bin"):
        found.append(f"{directory}/python{version}")
    seen: list[str] = []
    for path in found:
        if path and path not in seen and os.access(path, os.X_OK):
            seen.append(path)
    return seen


def _runs_as(python: str, uid: int, site_packages: str) -> bool:
    """Whether `python` starts and imports the runtime client under `uid` (an interpreter under
    a 0700 home directory does not, for instance)."""
    try:
        done = subprocess.run(
            [python, "-S", "-c", "import awslambdaric.bootstrap"],
            env={"PYTHONPATH": site_packages, "PATH": "/usr/bin:/bin"},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            **drop_privileges(uid),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@cache
def detect(site_packages: str) -> Isolation:
    """The isolation this machine allows (probed once per process)."""
    if os.geteuid() != 0:
        reason = (
            "the emulator does not run as root, so workers run as its own user: a handler can "
            "read that user's files (the data directory, the CA key) and processes"
        )
        log.warning("Lambda workers are not isolated: %s", reason)
        return Isolation(sys.executable, False, reason)
    uid = allocate_uid()
    try:
        for python in _candidates():
            if _runs_as(python, uid, site_packages):
                return Isolation(python, True, "")
    finally:
        release_uid(uid)
    reason = (
        "no Python interpreter of this version is usable by an unprivileged uid (is it under a "
        "0700 home directory?), so workers run as root and can read the emulator's files"
    )
    log.warning("Lambda workers are not isolated: %s", reason)
    return Isolation(sys.executable, False, reason)


def _uid_busy(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        pass
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry.path).st_uid == uid:
                return True
        except OSError:
            continue
    return False


def allocate_uid() -> int:
    """An unused uid (and gid of the same number) for one worker."""
    with _uid_lock:
        while True:
            uid = UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])
            if uid not in _uids_in_use and not _uid_busy(uid):
                _uids_in_use.add(uid)
                return uid


def release_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


def drop_privileges(uid: int | None) -> dict:
    """Popen arguments that start the child under `uid` (no groups, private umask)."""
    if uid is None:
        return {}
    return {"user": uid, "group": uid, "extra_groups": [], "umask": 0o077}


def kill_uid(python: str, uid: int) -> None:
    """SIGKILL every process running under `uid`: `kill(-1)` from a process with that uid
    reaches all of them at once, wherever they moved (new session, reparented to init). The
    kernel signals them under the task list lock and a fork in flight fails with the parent's
    fatal signal pending, so one call leaves none behind."""
    kill = next((p for p in ("/usr/bin/kill", "/bin/kill") if os.access(p, os.X_OK)), None)
    command = (
        [kill, "-9", "-1"]
        if kill
        else [python, "-S", "-I", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"]
    )
    try:
        subprocess.run(
            command,
            env={"PATH": "/usr/bin:/bin"},
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            **drop_privileges(uid),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not sweep the processes of worker uid %d: %s", uid, exc)


def kill_marked(token: str) -> None:
    """Without a uid of its own: SIGKILL the processes whose environment carries `token`
    (a process that replaced its environment escapes this; see the module docstring)."""
    needle = f"{MARKER}={token}".encode()
    own = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass
