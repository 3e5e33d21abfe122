"""A function's own SDK calls are made with its execution role: each execution environment gets
credentials of its own, which the emulator maps back to the role and authorises like any call
made with that role (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
Functions, roles and buckets are made with boto3 against the session emulator (IAM enforced)."""

from __future__ import annotations

import json

from iam_roles import LAMBDA_LOGS_POLICY, ensure_role, lambda_trust
from support.packages import function_zip

CODE = """
import os

import boto3


def handler(event, context):
    s3 = boto3.client("s3")
    try:
        if event["call"] == "put":
            s3.put_object(Bucket=event["bucket"], Key="from-lambda", Body=b"x")
        else:
            s3.list_buckets()
        return {"ok": True, "key": os.environ["AWS_ACCESS_KEY_ID"][:4]}
    except Exception as exc:
        return {"ok": False, "error": str(exc)}
"""


def _function(aws, unique: str, bucket: str) -> str:
    name = f"calls-{unique}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            *LAMBDA_LOGS_POLICY["Statement"],
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        ],
    }
    role = ensure_role(aws("iam"), name, lambda_trust(), policy)
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": function_zip({"index.py": CODE})},
        Timeout=10,
    )
    return name


def _invoke(aws, name: str, **event) -> dict:
    answer = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    assert "FunctionError" not in answer, answer["Payload"].read()
    return json.loads(answer["Payload"].read())


def test_function_calls_are_allowed_and_denied_by_its_execution_role(aws, unique):
    s3 = aws("s3")
    allowed, other = f"calls-ok-{unique}", f"calls-no-{unique}"
    for bucket in (allowed, other):
        s3.create_bucket(Bucket=bucket)
    name = _function(aws, unique, allowed)

    # a write the role allows goes through, with temporary credentials (ASIA...) of its own
    assert _invoke(aws, name, call="put", bucket=allowed) == {"ok": True, "key": "ASIA"}
    assert s3.get_object(Bucket=allowed, Key="from-lambda")["Body"].read() == b"x"

    # a write the role does not allow is denied with IAM's explanation, and nothing is written
    denied = _invoke(aws, name, call="put", bucket=other)
    assert denied["ok"] is False
    assert "AccessDenied" in denied["error"]
    assert (
        f"assumed-role/{name}/{name} is not authorized to perform: s3:PutObject"
        in (denied["error"])
    )
    assert f"arn:aws:s3:::{other}/from-lambda" in denied["error"]
    assert "because no identity-based policy allows the s3:PutObject action" in denied["error"]
    assert "Contents" not in s3.list_objects_v2(Bucket=other)


def test_a_call_whose_permission_the_emulator_cannot_tell_is_refused(aws, unique):
    allowed = f"calls-ok-{unique}"
    aws("s3").create_bucket(Bucket=allowed)
    name = _function(aws, unique, allowed)
    refused = _invoke(aws, name, call="list")
    assert refused["ok"] is False
    assert "cannot tell which IAM permission" in refused["error"]
    assert f"role/{name}" in refused["error"]
