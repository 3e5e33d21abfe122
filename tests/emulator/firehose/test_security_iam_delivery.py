"""Firehose acts with the stream's RoleARN, as on AWS: the role must trust firehose.amazonaws.com
(with the account as sts:ExternalId) and allow s3:PutObject on bucket/*, lambda:InvokeFunction
for the processor and logs:PutLogEvents for the error log; a bucket policy Deny wins. A denied
delivery is retried and its records are kept, in order, until the permission is restored.

Roles and policies are made with boto3; what the tests observe is what a user can: the objects,
the CloudWatch error log, the processing-failed output and the emulator's errors view."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from firehose_helpers import (
    IMMEDIATE,
    deploy_functions,
    error_log,
    error_log_events,
    lambda_processing,
    make_stream,
    read_object,
    wait_for_objects,
)
from iam_roles import firehose_delivery_policy, firehose_trust, policy, statement

ACCOUNT = "123456789012"


def make_role(aws, name: str, access: dict | None, trust: dict | None = None, **extra) -> str:
    iam = aws("iam")
    arn = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or firehose_trust()), **extra
    )["Role"]["Arn"]
    if access is not None:
        iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(access))
    return arn


def s3_policy(*resources: str, effect: str = "Allow", action: str = "s3:PutObject") -> dict:
    return policy(statement(effect, action, list(resources)))


def stream_with_role(aws, name: str, bucket: str, role: str, **destination) -> None:
    make_stream(aws, name, bucket, role, BufferingHints=IMMEDIATE, **destination)


def errors_view(emulator, stream: str) -> list[dict]:
    query = urllib.parse.urlencode({"stream": stream})
    url = f"{emulator.endpoint_url}/_emulator/firehose/errors?{query}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_for_denial(emulator, stream: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in errors_view(emulator, stream) if "denial" in e]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no IAM denial reported for {stream}: {errors_view(emulator, stream)}")


def assert_nothing_written(aws, bucket: str) -> None:
    assert aws("s3").list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def put(aws, stream: str, *records: bytes) -> None:
    aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": r} for r in records]
    )


def test_role_without_policy_keeps_records_until_permission_is_restored(aws, unique, emulator):
    # Given a stream whose role trusts Firehose but has no permissions policy
    stream = bucket = f"iam-none-{unique}"
    role = make_role(aws, f"iam-none-{unique}", None)
    stream_with_role(aws, stream, bucket, role)

    # When records are put
    put(aws, stream, b"one\n", b"two\n")

    # Then nothing is written; the denial names the role, the action, the object and no statement
    denial = wait_for_denial(emulator, stream)
    assert denial["errorCode"] == "S3.AccessDenied"
    detail = denial["denial"]
    assert detail["action"] == "s3:PutObject"
    assert detail["resource"].startswith(f"arn:aws:s3:::{bucket}/")
    assert detail["principal"].startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/iam-none-{unique}/")
    assert detail["decision"] == "implicitDeny" and detail["statements"] == []
    assert_nothing_written(aws, bucket)

    # When more records arrive and then the permission is granted
    put(aws, stream, b"three\n")
    aws("iam").put_role_policy(
        RoleName=f"iam-none-{unique}",
        PolicyName="access",
        PolicyDocument=json.dumps(s3_policy(f"arn:aws:s3:::{bucket}/*")),
    )

    # Then every record is delivered, in the order it was put, nothing lost
    s3 = aws("s3")
    deadline = time.monotonic() + 40
    body = b""
    while time.monotonic() < deadline:
        objects = wait_for_objects(s3, bucket, timeout=40)
        body = b"".join(read_object(s3, bucket, o["Key"])[0] for o in objects)
        if body.count(b"\n") >= 3:
            break
        time.sleep(0.2)
    assert body == b"one\ntwo\nthree\n"


@pytest.mark.parametrize(
    ("case", "resource"),
    [
        ("wrong-bucket", "arn:aws:s3:::some-other-bucket/*"),
        # arn:aws:s3:::bucket/ names the object with an empty key only: PutObject needs bucket/*
        ("trailing-slash", "arn:aws:s3:::{bucket}/"),
        # the bucket ARN itself matches bucket-level actions, never an object's
        ("bucket-only", "arn:aws:s3:::{bucket}"),
    ],
)
def test_policy_for_another_resource_does_not_allow_delivery(aws, unique, emulator, case, resource):
    # Given a role whose s3:PutObject names a resource that is not bucket/*
    stream = bucket = f"iam-{case}-{unique}"
    role = make_role(aws, stream, s3_policy(resource.format(bucket=bucket)))
    stream_with_role(aws, stream, bucket, role)

    # When a record is put
    put(aws, stream, b"x\n")

    # Then it is denied (no statement matches) and nothing is written
    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["decision"] == "implicitDeny"
    assert denial["denial"]["statements"] == []
    assert_nothing_written(aws, bucket)


def test_explicit_deny_beats_allow(aws, unique, emulator):
    # Given a role that allows s3:* and denies s3:PutObject on the bucket
    stream = bucket = f"iam-deny-{unique}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "All", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Sid": "NoWrites",
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        ],
    }
    stream_with_role(aws, stream, bucket, make_role(aws, stream, policy))

    # When a record is put
    put(aws, stream, b"x\n")

    # Then the Deny statement decides, and the view names it
    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["decision"] == "explicitDeny"
    assert [s["statement"] for s in denial["denial"]["statements"] if s["effect"] == "Deny"] == [
        "Sid 'NoWrites'"
    ]
    assert_nothing_written(aws, bucket)


def test_permissions_boundary_limits_the_role(aws, unique, emulator):
    # Given a role allowed everything on S3 but bounded to CloudWatch Logs
    stream = bucket = f"iam-bound-{unique}"
    boundary = aws("iam").create_policy(
        PolicyName=f"logs-only-{unique}",
        PolicyDocument=json.dumps(s3_policy("*", action="logs:*")),
    )["Policy"]["Arn"]
    role = make_role(aws, stream, s3_policy("*", action="s3:*"), PermissionsBoundary=boundary)
    stream_with_role(aws, stream, bucket, role)

    # When a record is put
    put(aws, stream, b"x\n")

    # Then the boundary denies the write
    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["action"] == "s3:PutObject"
    assert "boundary" in denial["denial"]["message"]
    assert_nothing_written(aws, bucket)


def test_role_that_trusts_another_service_cannot_be_assumed(aws, unique, emulator):
    # Given a role with every permission whose trust policy names lambda.amazonaws.com
    stream = bucket = f"iam-trust-{unique}"
    trust = firehose_trust()
    trust["Statement"][0]["Principal"] = {"Service": "lambda.amazonaws.com"}
    role = make_role(aws, stream, firehose_delivery_policy(), trust=trust)
    stream_with_role(aws, stream, bucket, role)

    # When a record is put
    put(aws, stream, b"x\n")

    # Then Firehose may not assume the role: S3.AccessDenied, decided by sts:AssumeRole
    denial = wait_for_denial(emulator, stream)
    assert denial["errorCode"] == "S3.AccessDenied"
    assert denial["denial"]["action"] == "sts:AssumeRole"
    assert denial["denial"]["principal"] == "firehose.amazonaws.com"
    assert_nothing_written(aws, bucket)


def test_trust_with_another_external_id_cannot_be_assumed(aws, unique, emulator):
    # Given the documented trust policy, but with another account's id as sts:ExternalId
    stream = bucket = f"iam-extid-{unique}"
    role = make_role(aws, stream, firehose_delivery_policy(), trust=firehose_trust("999999999999"))
    stream_with_role(aws, stream, bucket, role)

    put(aws, stream, b"x\n")

    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["action"] == "sts:AssumeRole"
    assert_nothing_written(aws, bucket)


def test_bucket_policy_deny_for_the_role_blocks_delivery(aws, unique, emulator):
    # Given a role allowed to write, and a bucket policy that denies that role
    stream = bucket = f"iam-bucketpol-{unique}"
    role = make_role(aws, stream, firehose_delivery_policy(bucket))
    stream_with_role(aws, stream, bucket, role)
    deny = {"Sid": "NoFirehose", "Principal": {"AWS": role}}
    deny |= statement("Deny", "s3:PutObject", f"arn:aws:s3:::{bucket}/*")
    aws("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy(deny)))

    # When a record is put
    put(aws, stream, b"x\n")

    # Then the bucket policy's statement decides
    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["decision"] == "explicitDeny"
    assert any(
        s["statement"] == "Sid 'NoFirehose'" and s["policyType"] == "resource"
        for s in denial["denial"]["statements"]
    )
    assert_nothing_written(aws, bucket)


def test_denied_delivery_is_logged_to_cloudwatch(aws, unique, emulator):
    # Given error logging, and a role that may log but not write the bucket
    stream = bucket = f"iam-cw-{unique}"
    logs = aws("logs")
    group, logging = error_log(logs, stream)
    policy = s3_policy(f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{group}:*",
                       action="logs:PutLogEvents")  # fmt: skip
    role = make_role(aws, stream, policy)
    stream_with_role(aws, stream, bucket, role, CloudWatchLoggingOptions=logging)

    # When a record is put
    put(aws, stream, b"x\n")

    # Then the error log holds S3.AccessDenied with Firehose's message
    events = error_log_events(logs, group)
    message = json.loads(events[0]["message"])
    assert message["errorCode"] == "S3.AccessDenied"
    assert message["message"].startswith("Access was denied.")
    assert message["destination"] == f"arn:aws:s3:::{bucket}"


def test_error_log_needs_put_log_events(aws, unique, emulator):
    # Given error logging and a role without logs:PutLogEvents (nor S3 access)
    stream = bucket = f"iam-nocw-{unique}"
    logs = aws("logs")
    group, logging = error_log(logs, stream)
    role = make_role(aws, stream, None)
    stream_with_role(aws, stream, bucket, role, CloudWatchLoggingOptions=logging)

    put(aws, stream, b"x\n")
    wait_for_denial(emulator, stream)
    time.sleep(1.0)  # two more attempts, each of which would log

    # Then the error log stays empty
    events = logs.get_log_events(logGroupName=group, logStreamName="DestinationDelivery")["events"]
    assert events == []


TRANSFORM = """
import base64

