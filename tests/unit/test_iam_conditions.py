"""The one implementation of IAM condition operators (emulator/iam/conditions.py) where the IAM,
IoT and S3 bucket-policy evaluators used to differ: three-valued answers, multivalued keys,
variables without a value, and values an operator cannot read.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import pytest
from moto.iam.access_control import PermissionResult

from emulator.iam.conditions import PolicyError, compile_block
from emulator.s3 import bucket_policy


def verdict(block: dict, context: dict, unknown=lambda key: False, variables: bool = True):
    """The AND of a block's conditions: True, False, or None (cannot tell)."""
    table = {k.lower(): v if isinstance(v, list) else [v] for k, v in context.items()}
    verdicts = [c.evaluate(table.get, unknown) for c in compile_block(block, variables)]
    return False if False in verdicts else None if None in verdicts else True


def test_a_pattern_matches_the_whole_value_not_up_to_a_final_newline():
    assert verdict({"StringLike": {"s3:prefix": "home/*"}}, {"s3:prefix": "home/a"})
    assert not verdict({"StringLike": {"s3:prefix": "ab?"}}, {"s3:prefix": "abc\n"})


def test_a_multivalued_key_is_no_policy_variable():
    # "You can't use a multivalued key as a policy variable": the value matches nothing
    block = {"StringEquals": {"s3:prefix": "${aws:TagKeys}"}}
    assert verdict(block, {"s3:prefix": "a", "aws:TagKeys": ["a", "b"]}) is False
    assert verdict(block, {"s3:prefix": "a", "aws:TagKeys": ["a"]}) is True


def test_a_multivalued_key_needs_a_set_operator():
    context = {"aws:TagKeys": ["a", "b"]}
    assert verdict({"StringEquals": {"aws:TagKeys": "a"}}, context) is None
    assert verdict({"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}, context) is True


def test_a_variable_without_a_value_is_unknown_only_when_aws_might_have_one():
    block = {"StringNotEquals": {"s3:prefix": "${iot:Connection.Thing.ThingName}"}}
    context = {"s3:prefix": "a"}
    # absent on AWS too: the value matches nothing, so the negated operator holds
    assert verdict(block, context) is True
    # possibly present on AWS: cannot tell
    assert verdict(block, context, unknown=lambda key: key.startswith("iot:")) is None


def test_if_exists_holds_on_a_missing_key_whatever_the_set_qualifier():
    assert verdict({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}, {}) is True
    assert verdict({"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}, {}) is False


def test_an_arn_operator_never_matches_a_value_that_is_no_arn():
    assert verdict({"ArnLike": {"aws:SourceArn": "*"}}, {"aws:SourceArn": "dev1"}) is False
    assert verdict({"ArnNotLike": {"aws:SourceArn": "*"}}, {"aws:SourceArn": "dev1"}) is True
    arn = "arn:aws:iot:us-east-1:123456789012:rule/r"
    assert verdict({"ArnLike": {"aws:SourceArn": "*"}}, {"aws:SourceArn": arn}) is True


def test_a_value_the_operator_cannot_read_is_refused_or_unknown():
    block = {"IpAddress": {"aws:SourceIp": "localhost"}}
    with pytest.raises(PolicyError, match="IpAddress aws:SourceIp: invalid value"):
        compile_block(block, True)
    (lenient,) = compile_block(block, True, strict=False)
    assert lenient.evaluate(lambda key: ["127.0.0.1"], lambda key: False) is None


def test_operator_errors_name_the_operator_and_suggest_one():
    with pytest.raises(PolicyError, match="did you mean 'StringEquals'"):
        compile_block({"StringEqualz": {"k": "v"}}, True)
    with pytest.raises(PolicyError, match="'ForAllValues:Null' is not a condition operator"):
        compile_block({"ForAllValues:Null": {"k": "true"}}, True)


# S3 bucket policies -------------------------------------------------------------------------
ACCOUNT = "123456789012"
OBJECT = "arn:aws:s3:::b/k"


def bucket_decision(effect: str, condition: dict) -> PermissionResult:
    statement = {
        "Effect": effect,
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::b/*",
        "Condition": condition,
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    return bucket_policy.evaluate(policy, "s3:PutObject", OBJECT, ACCOUNT)


def test_a_bucket_policy_evaluates_every_iam_operator():
    # set operators and variables were not evaluated by the bucket-policy code before
    condition = {"ForAnyValue:StringEquals": {"aws:PrincipalAccount": [ACCOUNT]}}
    assert bucket_decision("Allow", condition) == PermissionResult.PERMITTED
    own = {"StringEquals": {"aws:PrincipalAccount": "${aws:PrincipalAccount}"}}
    assert bucket_decision("Deny", own) == PermissionResult.DENIED


def test_a_bucket_policy_key_absent_on_aws_follows_iams_missing_key_rules():
    # aws:SourceArn is set only when a service acts for a resource: an owner's request lacks it
    condition = {"StringNotEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:1:t"}}
    assert bucket_decision("Allow", condition) == PermissionResult.PERMITTED


def test_a_bucket_policy_condition_it_cannot_evaluate_fails_closed():
    unknown_key = {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/x"}}
    assert bucket_decision("Deny", unknown_key) == PermissionResult.DENIED
    assert bucket_decision("Allow", unknown_key) == PermissionResult.NEUTRAL
    not_iams = {"StringEqualz": {"aws:PrincipalAccount": ACCOUNT}}
    assert bucket_decision("Deny", not_iams) == PermissionResult.DENIED
