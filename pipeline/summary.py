"""Each notebook's figures, written as `<RUN_DIR>/<notebook>.json` and checked by `make run`.

A notebook records what it measured (`record`); `reconcile` compares the figures of the whole
run and lists every equation that does not hold, so a lost message fails the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def record(run_dir: str | Path, notebook: str, **figures: Any) -> Path:
    """Write (or extend) the summary of `notebook` in `run_dir` and return its path."""
    path = Path(run_dir) / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(figures)
    path.write_text(json.dumps(current, indent=2, default=str))
    return path


def load(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(run_dir).glob("*.json"))}


def reconcile(figures: dict[str, dict[str, Any]]) -> list[str]:
    """The equations of the pipeline that do not hold for this run (empty when all hold).

    acknowledged = raw lines + messages the rule sent to its errorAction
    raw lines    = parsed rows + processing-failed records
    """
    problems = []
    publish = figures.get("03-publish", {})
    batches = figures.get("04-inspect-batches", {})
    if publish and batches:
        accounted = batches.get("raw_lines", 0) + batches.get("rule_errors", 0)
        if publish.get("acknowledged") != accounted:
            problems.append(
                f"acknowledged {publish.get('acknowledged')}"
                f" != raw lines {batches.get('raw_lines')}"
                f" + rule errors {batches.get('rule_errors')}"
            )
    if batches:
        parsed = batches.get("parsed_rows", 0) + batches.get("processing_failed", 0)
        if batches.get("raw_lines") != parsed:
            problems.append(
                f"raw lines {batches.get('raw_lines')} != parsed rows {batches.get('parsed_rows')}"
                f" + processing-failed {batches.get('processing_failed')}"
            )
    analyse = figures.get("05-analyse", {})
    if analyse and batches and analyse.get("rows") != batches.get("parsed_rows"):
        problems.append(
            f"analysed rows {analyse.get('rows')} != parsed rows {batches.get('parsed_rows')}"
        )
    teardown = figures.get("06-teardown", {})
    if teardown and teardown.get("left_over"):
        problems.append(f"teardown left resources behind: {teardown['left_over']}")
    return problems
