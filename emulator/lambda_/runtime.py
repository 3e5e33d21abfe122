"""The Lambda data plane: `LambdaRuntime.invoke` runs a function's real handler in a warm or
fresh execution environment (`worker.Worker`) and answers as Lambda's Invoke does.

moto stays the control plane (CreateFunction, GetFunction, versions, aliases; it keeps the code
.zip); this module reads moto's function model at call time, extracts the package, and keeps a
small pool of workers per (function, code, configuration). Firehose's processor, the rules
engine and the gateway's `Invoke` handler all come through `invoke`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.exceptions import JsonRESTError

from emulator.lambda_ import isolation
from emulator.lambda_.answers import (
    INVOCATION_TYPES,
    LambdaError,
    log_events,
    log_lines,
    log_tail,
    outcome_payload,
    trace_id,
    validated_payload,
)
from emulator.lambda_.code import DeploymentPackageError, extract_package, remove_tree
from emulator.lambda_.logs import CloudWatchLogWriter, ExecutionRoleAccess, LogBatch
from emulator.lambda_.runtime_api import Invocation
from emulator.lambda_.worker import SITE_PACKAGES, Worker, WorkerSpec

if TYPE_CHECKING:
    from emulator.server import Emulator

log = logging.getLogger(__name__)

# Execution environments kept per function version/configuration. Lambda scales much further;
# four is plenty on a laptop and bounds the processes a runaway caller can start.
MAX_WORKERS_PER_FUNCTION = 4
# Lambda reclaims idle environments after some minutes; so do we, to free memory.
IDLE_TTL_S = 600.0
# Lambda retries a failed asynchronous invocation twice, about one and then two minutes later.
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)
DEFAULT_ASYNC_RETRIES = 2


@dataclass(frozen=True)
class InvokeResult:
    status_code: int  # 200 for RequestResponse, 202 for Event, 204 for DryRun
    payload: bytes  # the function's response, or Lambda's error body
    function_error: str | None  # "Unhandled" when the function raised / timed out / crashed
    log_tail: str  # the last 4 KB of the invocation's log (START/END/REPORT included)
    executed_version: str = "$LATEST"
    request_id: str = ""


@dataclass
class _Pool:
    idle: list[Worker]
    busy: int = 0


class LambdaRuntime:
    """Component `emulator.lambdas`."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._pools: dict[WorkerSpec, _Pool] = {}
        self._all: set[Worker] = set()
        self._cond = threading.Condition()
        self._logs = CloudWatchLogWriter(
            lambda: emulator.endpoint_url, ExecutionRoleAccess(emulator).denied
        )
        self._background: set[threading.Thread] = set()
        self._stopped = False
        self._stopping = threading.Event()
        # Waits before the retries of a failed Event invocation; tests may shorten them.
        self.async_retry_delays_s: tuple[float, ...] = ASYNC_RETRY_DELAYS_S
        self._task_root: Path | None = None
        emulator.lambdas = self
        from emulator.lambda_ import names
        from emulator.lambda_.api import register
        from emulator.lambda_.credentials import ExecutionRoleGuard
        from emulator.lambda_.roles import ExecutionRoleCheck

        names.register(emulator.gateway)
        ExecutionRoleCheck(emulator).register(emulator.gateway)
        emulator.gateway.guard(ExecutionRoleGuard(emulator))
        register(emulator.gateway, self)

    # Public interface ---------------------------------------------------------------------
    def invoke(
        self,
        account_id: str,
        region: str,
        function: str,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        qualifier: str | None = None,
        client_context: str | None = None,
    ) -> InvokeResult:
        """Invoke `function` (name, name:qualifier, or ARN with optional qualifier)."""
        if invocation_type not in INVOCATION_TYPES:
            raise LambdaError(
                "InvalidParameterValueException",
                f"Invalid InvocationType '{invocation_type}': use one of "
                + ", ".join(INVOCATION_TYPES),
            )
        fn, invoked_arn = self._resolve(account_id, region, function, qualifier)
        version = _version_of(fn)
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", None, "", version)
        payload = validated_payload(payload, invocation_type)
        spec = self._spec(fn, region)
        invocation = Invocation(
            request_id=str(uuid.uuid4()),
            payload=payload,
            function_arn=invoked_arn,
            timeout_s=float(fn.timeout),
            # Lambda passes the client context to synchronous invocations only (API "Invoke").
            client_context=client_context if invocation_type == "RequestResponse" else None,
            trace_id=trace_id(),
        )
        if invocation_type == "Event":
            # Lambda queues the event and answers at once; the function runs later.
            thread = threading.Thread(
                target=self._run_in_background,
                args=(spec, invocation, _max_retry_attempts(fn)),
                daemon=True,
            )
            with self._cond:
                self._background.add(thread)
            thread.start()
            return InvokeResult(202, b"", None, "", version, invocation.request_id)
        return self._execute(spec, invocation)

    def flush_logs(self, timeout: float = 10.0) -> bool:
        """Wait until the logs of finished invocations are in CloudWatch Logs."""
        return self._logs.flush(timeout)

    def wait_for_background(self, timeout: float = 30.0) -> bool:
        """Wait until every Event invocation accepted so far has finished."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                threads = list(self._background)
            if not threads:
                return True
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                with self._cond:
                    return not self._background

    def worker_pids(self, function_name: str) -> list[int]:
        """Process ids of the live execution environments of `function_name` (diagnostics)."""
        with self._cond:
            return sorted(
                w.pid for w in self._all if w.spec.function_name == function_name and w.alive
            )

    def stop(self) -> None:
        """Kill every worker (and its process group)."""
        self._stopping.set()
        with self._cond:
            self._stopped = True
            workers = list(self._all)
            self._all.clear()
            self._pools.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.kill()
        self._logs.flush(timeout=5)
        self._logs.close()
        if self._task_root is not None:
            remove_tree(self._task_root)
            self._task_root = None

    def isolation(self) -> dict[str, object]:
        """How workers are kept from the emulator's secrets on this machine (diagnostics)."""
        mode = isolation.detect(SITE_PACKAGES)
        return {"separate_uid": mode.separate_uid, "python": mode.python, "limit": mode.reason}

    def _code_root(self) -> Path:
        """Where packages are extracted: under the data directory, unless workers run under
        another uid: they cannot enter the 0700 data directory (nor should they, it holds the
        CA key), so their code goes to a 0711 directory of its own, removed at stop."""
        if not isolation.detect(SITE_PACKAGES).separate_uid:
            return Path(self._emulator.data_dir) / "lambda"
        with self._cond:
            if self._task_root is None:
                root = Path(tempfile.mkdtemp(prefix="iot-emulator-task-"))
                os.chmod(root, 0o711)  # enter a known path, list nothing
                self._task_root = root
            return self._task_root

    # Resolution ---------------------------------------------------------------------------
    def _resolve(
        self, account_id: str, region: str, function: str, qualifier: str | None
    ) -> tuple[LambdaFunction, str]:
        function = _full_arn(function, account_id, region)
        try:
            fn = lambda_backends[account_id][region].get_function(function, qualifier)
        except JsonRESTError as exc:
            # moto's own ResourceNotFoundException ("Function not found: <arn>") and friends.
            raise LambdaError(exc.error_type, exc.message, getattr(exc, "code", 400)) from exc
        if fn is None:
            raise LambdaError("ResourceNotFoundException", f"Function not found: {function}", 404)
        base_arn = (
            f"arn:{fn.partition}:lambda:{fn.region}:{fn.account_id}:function:{fn.function_name}"
        )
        used_qualifier = qualifier
        name_part = function.split(":function:")[-1]
        if ":" in name_part:
            used_qualifier = name_part.split(":", 1)[1]
        invoked_arn = f"{base_arn}:{used_qualifier}" if used_qualifier else base_arn
        return fn, invoked_arn

    def _spec(self, fn: LambdaFunction, region: str) -> WorkerSpec:
        runtime = fn.run_time or ""
        if getattr(fn, "package_type", "Zip") != "Zip" or not runtime.startswith("python"):
            raise LambdaError(
                "InvalidRuntimeException",
                f"The emulator runs Python .zip functions only; {fn.function_name} has "
                f"PackageType {getattr(fn, 'package_type', 'Zip')} "
                f"and Runtime {runtime or 'none'}.",
                502,
            )
        if not fn.handler:
            raise LambdaError(
                "InvalidParameterValueException",
                f"Function {fn.function_name} has no Handler; set one with "
                "UpdateFunctionConfiguration (e.g. app.lambda_handler).",
            )
        if not getattr(fn, "code_bytes", b""):
            raise LambdaError(
                "InvalidZipFileException",
                f"Function {fn.function_name} has no deployment package (was its S3 object "
                "missing when the function was created?).",
                502,
            )
        try:
            code_dir, sha256 = extract_package(
                self._code_root(),
                fn.function_name,
                fn.code_bytes,
                getattr(fn, "code_digest", None),
            )
        except DeploymentPackageError as exc:
            raise LambdaError("InvalidZipFileException", str(exc), 502) from exc
        environment = tuple(
            sorted((str(k), str(v)) for k, v in (fn.environment_vars or {}).items())
        )
        return WorkerSpec(
            function_name=fn.function_name,
            function_arn=fn.function_arn,
            version=_version_of(fn),
            handler=fn.handler,
            runtime=runtime,
            memory_size=int(fn.memory_size),
            timeout_s=float(fn.timeout),
            environment=environment,
            code_dir=code_dir,
            code_sha256=sha256,
            region=region,
            endpoint_url=self._emulator.endpoint_url,
            role=str(fn.role or ""),
        )

    # Execution ----------------------------------------------------------------------------
    def _run_in_background(self, spec: WorkerSpec, invocation: Invocation, retries: int) -> None:
        """An Event invocation: on a function error Lambda runs it up to two more times, with the
        same request id (AWS docs: "Error handling and automatic retries in Lambda")."""
        try:
            for attempt in range(retries + 1):
                if attempt:
                    delay = self.async_retry_delays_s[
                        min(attempt, len(self.async_retry_delays_s)) - 1
                    ]
                    if self._stopping.wait(delay):
                        return
                    invocation = dataclasses.replace(
                        invocation,
                        outcome=None,
                        body=b"",
                        error_type=None,
                        picked_up_at=None,
                        deadline_ms=None,
                        done=threading.Event(),
                        picked_up=threading.Event(),
                        changed=threading.Event(),
                    )
                result = self._execute(spec, invocation)
                if result.function_error is None:
                    return
                log.info(
                    "asynchronous invocation %s of %s failed (attempt %d of %d)",
                    invocation.request_id,
                    spec.function_name,
                    attempt + 1,
                    retries + 1,
                )
        except LambdaError as exc:
            log.warning("asynchronous invocation %s failed: %s", invocation.request_id, exc)
        except Exception:
            log.exception("asynchronous invocation %s failed", invocation.request_id)
        finally:
            with self._cond:
                self._background.discard(threading.current_thread())

    def _execute(self, spec: WorkerSpec, invocation: Invocation) -> InvokeResult:
        worker = self._acquire(spec)
        reusable = False
        try:
            cold = not worker.initialized
            started = time.monotonic()
            worker.run(invocation)
            ended = time.monotonic()
            output = worker.take_output()
            init_output = ""
            if cold and invocation.outcome == "init_error":
                init_output, output = output, ""
            elif cold:
                init_output = worker.init_output
            reusable = invocation.outcome in ("response", "error") and worker.alive
            payload, function_error, error_type = outcome_payload(invocation, spec.timeout_s)
            begin = invocation.picked_up_at or started
            duration_ms = max(0.0, (ended - begin) * 1000)
            lines = log_lines(
                invocation,
                version=spec.version,
                timeout_s=spec.timeout_s,
                memory_size=spec.memory_size,
                max_memory_used_mb=worker.max_memory_used_mb(),
                init_duration_ms=worker.init_duration_ms if cold else None,
                init_output=init_output,
                output=output,
                duration_ms=duration_ms,
                error_type=error_type,
            )
            self._logs.put(
                LogBatch(
                    region=spec.region,
                    role=spec.role,
                    group=f"/aws/lambda/{spec.function_name}",
                    stream=worker.log_stream_name,
                    events=log_events(lines),
                )
            )
            return InvokeResult(
                200,
                payload,
                function_error,
                log_tail(lines),
                spec.version,
                invocation.request_id,
            )
        finally:
            self._release(spec, worker, reusable)

    # Pool ---------------------------------------------------------------------------------
    def _acquire(self, spec: WorkerSpec) -> Worker:
        with self._cond:
            self._reap_idle_locked()
            while True:
                if self._stopped:
                    raise LambdaError("ServiceException", "The Lambda runtime is stopping.", 500)
                pool = self._pools.setdefault(spec, _Pool(idle=[]))
                while pool.idle:
                    worker = pool.idle.pop()
                    if worker.alive:
                        pool.busy += 1
                        return worker
                    self._all.discard(worker)
                if pool.busy < MAX_WORKERS_PER_FUNCTION:
                    pool.busy += 1
                    break
                self._cond.wait()
        try:
            worker = Worker(spec)
        except Exception as exc:
            with self._cond:
                pool.busy -= 1
                self._cond.notify_all()
            raise LambdaError(
                "ServiceException", f"could not start a worker for {spec.function_name}: {exc}", 500
            ) from exc
        with self._cond:
            self._all.add(worker)
        return worker

    def _release(self, spec: WorkerSpec, worker: Worker, reusable: bool) -> None:
        with self._cond:
            pool = self._pools.get(spec)
            keep = reusable and pool is not None and not self._stopped
            if pool is not None:
                pool.busy -= 1
                if keep:
                    pool.idle.append(worker)
            if not keep:
                self._all.discard(worker)
            self._cond.notify_all()
        if not keep:
            worker.kill()

    def _reap_idle_locked(self) -> None:
        now = time.monotonic()
        for spec, pool in list(self._pools.items()):
            stale = [w for w in pool.idle if now - w.last_used > IDLE_TTL_S or not w.alive]
            for worker in stale:
                pool.idle.remove(worker)
                self._all.discard(worker)
                threading.Thread(target=worker.kill, daemon=True).start()
            if not pool.idle and pool.busy == 0:
                del self._pools[spec]


# Helpers ------------------------------------------------------------------------------------
def _max_retry_attempts(fn: LambdaFunction) -> int:
    """MaximumRetryAttempts of the function's event invoke configuration (default 2)."""
    for config in getattr(fn, "event_invoke_config", None) or []:
        value = config.config.get("MaximumRetryAttempts")
        if value is not None:
            return int(value)
    return DEFAULT_ASYNC_RETRIES


def _full_arn(function: str, account_id: str, region: str) -> str:
    """A partial ARN ("123456789012:function:f", "function:f", "123456789012:f", each with an
    optional qualifier) as the full ARN, which moto resolves; names and ARNs are unchanged."""
    match = re.fullmatch(r"(?:(\d{12}):)?(function:)?([a-zA-Z0-9_-]+(?::[^:]+)?)", function)
    if function.startswith("arn:") or match is None or not (match[1] or match[2]):
        return function
    return f"arn:aws:lambda:{region}:{match[1] or account_id}:function:{match[3]}"


def _version_of(fn: LambdaFunction) -> str:
    return "$LATEST" if str(fn.version) == "$LATEST" else str(fn.version)
