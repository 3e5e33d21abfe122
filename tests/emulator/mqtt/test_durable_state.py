"""The broker's durable state under <data_dir>/mqtt/: retained messages and persistent sessions
survive a stop and a new broker on the same directory (kill -9 of a whole emulator process:
test_durable_restart.py), expired sessions do not, files are private and named by hashes, an
unreadable record is quarantined; and MQTT listens on the emulator's --host."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from types import SimpleNamespace

import pytest
from support.mqtt import left_offline, payloads, published, subscribed

from emulator.mqtt.broker import Broker
from emulator.persistence.records import record_name


@pytest.fixture
def brokers(broker, consumer, tmp_path):
    """Start brokers on one data directory (`brokers()`); any still running stop at the end.
    They see the emulator as the `broker` fixture's does, with a data directory of their own."""
    started: list[Broker] = []

    def start(host: str | None = None) -> Broker:
        data_dir = tmp_path / "state"
        view = SimpleNamespace(
            **vars(broker.emulator), data_dir=data_dir, ephemeral=False, host=host
        )
        broker_on_disk = Broker(view, consumer=consumer, port=0).start()
        started.append(broker_on_disk)
        return broker_on_disk

    yield start
    for each in started:
        each.stop()


PERSISTENT = {"client_kw": {"clean_session": False}}


def _stored(record) -> dict:
    """A session record as written: a header line, then the record's JSON."""
    return json.loads(record.read_bytes().partition(b"\n")[2])


def persistent_subscriber(broker, device, paho_client, **kwargs):
    """A client of `device` with a persistent session (3.1.1 unless told), subscribed to cmd/#."""
    client = paho_client(device, broker.port, **(kwargs or PERSISTENT))
    subscribed(client, "cmd/#")
    return client


def test_a_persistent_session_and_its_queue_survive_a_restart(
    brokers, make_device, paho_client, until
):
    # given a persistent session subscribed at QoS 1, offline, with messages queued for it
    first, device = brokers(), make_device()
    left_offline(first, persistent_subscriber(first, device, paho_client), device.client_id)
    publisher = paho_client(make_device(), first.port)
    for i in range(3):
        published(publisher, f"cmd/{i}", f"c{i}".encode())
    assert until(lambda: len(first.sessions[device.client_id].queue) == 3)
    # when the broker stops and another starts on the same data directory
    first.stop()
    second = brokers()
    # then the client resumes its session: the queued messages arrive in order
    back = paho_client(device, second.port, **PERSISTENT)
    assert until(lambda: len(back.seen.messages) == 3)
    assert payloads(back) == [b"c0", b"c1", b"c2"]
    # and its subscription is still there without subscribing again
    again = paho_client(make_device(), second.port)
    again.publish("cmd/later", b"after", qos=1)
    assert until(lambda: len(back.seen.messages) == 4)
    assert back.seen.messages[3].payload == b"after"


def test_while_the_disk_is_busy_a_changing_queue_is_written_once_more_not_once_a_tick(
    brokers, make_device, paho_client, until
):
    # given an offline persistent session on a broker whose state writer is held busy (a slow
    # disk), and the session writes it asks for counted
    first, device = brokers(), make_device()
    left_offline(first, persistent_subscriber(first, device, paho_client), device.client_id)
    files, writes = first._session_files, []
    save_many = files.save_many
    files.save_many = lambda changes: (writes.append(changes), save_many(changes))
    disk_free = threading.Event()
    first._writer.submit(disk_free.wait, 30)
    # when its queue keeps changing for several of the broker's half-second ticks
    publisher = paho_client(make_device(), first.port)
    for i in range(8):
        published(publisher, f"cmd/{i}", f"c{i}".encode())
        time.sleep(0.25)
    # then, once the disk is free, one write of the sessions changed meanwhile is made, not
    # one per tick, and the last version reaches the disk
    disk_free.set()
    assert until(lambda: len(first.sessions[device.client_id].queue) == 8)
    record = first.emulator.data_dir / "mqtt" / "sessions" / record_name(device.client_id)
    assert until(lambda: len(_stored(record)["messages"]) == 8)
    assert len(writes) <= 2, [len(changes) for changes in writes]
    first.stop()
    back = paho_client(device, brokers().port, **PERSISTENT)
    assert until(lambda: len(back.seen.messages) == 8)
    assert payloads(back) == [f"c{i}".encode() for i in range(8)]


