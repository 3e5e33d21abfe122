"""Every benchmark's --quick run still works and still accounts for every message.

Figures are printed, never asserted here: speed is measured in bench/, not in timed tests.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.paths import ROOT


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.mark.timeout(300)
def test_end_to_end_quick_run_loses_nothing():
    out = run("e2e.py")
    assert "zero loss: yes" in out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("script", ["transform.py", "analysis.py", "broker.py"])
def test_quick_run_prints_its_ratio(script):
    out = run(script)
    assert "ratio" in out.lower()
