"""Authentication and authorization as the broker sees them, after control-plane calls made
with boto3 over the real endpoint (so the caches must follow every change)."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulator.gateway import Gateway
from emulator.iot.core import AuthenticationError

ARN = "arn:aws:iot:us-east-1:123456789012"


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def attach_new_policy(iot, name: str, certificate: dict, *statements: dict) -> None:
    """Create policy `name` with `statements`; attach it to `certificate` (a certificate's ARN
    holder, such as CreateKeysAndCertificate's answer)."""
    iot.create_policy(policyName=name, policyDocument=policy(*statements))
    iot.attach_policy(policyName=name, target=certificate["certificateArn"])


@pytest.fixture
def device(iot, iot_core):
    """An ACTIVE certificate from CreateKeysAndCertificate and its principal."""
    response = iot.create_keys_and_certificate(setAsActive=True)
    return response, iot_core.authenticate(der(response["certificatePem"]))


def test_authenticate_names_the_certificate(device):
    # given an ACTIVE certificate, when it authenticates
    response, principal = device
    # then the principal carries its registry identity and subject
    assert principal.certificate_id == response["certificateId"]
    assert principal.certificate_arn == response["certificateArn"]
    assert principal.subject["CommonName"] == "AWS IoT Certificate"
    assert principal.issuer["CommonName"] == "IoT Core Pipeline Emulator Root CA"


def test_unregistered_certificate_does_not_authenticate(iot_core, self_signed, unique):
    # given a certificate the registry has never seen
    pem, _key = self_signed(f"stranger-{unique}")
    # when it authenticates, then it is refused with the reason
    with pytest.raises(AuthenticationError) as raised:
        iot_core.authenticate(der(pem))
    assert raised.value.reason == "certificate is not registered"


def test_inactive_certificate_does_not_authenticate(iot, iot_core):
    # given a certificate created without setAsActive
    response = iot.create_keys_and_certificate(setAsActive=False)
    # when it authenticates, then it is refused because of its status
    with pytest.raises(AuthenticationError) as raised:
        iot_core.authenticate(der(response["certificatePem"]))
    assert raised.value.reason == "certificate status is INACTIVE"


def test_authorize_follows_attach_and_detach_policy(iot, iot_core, device, unique):
    # given a certificate with no policy
    response, principal = device
    topic = f"telemetry/{unique}"
    before = iot_core.authorize(principal, "dev1", "iot:Publish", topic)
    assert not before.allowed
    assert before.reason == f"no policy attached to certificate {principal.certificate_id}"
    # when a policy allowing the topic is attached
    name = f"pub-{unique}"
    attach_new_policy(
        iot,
        name,
        response,
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/telemetry/*"},
    )
    # then the publish is allowed by it
    allowed = iot_core.authorize(principal, "dev1", "iot:Publish", topic)
    assert allowed.allowed and allowed.policy_name == name
    assert allowed.resource == f"{ARN}:topic/{topic}"
    # and when it is detached again, the cached decision is gone
    iot.detach_policy(policyName=name, target=response["certificateArn"])
    assert not iot_core.authorize(principal, "dev1", "iot:Publish", topic).allowed


def test_authorize_follows_the_default_policy_version(iot, iot_core, device, unique):
    # given a policy allowing Connect for one client id
    response, principal = device
    name = f"ver-{unique}"
    iot.create_policy(
        policyName=name,
        policyDocument=policy(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/a-{unique}"}
        ),
    )
    iot.attach_principal_policy(policyName=name, principal=response["certificateArn"])
    assert iot_core.authorize(principal, f"a-{unique}", "iot:Connect", f"a-{unique}").allowed
    # when a new default version allows another client id instead
    iot.create_policy_version(
        policyName=name,
        policyDocument=policy(
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/b-{unique}"}
        ),
        setAsDefault=True,
    )
    # then decisions follow the new version
    assert not iot_core.authorize(principal, f"a-{unique}", "iot:Connect", f"a-{unique}").allowed
    assert iot_core.authorize(principal, f"b-{unique}", "iot:Connect", f"b-{unique}").allowed
    # and going back to version 1 restores the first decision
    iot.set_default_policy_version(policyName=name, policyVersionId="1")
    assert iot_core.authorize(principal, f"a-{unique}", "iot:Connect", f"a-{unique}").allowed


def test_subscribe_is_authorized_on_the_topic_filter(iot, iot_core, device, unique):
    # given a policy allowing the subscription filter "alerts/+" (MQTT + is literal in policies)
    response, principal = device
    name = f"sub-{unique}"
    attach_new_policy(
        iot,
        name,
        response,
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": f"{ARN}:topicfilter/alerts/+",
        },
    )
    # then exactly that filter is allowed, evaluated on a topicfilter ARN
    decision = iot_core.authorize(principal, "c", "iot:Subscribe", "alerts/+")
    assert decision.allowed and decision.resource == f"{ARN}:topicfilter/alerts/+"
    assert not iot_core.authorize(principal, "c", "iot:Subscribe", "alerts/high").allowed


def test_thing_policy_variables_need_the_thing_attached(iot, iot_core, device, unique):
    # given a policy in terms of the connected thing, and a thing of that name with attributes
    response, principal = device
    thing = f"thing-{unique}"
    iot.create_thing(thingName=thing, attributePayload={"attributes": {"room": "kitchen"}})
    name = f"thing-policy-{unique}"
    attach_new_policy(
        iot,
        name,
        response,
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
        },
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/${{iot:Connection.Thing.Attributes[room]}}/*",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        },
    )
    # when the thing is not attached to the certificate, the variables do not resolve
    assert iot_core.thing_for(principal, thing) is None
    assert not iot_core.authorize(principal, thing, "iot:Connect", thing).allowed
    # when it is attached, they resolve for the client id equal to the thing name only
    iot.attach_thing_principal(thingName=thing, principal=response["certificateArn"])
    assert iot_core.thing_for(principal, thing) == thing
    assert iot_core.authorize(principal, thing, "iot:Connect", thing).allowed
    assert iot_core.authorize(principal, thing, "iot:Publish", "kitchen/temp").allowed
    assert not iot_core.authorize(principal, "other-id", "iot:Connect", "other-id").allowed
    # and a change of attribute is seen at once
    iot.update_thing(thingName=thing, attributePayload={"attributes": {"room": "garage"}})
    assert not iot_core.authorize(principal, thing, "iot:Publish", "kitchen/temp").allowed
    assert iot_core.authorize(principal, thing, "iot:Publish", "garage/temp").allowed
    # and detaching the thing withdraws them again
    iot.detach_thing_principal(thingName=thing, principal=response["certificateArn"])
    assert not iot_core.authorize(principal, thing, "iot:Connect", thing).allowed


def test_update_certificate_notifies_listeners_and_stops_authentication(iot, iot_core, device):
    # given a listener and an ACTIVE certificate
    response, principal = device
    seen: list[tuple[str, str, str]] = []
    iot_core.add_listener(
        lambda cid, status: seen.append((cid, status, threading.current_thread().name))
    )
    # when the certificate is deactivated
    iot.update_certificate(certificateId=response["certificateId"], newStatus="INACTIVE")
    # then the listener heard of it, and the certificate no longer authenticates or is allowed
    assert (response["certificateId"], "INACTIVE") in [(c, s) for c, s, _ in seen]
    with pytest.raises(AuthenticationError, match="INACTIVE"):
        iot_core.authenticate(der(response["certificatePem"]))
    assert not iot_core.authorize(principal, "c", "iot:Connect", "c").allowed
    # and an update to the same status is not a change
    count = len(seen)
    iot.update_certificate(certificateId=response["certificateId"], newStatus="INACTIVE")
    assert len(seen) == count
    # and when it is revoked, then deleted, the listener hears both
    iot.update_certificate(certificateId=response["certificateId"], newStatus="REVOKED")
    iot.delete_certificate(certificateId=response["certificateId"])
    statuses = [s for c, s, _ in seen if c == response["certificateId"]]
    assert statuses == ["INACTIVE", "REVOKED", "DELETED"]


def test_malformed_policy_document_is_refused(iot, unique):
    # when a policy document is not valid, then AWS's error code names the problem
    with pytest.raises(ClientError) as raised:
        iot.create_policy(
            policyName=f"bad-{unique}",
            policyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Yes"}]}),
        )
    assert raised.value.response["Error"]["Code"] == "MalformedPolicyException"
    assert "Effect" in raised.value.response["Error"]["Message"]


def test_thing_group_policies_apply_to_the_things_in_the_group_and_its_children(
    iot, iot_core, device, unique
):
    # given a thing attached to the certificate, in a child group of a group with a policy
    response, principal = device
    thing = f"grouped-{unique}"
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=response["certificateArn"])
    parent = iot.create_thing_group(thingGroupName=f"parent-{unique}")
    iot.create_thing_group(thingGroupName=f"child-{unique}", parentGroupName=f"parent-{unique}")
    name = f"group-policy-{unique}"
    iot.create_policy(
        policyName=name,
        policyDocument=policy({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}),
    )
    iot.attach_policy(policyName=name, target=parent["thingGroupArn"])
    assert not iot_core.authorize(principal, thing, "iot:Connect", thing).allowed
    # when the thing joins the child group
    iot.add_thing_to_thing_group(thingGroupName=f"child-{unique}", thingName=thing)
    # then the parent's policy applies to it, for the client id equal to the thing name only
    decision = iot_core.authorize(principal, thing, "iot:Connect", thing)
    assert decision.allowed and decision.policy_name == name
    assert not iot_core.authorize(principal, "not-the-thing", "iot:Connect", "x").allowed
    # and leaving the group withdraws it
    iot.remove_thing_from_thing_group(thingGroupName=f"child-{unique}", thingName=thing)
    assert not iot_core.authorize(principal, thing, "iot:Connect", thing).allowed


def test_certificate_policy_variables(iot, iot_core, device, unique):
    # given the "certificate-policy-examples" policy: publish to topics named after the
    # certificate's id and its subject's common name
    response, principal = device
    name = f"cert-vars-{unique}"
    statement = {
        "Effect": "Allow",
        "Action": "iot:Publish",
        "Resource": [
            f"{ARN}:topic/${{iot:CertificateId}}",
            f"{ARN}:topic/cn/${{iot:Certificate.Subject.CommonName}}",
        ],
    }
    attach_new_policy(iot, name, response, statement)
    # then those topics are allowed and a neighbour is not
    assert iot_core.authorize(principal, "c", "iot:Publish", response["certificateId"]).allowed
    assert iot_core.authorize(principal, "c", "iot:Publish", "cn/AWS IoT Certificate").allowed
    assert not iot_core.authorize(principal, "c", "iot:Publish", "cn/someone").allowed


def test_exclusive_thing_association_names_the_thing_whatever_the_client_id(
    iot, iot_core, device, unique
):
    # given a policy in terms of the connected thing and a thing attached EXCLUSIVE_THING
    response, principal = device
    thing = f"exclusive-{unique}"
    iot.create_thing(thingName=thing)
    name = f"exclusive-policy-{unique}"
    statement = {
        "Effect": "Allow",
        "Action": "iot:Publish",
        "Resource": f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}/*",
    }
    attach_new_policy(iot, name, response, statement)
    iot.attach_thing_principal(
        thingName=thing, principal=response["certificateArn"], thingPrincipalType="EXCLUSIVE_THING"
    )
    # then a connection with another client id still acts as that thing ("exclusive-thing")
    assert iot_core.thing_for(principal, "any-client-id") == thing
    assert iot_core.authorize(principal, "any-client-id", "iot:Publish", f"{thing}/t").allowed
    # and once detached, the thing variables no longer resolve
    iot.detach_thing_principal(thingName=thing, principal=response["certificateArn"])
    assert iot_core.thing_for(principal, "any-client-id") is None
    assert not iot_core.authorize(principal, "any-client-id", "iot:Publish", f"{thing}/t").allowed


def test_exclusive_associations_survive_a_restart(emulator, iot, iot_core, device, unique):
    # given an EXCLUSIVE_THING association
    response, principal = device
    thing = f"kept-{unique}"
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(
        thingName=thing, principal=response["certificateArn"], thingPrincipalType="EXCLUSIVE_THING"
    )
    # when a new IotCore reads the same data directory (moto's state is kept by persistence)
    view = SimpleNamespace(
        account_id=emulator.account_id,
        region=emulator.region,
        data_dir=emulator.data_dir,
        gateway=Gateway(lambda environ, start: []),
    )
    restarted = type(iot_core)(view)
    # then it still knows which thing the certificate acts as
    assert restarted.thing_for(principal, "any-client-id") == thing
