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


def test_deny_without_tls_does_not_deny_the_emulators_endpoint(aws, unique):
    # The SAM CLI's managed bucket denies requests without TLS; the endpoint stands in for
    # AWS's HTTPS endpoint, so the owner's uploads go through, as they do on AWS.
    s3 = aws("s3")
    bucket = f"pol-tls-{unique}"
    _bucket_with_policy(
        s3,
        bucket,
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )
    assert _put_status(s3, bucket) == 200


def test_unconditional_deny_is_applied(aws, unique):
    s3 = aws("s3")
    bucket = f"pol-deny-{unique}"
    _bucket_with_policy(s3, bucket, {"Effect": "Deny", "Action": "s3:PutObject"})
    assert _put_status(s3, bucket) == 403


def test_deny_with_condition_that_holds_is_applied(aws, unique):
    s3 = aws("s3")
    bucket = f"pol-holds-{unique}"
    _bucket_with_policy(
        s3,
        bucket,
        {
            "Effect": "Deny",
            "Action": "s3:Put*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        },
    )
    assert _put_status(s3, bucket) == 403


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


def test_deny_for_a_service_principal_does_not_apply_to_the_owner(aws, unique):
    s3 = aws("s3")
    bucket = f"pol-svc-{unique}"
    _bucket_with_policy(
        s3,
        bucket,
        {"Effect": "Deny", "Action": "s3:*", "Principal": {"Service": "firehose.amazonaws.com"}},
    )
    assert _put_status(s3, bucket) == 200
