"""Memory bounds of the broker: a subscriber that does not read, and offline persistent sessions.

Real clients over mutual TLS: a raw TLS socket that subscribes and then never reads, paho-mqtt
publishers and persistent-session subscribers.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time

from emulator.mqtt import codec
from emulator.mqtt.limits import (
    MAX_QUEUED_BYTES_PER_SESSION,
    OUTBOUND_HIGH_WATER_BYTES,
    QUEUED_PER_SECOND_PER_ACCOUNT,
)


def events(broker, client_id, kind):
    return [e for e in broker.activity.events(client_id) if e["event"] == kind]


def test_subscriber_that_never_reads_does_not_grow_the_write_buffer(
    broker, consumer, make_device, raw_client, until, unique
):
    # given a subscriber at QoS 0 with a small receive buffer that stops reading after SUBACK
    reader = make_device()
    context = ssl.create_default_context(cafile=str(reader.ca_path))
    context.load_cert_chain(str(reader.cert_path), str(reader.key_path))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    raw.connect(("127.0.0.1", broker.port))
    tls = context.wrap_socket(raw, server_hostname="localhost")
    try:
        cid = reader.client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid
        tls.sendall(b"\x10" + codec.encode_varint(len(body)) + body)
        tls.settimeout(5)
        assert tls.recv(4) == b"\x20\x02\x00\x00"
        topic = f"flood/{unique}".encode()
        subscribe = b"\x00\x01" + struct.pack("!H", len(topic)) + topic + b"\x00"
        tls.sendall(b"\x82" + codec.encode_varint(len(subscribe)) + subscribe)
        assert tls.recv(5)[0] >> 4 == codec.SUBACK
        # when 300 messages of 100 KB (30 MB) are published to it at QoS 0 (one raw client)
        sender = make_device()
        publisher = raw_client(sender, broker.port, sender.client_id)
        payload = b"x" * 100_000
        body = struct.pack("!H", len(topic)) + topic + payload
        publisher.sendall((b"\x30" + codec.encode_varint(len(body)) + body) * 300)
        assert until(lambda: len(consumer.on_topic(f"flood/{unique}")) == 300, timeout=120)
        # then what waits for the reader stays near the high-water mark (one message over it
        # at most), the rest was dropped and logged once
        connection = broker.connections[reader.client_id]
        buffered = connection.transport.get_write_buffer_size()
        assert buffered <= OUTBOUND_HIGH_WATER_BYTES + 2 * len(payload), buffered
        assert broker.dropped_messages >= 250
        (dropped,) = events(broker, reader.client_id, "MESSAGE_DROPPED")
        assert "QoS 0" in dropped["reason"]
        # and the reader is still connected: when it reads again, messages flow
        received = 0
        tls.settimeout(2)
        try:
            while received < 2 * OUTBOUND_HIGH_WATER_BYTES:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
        except TimeoutError:
            pass
        assert received > OUTBOUND_HIGH_WATER_BYTES // 2
        assert reader.client_id in broker.connections
    finally:
        tls.close()


def _offline_subscriber(broker, device, paho_client, until, topic):
    client = paho_client(device, broker.port, client_kw={"clean_session": False})
    _, mid = client.subscribe(topic, qos=1)
    assert until(lambda: mid in client.seen.subacks)
    client.disconnect()
    assert until(lambda: device.client_id not in broker.connections)


def test_offline_session_queue_is_bounded_in_bytes_and_keeps_the_oldest(
    broker, make_device, paho_client, until, unique
):
    # given a persistent session subscribed at QoS 1, offline
    device = make_device()
    _offline_subscriber(broker, device, paho_client, until, f"big/{unique}")
    # when 400 QoS 1 messages of 100 KB (40 MB) are published to it
    publisher = paho_client(make_device(), broker.port)
    infos = [
        publisher.publish(f"big/{unique}", str(i).encode().ljust(100_000, b"."), qos=1)
        for i in range(400)
    ]
    assert until(lambda: all(i.mid in publisher.seen.pubacks for i in infos), timeout=60)
    # then the session keeps what fits in its byte bound, the oldest, and logs the drop once
    session = broker.sessions[device.client_id]
    kept = MAX_QUEUED_BYTES_PER_SESSION // 100_000
    assert len(session.queue) == kept
    assert session.queued_bytes <= MAX_QUEUED_BYTES_PER_SESSION
    (dropped,) = events(broker, device.client_id, "MESSAGE_DROPPED")
    assert "queue full" in dropped["reason"]
    # and on reconnection exactly those are delivered, in order
    client = paho_client(device, broker.port, client_kw={"clean_session": False})
    assert until(lambda: len(client.seen.messages) >= kept, timeout=60)
    time.sleep(0.3)
    indexes = [int(m.payload.rstrip(b".")) for m in client.seen.messages]
    assert indexes == list(range(kept))


def test_offline_queueing_is_limited_to_the_accounts_rate(
    broker, consumer, make_device, paho_client, raw_client, until, unique
):
    # given a persistent session subscribed at QoS 1, offline
    device = make_device()
    _offline_subscriber(broker, device, paho_client, until, f"rate/{unique}")
    # when 1,500 small QoS 1 messages are published to it at once (one write of a raw client)
    sender = make_device()
    tls = raw_client(sender, broker.port, sender.client_id)
    topic = f"rate/{unique}".encode()
    packets = b""
    for packet_id in range(1, 1501):
        body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", packet_id) + b"m"
        packets += b"\x32" + codec.encode_varint(len(body)) + body
    started = time.monotonic()
    tls.sendall(packets)
    assert until(lambda: len(consumer.on_topic(f"rate/{unique}")) == 1500, timeout=60)
    elapsed = time.monotonic() - started
    # then no more than "Queued messages per second per account" (500/s) were queued
    queued = len(broker.sessions[device.client_id].queue)
    allowed = QUEUED_PER_SECOND_PER_ACCOUNT * (1 + elapsed)
    assert QUEUED_PER_SECOND_PER_ACCOUNT <= queued <= allowed, (queued, elapsed)
    assert queued < 1500
    (dropped,) = events(broker, device.client_id, "MESSAGE_DROPPED")
    assert "Queued messages per second per account" in dropped["reason"]
