"""Shadow tests: the session emulator (tests/conftest.py) and, for restarts, emulator processes
built with the persistence suite's helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persistence"))

from persistence_helpers import started_emulators  # noqa: E402


@pytest.fixture
def shadow_emulators(tmp_path: Path):
    """Start emulator processes on one data directory; any still running are killed at the end."""
    yield from started_emulators(tmp_path / "state")
