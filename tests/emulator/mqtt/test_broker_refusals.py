"""What AWS IoT refuses, as the client sees it and as the activity log records it.

paho-mqtt 2.x clients (MQTT 3.1.1 and 5) over mutual TLS; policies created with boto3.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from support.certs import self_signed_certificate, write_pair


def policy(*statements):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": effect,
                "Action": list(actions),
                "Resource": [f"arn:aws:iot:*:*:{r}" for r in resources],
            }
            for effect, actions, resources in statements
        ],
    }


CONNECT_ANY = ("Allow", ["iot:Connect"], ["client/*"])
PUBLISH_ALLOWED = ("Allow", ["iot:Publish", "iot:Receive"], ["topic/allowed"])
SUBSCRIBE_ALLOWED = ("Allow", ["iot:Subscribe"], ["topicfilter/allowed"])


def events(broker, client_id, kind):
    return [e for e in broker.activity.events(client_id) if e["event"] == kind]


@pytest.mark.parametrize("version", [4, 5])
def test_connect_not_allowed_by_policy_gets_not_authorized(
    broker, consumer, make_device, paho_client, until, version
):
    # given a certificate whose policy allows another client id only
    device = make_device(policy(("Allow", ["iot:Connect"], ["client/someone-else"])))
    # when it connects with its own client id
    client = paho_client(device, broker.port, version)
    # then MQTT 5 gets CONNACK "Not authorized" (0x87); MQTT 3.1.1 gets no CONNACK, as on AWS
    # IoT: the connection is closed (what awsiotsdk reports as an unexpected hang-up)
    if version == 5:
        assert str(client.seen.connack) == "Not authorized"
    else:
        assert client.seen.connack is None and client.seen.disconnects
    # and the activity log names the action, the client ARN and the policy decision
    (denied,) = events(broker, device.client_id, "CONNECT_DENIED")
    assert denied["action"] == "iot:Connect"
    assert denied["resource"].endswith(f":client/{device.client_id}")
    assert denied["principal"] == device.certificate_id
    assert denied["policyDecision"]
    # and a connect_failed lifecycle event was published
    assert until(
        lambda: consumer.on_topic(f"$aws/events/presence/connect_failed/{device.client_id}")
    )


def test_inactive_certificate_cannot_connect(broker, make_device, paho_client, aws):
    # given a device whose certificate was set INACTIVE
    device = make_device()
    aws("iot").update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    # when it connects
    client = paho_client(device, broker.port)
    # then the server hangs up without a CONNACK and the log says why
    assert client.seen.connack is None and client.seen.disconnects
    (denied,) = events(broker, device.client_id, "CONNECT_DENIED")
    assert "INACTIVE" in denied["reason"]


def test_denied_publish_over_311_closes_the_connection(
    broker, consumer, make_device, paho_client, until
):
    # given a device allowed to publish on "allowed" only
    device = make_device(policy(CONNECT_ANY, PUBLISH_ALLOWED))
    client = paho_client(device, broker.port)
    assert str(client.seen.connack) == "Success"
    # when it publishes at QoS 1 on "forbidden"
    info = client.publish("forbidden", b"x", qos=1)
    # then the broker hangs up without a PUBACK, and nothing reached the consumer
    assert until(lambda: client.seen.disconnects)
    assert info.mid not in client.seen.pubacks
    assert consumer.on_topic("forbidden") == []
    (denied,) = events(broker, device.client_id, "PUBLISH_DENIED")
    assert denied["action"] == "iot:Publish"
    assert denied["resource"].endswith(":topic/forbidden")
    assert until(lambda: events(broker, device.client_id, "DISCONNECT"))
    assert events(broker, device.client_id, "DISCONNECT")[0]["reason"] == "AUTH_ERROR"


def test_denied_publish_over_mqtt5_gets_puback_0x87_and_the_connection_stays(
    broker, consumer, make_device, paho_client, until
):
    # given an MQTT 5 device allowed to publish on "allowed" only
    device = make_device(policy(CONNECT_ANY, PUBLISH_ALLOWED))
    client = paho_client(device, broker.port, version=5)
    # when it publishes on "forbidden", then on "allowed"
    denied = client.publish("forbidden", b"x", qos=1)
    allowed = client.publish("allowed", b"y", qos=1)
    # then the first PUBACK is "Not authorized", the second a success, and it stayed connected
    assert until(lambda: allowed.mid in client.seen.pubacks)
    assert client.seen.pubacks[denied.mid].value == 0x87
    assert client.seen.pubacks[allowed.mid].value == 0
    assert client.seen.disconnects == []
    assert [m.payload for m in consumer.on_topic("") if m.topic in ("allowed", "forbidden")] == [
        b"y"
    ]
    assert events(broker, device.client_id, "PUBLISH_DENIED")[0]["resource"].endswith(
        "topic/forbidden"
    )


@pytest.mark.parametrize("version, code", [(4, 0x80), (5, 0x87)])
def test_denied_subscribe_gets_a_failure_in_suback(
    broker, make_device, paho_client, until, version, code
):
    # given a device allowed to subscribe to "allowed" only
    device = make_device(policy(CONNECT_ANY, SUBSCRIBE_ALLOWED))
    client = paho_client(device, broker.port, version)
    # when it subscribes to both
    _, mid = client.subscribe([("allowed", 1), ("forbidden", 1)])
    # then the SUBACK grants the first and refuses the second
    assert until(lambda: mid in client.seen.subacks)
    assert [rc.value for rc in client.seen.subacks[mid]] == [1, code]
    (denied,) = events(broker, device.client_id, "SUBSCRIBE_DENIED")
    assert denied["resource"].endswith(":topicfilter/forbidden")


def test_qos2_subscription_is_refused(broker, make_device, paho_client, until):
    device = make_device()
    client = paho_client(device, broker.port)
    _, mid = client.subscribe("any/topic", qos=2)
    assert until(lambda: mid in client.seen.subacks)
    assert [rc.value for rc in client.seen.subacks[mid]] == [0x80]
    assert "QoS 2" in events(broker, device.client_id, "SUBSCRIBE_REFUSED")[0]["reason"]


@pytest.mark.parametrize(
    "topic, payload, reason",
    [
        ("a/b", b"x", "QoS 2"),
        ("big", b"x" * (131_072 + 1), "128 KB"),
        ("/".join("abcdefghi"), b"x", "8 forward slashes"),
        ("t" * 257, b"x", "257 bytes"),
    ],
)
def test_publish_aws_refuses_disconnects_the_client(
    broker, consumer, make_device, paho_client, until, topic, payload, reason
):
    # given a connected device with every permission
    device = make_device()
    client = paho_client(device, broker.port)
    # when it publishes what AWS IoT refuses (QoS 2, > 128 KB, > 7 slashes, > 256 bytes)
    client.publish(topic, payload, qos=2 if reason == "QoS 2" else 1)
    # then it is disconnected (CLIENT_ERROR) and the consumer has nothing
    assert until(lambda: client.seen.disconnects)
    assert consumer.on_topic(topic) == []
    (refused,) = events(broker, device.client_id, "PUBLISH_REFUSED")
    assert reason in refused["reason"]
    assert until(lambda: events(broker, device.client_id, "DISCONNECT"))
    assert events(broker, device.client_id, "DISCONNECT")[0]["reason"] == "CLIENT_ERROR"


def test_basic_ingest_prefix_does_not_count_toward_the_slash_limit(
    broker, consumer, make_device, paho_client, until
):
    device = make_device()
    client = paho_client(device, broker.port)
    topic = "$aws/rules/my_rule/" + "/".join("abcdefgh")  # 7 slashes after the prefix
    info = client.publish(topic, b"{}", qos=1)
    assert until(lambda: info.mid in client.seen.pubacks)
    assert [m.topic for m in consumer.on_topic("$aws/rules/")] == [topic]


def test_client_id_longer_than_128_bytes_is_rejected(broker, make_device, paho_client):
    device = make_device()
    client = paho_client(device, broker.port, client_id="c" * 129)
    assert client.seen.connack.value in (2, 0x85)  # "Identifier rejected"
    (denied,) = events(broker, "c" * 129, "CONNECT_DENIED")
    assert "128 bytes" in denied["reason"]


def test_consumer_failure_means_no_puback(broker, consumer, make_device, paho_client, until):
    # given a consumer that refuses everything
    consumer.refuse = True
    device = make_device()
    v311 = paho_client(device, broker.port, 4, client_id=device.client_id + "-a")
    v5 = paho_client(device, broker.port, 5, client_id=device.client_id + "-b")
    # when both publish at QoS 1
    lost = v311.publish("allowed", b"1", qos=1)
    refused = v5.publish("allowed", b"2", qos=1)
    # then MQTT 3.1.1 is disconnected without PUBACK, MQTT 5 gets PUBACK 0x80 (not a success)
    assert until(lambda: v311.seen.disconnects and refused.mid in v5.seen.pubacks)
    assert lost.mid not in v311.seen.pubacks
    assert v5.seen.pubacks[refused.mid].value == 0x80


def test_malformed_packet_closes_the_connection(broker, make_device, raw_client):
    # given a raw TLS connection with a device certificate (CONNECT sent, CONNACK read)
    device = make_device()
    tls = raw_client(device, broker.port, device.client_id)
    # when it sends a PUBLISH with QoS 3
    tls.sendall(b"\x36\x05\x00\x01t\x00\x01")
    # then the broker closes the connection
    tls.settimeout(5)
    assert tls.recv(10) == b""
    (malformed,) = events(broker, device.client_id, "MALFORMED_PACKET")
    assert "QoS 3" in malformed["reason"]


def test_unregistered_certificate_fails_the_tls_handshake(broker, make_device, tmp_path, until):
    # given a self-signed certificate that was never registered
    cert_path, key_path = write_pair(tmp_path, "stranger", *self_signed_certificate("stranger"))
    context = ssl.create_default_context(cafile=str(make_device().ca_path))
    context.load_cert_chain(str(cert_path), str(key_path))
    # when it connects, then the server refuses the handshake (TLS 1.3 reports it on first read)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with socket.create_connection(("127.0.0.1", broker.port)) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.settimeout(5)
                tls.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
                if tls.recv(4) == b"":
                    raise ConnectionError("closed")
    # and the activity log has the failed handshake
    assert until(
        lambda: [e for e in broker.activity.events() if e["event"] == "TLS_HANDSHAKE_FAILED"]
    )


def test_receive_is_authorized_before_delivery(broker, make_device, paho_client, until):
    # given a subscriber allowed to subscribe to "news/#" but to receive "news/public" only
    reader = make_device(
        policy(
            CONNECT_ANY,
            ("Allow", ["iot:Subscribe"], ["topicfilter/news/#"]),
            ("Allow", ["iot:Receive"], ["topic/news/public"]),
        )
    )
    sub = paho_client(reader, broker.port)
    _, mid = sub.subscribe("news/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    # when messages are published on both topics
    pub = paho_client(make_device(), broker.port)
    infos = [pub.publish(topic, topic.encode(), qos=1) for topic in ("news/secret", "news/public")]
    assert until(lambda: all(i.mid in pub.seen.pubacks for i in infos))
    # then only the allowed one is delivered, and the other is logged as RECEIVE_DENIED
    assert until(lambda: sub.seen.messages)
    assert [m.topic for m in sub.seen.messages] == ["news/public"]
    (denied,) = events(broker, reader.client_id, "RECEIVE_DENIED")
    assert denied["action"] == "iot:Receive"
    assert denied["resource"].endswith(":topic/news/secret")
