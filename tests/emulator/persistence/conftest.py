"""An emulator in its own process on a given data directory, that tests stop cleanly or kill -9."""

from __future__ import annotations

from pathlib import Path

import pytest
from persistence_helpers import started_emulators


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def emulators(data_dir: Path):
    """Start emulators on `data_dir` with `emulators()`; any still running are killed at the end."""
    yield from started_emulators(data_dir)
