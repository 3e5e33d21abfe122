"""Fixtures of the reliability suite: a pipeline on the session emulator and connected devices
(see reliability_harness.py)."""

from __future__ import annotations

import pytest
from reliability_harness import DeviceFiles, Pipeline, Publisher


@pytest.fixture
def pipeline(aws, unique) -> Pipeline:
    return Pipeline(aws, unique)


@pytest.fixture
def connect(emulator):
    """Factory: a connected Publisher for a device; every one is closed after the test."""
    opened: list[Publisher] = []

    def make(device: DeviceFiles) -> Publisher:
        publisher = Publisher(
            device, str(emulator.iot.root_ca_path), "localhost", emulator.mqtt_port
        )
        opened.append(publisher)
        return publisher

    yield make
    for publisher in opened:
        try:
            publisher.close()
        except Exception:
            pass
