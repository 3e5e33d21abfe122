"""The real AWS SAM CLI, in its own virtualenv (`.sam-venv/`, git-ignored).

aws-sam-cli pins boto3/botocore older than the project's pins (pyproject.toml), so it cannot
share `.venv`; its pin is `[tool.iot-core-pipeline].sam-cli` in pyproject.toml. `make test`
creates the venv (the Makefile's `.sam-venv/.installed` target): tests only use it, because their
network traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from pipeline.paths import ROOT

SAM_VENV = ROOT / ".sam-venv"


def sam_requirement() -> str:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["iot-core-pipeline"]["sam-cli"]


@pytest.fixture(scope="session")
def sam_cli() -> Path:
    """Path of the `sam` executable, at the pinned version."""
    requirement = sam_requirement()
    version = requirement.split("==", 1)[1]
    sam = SAM_VENV / "bin" / "sam"
    if sam.exists():
        out = subprocess.run([sam, "--version"], capture_output=True, text=True, check=False)
        if out.stdout.strip().endswith(version):
            return sam
    pytest.fail(
        f"{requirement} is not installed in {SAM_VENV}: run `make .sam-venv/.installed` "
        "(`make test` does it)"
    )


@pytest.fixture
def sam_env(emulator, tmp_path) -> dict[str, str]:
    """Environment for `sam`: the emulator's endpoint (AWS_ENDPOINT_URL), dummy credentials, no
    telemetry, no update check, and a proxy that refuses anything not on 127.0.0.1."""
    config_dir = tmp_path / "sam-config"
    config_dir.mkdir()
    # The SAM CLI asks PyPI for a newer version at most weekly, after lastVersionCheck
    # (samcli/lib/utils/version_checker.py); a fresh check time in its own config dir
    # (`__SAM_CLI_APP_DIR`) means it does not ask.
    (config_dir / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": time.time()})
    )
    aws_dir = tmp_path / "aws-config"
    aws_dir.mkdir()
    (aws_dir / "config").write_text(f"[default]\nregion = {emulator.region}\n")
    (aws_dir / "credentials").write_text(
        "[default]\naws_access_key_id = sam\naws_secret_access_key = sam\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SAM_")) and key not in ("PYTHONPATH",)
    }
    env.update(
        AWS_ENDPOINT_URL=emulator.endpoint_url,
        AWS_CONFIG_FILE=str(aws_dir / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws_dir / "credentials"),
        AWS_DEFAULT_REGION=emulator.region,
        AWS_REGION=emulator.region,
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
        __SAM_CLI_APP_DIR=str(config_dir),
        SAM_CLI_POLL_DELAY="1",
        # Anything that is not the emulator goes to a closed local port, so that a stray
        # request to the internet fails instead of leaving the machine.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        NO_PROXY="127.0.0.1,localhost",
        DOCKER_HOST="unix:///nonexistent/docker.sock",
        HOME=str(tmp_path),
    )
    return env
