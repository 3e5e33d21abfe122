"""Group commit: the PUBLISH packets of one read reach the consumer together (`accept_many`),
and their PUBACKs leave only after it returned; a refused group gets no success PUBACK at all.
Also: a connection whose first packet is not CONNECT is closed at once.

Raw MQTT over mutual TLS (Python's ssl), so that several PUBLISHes go out in one TLS record
and therefore reach the broker in one read.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time

import pytest


class BatchConsumer:
    """A consumer with `accept_many`: records each call's size, can hold or refuse a call."""

    def __init__(self) -> None:
        self.calls: list[list] = []
        self.single: list = []
        self.refuse = False
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def accept_many(self, messages) -> None:
        if all(message.topic.startswith("$aws/events/") for message in messages):
            self.single.extend(messages)  # lifecycle events: the broker's own, one at a time
            return
        self.entered.set()
        self.hold.wait(10)
        if self.refuse:
            raise RuntimeError("spool full (test)")
        self.calls.append(list(messages))


@pytest.fixture
def consumer() -> BatchConsumer:  # replaces the recording consumer of conftest.py
    return BatchConsumer()


def open_tls(device, port: int) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(device.ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    raw = socket.create_connection(("127.0.0.1", port))
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.settimeout(5)
    return tls


def connect(tls: ssl.SSLSocket, client_id: str, version: int) -> None:
    cid = client_id.encode()
    body = b"\x00\x04MQTT" + bytes((version,)) + b"\x02\x00\x3c"
    if version == 5:
        body += b"\x00"  # no properties
    body += struct.pack("!H", len(cid)) + cid
    tls.sendall(b"\x10" + bytes((len(body),)) + body)
    connack = read_exactly(tls, 2)
    rest = read_exactly(tls, connack[1])
    assert connack[0] == 0x20 and rest[1] == 0, f"CONNACK refused: {rest!r}"


def publish(topic: str, packet_id: int, payload: bytes, version: int) -> bytes:
    name = topic.encode()
    body = struct.pack("!H", len(name)) + name + struct.pack("!H", packet_id)
    if version == 5:
        body += b"\x00"
    body += payload
    return b"\x32" + bytes((len(body),)) + body


def read_exactly(tls: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            return data
        data += chunk
    return data


@pytest.mark.parametrize("version", [4, 5])
def test_publishes_of_one_read_are_accepted_together_and_acked_after(
    broker, consumer, make_device, version
):
    # given a connected device and a consumer that holds its accept_many call
    device = make_device()
    with open_tls(device, broker.port) as tls:
        connect(tls, device.client_id, version)
        consumer.hold.clear()
        # when five QoS 1 PUBLISHes go out in one write
        tls.sendall(b"".join(publish("group/t", i, b"m%d" % i, version) for i in range(1, 6)))
        assert consumer.entered.wait(5)
        # then no PUBACK arrives while the consumer has not returned
        tls.settimeout(0.3)
        with pytest.raises(TimeoutError):
            tls.recv(1)
        consumer.hold.set()
        tls.settimeout(5)
        # and once it returns, the five PUBACKs come in the order of the PUBLISHes
        acks = read_exactly(tls, 20)
    assert acks == b"".join(b"\x40\x02" + struct.pack("!H", i) for i in range(1, 6))
    assert [[m.payload for m in call] for call in consumer.calls] == [
        [b"m1", b"m2", b"m3", b"m4", b"m5"]
    ]


def test_refused_group_over_mqtt5_gets_0x80_for_every_message(broker, consumer, make_device):
    # given an MQTT 5 device and a consumer that refuses (its durable write failed)
    device = make_device()
    consumer.refuse = True
    with open_tls(device, broker.port) as tls:
        connect(tls, device.client_id, 5)
        # when three PUBLISHes arrive in one read
        tls.sendall(b"".join(publish("group/t", i, b"x", 5) for i in (7, 8, 9)))
        acks = read_exactly(tls, 18)
        # then each gets PUBACK 0x80 Unspecified error, none a success, and the connection stays
        assert acks == b"".join(b"\x40\x04" + struct.pack("!H", i) + b"\x80\x00" for i in (7, 8, 9))
        consumer.refuse = False
        tls.sendall(publish("group/t", 10, b"y", 5))
        assert read_exactly(tls, 4) == b"\x40\x02\x00\x0a"
    (event,) = [
        e for e in broker.activity.events(device.client_id) if e["event"] == "PUBLISH_NOT_ACCEPTED"
    ]
    assert "3 message(s)" in event["reason"] and "spool full" in event["reason"]


def test_refused_group_over_311_closes_without_any_puback(broker, consumer, make_device):
    # given an MQTT 3.1.1 device and a refusing consumer
    device = make_device()
    consumer.refuse = True
    with open_tls(device, broker.port) as tls:
        connect(tls, device.client_id, 4)
        # when two PUBLISHes arrive in one read
        tls.sendall(publish("group/t", 1, b"a", 4) + publish("group/t", 2, b"b", 4))
        # then the connection is closed and nothing was acknowledged (3.1.1 has no negative ack)
        assert tls.recv(10) == b""


def test_pubacks_of_a_group_precede_the_answer_to_a_later_packet(broker, consumer, make_device):
    # given a connected MQTT 3.1.1 device
    device = make_device()
    with open_tls(device, broker.port) as tls:
        connect(tls, device.client_id, 4)
        # when two PUBLISHes and a PINGREQ arrive in one read
        tls.sendall(publish("group/t", 1, b"a", 4) + publish("group/t", 2, b"b", 4) + b"\xc0\x00")
        # then both PUBACKs come before the PINGRESP
        assert read_exactly(tls, 10) == b"\x40\x02\x00\x01\x40\x02\x00\x02\xd0\x00"


def test_http_request_instead_of_connect_is_closed_at_once(broker, make_device):
    # given a TLS connection with a valid device certificate
    device = make_device()
    with open_tls(device, broker.port) as tls:
        started = time.monotonic()
        # when the client speaks HTTP instead of MQTT (a request line, no complete packet)
        tls.sendall(b"GET / HTTP/1.1\r\n")
        # then the broker closes the connection at once, not after the 20 s idle sweep
        assert tls.recv(10) == b""
        assert time.monotonic() - started < 2
    malformed = [e for e in broker.activity.events() if e["event"] == "MALFORMED_PACKET"]
    assert any("not CONNECT" in e["reason"] for e in malformed)