def test_a_clean_session_leaves_nothing_behind_and_ends_a_stored_one(
    brokers, make_device, paho_client, until
):
    first, device = brokers(), make_device()
    client = persistent_subscriber(first, device, paho_client)
    record = first.emulator.data_dir / "mqtt" / "sessions" / record_name(device.client_id)
    assert record.exists()
    client.disconnect()
    # a CONNECT with cleanSession=1 ends the persistent session, on disk too
    clean = paho_client(device, first.port)
    assert until(lambda: not record.exists())
    clean.disconnect()
    first.stop()
    assert device.client_id not in brokers().sessions


def test_an_expired_session_is_not_resumed_after_a_restart(
    brokers, make_device, paho_client, until
):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    # given an MQTT 5 session with a one-second expiry, disconnected
    first, device = brokers(), make_device()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 1
    client = persistent_subscriber(
        first, device, paho_client, version=5, clean_start=False, properties=props
    )
    left_offline(first, client, device.client_id)
    first.stop()
    # when the next broker starts after the expiry (the emulator being down counts)
    time.sleep(1.1)
    second = brokers()
    # then the session is gone, in memory and on disk
    assert device.client_id not in second.sessions
    assert not list((second.emulator.data_dir / "mqtt" / "sessions").iterdir())


def test_retained_messages_survive_a_restart_in_private_hashed_files(
    brokers, make_device, paho_client, until
):
    first = brokers()
    publisher = paho_client(make_device(), first.port)
    for topic, payload in (("site/a/config", b"A"), ("site/b/config", b"B"), ("site/c", b"C")):
        published(publisher, topic, payload, retain=True)
    published(publisher, "site/c", b"", retain=True)  # deleted again
    first.stop()
    second = brokers()
    assert second.retained.topics() == ["site/a/config", "site/b/config"]
    reader = paho_client(make_device(), second.port)
    subscribed(reader, "site/b/config")
    assert until(lambda: reader.seen.messages)
    assert (reader.seen.messages[0].payload, reader.seen.messages[0].retain) == (b"B", True)
    directory = second.emulator.data_dir / "mqtt" / "retained"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    files = sorted(directory.iterdir())
    assert [p.name for p in files] == sorted(
        record_name(t) for t in ("site/a/config", "site/b/config")
    )
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_unreadable_retained_record_is_quarantined_and_the_rest_loads(
    brokers, make_device, paho_client, until
):
    first = brokers()
    publisher = paho_client(make_device(), first.port)
    for topic in ("ok/one", "ok/two"):
        published(publisher, topic, b"x", retain=True)
    first.stop()
    data_dir = first.emulator.data_dir
    damaged = data_dir / "mqtt" / "retained" / record_name("ok/two")
    damaged.write_bytes(damaged.read_bytes()[:-10])  # a torn record
    second = brokers()
    assert second.retained.topics() == ["ok/one"]
    moved = [p for p in (data_dir / "quarantine").rglob("*") if p.is_file()]
    assert [p.name for p in moved] == [damaged.name]
    header = json.loads(moved[0].read_bytes().split(b"\n", 1)[0])
    assert header["kind"] == "mqtt-retained-message"


def test_mqtt_listens_on_the_emulators_host(brokers):
    # 127.0.0.2 is a loopback address of its own on Linux: the listener must be there only
    broker = brokers(host="127.0.0.2")
    assert broker._server.sockets[0].getsockname()[0] == "127.0.0.2"
    socket.create_connection(("127.0.0.2", broker.port), timeout=5).close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker.port), timeout=5).close()
