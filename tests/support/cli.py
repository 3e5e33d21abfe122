"""Running the project's command lines (`python -m <module>`) the way a user does: from the
repository root, output captured as text."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_module(
    module: str,
    *args: str,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` to completion; `options` go to subprocess.run (check, input)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env=env,
        **options,
    )
