"""IoT policy Condition operators (emulator/iot/policy.py): every operator of IAM's
condition-operator reference, IAM's missing-key rules, and failing closed where the emulator
cannot evaluate a condition.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from emulator.iot.policy import CompiledPolicy, PolicyDocumentError, evaluate, explain, time_context

ARN = "arn:aws:iot:us-east-1:123456789012"
TOPIC = f"{ARN}:topic/t"
# A connection's context as `IotCore.policy_context` builds it (thing attached, with attributes).
CONTEXT = {
    "iot:ClientId": "sensor-7",
    "aws:SourceIp": "127.0.0.1",
    "iot:Connection.Thing.IsAttached": "true",
    "iot:Connection.Thing.ThingName": "sensor-7",
    "iot:Connection.Thing.Attributes[floor]": "3",
    "iot:Connection.Thing.Attributes[installed]": "2024-03-01T12:00:00Z",
    "iot:Connection.Thing.Attributes[site]": "arn:aws:iot:us-east-1:123456789012:thing/Plant-A",
    "iot:Certificate.Subject.CommonName": "Sensor Seven",
    **time_context(1_717_243_200),  # 2024-06-01T12:00:00Z
}


def policy(*statements: dict) -> CompiledPolicy:
    return CompiledPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": statements}))


ALLOW_ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}


def deny_publish(**fields) -> dict:
    """A Deny of iot:Publish on every topic, with `fields` added or replaced."""
    return {"Effect": "Deny", "Action": "iot:Publish", "Resource": "*", **fields}


def allow_all_but(deny: dict) -> CompiledPolicy:
    """A policy allowing everything except what `deny` denies."""
    return policy(ALLOW_ALL, deny)


def allowed_when(operator: str, key: str, value, context=None) -> bool:
    """Whether a single Allow with this one condition allows a publish."""
    compiled = policy(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": "*",
            "Condition": {operator: {key: value}},
        }
    )
    return evaluate([("P", compiled)], "iot:Publish", TOPIC, context or CONTEXT).allowed


def denied_by(operator: str, key: str, value, context=None) -> bool:
    """Whether a Deny with this one condition, next to an Allow of everything, denies."""
    compiled = allow_all_but(deny_publish(Condition={operator: {key: value}}))
    return not evaluate([("P", compiled)], "iot:Publish", TOPIC, context or CONTEXT).allowed


THING = "iot:Connection.Thing.ThingName"
FLOOR = "iot:Connection.Thing.Attributes[floor]"
INSTALLED = "iot:Connection.Thing.Attributes[installed]"
SITE = "iot:Connection.Thing.Attributes[site]"
ABSENT = "iot:Connection.Thing.ThingTypeName"  # a key the emulator models, absent here

OPERATOR_CASES = [
    # (operator, key, policy value, holds)
    ("StringEquals", THING, "sensor-7", True),
    ("StringEquals", THING, "Sensor-7", False),
    ("StringEquals", THING, ["x", "sensor-7"], True),  # values are ORed
    ("StringNotEquals", THING, ["x", "y"], True),  # ... and a negation is NOR
    ("StringNotEquals", THING, ["x", "sensor-7"], False),
    ("StringEqualsIgnoreCase", THING, "SENSOR-7", True),
    ("StringNotEqualsIgnoreCase", THING, "SENSOR-7", False),
    ("StringLike", THING, "sensor-?", True),
    ("StringLike", THING, "sens*", True),
    ("StringLike", THING, "Sens*", False),
    ("StringNotLike", THING, "sens*", False),
    ("StringNotLike", THING, "pump-*", True),
    ("StringEquals", "iot:Certificate.Subject.CommonName", "Sensor Seven", True),
    ("NumericEquals", FLOOR, "3", True),
    ("NumericEquals", FLOOR, 3, True),
    ("NumericNotEquals", FLOOR, "3", False),
    ("NumericLessThan", FLOOR, "3", False),
    ("NumericLessThanEquals", FLOOR, "3", True),
    ("NumericGreaterThan", FLOOR, "2.5", True),
    ("NumericGreaterThanEquals", FLOOR, "4", False),
    ("NumericEquals", THING, "3", False),  # a request value that is no number never matches
    ("DateGreaterThan", "aws:CurrentTime", "2024-01-01T00:00:00Z", True),
    ("DateLessThan", "aws:CurrentTime", "2024-01-01T00:00:00Z", False),
    ("DateLessThan", "aws:CurrentTime", "2025-01-01", True),  # a date alone is midnight UTC
    ("DateEquals", "aws:EpochTime", "2024-06-01T12:00:00Z", True),  # epoch against ISO 8601
    ("DateEquals", "aws:CurrentTime", "1717243200", True),  # ISO 8601 against epoch
    ("DateNotEquals", "aws:CurrentTime", "1717243200", False),
    ("DateLessThanEquals", INSTALLED, "2024-03-01T13:00:00+01:00", True),  # offsets count
    ("DateGreaterThanEquals", INSTALLED, "2024-03-01T12:00:01Z", False),
    ("Bool", "iot:Connection.Thing.IsAttached", "true", True),
    ("Bool", "iot:Connection.Thing.IsAttached", True, True),
    ("Bool", "iot:Connection.Thing.IsAttached", "false", False),
    ("BinaryEquals", THING, base64.b64encode(b"sensor-7").decode(), False),
    ("IpAddress", "aws:SourceIp", "127.0.0.0/8", True),
    ("IpAddress", "aws:SourceIp", "127.0.0.1", True),  # an address alone is a /32
    ("IpAddress", "aws:SourceIp", "10.0.0.0/8", False),
    ("IpAddress", "aws:SourceIp", ["10.0.0.0/8", "127.0.0.1/32"], True),
    ("IpAddress", "aws:SourceIp", "::1/128", False),  # an IPv4 client is in no IPv6 range
    ("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", True),
    ("NotIpAddress", "aws:SourceIp", "127.0.0.0/8", False),
    ("ArnEquals", SITE, "arn:aws:iot:us-east-1:123456789012:thing/Plant-A", True),
    ("ArnLike", SITE, "arn:aws:iot:*:123456789012:thing/Plant-*", True),
    ("ArnLike", SITE, "arn:aws:iot:*:123456789012:thing/plant-*", False),  # case-sensitive
    # `*` stays within its colon-delimited component.
    ("ArnLike", SITE, "arn:aws:*:thing/Plant-A", False),
    ("ArnNotEquals", SITE, "arn:aws:iot:us-east-1:123456789012:thing/Plant-B", True),
    ("ArnNotLike", SITE, "arn:aws:iot:*:*:thing/*", False),
    ("Null", ABSENT, "true", True),
    ("Null", ABSENT, "false", False),
    ("Null", THING, "false", True),
    ("Null", THING, True, False),
]


@pytest.mark.parametrize(
    ("operator", "key", "value", "holds"),
    OPERATOR_CASES,
    ids=[f"{o} {k} {v}" for o, k, v, _ in OPERATOR_CASES],
)
def test_every_operator_decides_an_allow_and_a_deny_alike(operator, key, value, holds):
    # given one Allow, and one Deny, with the condition; when a publish is evaluated
    # then the condition makes the Allow apply and the Deny apply exactly when it holds
    assert allowed_when(operator, key, value) is holds
    assert denied_by(operator, key, value) is holds


def test_binary_equals_compares_the_decoded_bytes():
    # given a context value and a policy value that are base64 of the same bytes
    context = {**CONTEXT, "iot:Connection.Thing.Attributes[blob]": "AAEC"}
    key = "iot:Connection.Thing.Attributes[blob]"
    # then BinaryEquals holds for them and not for other bytes
    assert allowed_when("BinaryEquals", key, base64.b64encode(b"\0\1\2").decode(), context)
    assert not allowed_when("BinaryEquals", key, base64.b64encode(b"\0\1\3").decode(), context)


def test_ipv6_ranges():
    context = {**CONTEXT, "aws:SourceIp": "2001:db8::17"}
    assert allowed_when("IpAddress", "aws:SourceIp", "2001:db8::/32", context)
    assert not allowed_when("IpAddress", "aws:SourceIp", "2001:db9::/32", context)
    assert denied_by("NotIpAddress", "aws:SourceIp", "10.0.0.0/8", context)


MISSING_KEY_CASES = [
    # IAM: a missing key fails a positive operator and satisfies a negated one; IfExists and
    # Null test existence; ForAllValues holds on a missing key, ForAnyValue fails.
    ("StringEquals", False),
    ("StringNotEquals", True),
    ("StringLike", False),
    ("StringNotLike", True),
    ("NumericLessThan", False),
    ("NumericNotEquals", True),
    ("DateGreaterThan", False),
    ("DateNotEquals", True),
    ("IpAddress", False),
    ("NotIpAddress", True),
    ("ArnLike", False),
    ("ArnNotLike", True),
    ("Bool", False),
    ("BinaryEquals", False),
    ("StringEqualsIfExists", True),
    ("StringNotEqualsIfExists", True),
    ("NumericLessThanIfExists", True),
    ("ForAllValues:StringEquals", True),
    ("ForAllValues:StringNotLike", True),
    ("ForAnyValue:StringEquals", False),
    ("ForAnyValue:StringNotEquals", False),
    ("ForAnyValue:StringEqualsIfExists", True),
]


@pytest.mark.parametrize(("operator", "holds"), MISSING_KEY_CASES)
def test_a_missing_key_follows_iams_rules(operator, holds):
    # given a condition on a key the emulator models but this connection lacks (no thing type)
    value = "10.0.0.0/8" if "Ip" in operator else "1"
    # then an Allow and a Deny with it apply exactly when IAM says the condition holds
    assert allowed_when(operator, ABSENT, value) is holds
    assert denied_by(operator, ABSENT, value) is holds


def test_set_operators_on_a_single_valued_key_treat_it_as_a_set_of_one():
    assert allowed_when("ForAllValues:StringLike", THING, ["sensor-*", "pump-*"])
    assert not allowed_when("ForAllValues:StringEquals", THING, "pump-1")
    assert allowed_when("ForAnyValue:StringEquals", THING, ["pump-1", "sensor-7"])
    assert not allowed_when("ForAnyValue:StringNotEquals", THING, "sensor-7")


def test_set_operators_on_a_multivalued_key():
    # given a request key with several values (IAM "single vs multivalued context keys")
    key = "iot:Connection.Thing.Attributes[tags]"
    context = {**CONTEXT, key: ("red", "blue")}
    # ForAllValues: every request value matches one of the policy's
    assert allowed_when("ForAllValues:StringEquals", key, ["red", "blue", "green"], context)
    assert not allowed_when("ForAllValues:StringEquals", key, ["red"], context)
    # ForAnyValue: at least one does
    assert allowed_when("ForAnyValue:StringEquals", key, ["blue"], context)
    assert not allowed_when("ForAnyValue:StringEquals", key, ["green"], context)
    # an empty set counts as missing
    empty = {**CONTEXT, key: ()}
    assert allowed_when("ForAllValues:StringEquals", key, ["red"], empty)
    assert not allowed_when("ForAnyValue:StringEquals", key, ["red"], empty)
    # a multivalued key under a single-valued operator cannot be evaluated: a Deny applies
    assert denied_by("StringEquals", key, "purple", context)
    assert not allowed_when("StringNotEquals", key, "purple", context)


def test_condition_keys_are_case_insensitive():
    # "Condition key names are not case-sensitive" (IAM Condition element)
    assert denied_by("IpAddress", "AWS:sourceip", "127.0.0.0/8")
    assert allowed_when("StringEquals", "IOT:CONNECTION.THING.THINGNAME", "sensor-7")


# Failing closed ------------------------------------------------------------------------------
UNKNOWN = "iot:DomainName"  # documented by AWS, but the emulator never sets it


@pytest.mark.parametrize(
    "operator",
    ["StringEquals", "StringNotEquals", "StringLike", "IpAddress", "NotIpAddress", "Null"]
    + ["StringEqualsIfExists", "ForAllValues:StringEquals", "ForAnyValue:StringEquals"],
)
def test_a_deny_on_a_key_the_emulator_cannot_evaluate_applies_and_an_allow_does_not(operator):
    # given conditions on a key the emulator does not give a value to
    value = "10.0.0.0/8" if "Ip" in operator else "true" if operator == "Null" else "x"
    # then a Deny with it applies (whatever IAM's missing-key rule would say), an Allow not
    assert denied_by(operator, UNKNOWN, value)
    assert not allowed_when(operator, UNKNOWN, value)


def test_a_failing_condition_still_decides_next_to_an_unevaluable_one():
    # given a Deny whose other condition is plainly false for this client
    condition = {"StringEquals": {UNKNOWN: "x", "iot:ClientId": "someone-else"}}
    compiled = allow_all_but(deny_publish(Condition=condition))
    # then the Deny does not apply (conditions are ANDed)
    assert evaluate([("P", compiled)], "iot:Publish", TOPIC, CONTEXT).allowed


def test_the_reason_of_a_fail_closed_deny_names_the_key():
    condition = {"StringNotEquals": {UNKNOWN: "example.com"}}
    compiled = allow_all_but(deny_publish(Sid="NoOtherDomains", Condition=condition))
    result = evaluate([("P", compiled)], "iot:Publish", TOPIC, CONTEXT)
    assert not result.allowed
    assert result.reason == (
        "explicit Deny in policy P (statement 1, Sid NoOtherDomains) applied because the "
        "emulator cannot evaluate iot:DomainName (fails closed)"
    )


def test_a_deny_whose_resource_variable_cannot_be_resolved_applies():
    compiled = allow_all_but(deny_publish(Resource=f"{ARN}:topic/${{{UNKNOWN}}}"))
    assert not evaluate([("P", compiled)], "iot:Publish", TOPIC, CONTEXT).allowed


def test_a_condition_value_that_cannot_be_parsed_fails_closed():
    # a "range" that is no address, a "number" and a "date" that are not
    assert denied_by("IpAddress", "aws:SourceIp", "localhost")
    assert not allowed_when("NotIpAddress", "aws:SourceIp", "localhost")
    assert denied_by("NumericGreaterThan", FLOOR, "three")
    assert denied_by("DateLessThan", "aws:CurrentTime", "next tuesday")
    assert not allowed_when("DateLessThan", "aws:CurrentTime", "next tuesday")


def test_explain_reports_a_fail_closed_deny_as_explicit_and_the_key_as_missing():
    compiled = allow_all_but(deny_publish(Condition={"StringEquals": {UNKNOWN: "x"}}))
    verdict = explain([("P", compiled)], "iot:Publish", TOPIC, CONTEXT)
    assert verdict.decision == "EXPLICIT_DENY"
    assert UNKNOWN in verdict.missing_context


# Refused at compile time (CreatePolicy answers MalformedPolicyException) ---------------------
@pytest.mark.parametrize(
    ("operator", "message"),
    [
        (
            "StringEqualz",
            "'StringEqualz' is not a condition operator (did you mean 'StringEquals'?)",
        ),
        ("IfExists", "'IfExists' is not a condition operator"),
        ("NullIfExists", "'NullIfExists' is not a condition operator"),
        ("ForAllValues:Null", "'ForAllValues:Null' is not a condition operator"),
        ("ForSomeValues:StringEquals", "'ForSomeValues:StringEquals' is not"),
        ("ForAnyValue:StringEqualz", "'ForAnyValue:StringEqualz' is not"),
    ],
)
def test_an_operator_that_is_not_iams_is_refused(operator, message):
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "iot:Publish",
                    "Resource": "*",
                    "Condition": {operator: {"iot:ClientId": "x"}},
                }
            ],
        }
    )
    with pytest.raises(PolicyDocumentError, match=re.escape(message)):
        CompiledPolicy.parse(document)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"StringEquals": "iot:ClientId"}, "must map condition keys to values"),
        ({"StringEquals": {}}, "must map condition keys to values"),
        ({"StringEquals": {"iot:ClientId": []}}, "has no value"),
        ({"StringEquals": {"iot:ClientId": {"a": 1}}}, "must be strings, numbers or booleans"),
    ],
)
def test_malformed_condition_blocks_are_refused(condition, message):
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:*", "Resource": "*", "Condition": condition}
            ],
        }
    )
    with pytest.raises(PolicyDocumentError, match=message):
        CompiledPolicy.parse(document)


def test_time_dependence_is_detected_in_keys_and_variables():
    assert policy(
        {
            "Effect": "Allow",
            "Action": "iot:*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:currenttime": "2030-01-01"}},
        }
    ).time_dependent
    assert policy(
        {"Effect": "Allow", "Action": "iot:*", "Resource": f"{ARN}:topic/${{aws:EpochTime}}"}
    ).time_dependent
    assert not policy(ALLOW_ALL).time_dependent


def test_time_context_is_iso_8601_utc_and_epoch_seconds():
    assert time_context(1_717_243_200.9) == {
        "aws:CurrentTime": "2024-06-01T12:00:00Z",
        "aws:EpochTime": "1717243200",
    }
