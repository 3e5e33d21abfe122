"""Firehose tests run on the session emulator's Firehose component."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def firehose(emulator):
    return emulator.firehose
