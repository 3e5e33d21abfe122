"""Invoke's quotas and Lambda's error bodies for the cases a caller must handle."""

from __future__ import annotations

import json

import pytest
from support.lambdas import create_function

from emulator.lambda_.runtime import LambdaError

ACCOUNT, REGION = "123456789012", "us-east-1"


def test_request_over_6_mb_is_refused(lambdas, deploy):
    # Given a function
    name = deploy("app.echo")
    payload = json.dumps({"data": "x" * (6 * 1024 * 1024)}).encode()

    # When a synchronous request exceeds 6 MB
    with pytest.raises(LambdaError) as raised:
        lambdas.invoke(ACCOUNT, REGION, name, payload)

    # Then Lambda's RequestTooLargeException (413) comes back
    assert raised.value.code == "RequestTooLargeException"
    assert raised.value.status == 413
    assert "6291456 bytes" in raised.value.message


def test_event_over_1_mb_is_refused(lambdas, deploy):
    # Given a function
    name = deploy("app.echo")
    payload = json.dumps({"data": "x" * (1024 * 1024)}).encode()

    # When an asynchronous request exceeds 1 MB
    with pytest.raises(LambdaError) as raised:
        lambdas.invoke(ACCOUNT, REGION, name, payload, invocation_type="Event")

    # Then it is refused before it is queued
    assert raised.value.code == "RequestTooLargeException"
    assert "1048576 bytes" in raised.value.message


def test_response_over_6_mb_is_a_function_error(lambdas, deploy):
    # Given a handler that returns more than 6 MB
    name = deploy("app.echo")
    payload = json.dumps({"data": "x" * (3 * 1024 * 1024)}).encode()
    big = deploy(
        "big.handler",
        files={"big.py": "def handler(event, context):\n    return 'y' * (7 * 1024 * 1024)\n"},
    )

    # When it is invoked (and a 3 MB echo, under the limit, for contrast)
    under = lambdas.invoke(ACCOUNT, REGION, name, payload)
    over = lambdas.invoke(ACCOUNT, REGION, big, b"{}")

    # Then only the oversized response fails, with Lambda's error
    assert under.function_error is None
    assert over.function_error == "Unhandled"
    assert json.loads(over.payload) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291456 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_empty_payload_reaches_the_handler_as_empty_object(lambdas, deploy):
    # Given a function that echoes its event
    name = deploy("app.echo")

    # When it is invoked without a payload
    result = lambdas.invoke(ACCOUNT, REGION, name, b"")

    # Then the handler saw {}
    assert json.loads(result.payload) == {"echo": {}}


def test_unknown_invocation_type_is_refused(lambdas, deploy):
    # Given a function
    name = deploy("app.echo")

    # When an invocation type Lambda does not know is asked for
    with pytest.raises(LambdaError) as raised:
        lambdas.invoke(ACCOUNT, REGION, name, b"{}", invocation_type="Sometime")

    # Then the error names the valid ones
    assert raised.value.code == "InvalidParameterValueException"
    assert "RequestResponse, Event, DryRun" in raised.value.message


def test_non_python_runtime_is_refused_with_a_reason(aws, lambda_role, lambdas, unique):
    # Given a Node.js function (the emulator runs Python handlers only)
    name = f"node-{unique}"
    create_function(
        aws, lambda_role, name, b"PK\x05\x06" + b"\x00" * 18, "index.handler", "nodejs20.x"
    )

    # When it is invoked
    with pytest.raises(LambdaError) as raised:
        lambdas.invoke(ACCOUNT, REGION, name, b"{}")

    # Then the error says why
    assert raised.value.code == "InvalidRuntimeException"
    assert "nodejs20.x" in raised.value.message


def test_memory_over_memory_size_stops_the_environment(lambdas, deploy):
    # Given a 128 MB function whose handler holds 300 MB
    name = deploy("app.hog", memory_size=128, timeout=10)

    # When it is invoked
    result = lambdas.invoke(ACCOUNT, REGION, name, b'{"megabytes": 300, "hold_seconds": 3}')

    # Then Lambda's out-of-memory error comes back and REPORT says so
    body = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert "\tStatus: error\tError Type: Runtime.OutOfMemory\t" in result.log_tail

    # And a call within its memory works in a fresh environment
    again = lambdas.invoke(ACCOUNT, REGION, name, b'{"megabytes": 10, "hold_seconds": 0}')
    assert json.loads(again.payload) == 10 * 1024 * 1024
