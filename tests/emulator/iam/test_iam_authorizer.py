"""`emulator.iam`: roles and policies made with boto3 against the emulator, decided as AWS would.

Everything a decision reads is created through the public API (IAM, S3, Lambda,
CloudFormation); the decisions are what the services will ask before acting for the user.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from support.lambdas import create_function
from support.packages import function_zip

ACCOUNT = "123456789012"
V12 = "2012-10-17"


def document(*statements) -> str:
    return json.dumps({"Version": V12, "Statement": list(statements)})


def trust(service: str, **condition) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return document(statement)


@pytest.fixture(scope="module")
def iam(aws):
    return aws("iam")


@pytest.fixture
def role(iam, unique):
    """role(*inline_statements, trust_document=..., boundary=...) -> role ARN."""

    def make(*statements, trust_document=None, boundary=None, name=None):
        kwargs = {}
        if boundary:
            kwargs["PermissionsBoundary"] = boundary
        arn = iam.create_role(
            RoleName=name or f"role-{unique}",
            AssumeRolePolicyDocument=trust_document or trust("firehose.amazonaws.com"),
            **kwargs,
        )["Role"]["Arn"]
        if statements:
            iam.put_role_policy(
                RoleName=arn.rsplit("/", 1)[-1],
                PolicyName="inline",
                PolicyDocument=document(*statements),
            )
        return arn

    return make


def test_role_without_policies_is_denied(emulator, role):
    arn = role()
    decision = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert decision.decision == "implicitDeny"
    assert decision.message().startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{arn.rsplit('/', 1)[-1]}/"
    )
    assert decision.message().endswith(
        "because no identity-based policy allows the s3:PutObject action"
    )


def test_unknown_role_is_denied_and_named(emulator):
    arn = f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"
    decision = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert not decision.allowed
    assert f"the role {arn} does not exist" in decision.message()


def test_wrong_resource_arn_is_denied(emulator, role):
    arn = role({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::raw/*"})
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/2026/k").allowed
    assert not emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::processed/k").allowed


def test_trailing_slash_bucket_arn_matches_no_bucket_action(emulator, role):
    arn = role(
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:PutObject"],
            "Resource": "arn:aws:s3:::raw/",
        }
    )
    for action, resource in [
        ("s3:ListBucket", "arn:aws:s3:::raw"),
        ("s3:GetBucketLocation", "arn:aws:s3:::raw"),
        ("s3:PutObject", "arn:aws:s3:::raw/k"),
    ]:
        decision = emulator.iam.authorize(arn, action, resource)
        assert decision.decision == "implicitDeny", (action, decision)


def test_customer_managed_deny_beats_inline_allow(emulator, iam, role, unique):
    arn = role({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    policy_arn = iam.create_policy(
        PolicyName=f"no-delete-{unique}",
        PolicyDocument=document(
            {"Sid": "NoDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=arn.rsplit("/", 1)[-1], PolicyArn=policy_arn)
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed
    denied = emulator.iam.authorize(arn, "s3:DeleteObject", "arn:aws:s3:::raw/k")
    assert denied.decision == "explicitDeny"
    assert policy_arn in denied.message() and "Sid 'NoDelete'" in denied.message()


def test_managed_policy_default_version_decides_and_a_new_default_is_seen(
    emulator, iam, role, unique
):
    arn = role()
    policy_arn = iam.create_policy(
        PolicyName=f"put-{unique}",
        PolicyDocument=document({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=arn.rsplit("/", 1)[-1], PolicyArn=policy_arn)
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed
    # A second version that is not the default changes nothing ...
    iam.create_policy_version(
        PolicyArn=policy_arn,
        PolicyDocument=document({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}),
        SetAsDefault=False,
    )
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed
    # ... until it becomes the default: the cached decision is not reused.
    iam.set_default_policy_version(PolicyArn=policy_arn, VersionId="v2")
    decision = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert decision.decision == "implicitDeny"


def test_permissions_boundary_limits_the_role(emulator, iam, role, unique):
    boundary_arn = iam.create_policy(
        PolicyName=f"boundary-{unique}",
        PolicyDocument=document({"Effect": "Allow", "Action": "firehose:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    arn = role(
        {"Effect": "Allow", "Action": ["s3:*", "firehose:*"], "Resource": "*"},
        boundary=boundary_arn,
    )
    stream = f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/s"
    assert emulator.iam.authorize(arn, "firehose:PutRecordBatch", stream).allowed
    denied = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert denied.decision == "implicitDeny"
    assert "no permissions boundary allows the s3:PutObject action" in denied.message()


def test_trust_policy_with_confused_deputy_conditions(emulator, role):
    rule_arns = f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/*"
    arn = role(
        trust_document=trust(
            "iot.amazonaws.com",
            StringEquals={"aws:SourceAccount": ACCOUNT},
            ArnLike={"aws:SourceArn": rule_arns},
        )
    )
    rule = {
        "aws:SourceAccount": ACCOUNT,
        "aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/r",
    }
    assert emulator.iam.can_assume(arn, "iot.amazonaws.com", rule).allowed
    other_account = {**rule, "aws:SourceAccount": "999999999999"}
    assert not emulator.iam.can_assume(arn, "iot.amazonaws.com", other_account).allowed
    # Without the keys the conditions cannot hold (AWS always sends them for IoT rules).
    assert not emulator.iam.can_assume(arn, "iot.amazonaws.com").allowed


def test_trust_policy_for_another_service_principal_is_denied(emulator, role):
    arn = role(trust_document=trust("firehose.amazonaws.com"))
    decision = emulator.iam.can_assume(arn, "iot.amazonaws.com")
    assert decision.decision == "implicitDeny"
    assert "no trust policy allows the sts:AssumeRole action" in decision.message()
    assert emulator.iam.can_assume(arn, "firehose.amazonaws.com").allowed


def test_bucket_policy_deny_for_the_role_wins(emulator, aws, role, unique):
    arn = role(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::b-{unique}/*"}
    )
    s3 = aws("s3")
    s3.create_bucket(Bucket=f"b-{unique}")
    s3.put_bucket_policy(
        Bucket=f"b-{unique}",
        Policy=document(
            {
                "Sid": "DenyTheRole",
                "Effect": "Deny",
                "Principal": {"AWS": arn},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::b-{unique}/*",
            }
        ),
    )
    bucket_policy = s3.get_bucket_policy(Bucket=f"b-{unique}")["Policy"]
    decision = emulator.iam.authorize(
        arn,
        "s3:PutObject",
        f"arn:aws:s3:::b-{unique}/k",
        resource_policy=bucket_policy,
        resource_policy_id=f"bucket policy of b-{unique}",
    )
    assert decision.decision == "explicitDeny"
    assert f"bucket policy of b-{unique}, Sid 'DenyTheRole'" in decision.message()


def test_function_policy_must_allow_iot_to_invoke(emulator, aws, role, unique):
    execution_role = role(trust_document=trust("lambda.amazonaws.com"), name=f"exec-{unique}")
    lam = aws("lambda")
    code = function_zip({"app.py": "def handler(event, context):\n    return event\n"})
    created = create_function(aws, execution_role, f"f-{unique}", code, "app.handler")
    function_arn = created["FunctionArn"]
    rule_arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/r_{unique}"
    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}

    def invoke_decision():
        try:
            policy = lam.get_policy(FunctionName=f"f-{unique}")["Policy"]
        except ClientError:
            policy = None  # no function policy at all
        return emulator.iam.authorize_service(
            "iot.amazonaws.com", "lambda:InvokeFunction", function_arn, policy, context
        )

    missing = invoke_decision()
    assert missing.decision == "implicitDeny"
    assert "no resource-based policy allows the lambda:InvokeFunction action" in missing.message()
    lam.add_permission(
        FunctionName=f"f-{unique}",
        StatementId="iot",
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=rule_arn,
        SourceAccount=ACCOUNT,
    )
    assert invoke_decision().allowed
    other_rule = {**context, "aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/other"}
    policy = lam.get_policy(FunctionName=f"f-{unique}")["Policy"]
    assert not emulator.iam.authorize_service(
        "iot.amazonaws.com", "lambda:InvokeFunction", function_arn, policy, other_rule
    ).allowed


def test_aws_managed_policy_attached_by_a_stack(emulator, aws, unique):
    """SAM's default function role attaches AWSLambdaBasicExecutionRole: its real document."""
    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": f"basic-{unique}",
                    "AssumeRolePolicyDocument": json.loads(trust("lambda.amazonaws.com")),
                    "ManagedPolicyArns": [
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
                    ],
                },
            }
        }
    }
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName=f"basic-{unique}",
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=f"basic-{unique}", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    arn = f"arn:aws:iam::{ACCOUNT}:role/basic-{unique}"
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/f"
    allowed = emulator.iam.authorize(arn, "logs:PutLogEvents", f"{group}:log-stream:x")
    assert allowed.allowed
    assert "AWSLambdaBasicExecutionRole" in allowed.reason
    assert not emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed


def test_policy_with_an_unknown_operator_is_refused_when_stored(iam, role, unique):
    arn = role()
    with pytest.raises(ClientError) as error:
        iam.put_role_policy(
            RoleName=arn.rsplit("/", 1)[-1],
            PolicyName="broken",
            PolicyDocument=document(
                {
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"StringEqualsSometimes": {"aws:SourceAccount": "1"}},
                }
            ),
        )
    assert error.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_decisions_are_cached_per_policy_version(emulator, iam, role):
    arn = role({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::raw/*"})
    first = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k") is first
    iam.put_role_policy(
        RoleName=arn.rsplit("/", 1)[-1],
        PolicyName="inline",
        PolicyDocument=document({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
    )
    assert (
        emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").decision == "explicitDeny"
    )


@pytest.mark.parametrize(
    "statement, problem",
    [
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEqualsSometimes": {"aws:SourceAccount": ACCOUNT}},
            },
            "StringEqualsSometimes",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Resource": "*",
            },
            "prohibited field Resource",
        ),
        ({"Effect": "Allow", "Action": "sts:AssumeRole"}, "Principal"),
    ],
)
def test_malformed_trust_policy_is_refused(iam, unique, statement, problem):
    with pytest.raises(ClientError) as error:
        iam.create_role(
            RoleName=f"bad-trust-{unique}", AssumeRolePolicyDocument=document(statement)
        )
    assert error.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    assert problem in error.value.response["Error"]["Message"]
    iam.create_role(
        RoleName=f"bad-trust-{unique}", AssumeRolePolicyDocument=trust("iot.amazonaws.com")
    )
    with pytest.raises(ClientError) as error:
        iam.update_assume_role_policy(
            RoleName=f"bad-trust-{unique}", PolicyDocument=document(statement)
        )
    assert error.value.response["Error"]["Code"] == "MalformedPolicyDocument"


def test_updated_trust_policy_and_new_boundary_change_decisions(emulator, iam, role, unique):
    arn = role(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
        trust_document=trust("iot.amazonaws.com"),
    )
    name = arn.rsplit("/", 1)[-1]
    assert emulator.iam.can_assume(arn, "iot.amazonaws.com").allowed
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust("firehose.amazonaws.com"))
    assert not emulator.iam.can_assume(arn, "iot.amazonaws.com").allowed

    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed
    boundary = iam.create_policy(
        PolicyName=f"late-boundary-{unique}",
        PolicyDocument=document({"Effect": "Allow", "Action": "logs:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
    assert not emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed


def test_role_tags_are_principal_tags_for_policy_variables(emulator, iam, role):
    arn = role(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::raw/${aws:PrincipalTag/team}/*",
        }
    )
    name = arn.rsplit("/", 1)[-1]
    assert not emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/red/k").allowed
    iam.tag_role(RoleName=name, Tags=[{"Key": "team", "Value": "red"}])
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/red/k").allowed
    assert not emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/blue/k").allowed


def test_managed_policy_deleted_and_created_again_is_read_again(emulator, iam, role, unique):
    arn = role()
    name = arn.rsplit("/", 1)[-1]

    def attach(effect: str) -> str:
        policy_arn = iam.create_policy(
            PolicyName=f"again-{unique}",
            PolicyDocument=document({"Effect": effect, "Action": "s3:PutObject", "Resource": "*"}),
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        return policy_arn

    policy_arn = attach("Allow")
    assert emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k").allowed
    iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
    iam.delete_policy(PolicyArn=policy_arn)
    assert attach("Deny") == policy_arn  # same ARN, version v1 again
    decision = emulator.iam.authorize(arn, "s3:PutObject", "arn:aws:s3:::raw/k")
    assert decision.decision == "explicitDeny"
