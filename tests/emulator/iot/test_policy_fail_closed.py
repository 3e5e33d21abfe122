"""IoT policies fail closed, through boto3 against the emulator: a condition operator that is
not IAM's is refused by CreatePolicy/CreatePolicyVersion (MalformedPolicyException), every IAM
operator is evaluated by TestAuthorization and the broker's `authorize`, a Deny the emulator
cannot evaluate is applied, and time-dependent decisions are not cached."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

ARN = "arn:aws:iot:us-east-1:123456789012"
ALLOW_ALL = {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}


def document(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def deny_publish(condition: dict) -> dict:
    return {"Effect": "Deny", "Action": "iot:Publish", "Resource": "*", "Condition": condition}


@pytest.fixture
def certificate(iot):
    return iot.create_keys_and_certificate(setAsActive=True)


@pytest.fixture
def attach(iot, certificate, unique):
    """Create a policy from statements and attach it to the certificate; returns its name."""
    count = [0]

    def make(*statements: dict) -> str:
        count[0] += 1
        name = f"fc-{unique}-{count[0]}"
        iot.create_policy(policyName=name, policyDocument=document(*statements))
        iot.attach_policy(policyName=name, target=certificate["certificateArn"])
        return name

    return make


def authorize_publish(iot, certificate, client_id="dev1", topic="t") -> dict:
    return iot.test_authorization(
        principal=certificate["certificateArn"],
        clientId=client_id,
        authInfos=[{"actionType": "PUBLISH", "resources": [f"{ARN}:topic/{topic}"]}],
    )["authResults"][0]


# CreatePolicy / CreatePolicyVersion --------------------------------------------------------
def test_create_policy_refuses_an_operator_that_is_not_iams(iot, unique):
    # given a Deny whose operator is misspelt
    bad = document(deny_publish({"StringEqualz": {"iot:ClientId": "dev1"}}))
    # when it is created
    with pytest.raises(ClientError) as raised:
        iot.create_policy(policyName=f"typo-{unique}", policyDocument=bad)
    # then AWS's error names the operator and the likely fix, and nothing was stored
    error = raised.value.response["Error"]
    assert error["Code"] == "MalformedPolicyException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"].startswith("Policy document is Malformed: Statement 0: ")
    assert (
        "'StringEqualz' is not a condition operator (did you mean 'StringEquals'?)"
        in (error["Message"])
    )
    with pytest.raises(ClientError) as missing:
        iot.get_policy(policyName=f"typo-{unique}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_create_policy_version_refuses_an_operator_that_is_not_iams(iot, unique):
    # given a valid policy
    name = f"ver-{unique}"
    iot.create_policy(policyName=name, policyDocument=document(ALLOW_ALL))
    # when a version with a set qualifier that does not exist is created as the default
    bad = document(ALLOW_ALL, deny_publish({"ForSomeValues:StringLike": {"iot:ClientId": "*"}}))
    with pytest.raises(ClientError) as raised:
        iot.create_policy_version(policyName=name, policyDocument=bad, setAsDefault=True)
    # then it is refused and version 1 stays the only one
    assert raised.value.response["Error"]["Code"] == "MalformedPolicyException"
    assert (
        "'ForSomeValues:StringLike' is not a condition operator"
        in (raised.value.response["Error"]["Message"])
    )
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert [v["versionId"] for v in versions] == ["1"]


@pytest.mark.parametrize(
    "condition",
    [
        {"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}},
        {"NumericLessThanEquals": {"aws:EpochTime": "9999999999"}},
        {"ForAnyValue:StringLike": {"iot:ClientId": ["dev*", "ops*"]}},
        {"ForAllValues:StringEquals": {"iot:ClientId": ["dev1", "dev2"]}},
        {"StringEqualsIgnoreCaseIfExists": {"iot:ClientId": "DEV1"}},
        {"ArnLike": {"iot:ClientId": "*"}},  # not an ARN: no match, so this Deny must NOT apply
    ],
)
def test_every_iam_operator_is_accepted_and_evaluated(iot, certificate, attach, condition):
    # given Allow-all next to a Deny with the condition
    attach(ALLOW_ALL, deny_publish(condition))
    # when TestAuthorization asks about a publish by client "dev1"
    result = authorize_publish(iot, certificate)
    # then the Deny decides exactly when its condition holds (the ArnLike one cannot hold)
    expected = "ALLOWED" if "ArnLike" in condition else "EXPLICIT_DENY"
    assert result["authDecision"] == expected


# aws:SourceIp ------------------------------------------------------------------------------
def test_test_authorization_has_no_source_ip_and_treats_it_as_missing(iot, certificate, attach):
    # given a Deny outside 10.0.0.0/8 and an Allow only inside it
    attach(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/inside",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        {
            "Effect": "Deny",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/outside",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    )
    # when TestAuthorization (no connection, so no client address) is asked about both
    inside = authorize_publish(iot, certificate, topic="inside")
    outside = authorize_publish(iot, certificate, topic="outside")
    # then IAM's missing-key rules apply: IpAddress fails, NotIpAddress holds
    assert inside["authDecision"] == "IMPLICIT_DENY"
    assert outside["authDecision"] == "EXPLICIT_DENY"
    assert "aws:SourceIp" in inside["missingContextValues"]


def test_authorize_uses_the_address_the_principal_connected_from(iot_core, certificate, attach):
    # given a Deny for clients inside 192.0.2.0/24
    attach(ALLOW_ALL, deny_publish({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}))
    der = x509.load_pem_x509_certificate(certificate["certificatePem"].encode()).public_bytes(
        serialization.Encoding.DER
    )
    # when the same certificate authenticates from two addresses
    inside = iot_core.authenticate(der, source_ip="192.0.2.7")
    outside = iot_core.authenticate(der, source_ip="198.51.100.7")
    # then each publish is decided with its own address (and not from a shared cache entry)
    assert not iot_core.authorize(inside, "dev1", "iot:Publish", "t").allowed
    assert iot_core.authorize(outside, "dev1", "iot:Publish", "t").allowed
    assert not iot_core.authorize(inside, "dev1", "iot:Publish", "t").allowed


# Failing closed ----------------------------------------------------------------------------
def test_a_deny_on_a_key_the_emulator_never_sets_is_applied(iot, iot_core, certificate, attach):
    # given Allow-all and a Deny on iot:DomainName, which the emulator does not set
    attach(ALLOW_ALL, deny_publish({"StringEquals": {"iot:DomainName": "iot.example.com"}}))
    # when TestAuthorization is asked
    result = authorize_publish(iot, certificate)
    # then the Deny is applied rather than skipped, and the key is reported missing
    assert result["authDecision"] == "EXPLICIT_DENY"
    assert "iot:DomainName" in result["missingContextValues"]


def test_an_allow_on_a_key_the_emulator_never_sets_does_not_apply(iot, certificate, attach):
    # given only an Allow that IAM's missing-key rule would let through (a negated operator)
    attach(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "guests"}},
        }
    )
    # then it does not allow
    assert authorize_publish(iot, certificate)["authDecision"] == "IMPLICIT_DENY"


# Time --------------------------------------------------------------------------------------
def test_time_dependent_decisions_are_not_cached(iot_core, certificate, attach):
    # given a Deny until a moment three seconds away
    until_epoch = int(time.time()) + 3
    attach(ALLOW_ALL, deny_publish({"DateLessThan": {"aws:EpochTime": str(until_epoch)}}))
    der = x509.load_pem_x509_certificate(certificate["certificatePem"].encode()).public_bytes(
        serialization.Encoding.DER
    )
    principal = iot_core.authenticate(der, source_ip="127.0.0.1")
    # when the same publish is authorized before and after that moment
    before = iot_core.authorize(principal, "dev1", "iot:Publish", "t")
    time.sleep(max(0.0, until_epoch - time.time()) + 1.1)
    after = iot_core.authorize(principal, "dev1", "iot:Publish", "t")
    # then the answer follows the clock
    assert (before.allowed, after.allowed) == (False, True)


def test_an_attached_policy_the_emulator_cannot_read_denies(iot, iot_core, certificate, attach):
    # given Allow-all, and a second policy stored without CreatePolicy's check (as older state
    # may hold one) whose Deny uses an operator that is not IAM's
    attach(ALLOW_ALL)
    name = f"unreadable-{certificate['certificateId'][:8]}"
    bad = document(deny_publish({"StringEqualz": {"iot:ClientId": "dev1"}}))
    iot_core.backend().create_policy(name, bad)
    iot.attach_policy(policyName=name, target=certificate["certificateArn"])
    der = x509.load_pem_x509_certificate(certificate["certificatePem"].encode()).public_bytes(
        serialization.Encoding.DER
    )
    # when the broker authorizes a publish, and TestAuthorization is asked about it
    decision = iot_core.authorize(iot_core.authenticate(der), "dev1", "iot:Publish", "t")
    result = authorize_publish(iot, certificate)
    # then both deny, naming the policy, instead of ignoring it
    assert not decision.allowed
    assert name in decision.reason and "cannot evaluate" in decision.reason
    assert result["authDecision"] == "EXPLICIT_DENY"
    assert [p["policyName"] for p in result["denied"]["explicitDeny"]["policies"]] == [name]
