"""ruff lints and formats the whole repository (notebooks included), as STYLE.md asks."""

import subprocess
import sys
from pathlib import Path

from pipeline.paths import ROOT

RUFF = str(Path(sys.executable).with_name("ruff"))


def test_ruff_check_is_clean():
    done = subprocess.run([RUFF, "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff_format_is_clean():
    done = subprocess.run(
        [RUFF, "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:]
