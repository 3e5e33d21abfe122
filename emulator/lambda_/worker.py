"""One Lambda execution environment: a `python -m awslambdaric <handler>` process in its own
process group (and, when the emulator is root, under a uid of its own: `isolation`), its Runtime
API server, and the capture of everything it prints.

The worker runs one invocation at a time, as an execution environment does. It never enforces
anything by itself: `run()` waits for the outcome up to the deadline the caller gives, and on a
timeout every process of the environment is killed, so the next invocation cold-starts.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import subprocess
import sysconfig
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from emulator.lambda_ import credentials, isolation
from emulator.lambda_.runtime_api import Invocation, RuntimeApiServer

# Lambda gives the init phase 10 s before it gives up on an on-demand environment
# (AWS docs: "Lambda execution environment lifecycle", Init phase).
INIT_TIMEOUT_S = 10.0

# Where awslambdaric and the AWS SDK live: on Lambda they come with the runtime (/var/runtime).
# How often a running invocation's memory is compared with the function's MemorySize.
MEMORY_POLL_S = 0.05

SITE_PACKAGES = sysconfig.get_paths()["purelib"]


@dataclass(frozen=True)
class WorkerSpec:
    """What an execution environment is built from; a change in any field means a new one."""

    function_name: str
    function_arn: str
    version: str
    handler: str
    runtime: str
    memory_size: int
    timeout_s: float
    environment: tuple[tuple[str, str], ...]
    code_dir: Path
    code_sha256: str
    region: str
    endpoint_url: str
    role: str = ""  # the execution role (its logs permissions decide whether logs appear)


class Worker:
    """A started execution environment; `run()` is called by one thread at a time."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.api = RuntimeApiServer()
        # On AWS each execution environment writes to its own log stream.
        now = time.gmtime()
        self.log_stream_name = (
            f"{time.strftime('%Y/%m/%d', now)}/[{spec.version}]{uuid.uuid4().hex}"
        )
        self._output = bytearray()
        self._output_lock = threading.Lock()
        self.started_at = time.monotonic()
        self.last_used = self.started_at
        self.initialized = False
        self.init_duration_ms: float | None = None
        self.init_output = ""
        self._peak_mb = 0
        self._kill_lock = threading.Lock()
        self._swept = False
        self._isolation = isolation.detect(SITE_PACKAGES)
        self.uid = isolation.allocate_uid() if self._isolation.separate_uid else None
        # Marks this environment's processes when it has no uid of its own.
        self._token = secrets.token_hex(16)
        self.credentials = credentials.STORE.issue(spec.role, spec.function_name)
        try:
            self.process = subprocess.Popen(
                [self._isolation.python, "-S", "-m", "awslambdaric", spec.handler],
                cwd=spec.code_dir,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group and session
                **isolation.drop_privileges(self.uid),
            )
        except BaseException:
            if self.uid is not None:
                isolation.release_uid(self.uid)
            credentials.STORE.revoke(self.credentials.access_key_id)
            self.api.close()
            raise
        assert self.process.stdout is not None
        self._fd = self.process.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._reader = threading.Thread(
            target=self._read_output, name=f"lambda-log-{spec.function_name}", daemon=True
        )
        self._reader.start()
        self._watcher = threading.Thread(
            target=self._watch_exit, name=f"lambda-exit-{spec.function_name}", daemon=True
        )
        self._watcher.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _environment(self) -> dict[str, str]:
        spec = self.spec
        env = dict(spec.environment)
        # Reserved variables (AWS docs: "Defined runtime environment variables") win over the
        # function's own, as Lambda refuses to let a function set them.
        env.update(
            {
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                # -S (no site) keeps the project's editable install out of sys.path; the runtime's
                # own libraries stay importable as on Lambda.
                "PYTHONPATH": os.pathsep.join([str(spec.code_dir), SITE_PACKAGES]),
                "PYTHONDONTWRITEBYTECODE": "1",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": SITE_PACKAGES,
                "_HANDLER": spec.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": spec.region,
                "AWS_DEFAULT_REGION": spec.region,
                # The function's SDK calls go to the emulator, signed with this environment's
                # own credentials, which the emulator maps back to the execution role.
                "AWS_ENDPOINT_URL": spec.endpoint_url,
                **self.credentials.environment(),
            }
        )
        if self.uid is None:
            env[isolation.MARKER] = self._token
        return env

    # Output capture -----------------------------------------------------------------------
    def _read_output(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self._fd], [], [], 0.5)
            except (OSError, ValueError):
                return
            if ready and not self._drain_once():
                return

    def _drain_once(self) -> bool:
        """Read what the pipe holds now; False at end of file."""
        with self._output_lock:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._output += chunk
            return True

    def take_output(self) -> str:
        """Everything printed since the last call. awslambdaric flushes before it posts a result,
        so after the result arrived, what the pipe holds belongs to this invocation."""
        while self._drain_once() and self._pipe_has_data():
            pass
        with self._output_lock:
            text = self._output.decode("utf-8", errors="replace")
            self._output.clear()
        return text

    def _pipe_has_data(self) -> bool:
        try:
            ready, _, _ = select.select([self._fd], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def _watch_exit(self) -> None:
        code = self.process.wait()
        self.api.init_ended.set()
        invocation = self.api.current
        if invocation is not None and not invocation.done.is_set():
            # Let a result that was posted just before exiting land first.
            time.sleep(0.05)
            invocation.finish("exit", _exit_reason(code).encode())

    # Invocation ---------------------------------------------------------------------------
    def run(self, invocation: Invocation) -> Invocation:
        """Hand `invocation` over and wait for its outcome (or time it out)."""
        self.last_used = time.monotonic()
        if not self.initialized and not self._finish_init(invocation):
            self.last_used = time.monotonic()
            return invocation
        self.api.submit(invocation)
        invocation.changed.wait(invocation.timeout_s)  # a polling runtime takes it at once
        if invocation.picked_up.is_set():
            deadline = invocation.picked_up_at + invocation.timeout_s
            while not invocation.done.wait(
                max(0.0, min(MEMORY_POLL_S, deadline - time.monotonic()))
            ):
                if time.monotonic() >= deadline:
                    break
                if self.max_memory_used_mb() > self.spec.memory_size:
                    # Lambda stops an environment that exceeds its memory (Runtime.OutOfMemory).
                    if invocation.finish("out_of_memory", b"signal: killed"):
                        self.kill()
                    break
        if not invocation.done.is_set():
            if invocation.finish("timeout"):
                self.kill()
        self.last_used = time.monotonic()
        return invocation

    def _finish_init(self, invocation: Invocation) -> bool:
        """Wait for the init phase to end; False (with the invocation finished) if it failed.

        The invocation is handed over only once the runtime polls, so that what module-level
        code printed is drained first and appears before START, as on AWS.
        """
        self.api.init_ended.wait(INIT_TIMEOUT_S)
        if self.api.polling_since is not None:
            self.initialized = True
            self.init_duration_ms = (self.api.polling_since - self.started_at) * 1000
            self.init_output = self.take_output()
            return True
        if self.api.init_error is not None:
            body, error_type = self.api.init_error
            invocation.finish("init_error", body, error_type)
        elif not self.alive:
            invocation.finish("exit", _exit_reason(self.process.returncode).encode())
        elif invocation.finish("timeout"):
            self.kill()
        return False

    def max_memory_used_mb(self) -> int:
        """Peak resident set of the runtime process (VmHWM), as REPORT's Max Memory Used; the
        last value seen once the process is gone."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return self._peak_mb
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self._peak_mb = max(self._peak_mb, round(int(line.split()[1]) / 1024), 1)
        return self._peak_mb

    def kill(self) -> None:
        """Kill every process of the environment and close the Runtime API.

        The process group first; then, since a child may have left it (setsid, double fork),
        every process under the worker's uid, or else every process carrying its marker."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        with self._kill_lock:
            if not self._swept:
                self._swept = True
                if self.uid is not None:
                    isolation.kill_uid(self._isolation.python, self.uid)
                    isolation.release_uid(self.uid)
                else:
                    isolation.kill_marked(self._token)
        credentials.STORE.revoke(self.credentials.access_key_id)
        self.api.close()


def _exit_reason(code: int) -> str:
    return f"exit status {code}" if code >= 0 else f"signal: {_signal_name(-code)}"


def _signal_name(number: int) -> str:
    # Go's wording, which Lambda's "Runtime exited with error: signal: killed" comes from.
    names = {
        signal.SIGKILL: "killed",
        signal.SIGSEGV: "segmentation fault",
        signal.SIGABRT: "aborted",
    }
    return names.get(signal.Signals(number), f"signal {number}")
