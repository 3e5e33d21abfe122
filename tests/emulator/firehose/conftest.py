"""Firehose tests run on the session emulator; the component is added here until app.py wires
it (emulator.find("firehose") is None until then)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def firehose(emulator):
    service = emulator.find("firehose")
    if service is None:
        from emulator.firehose.service import FirehoseService

        service = emulator.add(FirehoseService(emulator))
        service.start()
    return service
