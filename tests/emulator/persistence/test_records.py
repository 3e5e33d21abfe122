"""persistence/records.py (one JSON record per key, hashed names, quarantine) and the records of
MQTT sessions (emulator/mqtt/session.py): pure units, no emulator."""

from __future__ import annotations

import json
import os
import stat
import time

from emulator.mqtt import codec
from emulator.mqtt.session import QueuedMessage, Session
from emulator.persistence.records import RecordFiles, record_name


def test_records_round_trip_in_private_files_named_by_hashes(tmp_path):
    files = RecordFiles(tmp_path / "things", "test-record", tmp_path)
    files.save("../../etc/passwd", {"n": 1})
    files.save_many([("a/b", {"n": 2}), ("gone", {"n": 3}), ("gone", None)])
    assert sorted((r["key"], r["n"]) for r in files.load()) == [("../../etc/passwd", 1), ("a/b", 2)]
    directory = tmp_path / "things"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [record_name("../../etc/passwd"), record_name("a/b")]
    )
    for path in directory.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_misnamed_or_foreign_record_is_quarantined_and_a_crash_leftover_removed(tmp_path):
    files = RecordFiles(tmp_path / "things", "test-record", tmp_path)
    files.save("kept", {"n": 1})
    files.save("moved", {"n": 2})
    # a record renamed by hand, a file of another kind, a temporary file left by a crash
    (tmp_path / "things" / record_name("moved")).rename(tmp_path / "things" / record_name("x"))
    RecordFiles(tmp_path / "things", "other-kind", tmp_path).save("foreign", {"n": 3})
    (tmp_path / "things" / ".leftover.tmp").write_bytes(b"half")
    assert [r["key"] for r in files.load()] == ["kept"]
    quarantined = sorted(p.name for p in (tmp_path / "quarantine").rglob("*.json"))
    assert quarantined == sorted([record_name("x"), record_name("foreign")])
    assert not (tmp_path / "things" / ".leftover.tmp").exists()


def test_a_session_record_keeps_subscriptions_messages_and_the_offline_time():
    # given an offline session with one message in flight and one queued, MQTT 5 properties on it
    session = Session("dev-1", persistent=True, expiry_s=60)
    session.subscriptions = {"a/#": 1, "$share/g/b": 1}
    props = {codec.USER_PROPERTY: [("k", "v")], codec.CORRELATION_DATA: b"\x00\x01"}
    session.inflight[7] = QueuedMessage("a/1", b"first", 1, False, props)
    session.queue.append(QueuedMessage("a/2", b"second", 1, False, {}))
    session.disconnected_at = time.monotonic() - 10
    record = json.loads(json.dumps(session.to_record()))
    # when it is read back 20 seconds later
    now = record["offline_since"] + 20
    back = Session.from_record("dev-1", record, now)
    # then everything waits in its queue, in order, and the expiry counts the 20 s offline
    assert back.subscriptions == session.subscriptions and back.persistent
    assert [(m.topic, m.payload) for m in back.queue] == [("a/1", b"first"), ("a/2", b"second")]
    assert back.queue[0].props == props
    assert back.queued_bytes == len(b"first") + len(b"second")
    assert 19 < time.monotonic() - back.disconnected_at < 21
    # and after the expiry there is no session to resume
    assert Session.from_record("dev-1", record, record["offline_since"] + 61) is None
