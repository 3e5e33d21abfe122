"""Publish runs: every pass of notebook 03 gets a run id, and 04/05 look at that run only.

The buckets keep what earlier passes delivered (Firehose never rewrites an object), so counting
everything under a prefix mixes passes. Each JSON payload carries `run_id`; the rule's
`SELECT topic() AS topic, *` copies it into the raw record and the transform into the parsed
row, so a record names its run. Messages that are not JSON objects cannot carry it: they are
placed by time instead (a processing-failed record by its arrival time, an errorAction object
by the `${timestamp()}` in its key), inside the run's publish window. Passes are sequential in
the workbook, so the windows do not overlap.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import settings

RUN_ID_FIELD = "run_id"
ALL_RUNS = "*"  # a scope that counts every record, whatever its run
PUBLISH_SUMMARY = "03-publish"
# Margin around a run's publish window for clock skew between the device and the service
# (AWS stamps `timestamp()` with its own clock) and for the rule's own latency.
WINDOW_MARGIN_MS = 2_000


class PrerequisiteError(RuntimeError):
    """An earlier notebook has not run (or not finished); the message names which one."""


def new_run_id() -> str:
    """A run id that sorts by time: `<UTC time as yyyymmddThhmmssZ>-<6 hex digits>`."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class RunScope:
    """One publish run: its id and when it published (epoch ms, the device's clock)."""

    run_id: str
    started_ms: int
    finished_ms: int

    def owns_time(self, epoch_ms: float | None) -> bool:
        if epoch_ms is None:
            return False
        return (
            self.started_ms - WINDOW_MARGIN_MS
            <= epoch_ms
            <= self.finished_ms + 5 * WINDOW_MARGIN_MS
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_of(document: Any) -> str | None:
    """The run id a JSON record carries, or None."""
    if isinstance(document, dict):
        value = document.get(RUN_ID_FIELD)
        return value if isinstance(value, str) else None
    return None


def run_of_bytes(data: bytes) -> str | None:
    try:
        return run_of(json.loads(data))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def latest(run_dir: str | Path | None) -> RunScope:
    """The run notebook 03 published last in `run_dir`, or a PrerequisiteError naming 03."""
    folder = settings.run_dir_path(run_dir)
    try:
        figures = json.loads((folder / f"{PUBLISH_SUMMARY}.json").read_text())
        scope = RunScope(figures["run_id"], figures["started_ms"], figures["finished_ms"])
    except (OSError, ValueError, KeyError):
        raise PrerequisiteError(
            f"nothing published yet in {folder}: run 03-publish first (with the same RUN_DIR)"
        ) from None
    try:
        torn_down = json.loads((folder / "06-teardown.json").read_text()).get("finished_ms", 0)
    except (OSError, ValueError):
        torn_down = 0
    if torn_down > scope.finished_ms:
        raise PrerequisiteError(
            f"the last publish run ({scope.run_id}) was deleted by 06-teardown:"
            " run 01-deploy-stack, 02-certificates and 03-publish again"
        )
    return scope


def latest_figures(run_dir: str | Path | None) -> dict[str, Any]:
    """03's summary of the latest run (after `latest` has checked it exists)."""
    latest(run_dir)
    path = settings.run_dir_path(run_dir) / f"{PUBLISH_SUMMARY}.json"
    return json.loads(path.read_text())