def handler(event, context):
    return {"records": [
        {"recordId": r["recordId"], "result": "Ok",
         "data": base64.b64encode(base64.b64decode(r["data"]).upper()).decode()}
        for r in event["records"]]}
"""


@pytest.fixture(scope="module")
def transform_arn(aws) -> str:
    return deploy_functions(aws, "iam-delivery-transform", "transform", TRANSFORM)["handler"]


def test_missing_invoke_permission_sends_records_to_processing_failed(
    aws, unique, emulator, transform_arn
):
    # Given a processor, and a role that may write S3 but not invoke the function
    stream = bucket = f"iam-noinvoke-{unique}"
    role = make_role(aws, stream, s3_policy(f"arn:aws:s3:::{bucket}/*"))
    stream_with_role(
        aws, stream, bucket, role,
        Prefix="ok/", ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        ProcessingConfiguration=lambda_processing(transform_arn, retries=1),
    )  # fmt: skip

    # When records are put
    put(aws, stream, b"a", b"b")

    # Then after the retries they are processing-failed with Lambda.InvokeAccessDenied
    s3 = aws("s3")
    (obj,) = wait_for_objects(s3, bucket, prefix="errors/processing-failed/")
    lines = [json.loads(x) for x in read_object(s3, bucket, obj["Key"])[0].splitlines()]
    assert [x["rawData"] for x in lines] == ["YQ==", "Yg=="]
    assert {(x["errorCode"], x["attemptsMade"]) for x in lines} == {
        ("Lambda.InvokeAccessDenied", 2)
    }
    assert lines[0]["errorMessage"].startswith("Access was denied.")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="ok/").get("KeyCount", 0) == 0
    denial = wait_for_denial(emulator, stream)
    assert denial["denial"]["action"] == "lambda:InvokeFunction"
    assert denial["denial"]["resource"] == transform_arn


def test_invoke_permission_lets_the_processor_run(aws, unique, emulator, transform_arn):
    # Given the same stream with a role that may also invoke the function
    stream = bucket = f"iam-invoke-{unique}"
    role = make_role(aws, stream, firehose_delivery_policy(bucket, functions=transform_arn))
    stream_with_role(
        aws, stream, bucket, role, Prefix="ok/",
        ProcessingConfiguration=lambda_processing(transform_arn, retries=1),
    )  # fmt: skip

    put(aws, stream, b"a\n", b"b\n")

    # Then the transformed records arrive
    s3 = aws("s3")
    (obj,) = wait_for_objects(s3, bucket, prefix="ok/")
    assert read_object(s3, bucket, obj["Key"])[0] == b"A\nB\n"
