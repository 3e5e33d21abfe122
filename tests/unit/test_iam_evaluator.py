"""The IAM evaluator against the rules and examples of the IAM User Guide (pure, no emulator).

Examples come from "Policy evaluation logic", "IAM JSON policy elements: Condition operators",
"Resource", "Policy variables" and "Single-valued vs. multivalued context keys".
"""

from __future__ import annotations

import pytest

from emulator.iam.evaluator import Policy, Principal, Request, evaluate

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/service-role/firehose-role"
SESSION = Principal.role_session(ROLE, "s1")
V12 = "2012-10-17"


def identity(*statements, version=V12, name="p"):
    return Policy.parse({"Version": version, "Statement": list(statements)}, name, "identity")


def resource_policy(*statements, name="bucket policy"):
    return Policy.parse({"Version": V12, "Statement": list(statements)}, name, "resource")


def boundary(*statements):
    return Policy.parse({"Version": V12, "Statement": list(statements)}, "boundary", "boundary")


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(action, resource, *policies, context=None, complete=False, **kwargs):
    request = Request(SESSION, action, resource, context or {}, complete)
    return evaluate(request, list(policies), **kwargs)


# ------------------------------------------------------------------ basic evaluation logic
def test_no_policy_is_an_implicit_deny_with_awss_wording():
    decision = decide("s3:PutObject", "arn:aws:s3:::b/k")
    assert decision.decision == "implicitDeny"
    assert decision.message() == (
        "User: arn:aws:sts::123456789012:assumed-role/firehose-role/s1 is not authorized to "
        "perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy "
        "allows the s3:PutObject action"
    )


def test_explicit_deny_beats_allow_and_names_the_statement():
    policy = identity(
        allow("s3:*", "*"), {"Sid": "NoDelete", **deny("s3:DeleteObject", "arn:aws:s3:::b/*")}
    )
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", policy).allowed
    denied = decide("s3:DeleteObject", "arn:aws:s3:::b/k", policy)
    assert denied.decision == "explicitDeny"
    assert "explicit deny in an identity-based policy (p, Sid 'NoDelete')" in denied.message()


def test_deny_in_another_policy_also_wins():
    assert (
        decide(
            "s3:PutObject",
            "arn:aws:s3:::b/k",
            identity(allow("s3:PutObject", "*"), name="a"),
            identity(deny("s3:*", "*"), name="b"),
        ).decision
        == "explicitDeny"
    )


def test_action_is_case_insensitive_with_wildcards():
    policy = identity(allow("S3:Put*", "*"), allow("firehose:PutRecord?atch", "*"))
    assert decide("s3:putobject", "arn:aws:s3:::b/k", policy).allowed
    assert decide("firehose:PutRecordBatch", "x", policy).allowed
    assert not decide("firehose:PutRecord", "x", policy).allowed
    assert not decide("s3:GetObject", "arn:aws:s3:::b/k", policy).allowed


