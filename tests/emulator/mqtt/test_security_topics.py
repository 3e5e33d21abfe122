"""Reserved and invalid topics on MQTT: what a device with `iot:Publish *` still may not publish.

AWS IoT: "you can't create new topics that begin with a dollar sign. Unsupported publish or
subscribe operations to reserved topics can result in a terminated connection"
(https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html). paho-mqtt 2.x
clients and raw TLS sockets over mutual TLS against a Broker of its own.
"""

from __future__ import annotations

import json
import struct

import pytest

from emulator.mqtt import codec


def events(broker, client_id, kind):
    return [e for e in broker.activity.events(client_id) if e["event"] == kind]


def test_forged_lifecycle_event_over_311_disconnects_and_reaches_nobody(
    broker, consumer, make_device, paho_client, until, unique
):
    # given a watcher of presence events and a device whose policy allows iot:* on *
    watcher = paho_client(make_device(), broker.port)
    _, mid = watcher.subscribe("$aws/events/presence/#", qos=1)
    assert until(lambda: mid in watcher.seen.subacks)
    forger = make_device()
    client = paho_client(forger, broker.port)
    assert str(client.seen.connack) == "Success"
    # when it publishes a "connected" event for another client id
    forged = json.dumps({"clientId": f"victim-{unique}", "eventType": "connected"}).encode()
    info = client.publish(f"$aws/events/presence/connected/victim-{unique}", forged, qos=1)
    # then it is disconnected without a PUBACK (an unauthorized publish over MQTT 3.1.1)
    assert until(lambda: client.seen.disconnects)
    assert info.mid not in client.seen.pubacks
    assert until(lambda: events(broker, forger.client_id, "DISCONNECT"))
    assert events(broker, forger.client_id, "DISCONNECT")[0]["reason"] == "AUTH_ERROR"
    (denied,) = events(broker, forger.client_id, "PUBLISH_DENIED")
    assert "reserved" in denied["reason"]
    assert denied["resource"].endswith(f":topic/$aws/events/presence/connected/victim-{unique}")
    # and neither the rules engine nor the watcher saw the forged event
    assert consumer.on_topic(f"$aws/events/presence/connected/victim-{unique}") == []
    assert [m for m in watcher.seen.messages if b"victim" in m.payload] == []


def test_reserved_topics_over_mqtt5_puback_0x87_and_allowed_ones_pass(
    broker, consumer, make_device, paho_client, until, unique
):
    # given an MQTT 5 device allowed iot:* on *
    device = make_device()
    client = paho_client(device, broker.port, version=5)
    # when it publishes to topics AWS IoT publishes (events, shadow answers, any other $ topic)
    refused = [
        client.publish(topic, b"{}", qos=1)
        for topic in (
            f"$aws/events/subscriptions/subscribed/{unique}",
            f"$aws/things/{unique}/shadow/update/accepted",
            f"$aws/things/{unique}/jobs/notify",
            f"$custom/{unique}",
        )
    ]
    # and to reserved topics devices publish to (shadow, named shadow, jobs, Basic Ingest)
    allowed_topics = (
        f"$aws/things/{unique}/shadow/update",
        f"$aws/things/{unique}/shadow/name/cfg/get",
        f"$aws/things/{unique}/jobs/job-1/update",
        f"$aws/rules/rule_{unique}/in",
    )
    allowed = [client.publish(topic, b"{}", qos=1) for topic in allowed_topics]
    # and a retained message on an allowed reserved topic
    retained = client.publish(f"$aws/things/{unique}/shadow/get", b"{}", qos=1, retain=True)
    # then the refused ones get PUBACK 0x87 Not authorized, the others success; it stays
    assert until(lambda: retained.mid in client.seen.pubacks)
    assert [client.seen.pubacks[i.mid].value for i in refused] == [0x87] * 4
    assert [client.seen.pubacks[i.mid].value for i in allowed] == [0] * 4
    assert client.seen.pubacks[retained.mid].value == 0x87
    assert client.seen.disconnects == []
    accepted = [
        m.topic
        for m in consumer.on_topic("$")
        if m.topic.split("/")[2] in (unique, f"rule_{unique}")
    ]
    assert sorted(accepted) == sorted(allowed_topics)
    assert f"$aws/things/{unique}/shadow/get" not in broker.retained


def test_last_will_on_a_reserved_topic_is_not_published(
    broker, consumer, make_device, raw_client, until, unique
):
    # given a device whose last will would forge a "disconnected" event
    device = make_device()
    topic = f"$aws/events/presence/disconnected/victim-{unique}"
    tls = raw_client(device, broker.port, device.client_id, will=(topic, b"{}"))
    # when it vanishes without DISCONNECT
    tls.close()
    # then its own disconnect is reported, and the will is refused and logged
    assert until(lambda: consumer.on_topic(f"$aws/events/presence/disconnected/{device.client_id}"))
    assert until(lambda: events(broker, device.client_id, "PUBLISH_DENIED"))
    (denied,) = events(broker, device.client_id, "PUBLISH_DENIED")
    assert "last will" in denied["reason"] and "reserved" in denied["reason"]
    assert consumer.on_topic(topic) == []


@pytest.mark.parametrize(
    "topic",
    [
        b"a/\x00/b",  # U+0000 (MQTT 3.1.1 section 1.5.3)
        b"a/" + b"x" * 255,  # 257 bytes
        b"/".join([b"l"] * 9),  # 8 slashes
    ],
    ids=["nul", "257-bytes", "8-slashes"],
)
def test_invalid_topic_name_from_a_raw_client_closes_the_connection(
    broker, consumer, make_device, raw_client, topic
):
    # given a raw TLS connection with a device certificate (CONNECT sent, CONNACK read)
    device = make_device()
    tls = raw_client(device, broker.port, device.client_id)
    tls.settimeout(5)
    # when it publishes (QoS 1) to the topic
    publish = struct.pack("!H", len(topic)) + topic + b"\x00\x01" + b"{}"
    tls.sendall(b"\x32" + codec.encode_varint(len(publish)) + publish)
    # then the broker closes the connection without a PUBACK
    assert tls.recv(10) == b""
    assert consumer.on_topic("a/") == [] and consumer.on_topic("l/") == []
    # (U+0000 is refused by the packet parser, the others by the topic check)
    refused = events(broker, device.client_id, "PUBLISH_REFUSED")
    refused += events(broker, device.client_id, "MALFORMED_PACKET")
    assert len(refused) == 1 and refused[0]["reason"]
