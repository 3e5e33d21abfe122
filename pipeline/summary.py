"""Each notebook's figures, written as `<RUN_DIR>/<notebook>.json` and checked by `make run`.

A notebook records what it measured (`record`); `reconcile` compares the figures of the whole
run and lists every equation that does not hold, so a lost message fails the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.ledger import Ledger
from pipeline.settings import run_dir_path


def record(run_dir: str | Path | None, notebook: str, **figures: Any) -> Path:
    """Write (or extend) the summary of `notebook` in `run_dir` (None: runs/manual)."""
    path = run_dir_path(run_dir) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(figures)
    path.write_text(json.dumps(current, indent=2, default=str))
    return path


def load(run_dir: str | Path | None) -> dict[str, dict[str, Any]]:
    """Every notebook's summary in `run_dir` (the settings file is not a summary)."""
    return {
        p.stem: json.loads(p.read_text())
        for p in sorted(run_dir_path(run_dir).glob("*.json"))
        if p.name != "settings.json"
    }


def reconcile(figures: dict[str, dict[str, Any]]) -> list[str]:
    """The equations of the pipeline that do not hold for this run (empty when all hold): the
    two of `pipeline.ledger`, and

        not-JSON processing-failed records = acknowledged payloads that are not JSON objects

    The last one is the bucket a PUBACK hides: IoT Core acknowledges a payload that is not a JSON
    object, but the topic rule's `SELECT topic() AS topic, *` cannot evaluate it, and a SQL failure
    runs no action and no errorAction (AWS IoT logging is its only trace). The template's
    NotJsonTopicRule forwards those payloads base64-encoded and the transform fails them, so each
    must come back as one processing-failed record: a shortfall means the rules engine dropped
    messages (look in the AWSIotLogsV2 log group if AWS IoT logging is on).

        Figures are compared only within one publish run (`run_id`): a summary left by an earlier
        pass is stale, not a mismatch, and is ignored until its notebook runs again.
    """
    problems = []
    publish = figures.get("03-publish", {})
    run_id = publish.get("run_id")
    batches = _same_run(figures.get("04-inspect-batches", {}), run_id)
    if batches:
        acknowledged = publish.get("acknowledged") if publish else None
        problems += Ledger.of(batches).problems(acknowledged)
    if publish and batches and "not_json_objects" in publish:
        if publish["not_json_objects"] != batches.get("not_json_objects", 0):
            problems.append(
                f"published payloads that are not JSON objects {publish['not_json_objects']}"
                f" != not-JSON processing-failed records {batches.get('not_json_objects', 0)}"
                " (the rules engine dropped the others: SQL failures reach no errorAction)"
            )
    analyse = _same_run(figures.get("05-analyse", {}), run_id)
    if analyse and batches and analyse.get("rows") != batches.get("parsed_rows"):
        problems.append(
            f"analysed rows {analyse.get('rows')} != parsed rows {batches.get('parsed_rows')}"
        )
    teardown = figures.get("06-teardown", {})
    if teardown and teardown.get("left_over"):
        problems.append(f"teardown left resources behind: {teardown['left_over']}")
    return problems


def _same_run(found: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """`found` when it is about publish run `run_id` (or no run is recorded), else empty."""
    if found and run_id is not None and found.get("run_id") != run_id:
        return {}
    return found
