"""The condition keys the broker supplies from the connection itself, as real clients meet them:
paho-mqtt (MQTT 3.1.1 and 5) over mutual TLS, policies created with boto3.

- iot:ConnectAttributes on iot:Connect: PersistentConnect and LastWill, an empty set for a clean
  connect without a will ("connect-policy", "mqtt.html#connect-attribute");
- iot:DomainName: the endpoint name the client sent in its TLS SNI ("basic-policy-variables").
"""

from __future__ import annotations

import pytest
from iam_roles import policy, statement
from test_policy_conditions_mqtt import CONNECT_AND_PUBLISH, publish_results

WILL = {"will": {"topic": "wills/last", "payload": b"gone", "qos": 1}}


def connect_with(condition: dict, effect: str = "Allow") -> dict:
    """A policy allowing Publish, and Connect under `condition` (or, for a Deny, everything
    except Connect when `condition` holds)."""
    connect = statement(effect, "iot:Connect", "*", condition)
    if effect == "Deny":
        return policy(CONNECT_AND_PUBLISH, connect)
    return policy(statement("Allow", "iot:Publish", "*"), connect)


def connect_and_publish(**publish: object) -> dict:
    """A policy allowing iot:Connect, and iot:Publish as `publish` says (Resource, Condition)."""
    allow_publish = {**statement("Allow", "iot:Publish", "*"), **publish}
    return policy(statement("Allow", "iot:Connect", "*"), allow_publish)


def session_expiry(seconds: int):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = seconds
    return properties


def connected(client) -> bool:
    """Whether the broker accepted the CONNECT (MQTT 3.1.1: no CONNACK at all when refused)."""
    return client.seen.connack is not None and not client.seen.connack.is_failure


# The documented examples: "allows connect with PersistentConnect" (ForAllValues:StringEquals)
# and "disallows PersistentConnect, other features are allowed" (ForAllValues:StringNotEquals).
# https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html
ONLY_PERSISTENT = {"ForAllValues:StringEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}}
NOT_PERSISTENT = {"ForAllValues:StringNotEquals": {"iot:ConnectAttributes": ["PersistentConnect"]}}

CASES = [
    # (policy condition, MQTT version, connect keywords, accepted)
    (ONLY_PERSISTENT, 4, {}, True),  # a clean connect has no attributes: the empty set holds
    (ONLY_PERSISTENT, 4, {"client_kw": {"clean_session": False}}, True),
    (ONLY_PERSISTENT, 4, WILL, False),  # LastWill is not in the allowed set
    (ONLY_PERSISTENT, 5, {"clean_start": False, "properties": session_expiry(600)}, True),
    (NOT_PERSISTENT, 4, {}, True),
    (NOT_PERSISTENT, 4, WILL, True),
    (NOT_PERSISTENT, 4, {"client_kw": {"clean_session": False}}, False),
    # MQTT 5: a session expiry interval above 0 makes the session persistent ...
    (NOT_PERSISTENT, 5, {"properties": session_expiry(600)}, False),
    # ... and Clean Start 0 with an expiry of 0 does not (the session ends with the connection)
    (NOT_PERSISTENT, 5, {"clean_start": False}, True),
]


@pytest.mark.parametrize(
    ("condition", "version", "kw", "accepted"),
    CASES,
    ids=[f"{next(iter(c))}-v{v}-{sorted(k)}" for c, v, k, _ in CASES],
)
def test_connect_attributes_decide_the_connect(
    broker, make_device, paho_client, condition, version, kw, accepted
):
    # given a device whose iot:Connect is allowed only under a condition on its attributes
    device = make_device(connect_with(condition))
    # when it connects with (or without) a persistent session and a will
    client = paho_client(device, broker.port, version=version, **kw)
    # then the broker accepts it exactly when the attributes satisfy the condition
    assert connected(client) is accepted, (client.seen.connack, client.seen.disconnects)


def test_a_deny_on_last_will_refuses_only_a_connect_with_a_will(broker, make_device, paho_client):
    # given Allow-all and a Deny of iot:Connect for any connect that carries a will
    device = make_device(
        connect_with({"ForAnyValue:StringEquals": {"iot:ConnectAttributes": "LastWill"}}, "Deny")
    )
    # when the device connects (MQTT 5) without, then with, a will
    plain = paho_client(device, broker.port, version=5)
    with_will = paho_client(device, broker.port, version=5, client_id="other-id", **WILL)
    # then only the second is refused, with CONNACK 0x87 and the reason in the activity log
    assert str(plain.seen.connack) == "Success"
    assert str(with_will.seen.connack) == "Not authorized"
    (denied,) = [e for e in broker.activity.events("other-id") if e["event"] == "CONNECT_DENIED"]
    assert "explicit Deny" in denied["policyDecision"]


def test_connect_attributes_are_unknown_on_publish(broker, make_device, paho_client, until):
    # given an Allow of iot:Publish that reads iot:ConnectAttributes, which AWS documents for
    # iot:Connect only
    device = make_device(connect_and_publish(Condition=ONLY_PERSISTENT))
    client = paho_client(device, broker.port, version=5)
    # then the Allow cannot be evaluated and does not apply (fails closed), saying why
    assert publish_results(client, until, "t") == [0x87]
    (denied,) = [
        e for e in broker.activity.events(device.client_id) if e["event"] == "PUBLISH_DENIED"
    ]
    assert "cannot evaluate iot:ConnectAttributes" in denied["policyDecision"]


@pytest.mark.parametrize(("domain", "accepted"), [("localhost", True), ("iot.example", False)])
def test_domain_name_is_the_endpoint_the_client_asked_for(
    broker, make_device, paho_client, domain, accepted
):
    # given a policy allowing iot:Connect only to one endpoint name
    device = make_device(
        connect_with({"StringEquals": {"iot:DomainName": domain}}),
    )
    # when paho connects to "localhost" (its TLS SNI)
    client = paho_client(device, broker.port, version=5)
    # then it is accepted only when the policy names that endpoint
    assert str(client.seen.connack) == ("Success" if accepted else "Not authorized")


def test_domain_name_substitutes_a_resource_variable(broker, make_device, paho_client, until):
    # given publishing allowed only under the endpoint's own name ("basic-policy-variables")
    device = make_device(
        connect_and_publish(Resource="arn:aws:iot:*:*:topic/sites/${iot:DomainName}/*")
    )
    client = paho_client(device, broker.port, version=5)
    # then the variable is the SNI name the client sent
    assert publish_results(client, until, "sites/localhost/a", "sites/other/a") == [0, 0x87]
