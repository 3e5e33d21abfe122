"""Fixtures for the rules engine's integration tests: the session emulator with a RulesEngine."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rules(emulator):
    """The emulator's rules engine (constructed here until the lead wires it in app.py)."""
    engine = emulator.find("rules")
    if engine is None:
        from emulator.rules.engine import RulesEngine

        engine = RulesEngine(emulator)
        emulator.add(engine)
        engine.start()
    return engine


@pytest.fixture
def role_arn():
    return "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture
def recording_firehose(emulator):
    """A stand-in with the Firehose component's put_records signature, installed for one test.

    It replaces `emulator.firehose` only when the real component is absent."""

    class RecordingFirehose:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str, list[bytes]]] = []
            self.fail_with: Exception | None = None

        def put_records(self, account_id, region, delivery_stream_name, records):
            if self.fail_with is not None:
                raise self.fail_with
            self.calls.append((account_id, region, delivery_stream_name, list(records)))
            return [f"record-{len(self.calls)}-{i}" for i in range(len(records))]

    previous = getattr(emulator, "firehose", None)
    fake = RecordingFirehose()
    emulator.firehose = fake
    yield fake
    if previous is None:
        del emulator.firehose
    else:
        emulator.firehose = previous
