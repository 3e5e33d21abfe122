"""What Lambda says, independent of how the function ran: Invoke's quotas and API errors,
the payload of a failed invocation, and the START/END/REPORT log lines.

Texts follow what Lambda returns today: the API reference "Invoke" (quotas, error codes), "Lambda
quotas", and observed responses (`Sandbox.Timedout` with "RequestId: <id> Error: Task timed out
after N.NN seconds"; `Runtime.ExitError` / `Runtime.OutOfMemory` with "Runtime exited with
error: ...").
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from emulator.gateway import ServiceError
from emulator.lambda_.runtime_api import Invocation

# Invoke quotas (API reference "Invoke"): 6 MB request and response for synchronous calls,
# 1 MB for asynchronous ones.
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
MAX_RESPONSE_PAYLOAD = 6 * 1024 * 1024
LOG_TAIL_BYTES = 4096
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


class LambdaError(ServiceError):
    """An Invoke error in Lambda's terms (the API error, not a function error)."""


def validated_payload(payload: bytes | str | None, invocation_type: str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else (payload or b"")
    limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
    operation = "InvokeFunction"
    if len(data) > limit:
        raise LambdaError(
            "RequestTooLargeException",
            f"Request must be smaller than {limit} bytes for the {operation} operation",
            413,
        )
    if not data.strip():
        return b"{}"  # Lambda hands an empty payload to the function as {}
    try:
        json.loads(data)
    except ValueError as exc:
        raise LambdaError(
            "InvalidRequestContentException",
            f"Could not parse request body into json: {exc}",
        ) from exc
    return data


def outcome_payload(
    invocation: Invocation, timeout_s: float
) -> tuple[bytes, str | None, str | None]:
    """(payload, X-Amz-Function-Error, error type for REPORT)."""
    rid = invocation.request_id
    if invocation.outcome == "response":
        if len(invocation.body) > MAX_RESPONSE_PAYLOAD:
            body = {
                "errorMessage": "Response payload size exceeded maximum allowed payload size "
                f"({MAX_RESPONSE_PAYLOAD} bytes).",
                "errorType": "Function.ResponseSizeTooLarge",
            }
            return json.dumps(body).encode(), "Unhandled", "Function.ResponseSizeTooLarge"
        return invocation.body, None, None
    if invocation.outcome in ("error", "init_error"):
        error_type = invocation.error_type or _error_type_of(invocation.body)
        return invocation.body, "Unhandled", error_type
    if invocation.outcome == "timeout":
        # What Lambda answers today for a timed-out invocation (payload of Invoke).
        body = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {rid} Error: Task timed out after {timeout_s:.2f} seconds",
        }
        return json.dumps(body).encode(), "Unhandled", "Sandbox.Timedout"
    reason = invocation.body.decode() or "unknown"
    if invocation.outcome == "out_of_memory":
        body = {
            "errorType": "Runtime.OutOfMemory",
            "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: {reason}",
        }
        return json.dumps(body).encode(), "Unhandled", "Runtime.OutOfMemory"
    body = {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: {reason}",
    }
    return json.dumps(body).encode(), "Unhandled", "Runtime.ExitError"


def _error_type_of(body: bytes) -> str | None:
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None
    return value.get("errorType") if isinstance(value, dict) else None


def log_lines(
    invocation: Invocation,
    *,
    version: str,
    timeout_s: float,
    memory_size: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
    init_output: str,
    output: str,
    duration_ms: float,
    error_type: str | None,
) -> list[str]:
    """The invocation's log as Lambda writes it (text format): what init printed, START, what
    the handler printed, the platform's error lines, END and REPORT (tab-separated, with a
    trailing tab; `Init Duration` on cold starts, `Status` when the invocation failed)."""
    rid = invocation.request_id
    lines = _split(init_output)
    lines.append(f"START RequestId: {rid} Version: {version}")
    lines.extend(_split(output))
    status = ""
    if invocation.outcome == "timeout":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        lines.append(f"{stamp} {rid} Task timed out after {timeout_s:.2f} seconds")
        status = "\tStatus: timeout"
    elif invocation.outcome in ("exit", "out_of_memory"):
        lines.append(
            f"RequestId: {rid} Error: Runtime exited with error: {invocation.body.decode()}"
        )
        lines.append(error_type or "Runtime.ExitError")
        status = f"\tStatus: error\tError Type: {error_type}"
    elif invocation.outcome == "init_error":
        status = f"\tStatus: error\tError Type: {error_type}"
    lines.append(f"END RequestId: {rid}")
    report = (
        f"REPORT RequestId: {rid}\tDuration: {duration_ms:.2f} ms"
        # Billed in 1 ms increments since December 2020.
        f"\tBilled Duration: {max(1, math.ceil(duration_ms))} ms"
        f"\tMemory Size: {memory_size} MB"
        f"\tMax Memory Used: {max_memory_used_mb} MB"
    )
    if init_duration_ms is not None:
        report += f"\tInit Duration: {init_duration_ms:.2f} ms"
    lines.append(report + status + "\t")
    return lines


def _split(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def log_events(lines: list[str]) -> tuple[tuple[int, str], ...]:
    now = int(time.time() * 1000)
    return tuple((now, line) for line in lines)


def log_tail(lines: list[str]) -> str:
    """The last 4 KB of the invocation's log (whole characters only)."""
    data = ("\n".join(lines) + "\n").encode()[-LOG_TAIL_BYTES:]
    return data.decode("utf-8", errors="ignore")


def trace_id() -> str:
    # X-Ray trace header format: Root=1-<epoch hex>-<96-bit hex>;Parent=<64-bit hex>;Sampled=0
    return (
        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
        f"Parent={uuid.uuid4().hex[:16]};Sampled=0"
    )


def encode_log_result(log_tail: str) -> str:
    """X-Amz-Log-Result: the base64 of the last 4 KB of the log."""
    return base64.b64encode(log_tail.encode()).decode()
