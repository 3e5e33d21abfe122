"""What AWS IoT supports beyond publish: lifecycle events, client id takeover, persistent
sessions, retained messages, last will, keep-alive, and revoking a connected certificate."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import subprocess
import time

import pytest
from support.mqtt import emulator_view

from emulator.iot.messages import InboundMessage
from emulator.mqtt import codec
from emulator.mqtt.broker import Broker


def presence(consumer, kind, client_id):
    return [
        json.loads(m.payload) for m in consumer.on_topic(f"$aws/events/presence/{kind}/{client_id}")
    ]


def test_lifecycle_events_reach_subscribers_and_the_consumer(
    broker, consumer, make_device, paho_client, until
):
    # given a subscriber to every presence event
    watcher, device = make_device(), make_device()
    sub = paho_client(watcher, broker.port)
    _, mid = sub.subscribe("$aws/events/presence/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    # when a device connects and disconnects cleanly
    client = paho_client(device, broker.port)
    client.disconnect()
    # then both events arrive, with AWS's fields
    assert until(lambda: len(presence(consumer, "disconnected", device.client_id)) == 1)
    (connected,) = presence(consumer, "connected", device.client_id)
    (disconnected,) = presence(consumer, "disconnected", device.client_id)
    assert connected["eventType"] == "connected"
    assert connected["principalIdentifier"] == device.certificate_id
    assert connected["ipAddress"] == "127.0.0.1"
    assert connected["sessionIdentifier"] == disconnected["sessionIdentifier"]
    assert connected["versionNumber"] == disconnected["versionNumber"]
    assert disconnected["clientInitiatedDisconnect"] is True
    assert disconnected["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert until(lambda: len(sub.seen.messages) >= 2)
    topics = [m.topic for m in sub.seen.messages]
    assert f"$aws/events/presence/connected/{device.client_id}" in topics
    assert f"$aws/events/presence/disconnected/{device.client_id}" in topics


def test_second_connection_with_the_same_client_id_takes_over(
    broker, consumer, make_device, paho_client, until
):
    # given an MQTT 5 client connected
    device = make_device()
    first = paho_client(device, broker.port, version=5)
    # when another connection uses the same client id
    second = paho_client(device, broker.port, version=5)
    # then the first gets DISCONNECT 0x8E "Session taken over" and the second stays
    assert until(lambda: first.seen.disconnects)
    assert first.seen.disconnects[0].value == 0x8E
    assert str(second.seen.connack) == "Success" and second.seen.disconnects == []
    assert until(lambda: presence(consumer, "disconnected", device.client_id))
    (event,) = presence(consumer, "disconnected", device.client_id)
    assert event["disconnectReason"] == "DUPLICATE_CLIENTID"
    assert event["clientInitiatedDisconnect"] is False
    reasons = [
        e["reason"] for e in broker.activity.events(device.client_id) if e["event"] == "DISCONNECT"
    ]
    assert reasons == ["DUPLICATE_CLIENTID"]


def test_persistent_session_keeps_subscriptions_and_queues_qos1(
    broker, make_device, paho_client, until
):
    # given a 3.1.1 client with cleanSession=0 subscribed at QoS 1, then gone
    subscriber, publisher = make_device(), make_device()
    persistent = {"client_kw": {"clean_session": False}}
    sub = paho_client(subscriber, broker.port, **persistent)
    _, mid = sub.subscribe("jobs/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    sub.disconnect()
    sub.loop_stop()
    # when three QoS 1 messages are published while it is away
    pub = paho_client(publisher, broker.port)
    infos = [pub.publish(f"jobs/{i}", str(i).encode(), qos=1) for i in range(3)]
    assert until(lambda: all(i.mid in pub.seen.pubacks for i in infos))
    # then on reconnecting with cleanSession=0 the session is present and the messages arrive
    back = paho_client(subscriber, broker.port, **persistent)
    assert until(lambda: len(back.seen.messages) == 3)
    assert sorted(m.payload for m in back.seen.messages) == [b"0", b"1", b"2"]
    assert broker.sessions[subscriber.client_id].persistent


def test_retained_message_goes_to_later_subscribers_until_cleared(
    broker, make_device, paho_client, until
):
    # given a retained message
    device = make_device()
    pub = paho_client(device, broker.port)
    info = pub.publish("status/pump", b"on", qos=1, retain=True)
    assert until(lambda: info.mid in pub.seen.pubacks)
    # when a client subscribes afterwards to its topic (AWS IoT sends a retained message only
    # to a filter that is the topic itself: test_retained_messages.py)
    late = paho_client(make_device(), broker.port)
    late.subscribe("status/pump", qos=1)
    # then it receives the retained message, flagged as retained
    assert until(lambda: late.seen.messages)
    assert (late.seen.messages[0].payload, late.seen.messages[0].retain) == (b"on", True)
    # and an empty retained payload clears it
    info = pub.publish("status/pump", b"", qos=1, retain=True)
    assert until(lambda: info.mid in pub.seen.pubacks)
    assert "status/pump" not in broker.retained


def test_retain_needs_retain_publish_permission(broker, make_device, paho_client, until):
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": "*"}
        ],
    }
    device = make_device(document)
    client = paho_client(device, broker.port, version=5)
    info = client.publish("status/x", b"1", qos=1, retain=True)
    assert until(lambda: info.mid in client.seen.pubacks)
    assert client.seen.pubacks[info.mid].value == 0x87
    denied = [e for e in broker.activity.events(device.client_id) if e["event"] == "PUBLISH_DENIED"]
    assert denied[0]["action"] == "iot:RetainPublish"


def test_last_will_is_published_when_a_client_vanishes(
    broker, consumer, make_device, paho_client, raw_client, until
):
    # given a watcher subscribed to the will topic and a client with a will
    watcher, device = make_device(), make_device()
    sub = paho_client(watcher, broker.port)
    _, mid = sub.subscribe("wills/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    tls = raw_client(device, broker.port, device.client_id, will=("wills/dev", b"gone"))
    # when its connection drops without DISCONNECT
    tls.close()
    # then the will reaches the subscriber and the consumer; the reason is CONNECTION_LOST
    assert until(lambda: sub.seen.messages)
    assert (sub.seen.messages[0].topic, sub.seen.messages[0].payload) == ("wills/dev", b"gone")
    assert [m.payload for m in consumer.on_topic("wills/dev")] == [b"gone"]
    assert until(lambda: presence(consumer, "disconnected", device.client_id))
    assert (
        presence(consumer, "disconnected", device.client_id)[0]["disconnectReason"]
        == "CONNECTION_LOST"
    )


def test_silent_client_is_dropped_after_one_and_a_half_keep_alives(
    broker, consumer, make_device, raw_client, until
):
    # given a broker that accepts a 1 s keep-alive (AWS's minimum is 30 s) and a silent client
    broker.min_keep_alive_s = 1
    device = make_device()
    tls = raw_client(device, broker.port, device.client_id, keep_alive=1)
    started = time.monotonic()
    # when it sends nothing, then the broker closes the connection after ~1.5 s
    assert tls.recv(10) == b""
    assert 1.4 <= time.monotonic() - started < 4
    assert until(lambda: presence(consumer, "disconnected", device.client_id))
    assert presence(consumer, "disconnected", device.client_id)[0]["disconnectReason"] == (
        "MQTT_KEEP_ALIVE_TIMEOUT"
    )
    (event,) = [e for e in broker.activity.events(device.client_id) if e["event"] == "DISCONNECT"]
    assert event["reason"] == "MQTT_KEEP_ALIVE_TIMEOUT"


def test_revoking_the_certificate_drops_its_connection(
    broker, consumer, make_device, paho_client, aws, until
):
    # given a connected device
    device = make_device()
    client = paho_client(device, broker.port)
    assert str(client.seen.connack) == "Success"
    # when its certificate is revoked through the API
    aws("iot").update_certificate(certificateId=device.certificate_id, newStatus="REVOKED")
    # then the connection is closed with AUTH_ERROR and the log says why
    assert until(lambda: client.seen.disconnects)
    assert until(lambda: presence(consumer, "disconnected", device.client_id))
    assert (
        presence(consumer, "disconnected", device.client_id)[0]["disconnectReason"] == "AUTH_ERROR"
    )
    reasons = [
        e["reason"] for e in broker.activity.events(device.client_id) if e["event"] == "DISCONNECT"
    ]
    assert "certificate is REVOKED" in reasons


def test_deliver_reaches_subscribers_but_not_the_consumer(
    broker, consumer, make_device, paho_client, until
):
    # given a subscriber
    sub = paho_client(make_device(), broker.port)
    _, mid = sub.subscribe("cmd/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    # when an accepted message is delivered from another thread (as rule republish does)
    broker.deliver(
        InboundMessage("cmd/reboot", b"now", 1, "n/a", None, 0, broker.account_id, broker.region)
    )
    # then the subscriber gets it and the consumer does not
    assert until(lambda: sub.seen.messages)
    assert sub.seen.messages[0].payload == b"now"
    assert consumer.on_topic("cmd/") == []


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_clients_publish_and_subscribe(broker, consumer, make_device, version):
    # given mosquitto_sub waiting for one message
    sub_device, pub_device = make_device(), make_device()

    def tls_args(device):
        return [
            "--cafile",
            str(device.ca_path),
            "--cert",
            str(device.cert_path),
            "--key",
            str(device.key_path),
        ]

    common = ["-h", "localhost", "-p", str(broker.port), "-V", version, "-q", "1"]
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            *common,
            *tls_args(sub_device),
            "-i",
            sub_device.client_id,
            "-t",
            "cli/#",
            "-C",
            "1",
            "-W",
            "10",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(100):  # wait until the subscription exists
        if (
            sub_device.client_id in broker.sessions
            and broker.sessions[sub_device.client_id].subscriptions
        ):
            break
        time.sleep(0.05)
    # when mosquitto_pub publishes at QoS 1
    subprocess.run(
        [
            "mosquitto_pub",
            *common,
            *tls_args(pub_device),
            "-i",
            pub_device.client_id,
            "-t",
            "cli/x",
            "-m",
            "hello",
        ],
        check=True,
        timeout=10,
    )
    # then the subscriber printed it and the consumer accepted it
    out, _ = sub.communicate(timeout=15)
    assert out.strip() == "hello"
    assert [m.payload for m in consumer.on_topic("cli/x")] == [b"hello"]


def test_subscribe_and_unsubscribe_events(broker, consumer, make_device, paho_client, until):
    # given a connected device
    device = make_device()
    client = paho_client(device, broker.port)
    # when it subscribes to two filters and unsubscribes from one
    _, mid = client.subscribe([("a/#", 1), ("b", 0)])
    assert until(lambda: mid in client.seen.subacks)
    client.unsubscribe("b")
    # then both events are published with the topic filters
    prefix = "$aws/events/subscriptions/"
    assert until(lambda: consumer.on_topic(f"{prefix}unsubscribed/{device.client_id}"))
    (subscribed,) = consumer.on_topic(f"{prefix}subscribed/{device.client_id}")
    (unsubscribed,) = consumer.on_topic(f"{prefix}unsubscribed/{device.client_id}")
    assert json.loads(subscribed.payload)["topics"] == ["a/#", "b"]
    assert json.loads(unsubscribed.payload)["topics"] == ["b"]
    assert json.loads(subscribed.payload)["principalIdentifier"] == device.certificate_id


def test_component_contract_port_and_consumer_found_at_call_time(
    iot_emulator, consumer, make_device, paho_client, until
):
    # given a Broker built as app.py builds it: no consumer, port from the emulator (0 = ephemeral)
    view = emulator_view(iot_emulator, _requested_mqtt_port=0)
    broker = Broker(view).start()
    try:
        assert view.broker is broker and view.activity is broker.activity and broker.port > 0
        # when the rules engine appears after the broker was built
        view.rules = consumer
        client = paho_client(make_device(), broker.port)
        info = client.publish("late/consumer", b"1", qos=1)
        # then it receives the message
        assert until(lambda: info.mid in client.seen.pubacks)
        assert [m.payload for m in view.rules.on_topic("late/consumer")] == [b"1"]
    finally:
        broker.stop()


def read_packets(tls, until_count: int, timeout: float = 3.0) -> list[tuple[int, bytes]]:
    """Read packets from a raw client socket until `until_count` arrived or it goes quiet."""
    buffer, packets = bytearray(), []
    tls.settimeout(timeout)
    while len(packets) < until_count:
        try:
            data = tls.recv(65536)
        except TimeoutError:
            break
        if not data:
            break
        buffer += data
        found, used = codec.split_packets(buffer, 1 << 20)
        del buffer[:used]
        packets += found
    return packets


def test_at_most_100_unacknowledged_messages_go_to_a_subscriber(
    broker, make_device, paho_client, raw_client, until
):
    # given a raw subscriber at QoS 1 that never acknowledges
    subscriber, publisher = make_device(), make_device()
    tls = raw_client(subscriber, broker.port, subscriber.client_id)
    tls.sendall(b"\x82\x08\x00\x01\x00\x03q/1\x01")  # SUBSCRIBE id 1, "q/1", QoS 1
    assert read_packets(tls, 1)[0][0] >> 4 == codec.SUBACK
    # when 120 QoS 1 messages are published to it
    pub = paho_client(publisher, broker.port)
    infos = [pub.publish("q/1", b"%d" % i, qos=1) for i in range(120)]
    assert until(lambda: all(i.mid in pub.seen.pubacks for i in infos))
    # then only 100 are in flight (AWS's outbound quota) ...
    first = read_packets(tls, 120, timeout=1.0)
    assert len(first) == 100
    # ... and acknowledging one lets the next one through
    packet_id = codec.parse_publish(first[0][0], first[0][1], False).packet_id
    tls.sendall(b"\x40\x02" + packet_id.to_bytes(2, "big"))
    (following,) = read_packets(tls, 1, timeout=1.0)
    assert codec.parse_publish(following[0], following[1], False).payload == b"100"


def connect_v5_with_delayed_will(device, port, will_topic: str, delay_s: int):
    """A raw MQTT 5 CONNECT: session expiry 60 s and a will delayed by `delay_s`."""
    context = ssl.create_default_context(cafile=str(device.ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    tls = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
    )
    cid = device.client_id.encode()
    body = b"\x00\x04MQTT\x05" + bytes((0x02 | 0x04 | 0x08,)) + struct.pack("!H", 60)
    body += codec.encode_properties({codec.SESSION_EXPIRY_INTERVAL: 60})
    body += struct.pack("!H", len(cid)) + cid
    body += codec.encode_properties({codec.WILL_DELAY_INTERVAL: delay_s})
    body += struct.pack("!H", len(will_topic)) + will_topic.encode() + b"\x00\x04gone"
    tls.sendall(b"\x10" + codec.encode_varint(len(body)) + body)
    tls.settimeout(5)
    assert tls.recv(1) == b"\x20"  # CONNACK
    return tls


@pytest.mark.parametrize("reconnect", [False, True])
def test_mqtt5_will_delay_interval(broker, consumer, make_device, raw_client, until, reconnect):
    # given an MQTT 5 client with a will delayed by 2 s
    device = make_device()
    tls = connect_v5_with_delayed_will(device, broker.port, "wills/delayed", 2)
    assert until(lambda: device.client_id in broker.connections)
    # when its connection drops (and, in one case, it reconnects at once)
    tls.close()
    assert until(lambda: device.client_id not in broker.connections)
    if reconnect:
        raw_client(device, broker.port, device.client_id)
    # then the will is published after the delay only when it did not come back
    assert consumer.on_topic("wills/delayed") == []
    if reconnect:
        time.sleep(2.5)
        assert consumer.on_topic("wills/delayed") == []
    else:
        assert until(lambda: consumer.on_topic("wills/delayed"), timeout=5)
