"""Lambda's texts as pure functions: error payloads, START/END/REPORT, the 4 KB log tail."""

from __future__ import annotations

import json
import re

import pytest

from emulator.lambda_.answers import (
    LambdaError,
    log_lines,
    log_tail,
    outcome_payload,
    validated_payload,
)
from emulator.lambda_.runtime_api import Invocation

RID = "8f5c1f0e-2c1b-4bde-9d0e-3f6a2b7c9d10"


def _finished(outcome: str, body: bytes = b"", error_type: str | None = None) -> Invocation:
    invocation = Invocation(RID, b"{}", "arn:aws:lambda:us-east-1:123456789012:function:f", 3.0)
    invocation.finish(outcome, body, error_type)
    return invocation


def _lines(invocation: Invocation, **overrides) -> list[str]:
    args = dict(
        version="$LATEST",
        timeout_s=3.0,
        memory_size=128,
        max_memory_used_mb=40,
        init_duration_ms=None,
        init_output="",
        output="",
        duration_ms=12.3456,
        error_type=None,
    )
    return log_lines(invocation, **(args | overrides))


def test_timeout_payload_and_log():
    # Given an invocation that timed out after the 3 s timeout
    invocation = _finished("timeout")

    # When Lambda's answer and log are built
    payload, function_error, error_type = outcome_payload(invocation, 3.0)
    lines = _lines(invocation, error_type=error_type, duration_ms=3000.4)

    # Then they carry Lambda's wording
    assert function_error == "Unhandled"
    assert json.loads(payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {RID} Error: Task timed out after 3.00 seconds",
    }
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {RID} Task timed out after 3.00 seconds",
        lines[1],
    )
    assert lines[-1] == (
        f"REPORT RequestId: {RID}\tDuration: 3000.40 ms\tBilled Duration: 3001 ms"
        "\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout\t"
    )


def test_cold_start_report_and_init_output_order():
    # Given a cold invocation whose module printed at import time
    invocation = _finished("response", b'"ok"')

    # When its log is built
    lines = _lines(
        invocation, init_duration_ms=250.5, init_output="loaded\n", output="hello\nworld\n"
    )

    # Then init output precedes START and REPORT names the init duration
    assert lines[:5] == [
        "loaded",
        f"START RequestId: {RID} Version: $LATEST",
        "hello",
        "world",
        f"END RequestId: {RID}",
    ]
    assert lines[5].endswith("\tMax Memory Used: 40 MB\tInit Duration: 250.50 ms\t")
    assert "\tBilled Duration: 13 ms\t" in lines[5]


def test_runtime_exit_payload_and_log():
    # Given a runtime that exited with status 3
    invocation = _finished("exit", b"exit status 3")

    # When Lambda's answer and log are built
    payload, function_error, error_type = outcome_payload(invocation, 3.0)
    lines = _lines(invocation, error_type=error_type)

    # Then both name Runtime.ExitError
    assert json.loads(payload)["errorType"] == "Runtime.ExitError"
    assert lines[1:3] == [
        f"RequestId: {RID} Error: Runtime exited with error: exit status 3",
        "Runtime.ExitError",
    ]
    assert lines[-1].endswith("\tStatus: error\tError Type: Runtime.ExitError\t")


def test_function_error_body_is_passed_through():
    # Given the runtime's own error body for a raised exception
    body = json.dumps({"errorMessage": "boom", "errorType": "KeyError", "stackTrace": []})

    # When Lambda's answer is built
    payload, function_error, error_type = outcome_payload(_finished("error", body.encode()), 3.0)

    # Then the body is unchanged and the error type is read from it
    assert payload == body.encode()
    assert (function_error, error_type) == ("Unhandled", "KeyError")


def test_log_tail_keeps_the_last_4_kb_of_whole_characters():
    # Given a log longer than 4 KB ending in multi-byte characters
    lines = ["é" * 3000, "END RequestId: x", "REPORT RequestId: x"]

    # When the tail is taken
    tail = log_tail(lines)

    # Then it is at most 4096 bytes and ends with the REPORT line
    assert len(tail.encode()) <= 4096
    assert tail.endswith("END RequestId: x\nREPORT RequestId: x\n")


@pytest.mark.parametrize(("payload", "expected"), [(b"", b"{}"), (b"  ", b"{}"), (b"[1]", b"[1]")])
def test_payload_validation(payload, expected):
    assert validated_payload(payload, "RequestResponse") == expected


def test_non_json_payload_is_refused():
    with pytest.raises(LambdaError) as raised:
        validated_payload(b"{nope", "RequestResponse")
    assert raised.value.code == "InvalidRequestContentException"
