"""Invoke through the emulator's endpoint with boto3: the function's real handler runs in an
awslambdaric worker, and the answer has Lambda's shape (API reference "Invoke")."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError


def _invoke(client, name: str, event: object, **kwargs):
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    return response, json.loads(response["Payload"].read() or b"null")


def test_invoke_returns_the_handler_result(aws, deploy):
    # Given a function whose handler echoes its event
    name = deploy("app.echo")

    # When it is invoked synchronously
    response, body = _invoke(aws("lambda"), name, {"temperature": 21.5, "device": "d-1"})

    # Then the handler's return value is the payload
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert body == {"echo": {"temperature": 21.5, "device": "d-1"}}


def test_handler_sees_lambda_context(aws, deploy):
    # Given a function with 256 MB and a 7 s timeout
    name = deploy("app.context_info", memory_size=256, timeout=7)

    # When it is invoked
    response, body = _invoke(aws("lambda"), name, {})

    # Then the context carries the function's identity and the invocation's request id
    assert body["function_name"] == name
    assert body["function_version"] == "$LATEST"
    assert body["memory_limit_in_mb"] == "256"
    assert body["aws_request_id"] == response["ResponseMetadata"]["RequestId"]
    assert body["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert body["log_group_name"] == f"/aws/lambda/{name}"
    assert body["log_stream_name"].split("/")[3].startswith("[$LATEST]")
    assert 6000 < body["remaining_ms"] <= 7000
    # and the code runs from its own extracted package, without the project on sys.path
    assert body["cwd"] == body["task_root"]
    assert body["sys_path_has_project"] is False


def test_handler_sees_configured_and_runtime_environment(aws, deploy, emulator):
    # Given a function with its own environment variables
    name = deploy("app.environment", environment={"STAGE": "test", "BUCKET": "raw-data"})
    names = [
        "STAGE",
        "BUCKET",
        "AWS_REGION",
        "AWS_LAMBDA_FUNCTION_NAME",
        "_HANDLER",
        "AWS_EXECUTION_ENV",
        "AWS_ENDPOINT_URL",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ]

    # When the handler reads its environment
    _, body = _invoke(aws("lambda"), name, {"names": names})

    # Then it sees both its variables and Lambda's defined ones
    assert body == {
        "STAGE": "test",
        "BUCKET": "raw-data",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "_HANDLER": "app.environment",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }


def test_raised_exception_is_an_unhandled_function_error(aws, deploy):
    # Given a handler that raises ValueError
    name = deploy("app.fail")

    # When it is invoked
    response, body = _invoke(aws("lambda"), name, {"n": 1})

    # Then Invoke succeeds at the API level and reports the function error
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == 'bad input: {"n": 1}'
    assert body["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("raise ValueError" in line for line in body["stackTrace"])


def test_timeout_is_enforced_and_next_call_cold_starts(aws, deploy):
    # Given a function with Timeout=1 whose handler sleeps for 5 s
    name = deploy("app.sleep", timeout=1)
    client = aws("lambda")

    # When it is invoked
    started = time.monotonic()
    response, body = _invoke(client, name, {"seconds": 5})
    elapsed = time.monotonic() - started

    # Then the emulator stops it after 1 s with Lambda's timeout error
    assert elapsed < 2.5
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    request_id = response["ResponseMetadata"]["RequestId"]
    assert (
        body["errorMessage"] == f"RequestId: {request_id} Error: Task timed out after 1.00 seconds"
    )

    # And the next invocation works in a fresh environment
    response, body = _invoke(client, name, {"seconds": 0}, LogType="Tail")
    assert "FunctionError" not in response
    assert body["slept"] == 0
    assert "Init Duration" in base64.b64decode(response["LogResult"]).decode()


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "missing_module.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'missing_module': No module named 'missing_module'",
        ),
        (
            "app.no_such_handler",
            "Runtime.HandlerNotFound",
            "Handler 'no_such_handler' missing on module 'app'",
        ),
    ],
)
def test_init_errors_have_lambda_bodies(aws, deploy, handler, error_type, message):
    # Given a function whose handler cannot be loaded
    name = deploy(handler)

    # When it is invoked
    response, body = _invoke(aws("lambda"), name, {})

    # Then the answer is the runtime's init error
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message


def test_runtime_exit_is_reported(aws, deploy):
    # Given a handler that exits the process
    name = deploy("app.crash")

    # When it is invoked
    response, body = _invoke(aws("lambda"), name, {})

    # Then Lambda's Runtime.ExitError comes back
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")


def test_tail_returns_the_invocation_log(aws, deploy):
    # Given a handler that prints and logs
    name = deploy("app.chatty")

    # When invoked with LogType=Tail
    response, body = _invoke(aws("lambda"), name, {"marker": "m-42"}, LogType="Tail")

    # Then LogResult is the base64 of the log, with Lambda's START/END/REPORT lines
    request_id = response["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(response["LogResult"]).decode()
    assert body == "ok"
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert "hello from print m-42" in log
    assert f"{request_id}\thello from logging m-42" in log
    assert f"END RequestId: {request_id}" in log
    assert f"REPORT RequestId: {request_id}\tDuration: " in log
    assert "\tMemory Size: 128 MB\tMax Memory Used: " in log
    assert log.index("START") < log.index("hello from print") < log.index("END RequestId")


def test_event_invocation_is_accepted_and_runs_later(aws, deploy, lambdas, unique):
    # Given a function that writes to S3 through the SDK (pointed at the emulator)
    bucket = f"lambda-event-{unique}"
    aws("s3").create_bucket(Bucket=bucket)
    name = deploy("app.put_object")

    # When it is invoked asynchronously
    response = aws("lambda").invoke(
        FunctionName=name,
        InvocationType="Event",
        Payload=json.dumps({"bucket": bucket, "key": "out.txt"}).encode(),
    )

    # Then Lambda answers 202 with an empty body, and the function runs afterwards
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    assert lambdas.wait_for_background(timeout=20)
    stored = aws("s3").get_object(Bucket=bucket, Key="out.txt")["Body"].read()
    assert stored == b"from lambda"


def test_dry_run_checks_the_function_without_running_it(aws, deploy):
    # Given a function
    name = deploy("app.echo")

    # When invoked with InvocationType=DryRun
    response = aws("lambda").invoke(FunctionName=name, InvocationType="DryRun")

    # Then Lambda answers 204 with nothing to read
    assert response["StatusCode"] == 204
    assert response["Payload"].read() == b""


def test_unknown_function_is_resource_not_found(aws, lambdas):
    # When a function that does not exist is invoked
    with pytest.raises(ClientError) as raised:
        aws("lambda").invoke(FunctionName="no-such-function", Payload=b"{}")

    # Then the error names its ARN, as Lambda's does
    error = raised.value.response["Error"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Code"] == "ResourceNotFoundException"
    assert error["Message"] == (
        "Function not found: arn:aws:lambda:us-east-1:123456789012:function:no-such-function"
    )


def test_payload_must_be_json(aws, deploy):
    # Given a function
    name = deploy("app.echo")

    # When the payload is not JSON
    with pytest.raises(ClientError) as raised:
        aws("lambda").invoke(FunctionName=name, Payload=b"not json")

    # Then Lambda refuses it before running anything
    assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert "Could not parse request body into json" in raised.value.response["Error"]["Message"]


def test_published_version_reports_executed_version(aws, deploy):
    # Given a function with a published version 1
    name = deploy("app.context_info")
    client = aws("lambda")
    version = client.publish_version(FunctionName=name)["Version"]

    # When that version is invoked by qualifier
    response, body = _invoke(client, name, {}, Qualifier=version)

    # Then the version ran and says so
    assert response["ExecutedVersion"] == version
    assert body["function_version"] == version
    assert body["invoked_function_arn"].endswith(f":function:{name}:{version}")


def test_client_context_reaches_the_handler(aws, deploy):
    # Given a function that returns its client context
    name = deploy("app.client_context")
    context = {"custom": {"tenant": "plant-7"}, "env": {"platform": "test"}}

    # When it is invoked with X-Amz-Client-Context (base64 JSON)
    encoded = base64.b64encode(json.dumps(context).encode()).decode()
    _, body = _invoke(aws("lambda"), name, {}, ClientContext=encoded)

    # Then the handler sees the decoded fields
    assert body == context


def test_aws_cli_invoke(deploy, emulator, tmp_path):
    # Given a function
    name = deploy("app.echo")
    out = tmp_path / "out.json"

    # When the AWS CLI (v1: --payload is sent as is) invokes it with a log tail
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("aws")),
            "lambda",
            "invoke",
            "--function-name",
            name,
            "--payload",
            '{"from": "cli"}',
            "--log-type",
            "Tail",
            "--endpoint-url",
            emulator.endpoint_url,
            "--region",
            "us-east-1",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    # Then the CLI prints the status and log, and writes the response
    summary = json.loads(completed.stdout)
    assert summary["StatusCode"] == 200
    assert "END RequestId:" in base64.b64decode(summary["LogResult"]).decode()
    assert json.loads(out.read_text()) == {"echo": {"from": "cli"}}
