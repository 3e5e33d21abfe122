"""Bad input on the data plane: payloads the rule's SQL or the transform cannot read are
acknowledged and end in an error output or an AWS IoT log entry with the reason; publishes and
packets IoT Core refuses close that one connection (nothing acknowledged, nothing delivered); a
TLS client without a certificate never gets in. After each, a device that was already connected
and a new one still publish through the pipeline."""

from __future__ import annotations

import json
import socket
import ssl
import time

import pytest
from reliability_harness import (
    Publisher,
    assert_every_acknowledged_message_accounted,
    message,
    new_device,
)

ALLOW_ANY_TOPIC = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
    ],
}


@pytest.fixture
def setup(pipeline, connect, tmp_path, aws):
    """The pipeline, a device connected before the bad input, and a device allowed to publish to
    any topic (so that IoT Core's limits, not the policy, are what refuses)."""
    pipeline.create()
    pipeline.enable_iot_logging()
    good = connect(pipeline.device(0, tmp_path))
    aws("iot").create_policy(
        policyName=f"{pipeline.policy}-any", policyDocument=json.dumps(ALLOW_ANY_TOPIC)
    )
    wide = new_device(aws("iot"), f"rel-{pipeline.suffix}-wide", f"{pipeline.policy}-any", tmp_path)
    return pipeline, good, wide


def still_serving(pipeline, good: Publisher, connect, tmp_path, index: int) -> list[bytes]:
    """The connected device and a newly connected one each get a PUBACK for one message."""
    sent = len(good.acked)
    good.publish(pipeline.topic(good.device), message(good.device.thing_name, 10_000 + index))
    assert good.wait_acked(sent + 1, timeout=10), "the connected device got no PUBACK"
    fresh = connect(pipeline.device(index, tmp_path))
    fresh.publish(pipeline.topic(fresh.device), message(fresh.device.thing_name, 0))
    assert fresh.wait_acked(1, timeout=10), "a new device got no PUBACK"
    return list(good.acked) + list(fresh.acked)


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "payload",
    [
        b"temperature=21.5",
        b'{"t": "\xff\xfe"}',
        nested(5_000),  # past json's recursion limit: handled as a non-JSON payload
    ],
    ids=["not-json", "invalid-utf8", "nested-5000-deep"],
)
def test_unreadable_payloads_are_acknowledged_and_end_in_an_error_output_or_the_iot_log(
    setup, connect, tmp_path, payload
):
    pipeline, good, wide = setup
    # Given a device of the fleet (and AWS IoT logging on)
    device = connect(pipeline.device(1, tmp_path))
    # When it publishes a payload the rule's SQL or the transform cannot read
    device.publish(pipeline.topic(device.device), payload)
    assert device.wait_acked(1)
    # Then it is in processing-failed, or (the rule's `SELECT topic() AS topic, *` cannot take
    # a payload that is not a JSON object) in AWSIotLogsV2 only: no action, no errorAction,
    # with a reason; and the pipeline still serves good devices
    acknowledged = list(device.acked) + still_serving(pipeline, good, connect, tmp_path, 2)
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert found.rule_errors == [], "a SQL failure is not an action failure"
    reasons = [f["errorCode"] for f in found.failed] + [
        f"{entry['reason']}: {entry['details']}" for entry in found.dropped
    ]
    assert len(reasons) == 1 and all(reasons), found.summary()
    assert len(found.parsed) == 2


@pytest.mark.parametrize(
    ("case", "topic_of", "payload", "qos"),
    [
        # IoT Core quotas: "Maximum size of a message payload: 128 KB" (131,072 bytes).
        ("payload-128KB+1", lambda p, d: p.topic(d), b"x" * 131_073, 1),
        # Topic names: at most 256 UTF-8 bytes.
        ("topic-300-bytes", lambda p, d: f"{p.topic_root}/{'t' * 300}", b"{}", 1),
        # QoS 0 and 1 only (MQTT developer guide, "AWS IoT differences from MQTT specifications").
        ("qos-2", lambda p, d: p.topic(d), b"{}", 2),
    ],
    ids=["payload-128KB+1", "topic-300-bytes", "qos-2"],
)
def test_refused_publishes_close_only_that_connection(
    setup, connect, tmp_path, emulator, case, topic_of, payload, qos
):
    pipeline, good, wide = setup
    # Given a connected device allowed to publish to any topic
    device = connect(wide)
    # When it publishes what IoT Core refuses
    info = device.client.publish(topic_of(pipeline, wide), payload, qos=qos)
    # Then its connection is closed without an acknowledgement
    assert device.disconnected.wait(10), f"{case}: the connection stayed open"
    assert not info.is_published()
    device.client.loop_stop()
    # and the pipeline still serves the others; nothing of the refused publish is delivered
    acknowledged = still_serving(pipeline, good, connect, tmp_path, 3)
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)


def tls_socket(emulator, cert: str | None, key: str | None) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(emulator.iot.root_ca_path))
    if cert:
        context.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", emulator.mqtt_port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


def closed_by_server(sock: ssl.SSLSocket, timeout: float = 10) -> bool:
    """True when the server closes the connection (or resets it) within `timeout` seconds."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1024) == b""
    except (ssl.SSLError, ConnectionResetError):
        return True
    except TimeoutError:
        return False


# A well-formed MQTT 3.1.1 CONNECT for `client_id`, keep-alive 30 s, clean session.
def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x1e" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(body)]) + body


@pytest.mark.parametrize(
    "garbage",
    [
        b"\xff" * 64,  # not an MQTT packet at all
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",  # another protocol
        None,  # a valid CONNECT, then a PUBLISH whose remaining length never ends
    ],
    ids=["bytes-ff", "http", "bad-remaining-length"],
)
def test_malformed_packets_close_that_connection(setup, connect, tmp_path, emulator, garbage):
    pipeline, good, wide = setup
    # Given a TLS connection with a registered certificate
    with tls_socket(emulator, str(wide.cert_path), str(wide.key_path)) as sock:
        if garbage is None:
            sock.sendall(connect_packet(wide.thing_name))
            assert sock.recv(4)[:1] == b"\x20"  # CONNACK
            garbage = b"\x32\xff\xff\xff\xff\xff"
        # When it writes bytes that are not MQTT
        sock.sendall(garbage)
        # Then the server closes it (a first packet that is not yet complete is closed by the
        # broker's 20 s limit for connections that never finished their CONNECT)
        assert closed_by_server(sock, timeout=25)
    # and keeps serving the others
    acknowledged = still_serving(pipeline, good, connect, tmp_path, 4)
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)


def test_tls_client_without_certificate_is_refused(setup, connect, tmp_path, emulator):
    pipeline, good, _ = setup
    # Given a TLS client that presents no certificate (IoT Core requires mutual TLS on 8883)
    # When it connects and sends a CONNECT
    try:
        with tls_socket(emulator, None, None) as sock:
            sock.sendall(connect_packet("anonymous"))
            refused = closed_by_server(sock)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        refused = True
    # Then the handshake or the connection fails, and the others are still served
    assert refused
    time.sleep(0.1)
    acknowledged = still_serving(pipeline, good, connect, tmp_path, 5)
    found = pipeline.wait_accounted(len(acknowledged))
    assert_every_acknowledged_message_accounted(found, acknowledged)