def test_not_action_and_not_resource():
    policy = identity(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::ok/*"},
    )
    assert decide("s3:PutObject", "arn:aws:s3:::ok/k", policy).allowed
    assert decide("s3:PutObject", "arn:aws:s3:::other/k", policy).decision == "explicitDeny"
    assert not decide("iam:PassRole", ROLE, policy).allowed


# ------------------------------------------------------------------ resources and ARNs
def test_bucket_arn_with_trailing_slash_matches_neither_bucket_nor_objects():
    policy = identity(allow(["s3:ListBucket", "s3:PutObject"], "arn:aws:s3:::raw-bucket/"))
    assert not decide("s3:ListBucket", "arn:aws:s3:::raw-bucket", policy).allowed
    assert not decide("s3:PutObject", "arn:aws:s3:::raw-bucket/key", policy).allowed
    fixed = identity(allow("s3:ListBucket", "arn:aws:s3:::raw-bucket"))
    assert decide("s3:ListBucket", "arn:aws:s3:::raw-bucket", fixed).allowed


def test_object_wildcard_does_not_match_the_bucket_itself():
    policy = identity(allow("s3:*", "arn:aws:s3:::b/*"))
    assert not decide("s3:ListBucket", "arn:aws:s3:::b", policy).allowed
    assert decide("s3:PutObject", "arn:aws:s3:::b/a/b/c", policy).allowed


def test_resource_is_case_sensitive_and_question_mark_is_one_character():
    policy = identity(allow("s3:PutObject", "arn:aws:s3:::b/file?.txt"))
    assert decide("s3:PutObject", "arn:aws:s3:::b/file1.txt", policy).allowed
    assert not decide("s3:PutObject", "arn:aws:s3:::b/file12.txt", policy).allowed
    assert not decide("s3:PutObject", "arn:aws:s3:::B/file1.txt", policy).allowed


def test_arn_segments_are_matched_one_by_one():
    logs = identity(allow("logs:PutLogEvents", "arn:aws:logs:*:*:*"))
    stream = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:log-stream:x"
    assert decide("logs:PutLogEvents", stream, logs).allowed
    wrong_account = identity(allow("firehose:PutRecord", "arn:aws:firehose:*:999999999999:*"))
    stream_arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/s"
    assert not decide("firehose:PutRecord", stream_arn, wrong_account).allowed
    # `*` in the region segment does not swallow the account segment.
    region_only = identity(allow("firehose:PutRecord", "arn:aws:firehose:*:deliverystream/s"))
    assert not decide("firehose:PutRecord", stream_arn, region_only).allowed


# ------------------------------------------------------------------ policy variables
def test_policy_variable_in_resource_is_literal_and_needs_a_value():
    policy = identity(allow("s3:PutObject", "arn:aws:s3:::b/${aws:PrincipalTag/team}/*"))
    ctx = {"aws:PrincipalTag/team": "red"}
    assert decide("s3:PutObject", "arn:aws:s3:::b/red/k", policy, context=ctx).allowed
    assert not decide("s3:PutObject", "arn:aws:s3:::b/blue/k", policy, context=ctx).allowed
    # No value: the element matches nothing.
    assert not decide("s3:PutObject", "arn:aws:s3:::b/red/k", policy).allowed
    # A value of `*` is a literal asterisk, not a wildcard.
    star = {"aws:PrincipalTag/team": "*"}
    assert not decide("s3:PutObject", "arn:aws:s3:::b/red/k", policy, context=star).allowed


def test_policy_variable_default_and_special_characters():
    policy = identity(
        allow("s3:PutObject", "arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*"),
        allow("s3:GetObject", "arn:aws:s3:::b/${*}literal"),
    )
    assert decide("s3:PutObject", "arn:aws:s3:::b/shared/k", policy).allowed
    assert decide("s3:GetObject", "arn:aws:s3:::b/*literal", policy).allowed
    assert not decide("s3:GetObject", "arn:aws:s3:::b/xliteral", policy).allowed


def test_variables_are_plain_text_in_version_2008():
    policy = identity(allow("s3:PutObject", "arn:aws:s3:::b/${aws:username}"), version="2008-10-17")
    ctx = {"aws:username": "bob"}
    assert not decide("s3:PutObject", "arn:aws:s3:::b/bob", policy, context=ctx).allowed
    assert decide("s3:PutObject", "arn:aws:s3:::b/${aws:username}", policy, context=ctx).allowed


# ------------------------------------------------------------------ condition operators
def _cond(block, context, complete=True):
    return decide(
        "s3:PutObject",
        "arn:aws:s3:::b/k",
        identity(allow("s3:PutObject", "*", Condition=block)),
        context=context,
        complete=complete,
    ).allowed


@pytest.mark.parametrize(
    "block, context, expected",
    [
        ({"StringEquals": {"aws:SourceAccount": "123"}}, {"aws:sourceaccount": "123"}, True),
        ({"StringEquals": {"aws:SourceAccount": ["1", "2"]}}, {"aws:SourceAccount": "2"}, True),
        ({"StringEquals": {"aws:SourceAccount": "123"}}, {}, False),
        ({"StringNotEquals": {"aws:SourceAccount": "123"}}, {}, True),
        ({"StringNotEquals": {"aws:SourceAccount": ["1", "2"]}}, {"aws:SourceAccount": "2"}, False),
        ({"StringEqualsIgnoreCase": {"s3:prefix": "ABC"}}, {"s3:prefix": "abc"}, True),
        ({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/x/y"}, True),
        ({"StringNotLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "etc/x"}, True),
        ({"StringEqualsIfExists": {"s3:prefix": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"s3:prefix": "a"}}, {"s3:prefix": "b"}, False),
        ({"NumericLessThanEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, True),
        ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "10"}, False),
        ({"NumericEquals": {"s3:max-keys": "10"}}, {"s3:max-keys": "ten"}, False),
        (
            {"DateGreaterThan": {"aws:CurrentTime": "2020-04-01T00:00:00Z"}},
            {"aws:CurrentTime": "2026-01-01T00:00:00Z"},
            True,
        ),
        ({"DateLessThan": {"aws:EpochTime": "1000"}}, {"aws:EpochTime": 999}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": True}, False),
        ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True}, True),
        ({"BinaryEquals": {"k:bin": "QmluYXJ5VmFsdWU="}}, {"k:bin": "QmluYXJ5VmFsdWU="}, True),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.7"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {"aws:SourceIp": "10.0.0.1"}, True),
        ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": "2001:db8::1"}, True),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:iot:*:123:rule/*"}},
            {"aws:SourceArn": "arn:aws:iot:us-east-1:123:rule/r1"},
            True,
        ),
        (
            {"ArnEquals": {"aws:SourceArn": "arn:aws:iot:*:123:rule/*"}},
            {"aws:SourceArn": "arn:aws:iot:us-east-1:999:rule/r1"},
            False,
        ),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:iot:*:123:rule/*"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "true"}}, {}, True),
        ({"Null": {"aws:TokenIssueTime": "false"}}, {}, False),
        # Several keys: AND. Several operators: AND.
        (
            {"StringEquals": {"aws:SourceAccount": "1", "aws:PrincipalAccount": "2"}},
            {"aws:SourceAccount": "1", "aws:PrincipalAccount": "3"},
            False,
        ),
        # Set operators (the aws:TagKeys examples of the multivalued-keys page).
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost"]}},
            {"aws:TagKeys": ["environment"]},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost"]}},
            {"aws:TagKeys": ["environment", "owner"]},
            False,
        ),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["environment"]}}, {}, True),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost"]}},
            {"aws:TagKeys": ["owner", "cost"]},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment"]}}, {}, False),
        # Policy variables in condition values.
        (
            {"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team}"}},
            {"s3:prefix": "red", "aws:PrincipalTag/team": "red"},
            True,
        ),
    ],
)
def test_condition_operators(block, context, expected):
    assert _cond(block, context) is expected


# ------------------------------------------------------------------ permissions boundary
def test_boundary_limits_identity_policy():
    policy = identity(allow(["s3:PutObject", "s3:DeleteObject"], "*"))
    limit = boundary(allow("s3:PutObject", "*"))
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", policy, boundary=limit).allowed
    denied = decide("s3:DeleteObject", "arn:aws:s3:::b/k", policy, boundary=limit)
    assert denied.decision == "implicitDeny"
    assert "because no permissions boundary allows the s3:DeleteObject action" in denied.message()


def test_boundary_alone_grants_nothing():
    limit = boundary(allow("s3:*", "*"))
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", boundary=limit).allowed


# ------------------------------------------------------------------ resource-based policies
def test_bucket_policy_deny_for_the_role_wins_over_identity_allow():
    policy = identity(allow("s3:PutObject", "arn:aws:s3:::b/*"))
    bucket = resource_policy(
        {
            "Sid": "NoFirehose",
            **deny("s3:PutObject", "arn:aws:s3:::b/*"),
            "Principal": {"AWS": ROLE},
        }
    )
    decision = decide("s3:PutObject", "arn:aws:s3:::b/k", policy, resource_policy=bucket)
    assert decision.decision == "explicitDeny"
    assert "resource-based policy (bucket policy, Sid 'NoFirehose')" in decision.message()


def test_bucket_policy_allow_for_the_role_suffices_within_the_account_unless_boundary():
    bucket = resource_policy(
        {**allow("s3:PutObject", "arn:aws:s3:::b/*"), "Principal": {"AWS": ROLE}}
    )
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", resource_policy=bucket).allowed
    limit = boundary(allow("logs:*", "*"))
    assert not decide(
        "s3:PutObject", "arn:aws:s3:::b/k", resource_policy=bucket, boundary=limit
    ).allowed
    # Naming the session itself is not limited by the boundary.
    to_session = resource_policy(
        {**allow("s3:PutObject", "arn:aws:s3:::b/*"), "Principal": {"AWS": SESSION.arn}}
    )
    assert decide(
        "s3:PutObject", "arn:aws:s3:::b/k", resource_policy=to_session, boundary=limit
    ).allowed


def test_bucket_policy_for_another_principal_does_not_allow():
    bucket = resource_policy(
        {
            **allow("s3:PutObject", "arn:aws:s3:::b/*"),
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"},
        }
    )
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", resource_policy=bucket).allowed


def test_deny_with_not_principal_applies_to_everyone_else():
    bucket = resource_policy(
        {
            **deny("s3:*", "arn:aws:s3:::b/*"),
            "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
        }
    )
    policy = identity(allow("s3:*", "*"))
    assert (
        decide("s3:PutObject", "arn:aws:s3:::b/k", policy, resource_policy=bucket).decision
        == "explicitDeny"
    )


def test_function_policy_for_a_service_principal_with_source_arn():
    function = "arn:aws:lambda:us-east-1:123456789012:function:f"
    policy = resource_policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "iot.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": function,
            "Condition": {
                "ArnLike": {"AWS:SourceArn": "arn:aws:iot:us-east-1:123456789012:rule/r"}
            },
        },
        name="function policy",
    )
    iot = Principal.service("iot.amazonaws.com")

    def invoke(source_arn):
        request = Request(iot, "lambda:InvokeFunction", function, {"aws:SourceArn": source_arn})
        return evaluate(request, resource_policy=policy, identity_applies=False)

    assert invoke("arn:aws:iot:us-east-1:123456789012:rule/r").allowed
    other = invoke("arn:aws:iot:us-east-1:123456789012:rule/other")
    assert other.decision == "implicitDeny"
    assert "no resource-based policy allows the lambda:InvokeFunction action" in other.message()


# ------------------------------------------------------------------ trust policies
def _trust(principal):
    return Policy.parse(
        {
            "Version": V12,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": ACCOUNT},
                        "ArnLike": {"aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/*"},
                    },
                }
            ],
        },
        "trust policy",
        "trust",
    )


@pytest.mark.parametrize(
    "principal, context, expected",
    [
        (
            {"Service": "iot.amazonaws.com"},
            {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/r",
            },
            True,
        ),
        (
            {"Service": ["firehose.amazonaws.com", "iot.amazonaws.com"]},
            {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/r",
            },
            True,
        ),
        (
            {"Service": "firehose.amazonaws.com"},
            {
                "aws:SourceAccount": ACCOUNT,
                "aws:SourceArn": f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/r",
            },
            False,
        ),
        (
            {"Service": "iot.amazonaws.com"},
            {
                "aws:SourceAccount": "999999999999",
                "aws:SourceArn": "arn:aws:iot:us-east-1:9:rule/r",
            },
            False,
        ),
    ],
)
def test_trust_policy(principal, context, expected):
    request = Request(Principal.service("iot.amazonaws.com"), "sts:AssumeRole", ROLE, context)
    decision = evaluate(request, resource_policy=_trust(principal), identity_applies=False)
    assert decision.allowed is expected


# ------------------------------------------------------------------ failing closed
def test_unknown_condition_operator_makes_a_deny_apply_and_an_allow_not():
    broken = {"StringEqualsSometimes": {"aws:SourceAccount": "1"}}
    deny_policy = identity(allow("s3:*", "*"), deny("s3:PutObject", "*", Condition=broken))
    decision = decide("s3:PutObject", "arn:aws:s3:::b/k", deny_policy)
    assert decision.decision == "explicitDeny"
    assert "malformed" in decision.message() and "StringEqualsSometimes" in decision.message()
    assert deny_policy.problems()
    allow_policy = identity(allow("s3:PutObject", "*", Condition=broken))
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", allow_policy).allowed


def test_service_key_the_caller_did_not_supply_is_unknown_and_fails_closed():
    block = {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}}
    policy = identity(allow("s3:*", "*"), deny("s3:PutObject", "*", Condition=block))
    unknown = decide("s3:PutObject", "arn:aws:s3:::b/k", policy)
    assert unknown.decision == "explicitDeny"
    assert unknown.missing_context == ("s3:x-amz-server-side-encryption",)
    # When the caller says the context is complete, the key is absent and the Deny does not apply.
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", policy, complete=True).allowed
    only_allow = identity(allow("s3:*", "*", Condition=block))
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", only_allow).allowed


def test_missing_global_key_is_absent_not_unknown():
    # Global keys are set by the emulator: a missing aws:SourceIp is absent, as on AWS for a
    # service's call, so a Deny on IpAddress does not apply and NotIpAddress does.
    block = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    policy = identity(allow("s3:*", "*"), deny("s3:*", "*", Condition=block))
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", policy).allowed
    negated = identity(
        allow("s3:*", "*"), deny("s3:*", "*", Condition={"NotIpAddress": block["IpAddress"]})
    )
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", negated).decision == "explicitDeny"


def test_identity_statement_without_resource_is_malformed():
    policy = identity({"Effect": "Allow", "Action": "s3:*"})
    assert policy.problems() == ["statement #1: Policy statement must contain resources"]
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", policy).allowed


def test_decision_as_dict_names_the_deciding_statement():
    policy = identity({"Sid": "NoPut", **deny("s3:PutObject", "*")})
    data = decide("s3:PutObject", "arn:aws:s3:::b/k", policy).as_dict()
    assert data["decision"] == "explicitDeny"
    assert data["statements"] == [
        {"policy": "p", "policyType": "identity", "statement": "Sid 'NoPut'", "effect": "Deny"}
    ]
    assert data["message"].endswith(
        "with an explicit deny in an identity-based policy (p, Sid 'NoPut')"
    )


def test_a_document_that_is_not_json_denies_everything():
    from emulator.iam.authorizer import compile_policy

    policy = compile_policy("{not json", "inline broken", "identity")
    decision = decide("s3:GetObject", "arn:aws:s3:::b/k", identity(allow("s3:*", "*")), policy)
    assert decision.decision == "explicitDeny"
    assert "not valid JSON" in decision.message()


def test_resource_policy_naming_the_account_delegates_to_identity_policies():
    account_root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    bucket = resource_policy(
        {**allow("s3:PutObject", "arn:aws:s3:::b/*"), "Principal": account_root}
    )
    assert not decide("s3:PutObject", "arn:aws:s3:::b/k", resource_policy=bucket).allowed
    own = identity(allow("s3:PutObject", "*"))
    assert decide("s3:PutObject", "arn:aws:s3:::b/k", own, resource_policy=bucket).allowed
    deny_account = resource_policy({**deny("s3:*", "*"), "Principal": {"AWS": ACCOUNT}})
    assert (
        decide("s3:PutObject", "arn:aws:s3:::b/k", own, resource_policy=deny_account).decision
        == "explicitDeny"
    )
