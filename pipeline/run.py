"""`make run`: execute every notebook in order with papermill and reconcile the figures.

    python -m pipeline.run [--target local|aws] [--param NAME=VALUE ...]

For the local target an emulator is started on free ports for this run only (its state is
thrown away afterwards). Executed notebooks and one `<notebook>.json` summary each go to
`runs/<UTC timestamp>/`; the exit status is non-zero when a notebook fails or a count does not
reconcile.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.process import free_port
from pipeline import summary
from pipeline.paths import ROOT, RUNS

NOTEBOOKS = ROOT / "notebooks"
# On the emulator nobody pays for a short buffer: flush every few seconds instead of AWS's
# one minute, so that a whole run takes well under the 5 minutes it is allowed.
LOCAL_DEFAULTS = {
    "BUFFER_INTERVAL_SECONDS": 3,
    "PROCESSOR_BUFFER_INTERVAL_SECONDS": 1,
    "WAIT_SECONDS": 120,
    # Publishing over a few seconds lets several buffer intervals close, so notebook 04 has a
    # batching timeline to show rather than a single batch.
    "MAX_RATE": 250,
}
# AWS IoT Core allows 100 publishes per second per connection (IoT Core quotas): stay under it.
AWS_DEFAULTS = {"MAX_RATE": 50}


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_notebooks(
    run_dir: Path, target: str, parameters: dict[str, Any], notebooks: list[Path] | None = None
) -> dict[str, Any]:
    """Execute the notebooks into `run_dir`; return the run's summary figures."""
    import papermill

    notebooks = notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for notebook in notebooks:
        print(f"--- {notebook.name}", flush=True)
        papermill.execute_notebook(
            str(notebook),
            str(run_dir / notebook.name),
            parameters={"TARGET": target, "RUN_DIR": str(run_dir), **parameters},
            cwd=str(NOTEBOOKS),
            progress_bar=False,
            kernel_name="python3",
        )
    figures = summary.load(run_dir)
    return {
        "figures": figures,
        "problems": summary.reconcile(figures),
        "seconds": time.monotonic() - started,
    }


def print_summary(result: dict[str, Any], run_dir: Path) -> None:
    figures = result["figures"]
    publish = figures.get("03-publish", {})
    batches = figures.get("04-inspect-batches", {})
    analyse = figures.get("05-analyse", {})
    print()
    print(f"run directory        {run_dir}")
    print(f"messages published   {publish.get('attempted')}")
    print(f"acknowledged         {publish.get('acknowledged')}")
    print(f"raw objects / lines  {batches.get('raw_objects')} / {batches.get('raw_lines')}")
    print(f"parsed objects/rows  {batches.get('parsed_objects')} / {batches.get('parsed_rows')}")
    print(f"processing-failed    {batches.get('processing_failed')}")
    print(f"rule errors          {batches.get('rule_errors')}")
    print(f"analysed rows        {analyse.get('rows')}")
    print(f"wall time            {result['seconds']:.1f} s")
    if result["problems"]:
        print("DOES NOT RECONCILE:")
        for problem in result["problems"]:
            print(f"  - {problem}")
    else:
        print("reconciled: every acknowledged message is accounted for")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=["local", "aws"], default="local")
    parser.add_argument(
        "--param", action="append", default=[], help="NAME=VALUE passed to every notebook"
    )
    args = parser.parse_args(argv)
    parameters = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.param)}
    run_dir = RUNS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    emulator_info = None
    if args.target == "aws":
        parameters = {**AWS_DEFAULTS, **parameters}
    if args.target == "local":
        parameters = {**LOCAL_DEFAULTS, **parameters}
        from emulator import process

        port, mqtt_port = free_port(), free_port()
        os.environ.update(IOT_EMULATOR_PORT=str(port), IOT_EMULATOR_MQTT_PORT=str(mqtt_port))
        run_dir.mkdir(parents=True, exist_ok=True)
        emulator_info = process.ensure_running(
            port=port, mqtt_port=mqtt_port, ephemeral=True, log_path=run_dir / "emulator.log"
        )
    try:
        result = run_notebooks(run_dir, args.target, parameters)
    finally:
        if emulator_info is not None:
            process.stop(emulator_info)
    print_summary(result, run_dir)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
