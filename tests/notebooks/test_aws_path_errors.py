"""`make run TARGET=aws` without credentials or region: one line naming the fix, no traceback,
and nothing started (no notebook runs, no AWS call beyond STS)."""

from __future__ import annotations

import os
import subprocess

from support.cli import run_module

from pipeline.paths import ROOT


def run_aws(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and not k.startswith("IOT_EMULATOR_")
    }
    clean.update(
        PYTHONPATH=str(ROOT),
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",  # no instance-metadata lookup for credentials
        **env,
    )
    return run_module("pipeline.run", "--target", "aws", *args, timeout=120, env=clean)


def test_no_region_is_one_line_naming_the_fix(tmp_path):
    done = run_aws(tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: no AWS region configured: set AWS_REGION (or `aws configure set region <name>`),"
        " or REGION in 01's parameters, or `--region` for `python -m pipeline.run`"
    ]
    assert "--- 01" not in done.stdout


def test_no_credentials_is_one_line_naming_the_fix(tmp_path):
    done = run_aws(tmp_path, "--region", "eu-west-3")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no AWS credentials found: run `aws")
    assert "Traceback" not in done.stderr and "--- 01" not in done.stdout


def test_a_rate_over_the_quota_is_refused_before_anything_runs(tmp_path):
    done = run_aws(tmp_path, "--region", "eu-west-3", "--param", "MAX_RATE=1900")
    assert done.returncode == 2
    assert "exceeds IoT Core's 100 publishes/s per connection" in done.stderr
