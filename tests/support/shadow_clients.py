"""A device connected with awsiotsdk (the workbook's `pipeline.publish.Device`) for a device
registered by the MQTT suites' `make_device` fixture, and a recorder for the SDK's shadow
callbacks."""

from __future__ import annotations

import threading
from typing import Any

from pipeline.publish import Device


def sdk_device(port: int, registered: Any) -> Device:
    """Connect `registered` (client id = its thing name) to the broker on 127.0.0.1:`port`."""
    device = Device(
        "localhost",
        port,
        registered.cert_path,
        registered.key_path,
        str(registered.ca_path),
        registered.client_id,
    )
    device.connect()
    return device


class Answers:
    """What the SDK's callbacks delivered, by kind ("update/accepted", "delta", ...)."""

    def __init__(self) -> None:
        self.seen: dict[str, list] = {}
        self._cond = threading.Condition()

    def callback(self, kind: str):
        def record(answer) -> None:
            with self._cond:
                self.seen.setdefault(kind, []).append(answer)
                self._cond.notify_all()

        return record

    def wait(self, kind: str, count: int = 1, timeout: float = 10) -> list:
        with self._cond:
            self._cond.wait_for(lambda: len(self.seen.get(kind, [])) >= count, timeout)
            return list(self.seen.get(kind, []))
