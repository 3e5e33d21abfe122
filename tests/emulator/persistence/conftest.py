"""An emulator in its own process on a given data directory, that tests stop cleanly or kill -9."""

from __future__ import annotations

from pathlib import Path

import pytest
from persistence_helpers import EmulatorProcess


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def emulators(data_dir: Path):
    """Start emulators on `data_dir` with `emulators()`; any still running are killed at the end."""
    started: list[EmulatorProcess] = []

    def start() -> EmulatorProcess:
        emu = EmulatorProcess(data_dir).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        if emu.child is not None and emu.child.poll() is None:
            emu.child.kill()
            emu.child.wait(timeout=30)
