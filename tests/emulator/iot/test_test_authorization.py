"""TestAuthorization and GetEffectivePolicies through boto3: the broker's policy evaluation
as the IoT API reports it (moto has neither operation)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from iam_roles import policy, statement

ARN = "arn:aws:iot:us-east-1:123456789012"


@pytest.fixture
def setup(iot, unique):
    """A certificate with two policies: one allows publishing under its client id, one denies
    an admin topic."""
    cert = iot.create_keys_and_certificate(setAsActive=True)
    allow, deny = f"allow-{unique}", f"deny-{unique}"
    own_topics = statement("Allow", "iot:Publish", f"{ARN}:topic/${{iot:ClientId}}/*")
    iot.create_policy(policyName=allow, policyDocument=json.dumps(policy(own_topics)))
    admin = statement("Deny", "iot:Publish", f"{ARN}:topic/*/admin")
    iot.create_policy(policyName=deny, policyDocument=json.dumps(policy(admin)))
    for name in (allow, deny):
        iot.attach_policy(policyName=name, target=cert["certificateArn"])
    return cert, allow, deny


def test_test_authorization_reports_each_decision_and_the_policies_behind_it(iot, setup):
    cert, allow, deny = setup
    # when three publishes are tested for client id "dev1"
    results = iot.test_authorization(
        principal=cert["certificateArn"],
        clientId="dev1",
        authInfos=[
            {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev1/data"]},
            {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev1/admin"]},
            {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev2/data"]},
        ],
    )["authResults"]
    # then each result says ALLOWED / EXPLICIT_DENY / IMPLICIT_DENY with the policies involved
    assert [r["authDecision"] for r in results] == ["ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]
    assert [p["policyName"] for p in results[0]["allowed"]["policies"]] == [allow]
    assert [p["policyName"] for p in results[1]["denied"]["explicitDeny"]["policies"]] == [deny]
    implicit = results[2]["denied"]["implicitDeny"]["policies"]
    assert sorted(p["policyName"] for p in implicit) == sorted([allow, deny])
    assert results[0]["authInfo"] == {
        "actionType": "PUBLISH",
        "resources": [f"{ARN}:topic/dev1/data"],
    }


def test_test_authorization_without_client_id_reports_the_missing_variable(iot, setup):
    cert, _allow, _deny = setup
    # when no client id is given, ${iot:ClientId} cannot be resolved
    result = iot.test_authorization(
        principal=cert["certificateArn"],
        authInfos=[{"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev1/data"]}],
    )["authResults"][0]
    # then nothing allows it and the missing value is named
    assert result["authDecision"] == "IMPLICIT_DENY"
    assert result["missingContextValues"] == ["iot:ClientId"]


def test_test_authorization_with_policies_added_and_skipped(iot, setup, unique):
    cert, allow, deny = setup
    extra = f"connect-{unique}"
    iot.create_policy(
        policyName=extra,
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
            }
        ),
    )
    infos = [
        {"actionType": "CONNECT", "resources": [f"{ARN}:client/dev1"]},
        {"actionType": "PUBLISH", "resources": [f"{ARN}:topic/dev1/admin"]},
    ]
    # when a not-attached policy is added and the denying one skipped
    results = iot.test_authorization(
        principal=cert["certificateArn"],
        clientId="dev1",
        authInfos=infos,
        policyNamesToAdd=[extra],
        policyNamesToSkip=[deny],
    )["authResults"]
    # then the decisions are those of the resulting policy set
    assert [r["authDecision"] for r in results] == ["ALLOWED", "ALLOWED"]
    # and the attached policies themselves are unchanged
    attached = iot.list_attached_policies(target=cert["certificateArn"])["policies"]
    assert sorted(p["policyName"] for p in attached) == sorted([allow, deny])


def test_test_authorization_unknown_principal(iot):
    with pytest.raises(ClientError) as raised:
        iot.test_authorization(
            principal=f"{ARN}:cert/{'0' * 64}",
            authInfos=[{"actionType": "CONNECT", "resources": [f"{ARN}:client/x"]}],
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_get_effective_policies_lists_the_certificates_policies(iot, setup):
    cert, allow, deny = setup
    # when the effective policies of the certificate are asked for
    effective = iot.get_effective_policies(principal=cert["certificateArn"])["effectivePolicies"]
    # then both attached policies come back with their default documents
    by_name = {p["policyName"]: p for p in effective}
    assert sorted(by_name) == sorted([allow, deny])
    assert json.loads(by_name[deny]["policyDocument"])["Statement"][0]["Effect"] == "Deny"
    assert by_name[allow]["policyArn"] == f"{ARN}:policy/{allow}"
