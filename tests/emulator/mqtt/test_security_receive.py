"""iot:Receive is evaluated at delivery, for the connection that receives: also for QoS 1
messages an offline persistent session kept, and for unacknowledged ones sent again.

paho-mqtt 2.x and raw TLS sockets (for a client that never acknowledges) over mutual TLS;
policies created and attached with boto3 while the device is offline.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time

from emulator.mqtt import codec

DENY_RECEIVE_INBOX = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Deny", "Action": "iot:Receive", "Resource": "arn:aws:iot:*:*:topic/inbox/*"}
    ],
}


def events(broker, client_id, kind):
    return [e for e in broker.activity.events(client_id) if e["event"] == kind]


def attach_deny(aws, device, unique):
    iot = aws("iot")
    name = f"deny-receive-{unique}-{device.client_id}"
    iot.create_policy(policyName=name, policyDocument=json.dumps(DENY_RECEIVE_INBOX))
    iot.attach_policy(policyName=name, target=device.certificate_arn)


def queue_one_while_offline(broker, make_device, paho_client, until, device, topic):
    """`device`'s persistent session subscribed to `topic` at QoS 1, then offline, and one QoS 1
    message another device published there queued for it."""
    first = paho_client(device, broker.port, client_kw={"clean_session": False})
    _, mid = first.subscribe(topic, qos=1)
    assert until(lambda: mid in first.seen.subacks)
    first.disconnect()
    assert until(lambda: device.client_id not in broker.connections)
    publisher = paho_client(make_device(), broker.port)
    info = publisher.publish(topic, b"for the owner only", qos=1)
    assert until(lambda: info.mid in publisher.seen.pubacks)
    assert until(lambda: queued(broker, device.client_id) == 1)


def queued(broker, client_id):
    session = broker.sessions.get(client_id)
    return len(session.queue) + len(session.inflight) if session else 0


def test_queued_message_is_not_delivered_to_a_certificate_that_may_not_receive_it(
    broker, make_device, paho_client, until, unique
):
    # given a persistent session subscribed to inbox/<u> by certificate A, now offline
    owner = make_device()
    # and a QoS 1 message queued for it
    queue_one_while_offline(broker, make_device, paho_client, until, owner, f"inbox/{unique}")
    # when certificate B, allowed to connect but not to receive inbox/*, takes the client id over
    intruder = make_device(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["iot:Connect", "iot:Subscribe", "iot:Publish"],
                    "Resource": "*",
                }
            ],
        }
    )
    second = paho_client(
        intruder, broker.port, client_id=owner.client_id, client_kw={"clean_session": False}
    )
    assert str(second.seen.connack) == "Success"
    # then the queued message is not delivered, and the denial names B's certificate
    assert until(lambda: events(broker, owner.client_id, "RECEIVE_DENIED"))
    time.sleep(0.5)
    assert second.seen.messages == []
    (denied,) = events(broker, owner.client_id, "RECEIVE_DENIED")
    assert denied["principal"] == intruder.certificate_id
    assert denied["resource"].endswith(f":topic/inbox/{unique}")


def test_queued_message_is_not_delivered_after_a_deny_attached_while_offline(
    broker, aws, make_device, paho_client, until, unique
):
    # given a persistent session subscribed to inbox/<u>, offline, with a QoS 1 message queued
    device = make_device()
    queue_one_while_offline(broker, make_device, paho_client, until, device, f"inbox/{unique}")
    # when a Deny on iot:Receive is attached to its certificate, and it reconnects
    attach_deny(aws, device, unique)
    again = paho_client(device, broker.port, client_kw={"clean_session": False})
    assert again.seen.connack is not None and str(again.seen.connack) == "Success"
    # then the queued message is dropped, not delivered
    assert until(lambda: events(broker, device.client_id, "RECEIVE_DENIED"))
    time.sleep(0.5)
    assert again.seen.messages == []
    assert queued(broker, device.client_id) == 0


def _raw_connect(device, port, clean: bool) -> tuple[ssl.SSLSocket, bytes]:
    context = ssl.create_default_context(cafile=str(device.ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    tls = context.wrap_socket(
        socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
    )
    cid = device.client_id.encode()
    flags = 0x02 if clean else 0x00
    body = b"\x00\x04MQTT\x04" + bytes((flags,)) + b"\x00\x3c" + struct.pack("!H", len(cid)) + cid
    tls.sendall(b"\x10" + codec.encode_varint(len(body)) + body)
    tls.settimeout(5)
    return tls, tls.recv(4)


def _read_packet(tls: ssl.SSLSocket) -> tuple[int, bytes]:
    head = tls.recv(1)
    if not head:
        return 0, b""
    length, multiplier = 0, 1
    while True:
        byte = tls.recv(1)[0]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        if not byte & 0x80:
            break
    body = b""
    while len(body) < length:
        body += tls.recv(length - len(body))
    return head[0], body


def test_unacknowledged_message_is_not_sent_again_after_a_deny(
    broker, aws, make_device, paho_client, until, unique
):
    # given a raw client with a persistent session subscribed to inbox/<u> at QoS 1
    device = make_device()
    tls, connack = _raw_connect(device, broker.port, clean=False)
    assert connack == b"\x20\x02\x00\x00"
    topic = f"inbox/{unique}".encode()
    subscribe = b"\x00\x01" + struct.pack("!H", len(topic)) + topic + b"\x01"
    tls.sendall(b"\x82" + codec.encode_varint(len(subscribe)) + subscribe)
    assert _read_packet(tls)[0] >> 4 == codec.SUBACK
    # and a QoS 1 message it received and never acknowledged
    publisher = paho_client(make_device(), broker.port)
    publisher.publish(f"inbox/{unique}", b"unacknowledged", qos=1)
    first_byte, _ = _read_packet(tls)
    assert first_byte >> 4 == codec.PUBLISH
    tls.close()
    assert until(lambda: device.client_id not in broker.connections)
    assert len(broker.sessions[device.client_id].inflight) == 1
    # when a Deny on iot:Receive is attached, and the client resumes its session
    attach_deny(aws, device, unique)
    tls, connack = _raw_connect(device, broker.port, clean=False)
    try:
        assert connack == b"\x20\x02\x01\x00"  # session present
        # then the message is not sent again (no DUP PUBLISH), and the denial is logged
        tls.settimeout(1.0)
        try:
            first_byte, _ = _read_packet(tls)
        except TimeoutError:
            first_byte = None
        assert first_byte is None or first_byte >> 4 != codec.PUBLISH
        assert events(broker, device.client_id, "RECEIVE_DENIED")
        assert broker.sessions[device.client_id].inflight == {}
    finally:
        tls.close()
