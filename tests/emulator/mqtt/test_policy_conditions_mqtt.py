"""IoT policy Conditions as a real device meets them: paho-mqtt (MQTT 5) over mutual TLS to the
broker, policies created with boto3. aws:SourceIp is the address the broker sees (127.0.0.1),
and a Deny the emulator cannot evaluate is applied, never skipped."""

from __future__ import annotations

import json
import time

import pytest
from iam_roles import policy, statement

CONNECT_AND_PUBLISH = statement("Allow", ["iot:Connect", "iot:Publish"], "*")


def deny_publish(topic: str, condition: dict) -> dict:
    """A Deny of iot:Publish on `topic` under `condition`."""
    return statement("Deny", "iot:Publish", f"arn:aws:iot:*:*:topic/{topic}", condition)


@pytest.fixture
def denied_publisher(broker, make_device, paho_client):
    """Factory: a device allowed to connect and publish except on the topics of `denials`
    ({topic: Condition of a Deny of iot:Publish there}), connected with paho-mqtt (MQTT 5);
    the device and its client."""

    def connect(denials: dict[str, dict]):
        denies = [deny_publish(topic, condition) for topic, condition in denials.items()]
        device = make_device(policy(CONNECT_AND_PUBLISH, *denies))
        return device, paho_client(device, broker.port, version=5)

    return connect


def publish_results(client, until, *topics: str) -> list[int]:
    """The MQTT 5 PUBACK reason code of a QoS 1 publish on each topic, in order."""
    infos = [client.publish(topic, b"x", qos=1) for topic in topics]
    # 30 s: on a loaded 2-core machine the default 10 s was seen to run out.
    assert until(lambda: all(i.mid in client.seen.pubacks for i in infos), 30), (
        [i.mid for i in infos],
        client.seen.pubacks,
        client.seen.disconnects,
    )
    return [client.seen.pubacks[i.mid].value for i in infos]


@pytest.mark.parametrize(
    ("condition", "denied"),
    [
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, True),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.1"}}, True),
        ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "::1/128"]}}, True),
        ({"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, False),
        ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, False),
    ],
)
def test_a_deny_on_the_source_ip_sees_the_clients_address(
    denied_publisher, until, condition, denied
):
    # given a device whose policy denies publishing on "blocked" by the client's address
    _, client = denied_publisher({"blocked": condition})
    assert str(client.seen.connack) == "Success"
    # when it publishes on "blocked" and on "open"
    blocked, open_ = publish_results(client, until, "blocked", "open")
    # then "blocked" is refused exactly when 127.0.0.1 satisfies the condition
    assert blocked == (0x87 if denied else 0)
    assert open_ == 0


@pytest.mark.parametrize(("cidr", "connects"), [("127.0.0.1/32", True), ("10.0.0.0/8", False)])
def test_connect_allowed_only_from_an_address_range(
    broker, make_device, paho_client, cidr, connects
):
    # given a policy allowing iot:Connect only from `cidr` ("basic-policy-variables" example)
    source = {"IpAddress": {"aws:SourceIp": cidr}}
    device = make_device(policy(statement("Allow", "iot:Connect", "*", source)))
    # when the device connects from 127.0.0.1
    client = paho_client(device, broker.port, version=5)
    # then it is accepted only when the range holds the address
    assert str(client.seen.connack) == ("Success" if connects else "Not authorized")


def test_a_date_condition_on_a_deny_is_evaluated(denied_publisher, until):
    # given a Deny on "frozen" after a date long past, and one before it (Date operators)
    _, client = denied_publisher(
        {
            "frozen": {"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}},
            "past": {"DateLessThan": {"aws:EpochTime": "946684800"}},
        }
    )
    # then the first applies and the second does not
    assert publish_results(client, until, "frozen", "past") == [0x87, 0]


def test_a_deny_with_a_set_operator_is_evaluated(denied_publisher, until):
    # given a Deny with ForAnyValue:StringLike on the client id (a single-valued key: a set
    # of one)
    _, client = denied_publisher({"ops": {"ForAnyValue:StringLike": {"iot:ClientId": "dev-*"}}})
    assert publish_results(client, until, "ops", "other") == [0x87, 0]


def test_a_deny_on_a_key_the_emulator_cannot_evaluate_is_applied(broker, denied_publisher, until):
    # given a Deny reading aws:PrincipalTag/team, which the emulator does not set
    device, client = denied_publisher(
        {"domain": {"StringEquals": {"aws:PrincipalTag/team": "guests"}}}
    )
    # then publishing on its topic is refused (fail closed), and the activity log says why
    assert publish_results(client, until, "domain", "other") == [0x87, 0]
    (denied,) = [
        e for e in broker.activity.events(device.client_id) if e["event"] == "PUBLISH_DENIED"
    ]
    assert "cannot evaluate aws:PrincipalTag/team (fails closed)" in denied["policyDecision"]


def test_a_time_dependent_decision_changes_while_connected(
    aws, broker, make_device, paho_client, until, unique
):
    # given a connected device allowed to publish
    device = make_device(policy(CONNECT_AND_PUBLISH))
    client = paho_client(device, broker.port, version=5)
    assert str(client.seen.connack) == "Success"
    # and, attached now, a Deny on "window" until a moment three seconds away
    until_epoch = int(time.time()) + 3
    iot = aws("iot")
    name = f"window-{unique}"
    condition = {"DateLessThan": {"aws:EpochTime": str(until_epoch)}}
    iot.create_policy(
        policyName=name, policyDocument=json.dumps(policy(deny_publish("window", condition)))
    )
    iot.attach_policy(policyName=name, target=device.certificate_arn)
    # when the device publishes before and after that moment on one connection
    before = publish_results(client, until, "window")
    sent_before = time.time()
    time.sleep(max(0.0, until_epoch - time.time()) + 1.1)
    after = publish_results(client, until, "window")
    # then the first is denied and the second allowed: the decision was not cached
    assert sent_before < until_epoch, "the machine was too slow to publish inside the window"
    assert (before, after) == ([0x87], [0])
