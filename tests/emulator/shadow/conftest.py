"""Shadow tests: the session emulator (tests/conftest.py) and, for restarts, emulator processes
built with the persistence suite's helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persistence"))

from persistence_helpers import EmulatorProcess  # noqa: E402


@pytest.fixture
def shadow_emulators(tmp_path: Path):
    """Start emulator processes on one data directory; any still running are killed at the end."""
    started: list[EmulatorProcess] = []
    data_dir = tmp_path / "state"

    def start() -> EmulatorProcess:
        emu = EmulatorProcess(data_dir).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        if emu.child is not None and emu.child.poll() is None:
            emu.child.kill()
            emu.child.wait(timeout=30)
