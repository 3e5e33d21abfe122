"""Shared subscriptions "$share/{ShareName}/{TopicFilter}" for MQTT 3.1.1 and 5, as AWS IoT
documents them (mqtt.html#mqtt5-shared-subscription): one member of a group gets each message,
each group and each plain subscriber get it once; iot:Subscribe on the whole shared filter;
no retained message on subscribe; QoS 1 messages wait for a persistent member."""

from __future__ import annotations

import struct

import pytest
from support.mqtt import left_offline, payloads, published, sdk_mqtt5_client, subscribed

from emulator.mqtt import codec
from emulator.mqtt.limits import shared_subscription, shared_subscription_error


def test_each_message_goes_to_one_member_of_each_group(broker, make_device, paho_client, until):
    # given a group of two members (MQTT 3.1.1 and MQTT 5), a second group, a plain subscriber
    member_a = paho_client(make_device(), broker.port)
    member_b = paho_client(make_device(), broker.port, version=5)
    other_group = paho_client(make_device(), broker.port)
    plain = paho_client(make_device(), broker.port)
    for client, topic_filter in (
        (member_a, "$share/workers/jobs/#"),
        (member_b, "$share/workers/jobs/#"),
        (other_group, "$share/audit/jobs/+"),
        (plain, "jobs/+"),
    ):
        subscribed(client, topic_filter)
    # when 40 QoS 1 messages are published
    publisher = paho_client(make_device(), broker.port)
    sent = [f"m{i}".encode() for i in range(40)]
    for payload in sent:
        publisher.publish("jobs/build", payload, qos=1)
    # then the group shares them: each message reaches exactly one of its members
    assert until(lambda: len(member_a.seen.messages) + len(member_b.seen.messages) == 40)
    assert sorted(payloads(member_a) + payloads(member_b)) == sorted(sent)
    # and at random, so that both members get some
    assert payloads(member_a) and payloads(member_b)
    # and the other group and the plain subscriber get every message once
    assert until(lambda: len(other_group.seen.messages) == 40 and len(plain.seen.messages) == 40)
    assert sorted(payloads(other_group)) == sorted(payloads(plain)) == sorted(sent)
    assert not any(m.retain for m in member_a.seen.messages + member_b.seen.messages)


def test_subscribe_is_authorized_on_the_whole_shared_filter(
    broker, make_device, paho_client, until
):
    # given a policy that allows one share name only
    arn = f"arn:aws:iot:{broker.region}:{broker.account_id}"
    device = make_device(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
                {"Effect": "Allow", "Action": "iot:Receive", "Resource": f"{arn}:topic/orders"},
                {
                    "Effect": "Allow",
                    "Action": "iot:Subscribe",
                    "Resource": f"{arn}:topicfilter/$share/billing/orders",
                },
            ],
        }
    )
    client = paho_client(device, broker.port, version=5)
    # then the allowed share name is granted, another share name and the plain filter are not
    assert subscribed(client, "$share/billing/orders")[0].value == 1
    assert subscribed(client, "$share/other/orders")[0].value == 0x87
    assert subscribed(client, "orders")[0].value == 0x87
    denied = [
        e for e in broker.activity.events(device.client_id) if e["event"] == "SUBSCRIBE_DENIED"
    ]
    assert denied[0]["resource"] == f"{arn}:topicfilter/$share/other/orders"


@pytest.mark.parametrize(
    "topic_filter",
    [
        "$share//orders",
        "$share/a+b/orders",
        "$share/g#/orders",
        "$share/solo",
        "$share/" + "n" * 129 + "/t",
    ],
)
def test_malformed_shared_filters_are_refused(broker, make_device, raw_client, topic_filter):
    # sent raw: paho refuses some of these filters itself
    device = make_device()
    tls = raw_client(device, broker.port, device.client_id)
    encoded = topic_filter.encode()
    body = struct.pack("!H", 7) + struct.pack("!H", len(encoded)) + encoded + b"\x01"
    tls.sendall(b"\x82" + codec.encode_varint(len(body)) + body)
    assert tls.recv(5) == b"\x90\x03\x00\x07\x80"  # SUBACK: failure
    (refused,) = [
        e for e in broker.activity.events(device.client_id) if e["event"] == "SUBSCRIBE_REFUSED"
    ]
    assert "share" in refused["reason"] or "topic filter" in refused["reason"]


