"""The workbook's one set of settings: target, region, stack, environment, buffering, rates.

Every notebook reads them from `<RUN_DIR>/settings.json` (`runs/manual/settings.json` in
JupyterLab; `make run` writes one into each `runs/<timestamp>/`). Notebook 01 saves what its
parameters cell sets, so a change there holds for 02-08; in any other notebook a parameter that is
not None overrides the saved value for that notebook only. Papermill still injects overrides.

Defaults differ by target only where AWS sets a limit: on AWS a device publishes at most
`AWS_DEFAULT_RATE` messages/s, under IoT Core's 100 publish requests per second per connection
(https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits, "Message
broker and protocol limits and quotas").
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pipeline.paths import RUNS

SETTINGS_FILE = "settings.json"
MANUAL_RUN_DIR = RUNS / "manual"
TARGETS = ("local", "aws")
# IoT Core: "Publish requests per second per connection: 100" (not adjustable).
AWS_PUBLISH_LIMIT = 100
AWS_DEFAULT_RATE = 50  # half the quota: room for the subscription's traffic and retries
LOCAL_REGION = "us-east-1"  # the emulator answers for any region; this one is moto's default


class SettingsError(ValueError):
    """A setting is missing or out of range; the message names the fix."""


@dataclass(frozen=True)
class Settings:
    """What every notebook of one workbook pass must agree on."""

    target: str = "local"
    region: str | None = None  # None: AWS_REGION / the profile's region (aws), us-east-1 (local)
    stack_name: str = "iot-core-pipeline-dev"
    environment: str = "dev"  # the template's Environment: prefix of every S3 key
    buffer_interval_seconds: int = 60  # Firehose closes a batch after this long...
    buffer_size_mbs: int = 1  # ...or at this many MiB before compression
    processor_buffer_interval_seconds: int = 60  # how long Firehose gathers one Lambda call
    max_rate: float | None = None  # messages/s; None: as fast as PUBACKs come (local only)
    wait_seconds: int | None = None  # 04 gives up after this long; None: from the buffering
    hot_path_table: bool = False  # the template's HotPathTable: DynamoDB latest reading (05)

    def as_parameters(self) -> dict[str, Any]:
        """The UPPER_CASE names the notebooks' parameters cells use."""
        return {k.upper(): v for k, v in asdict(self).items()}

    @property
    def publish_rate(self) -> float | None:
        if self.target == "aws" and self.max_rate is None:
            return AWS_DEFAULT_RATE
        return self.max_rate

    @property
    def delivery_timeout(self) -> int:
        """How long 04 waits: two buffer intervals plus the Lambda's, and a minute's margin."""
        if self.wait_seconds is not None:
            return int(self.wait_seconds)
        return 2 * self.buffer_interval_seconds + self.processor_buffer_interval_seconds + 60


NAMES = {f.name.upper(): f.name for f in fields(Settings)}


def run_dir_path(run_dir: str | Path | None) -> Path:
    """`RUN_DIR` as a path: None means `runs/manual` (relative paths are the caller's, as the
    notebooks always had them: from `notebooks/`)."""
    return MANUAL_RUN_DIR if run_dir is None else Path(run_dir)


def _validate(settings: Settings) -> Settings:
    if settings.target not in TARGETS:
        raise SettingsError(f'TARGET must be "local" or "aws", not {settings.target!r}')
    rate = settings.max_rate
    if rate is not None and rate <= 0:
        raise SettingsError(f"MAX_RATE must be a positive number of messages/s, not {rate!r}")
    if settings.target == "aws" and rate is not None and rate > AWS_PUBLISH_LIMIT:
        raise SettingsError(
            f"MAX_RATE={rate} exceeds IoT Core's {AWS_PUBLISH_LIMIT} publishes/s per connection:"
            f" set MAX_RATE to {AWS_DEFAULT_RATE} (or at most {AWS_PUBLISH_LIMIT})"
        )
    for name in ("buffer_interval_seconds", "buffer_size_mbs"):
        if int(getattr(settings, name)) <= 0:
            raise SettingsError(f"{name.upper()} must be positive")
    return settings


def saved(run_dir: str | Path | None) -> dict[str, Any]:
    """The settings saved in `run_dir` (UPPER_CASE names), empty when none were saved."""
    path = run_dir_path(run_dir) / SETTINGS_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def load(run_dir: str | Path | None = None, **overrides: Any) -> Settings:
    """Defaults, then `<run_dir>/settings.json`, then the overrides that are not None.

    Overrides use the parameters cells' names (TARGET=..., STACK_NAME=...); unknown names are an
    error, so a typo does not silently fall back to a default.
    """
    values: dict[str, Any] = {}
    for source in (saved(run_dir), {k: v for k, v in overrides.items() if v is not None}):
        for name, value in source.items():
            if name not in NAMES:
                raise SettingsError(
                    f"unknown setting {name!r}; the workbook's settings are {sorted(NAMES)}"
                )
            values[NAMES[name]] = value
    return _validate(replace(Settings(), **values))


def save(run_dir: str | Path | None, settings: Settings) -> Path:
    """Write `settings` as the workbook's settings for `run_dir` (what 02-08 will read)."""
    path = run_dir_path(run_dir) / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings.as_parameters(), indent=2) + "\n")
    return path


def resolve_region(settings: Settings) -> str:
    """The region to use: the setting, else (AWS) the user's configuration, never a guess."""
    if settings.region:
        return settings.region
    if settings.target == "local":
        return LOCAL_REGION
    import boto3

    region = boto3.Session().region_name or os.environ.get("AWS_REGION")
    if not region:
        raise SettingsError(
            "no AWS region configured: set AWS_REGION (or `aws configure set region <name>`),"
            " or REGION in 01's parameters, or `--region` for `python -m pipeline.run`"
        )
    return region
