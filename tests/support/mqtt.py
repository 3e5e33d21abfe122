"""A view of the session emulator for a Broker of a test's own, so that it does not replace the
session's `emulator.broker` (a Broker sets itself as `broker` and `activity` on what it gets)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def emulator_view(emulator: Any, **extra: Any) -> SimpleNamespace:
    """The emulator's IoT registry, account and region; no shadow service and no gateway."""
    return SimpleNamespace(
        shadow=None,
        iot=emulator.iot,
        account_id=emulator.account_id,
        region=emulator.region,
        gateway=None,
        **extra,
    )
