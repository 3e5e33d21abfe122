"""Descriptor exhaustion: sockets that never finish TLS or never send CONNECT are closed after
CONNECT_TIMEOUT_S, MQTT connections are capped below the descriptor limit, and a real device
still connects and publishes meanwhile (paho-mqtt over mutual TLS, raw sockets for the rest)."""

from __future__ import annotations

import resource
import select
import socket
import ssl
import time

from emulator.mqtt.limits import CONNECT_TIMEOUT_S, mqtt_connection_limit


def _open_idle(port: int, count: int) -> list[socket.socket]:
    """TCP connections that stop mid-handshake: half send nothing, half a partial ClientHello."""
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        if index % 2:
            sock.sendall(b"\x16\x03\x01\x02\x00\x01")  # a TLS record header and one byte
        sockets.append(sock)
    return sockets


def _open_silent_tls(device, port: int, count: int) -> list[ssl.SSLSocket]:
    """Connections that complete the TLS handshake with a device certificate, then are silent."""
    context = ssl.create_default_context(cafile=str(device.ca_path))
    context.load_cert_chain(str(device.cert_path), str(device.key_path))
    return [
        context.wrap_socket(
            socket.create_connection(("127.0.0.1", port)), server_hostname="localhost"
        )
        for _ in range(count)
    ]


def _closed_at(sockets, deadline: float) -> dict[int, float]:
    """When each socket was closed by the server (index -> monotonic time), until `deadline`."""
    closed: dict[int, float] = {}
    for sock in sockets:
        sock.setblocking(False)
    while len(closed) < len(sockets) and time.monotonic() < deadline:
        waiting = [s for i, s in enumerate(sockets) if i not in closed]
        readable, _, _ = select.select(waiting, [], [], 0.2)
        for sock in readable:
            index = sockets.index(sock)
            try:
                data = sock.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                data = b""
            if not data:
                closed[index] = time.monotonic()
    return closed


def _device_publishes(device, broker, consumer, paho_client, until, topic) -> None:
    client = paho_client(device, broker.port)
    assert str(client.seen.connack) == "Success"
    info = client.publish(topic, b"still served", qos=1)
    assert until(lambda: info.mid in client.seen.pubacks)
    assert [m.payload for m in consumer.on_topic(topic)] == [b"still served"]


def test_idle_handshakes_do_not_stop_a_device_and_are_closed_after_the_timeout(
    broker, consumer, make_device, paho_client, until, unique
):
    holder, device = make_device(), make_device()
    # given 300 sockets held open mid-handshake and 5 silent after the TLS handshake
    opened = time.monotonic()
    idle = _open_idle(broker.port, 300)
    silent_opened = time.monotonic()
    silent = _open_silent_tls(holder, broker.port, 5)
    try:
        # when a real device connects and publishes
        # then it is served
        _device_publishes(device, broker, consumer, paho_client, until, f"ok/{unique}")
        # and every idle socket is closed CONNECT_TIMEOUT_S after it was opened, not later
        deadline = time.monotonic() + CONNECT_TIMEOUT_S + 5
        closed_idle = _closed_at(idle, deadline)
        closed_silent = _closed_at(silent, deadline)
        assert len(closed_idle) == 300
        assert len(closed_silent) == 5
        idle_after = max(closed_idle.values()) - opened
        silent_after = max(closed_silent.values()) - silent_opened
        assert CONNECT_TIMEOUT_S - 1 <= idle_after <= CONNECT_TIMEOUT_S + 3, idle_after
        assert CONNECT_TIMEOUT_S - 1 <= silent_after <= CONNECT_TIMEOUT_S + 3, silent_after
        # and their descriptors are released: only the device's connection is left
        assert until(lambda: broker.open_client_ids() == [device.client_id])
        counts = broker.connection_counts()
        assert counts["handshakes"] == 0 and counts["without_connect"] == 0
    finally:
        for sock in idle + silent:
            sock.close()


def test_connections_over_the_cap_are_refused_at_once_and_devices_still_connect(
    broker, consumer, make_device, paho_client, until, unique
):
    # given the default cap, below the process's descriptor limit
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert broker.max_connections == mqtt_connection_limit() < soft
    # and a broker capped at 60 connections, 30 of them before CONNECT
    broker.max_connections, broker.max_unidentified = 60, 30
    # when 100 sockets connect and stay silent
    idle = _open_idle(broker.port, 100)
    try:
        # then 70 of them are closed at once: the cap on connections without CONNECT holds
        closed = _closed_at(idle, time.monotonic() + 3)
        assert len(closed) == 70
        assert broker.shed_connections == 70
        # and a real device still connects and publishes (the oldest silent socket makes room)
        _device_publishes(make_device(), broker, consumer, paho_client, until, f"cap/{unique}")
    finally:
        for sock in idle:
            sock.close()
