"""The activity log survives a restart: events are journaled under the data directory."""

from types import SimpleNamespace

from emulator.mqtt.activity import ActivityLog


def emulator_at(path):
    return SimpleNamespace(data_dir=path)


def test_events_come_back_after_a_restart(tmp_path):
    # given a log that recorded a refusal
    first = ActivityLog(emulator_at(tmp_path))
    first.record("CONNECT_DENIED", "dev-1", "not authorized", action="iot:Connect")
    first.close()
    # when a new log opens the same data directory
    second = ActivityLog(emulator_at(tmp_path))
    # then the event is there, with its fields
    (event,) = second.events("dev-1")
    assert event["event"] == "CONNECT_DENIED" and event["action"] == "iot:Connect"


def test_a_line_torn_by_a_crash_is_skipped(tmp_path):
    log = ActivityLog(emulator_at(tmp_path))
    log.record("CONNECT", "dev-1")
    log.close()
    journal = tmp_path / "mqtt" / "activity.jsonl"
    journal.write_text(journal.read_text() + '[1795000000.0, {"clientId": "dev')  # no newline
    reopened = ActivityLog(emulator_at(tmp_path))
    assert [e["event"] for e in reopened.events()] == ["CONNECT"]


def test_the_journal_is_compacted_to_the_capacity(tmp_path):
    log = ActivityLog(emulator_at(tmp_path), capacity=5)
    for i in range(12):
        log.record("CONNECT", f"dev-{i}")
    log.close()
    journal = tmp_path / "mqtt" / "activity.jsonl"
    assert len(journal.read_text().splitlines()) <= 10
    reopened = ActivityLog(emulator_at(tmp_path), capacity=5)
    assert [e["clientId"] for e in reopened.events()] == [f"dev-{i}" for i in range(7, 12)]