def test_the_two_slashes_of_the_prefix_are_not_counted():
    # seven slashes in the topic filter itself is the limit; $share/<name>/ adds two more
    assert shared_subscription("$share/g/a/b/c/d/e/f/g/h") == ("g", "a/b/c/d/e/f/g/h")
    assert shared_subscription_error("g", "a/b/c/d/e/f/g/h") is None
    assert "slashes" in shared_subscription_error("g", "a/b/c/d/e/f/g/h/i")
    assert shared_subscription("orders/$share/x") is None


def test_shared_subscriptions_get_no_retained_message_on_subscribe(
    broker, make_device, paho_client, until
):
    publisher = paho_client(make_device(), broker.port)
    published(publisher, "config/site", b"v1", retain=True)
    member = paho_client(make_device(), broker.port)
    plain = paho_client(make_device(), broker.port)
    subscribed(member, "$share/readers/config/site")
    subscribed(plain, "config/site")
    assert until(lambda: plain.seen.messages)
    # a later retained publish reaches the member like any other message
    published(publisher, "config/site", b"v2", retain=True)
    assert until(lambda: member.seen.messages)
    assert [(m.payload, m.retain) for m in member.seen.messages] == [(b"v2", False)]


def test_qos1_messages_wait_for_an_offline_persistent_member(
    broker, make_device, paho_client, until
):
    # given a group whose only member has a persistent session and went offline
    device = make_device()
    member = paho_client(device, broker.port, client_kw={"clean_session": False})
    subscribed(member, "$share/night/alerts/#")
    left_offline(broker, member, device.client_id)
    # when messages are published meanwhile
    publisher = paho_client(make_device(), broker.port)
    publisher.publish("alerts/x", b"qos0 is dropped", qos=0)
    for i in range(3):
        published(publisher, f"alerts/{i}", f"a{i}".encode())
    # then the member receives the QoS 1 ones when it resumes its session
    back = paho_client(device, broker.port, client_kw={"clean_session": False})
    assert until(lambda: len(back.seen.messages) == 3)
    assert sorted(payloads(back)) == [b"a0", b"a1", b"a2"]
    # and leaves the group when it unsubscribes
    back.unsubscribe("$share/night/alerts/#")
    assert until(lambda: not broker.sessions[device.client_id].subscriptions)


def test_the_sdk_mqtt5_client_is_told_shared_subscriptions_are_available(
    broker, make_device, paho_client, until
):
    import threading

    from awscrt import mqtt5

    # given the AWS IoT Device SDK's MQTT 5 client, which checks the CONNACK's properties
    device = make_device()
    connected, stopped = [], threading.Event()
    received = []
    client = sdk_mqtt5_client(
        device,
        broker.port,
        on_lifecycle_connection_success=connected.append,
        on_lifecycle_stopped=lambda data: stopped.set(),
        on_publish_received=lambda data: received.append(data.publish_packet.payload),
    )
    client.start()
    try:
        assert until(lambda: connected)
        assert connected[0].negotiated_settings.shared_subscriptions_available
        # when it joins a group and a message is published
        subscription = mqtt5.Subscription("$share/sdk/fleet/+", mqtt5.QoS.AT_LEAST_ONCE)
        suback = client.subscribe(mqtt5.SubscribePacket([subscription])).result(10)
        assert suback.reason_codes == [mqtt5.SubackReasonCode.GRANTED_QOS_1]
        published(paho_client(make_device(), broker.port), "fleet/7", b"to the group")
        # then the group's only member receives it
        assert until(lambda: received)
        assert received == [b"to the group"]
    finally:
        client.stop()
        stopped.wait(10)
