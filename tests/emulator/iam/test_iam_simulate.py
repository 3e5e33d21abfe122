"""iam:SimulatePrincipalPolicy and iam:SimulateCustomPolicy through boto3 and the AWS CLI: the
same evaluator that enforcement uses, in the response shape botocore parses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"


def document(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TRUST = document(
    {
        "Effect": "Allow",
        "Principal": {"Service": "firehose.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
)


@pytest.fixture(scope="module")
def iam(aws):
    return aws("iam")


def test_simulate_principal_policy_reads_inline_managed_and_boundary(iam, unique):
    boundary = iam.create_policy(
        PolicyName=f"sim-boundary-{unique}",
        PolicyDocument=document({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    role = iam.create_role(
        RoleName=f"sim-{unique}", AssumeRolePolicyDocument=TRUST, PermissionsBoundary=boundary
    )["Role"]
    iam.put_role_policy(
        RoleName=role["RoleName"],
        PolicyName="write-raw",
        PolicyDocument=document(
            {"Effect": "Allow", "Action": ["s3:PutObject", "firehose:*"], "Resource": "*"}
        ),
    )
    managed = iam.create_policy(
        PolicyName=f"sim-deny-{unique}",
        PolicyDocument=document(
            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::locked/*"}
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role["RoleName"], PolicyArn=managed)

    results = iam.simulate_principal_policy(
        PolicySourceArn=role["Arn"],
        ActionNames=["s3:PutObject", "firehose:PutRecordBatch"],
        ResourceArns=["arn:aws:s3:::raw/k", "arn:aws:s3:::locked/k"],
    )["EvaluationResults"]
    by_key = {(r["EvalActionName"], r["EvalResourceName"]): r for r in results}
    allowed = by_key[("s3:PutObject", "arn:aws:s3:::raw/k")]
    assert allowed["EvalDecision"] == "allowed"
    assert allowed["MatchedStatements"] == [
        {"SourcePolicyId": "write-raw", "SourcePolicyType": "role"}
    ]
    assert allowed["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    locked = by_key[("s3:PutObject", "arn:aws:s3:::locked/k")]
    assert locked["EvalDecision"] == "explicitDeny"
    assert locked["MatchedStatements"][0] == {
        "SourcePolicyId": f"sim-deny-{unique}",
        "SourcePolicyType": "user-managed",
    }
    outside_boundary = by_key[("firehose:PutRecordBatch", "arn:aws:s3:::raw/k")]
    assert outside_boundary["EvalDecision"] == "implicitDeny"
    assert outside_boundary["PermissionsBoundaryDecisionDetail"] == {
        "AllowedByPermissionsBoundary": False
    }


def test_simulate_principal_policy_unknown_role(iam):
    with pytest.raises(ClientError) as error:
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/nobody", ActionNames=["s3:PutObject"]
        )
    assert error.value.response["Error"]["Code"] == "NoSuchEntity"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_simulate_custom_policy_with_context_entries(iam):
    policy = document(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/${aws:PrincipalTag/team}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    )

    def simulate(entries):
        return iam.simulate_custom_policy(
            PolicyInputList=[policy],
            ActionNames=["s3:PutObject"],
            ResourceArns=["arn:aws:s3:::b/red/k"],
            ContextEntries=entries,
        )["EvaluationResults"][0]

    team = {"ContextKeyName": "aws:PrincipalTag/team", "ContextKeyValues": ["red"]}
    team["ContextKeyType"] = "string"
    secure = {
        "ContextKeyName": "aws:SecureTransport",
        "ContextKeyValues": ["true"],
        "ContextKeyType": "boolean",
    }
    result = simulate([team, secure])
    assert result["EvalDecision"] == "allowed"
    assert result["MatchedStatements"] == [
        {"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none"}
    ]
    without = simulate([team])
    assert without["EvalDecision"] == "implicitDeny"
    assert without["MissingContextValues"] == ["aws:securetransport"]


def test_simulate_custom_policy_resource_policy_needs_a_caller(iam):
    bucket_policy = document(
        {
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::b/*",
        }
    )
    identity = document({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    with pytest.raises(ClientError) as error:
        iam.simulate_custom_policy(
            PolicyInputList=[identity], ActionNames=["s3:GetObject"], ResourcePolicy=bucket_policy
        )
    assert error.value.response["Error"]["Code"] == "InvalidInput"
    assert "CallerArn" in error.value.response["Error"]["Message"]
    denied = iam.simulate_custom_policy(
        PolicyInputList=[identity],
        ActionNames=["s3:GetObject"],
        ResourceArns=["arn:aws:s3:::b/k"],
        ResourcePolicy=bucket_policy,
        CallerArn=f"arn:aws:iam::{ACCOUNT}:user/alice",
    )["EvaluationResults"][0]
    assert denied["EvalDecision"] == "explicitDeny"
    assert denied["MatchedStatements"] == [
        {"SourcePolicyId": "ResourcePolicy", "SourcePolicyType": "resource"}
    ]


def test_simulate_custom_policy_refuses_a_malformed_document(iam):
    with pytest.raises(ClientError) as error:
        iam.simulate_custom_policy(
            PolicyInputList=[document({"Effect": "Allow", "Action": "s3:*"})],
            ActionNames=["s3:GetObject"],
        )
    assert error.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert "must contain resources" in error.value.response["Error"]["Message"]


def test_simulate_custom_policy_with_the_aws_cli(emulator, tmp_path):
    policy = document({"Effect": "Allow", "Action": "firehose:PutRecordBatch", "Resource": "*"})
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            policy,
            "--action-names",
            "firehose:PutRecordBatch",
            "firehose:DeleteDeliveryStream",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    decisions = {
        r["EvalActionName"]: r["EvalDecision"] for r in json.loads(out.stdout)["EvaluationResults"]
    }
    assert decisions == {
        "firehose:PutRecordBatch": "allowed",
        "firehose:DeleteDeliveryStream": "implicitDeny",
    }
