"""Fixtures for the Lambda runtime tests: the runtime on the session emulator, an IAM role,
and a factory that deploys a small handler package with boto3, as a user would."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import pytest
from iam_roles import ensure_lambda_role

# The function code the tests deploy: one module, several handlers.
APP_SOURCE = """
import json
import logging
import os
import sys
import time

print("init: module loaded")
logger = logging.getLogger()
logger.setLevel(logging.INFO)


def echo(event, context):
    return {"echo": event}


def context_info(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "cwd": os.getcwd(),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "sys_path_has_project": any(p.endswith("/work/main") for p in sys.path),
    }


def environment(event, context):
    names = event.get("names", [])
    return {name: os.environ.get(name) for name in names}


def fail(event, context):
    raise ValueError("bad input: " + json.dumps(event))


def sleep(event, context):
    print("sleeping", event.get("seconds"))
    time.sleep(event.get("seconds", 0))
    return {"slept": event.get("seconds", 0), "pid": os.getpid()}


def chatty(event, context):
    print("hello from print", event.get("marker"))
    logger.info("hello from logging %s", event.get("marker"))
    return "ok"


def pid(event, context):
    return {"pid": os.getpid()}


def crash(event, context):
    os._exit(3)


def hog(event, context):
    held = b"x" * (event["megabytes"] * 1024 * 1024)
    time.sleep(event.get("hold_seconds", 1))
    return len(held)


def client_context(event, context):
    return {"custom": context.client_context.custom, "env": context.client_context.env}


def put_object(event, context):
    import boto3  # the SDK comes with the runtime, as on Lambda

    boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"from lambda")
    return "stored"


def big_output(event, context):
    print("x" * event.get("size", 0))
    return "done"
"""


def build_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def app_package() -> Callable[[str], bytes]:
    """Build a deployment package whose app.py is the test app with `replace` applied."""

    def build(old: str = "", new: str = "") -> bytes:
        return build_zip({"app.py": APP_SOURCE.replace(old, new) if old else APP_SOURCE})

    return build


@pytest.fixture(scope="session")
def lambdas(emulator):
    """The Lambda runtime component of the shared emulator."""
    return emulator.lambdas


@pytest.fixture(scope="session")
def lambda_role(aws) -> str:
    """An execution role that trusts Lambda and allows what AWSLambdaBasicExecutionRole allows,
    and the function's own SDK calls of these tests (app.put_object's bucket)."""
    arn = ensure_lambda_role(aws("iam"), "lambda-runtime-tests")
    aws("iam").put_role_policy(
        RoleName="lambda-runtime-tests",
        PolicyName="s3-writes",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": "arn:aws:s3:::lambda-event-*/*",
                    }
                ],
            }
        ),
    )
    return arn


@pytest.fixture
def deploy(aws, lambda_role, lambdas, unique) -> Callable[..., str]:
    """Create a function from `files` (default: the test app) and return its name."""
    client = aws("lambda")

    def create(
        handler: str = "app.echo",
        files: dict[str, str] | None = None,
        timeout: int = 3,
        memory_size: int = 128,
        environment: dict[str, str] | None = None,
        name: str | None = None,
    ) -> str:
        function_name = name or f"fn-{handler.replace('.', '-').replace('/', '-')}-{unique}"
        client.create_function(
            FunctionName=function_name,
            Runtime="python3.11",
            Role=lambda_role,
            Handler=handler,
            Code={"ZipFile": build_zip(files or {"app.py": APP_SOURCE})},
            Timeout=timeout,
            MemorySize=memory_size,
            Environment={"Variables": environment or {}},
        )
        return function_name

    return create
