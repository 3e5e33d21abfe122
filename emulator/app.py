"""Assemble the emulator from its components, in dependency order.

Each component's constructor receives the `Emulator`, registers its gateway handlers and sets
itself as an attribute (`emulator.iot`, `.lambdas`, `.firehose`, `.rules`, `.broker`), so that
components find each other late, at call time.
"""

from __future__ import annotations

from typing import Any

from emulator.server import Emulator


def build_emulator(**kwargs: Any) -> Emulator:
    emulator = Emulator(**kwargs)
    # Components are wired here as they land (see emulator/README.md for the contract).
    return emulator
