"""Bucket policies applied by S3 to object requests with their conditions evaluated
(emulator/s3/bucket_policy.py), through the real S3 API of the emulator."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError


def _bucket_with_policy(s3, name: str, statement: dict) -> None:
    s3.create_bucket(Bucket=name)
    statement = {"Principal": "*", "Resource": f"arn:aws:s3:::{name}/*", **statement}
    s3.put_bucket_policy(
        Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )


def _put_status(s3, bucket: str) -> int:
    try:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    except ClientError as exc:
        return exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return 200


def _deny(action: str, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, **extra}


def _secure_transport(value: str) -> dict:
    return {"Bool": {"aws:SecureTransport": value}}


@pytest.mark.parametrize(
    ("statement", "status"),
    [
        # The SAM CLI's managed bucket denies requests without TLS; the endpoint stands in for
        # AWS's HTTPS endpoint, so the owner's uploads go through, as they do on AWS.
        pytest.param(
            _deny("s3:*", Condition=_secure_transport("false")),
            200,
            id="deny-without-tls-does-not-deny-the-emulators-endpoint",
        ),
        pytest.param(_deny("s3:PutObject"), 403, id="unconditional-deny"),
        pytest.param(
            _deny("s3:Put*", Condition=_secure_transport("true")),
            403,
            id="deny-with-condition-that-holds",
        ),
        pytest.param(
            _deny("s3:*", Principal={"Service": "firehose.amazonaws.com"}),
            200,
            id="deny-for-a-service-principal-does-not-apply-to-the-owner",
        ),
    ],
)
def test_deny_statement_is_applied_as_its_condition_says(aws, unique, statement, status):
    s3 = aws("s3")
    bucket = f"pol-{unique}"
    _bucket_with_policy(s3, bucket, statement)
    assert _put_status(s3, bucket) == status


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"s3:TlsVersion": "1.2"}},  # operator not evaluated here
        {"StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},  # key not known
    ],
)
def test_deny_with_condition_not_evaluated_fails_closed(aws, unique, condition):
    s3 = aws("s3")
    bucket = f"pol-unk-{unique}-{len(json.dumps(condition))}"
    _bucket_with_policy(s3, bucket, {"Effect": "Deny", "Action": "s3:*", "Condition": condition})
    assert _put_status(s3, bucket) == 403
