"""`make run`: execute every notebook in order with papermill and reconcile the figures.

    python -m pipeline.run [--target local|aws] [--region NAME] [--param NAME=VALUE ...]

For the local target an emulator is started on free ports for this run only (its state is
thrown away afterwards). The workbook's settings (`pipeline.settings`) are written to
`runs/<UTC timestamp>/settings.json`, where every notebook reads them; executed notebooks and
one `<notebook>.json` summary each go to the same directory. The exit status is non-zero when a
notebook fails (the summary names the notebook, the cell and the message) or a count does not
reconcile. On AWS, 06-teardown runs after a failure too, so nothing stays deployed and billed.
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
from pipeline import settings, summary
from pipeline.paths import ROOT, RUNS

NOTEBOOKS = ROOT / "notebooks"
TEARDOWN = "06-teardown.ipynb"
# On the emulator nobody pays for a short buffer: flush every few seconds instead of AWS's
# one minute, so that a whole run takes well under the 5 minutes it is allowed.
LOCAL_DEFAULTS = {
    # AWS-valid hints, as the stack on AWS has them; the local run's emulator divides buffer
    # intervals by LOCAL_TIME_SCALE (emulator-only), so a 60 s interval closes in 3 s.
    "BUFFER_INTERVAL_SECONDS": 60,
    "PROCESSOR_BUFFER_INTERVAL_SECONDS": 60,
    "WAIT_SECONDS": 120,
    # Publishing over a few seconds lets several buffer intervals close, so notebook 04 has a
    # batching timeline to show rather than a single batch.
    "MAX_RATE": 250,
}
LOCAL_TIME_SCALE = 20
# AWS IoT Core allows 100 publishes per second per connection (IoT Core quotas): stay under it.
AWS_DEFAULTS = {"MAX_RATE": settings.AWS_DEFAULT_RATE}
# The kernels' own log ("Kernel is running over TCP without encryption": it listens on
# 127.0.0.1 only; "KeyboardInterrupt caught" at shutdown) is not the workbook's output; a
# cell's error is in the executed notebook and in the failure summary.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


class NotebookFailed(Exception):
    """A notebook raised; `str()` is the summary line, `executed` the copy with the traceback."""

    def __init__(self, notebook: str, executed: Path, cell: Any, error: str) -> None:
        super().__init__(f"{notebook} failed in cell {cell}: {error}")
        self.notebook, self.executed, self.cell, self.error = notebook, executed, cell, error


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def declared_parameters(notebook: Path) -> set[str]:
    """The names the notebook's parameters cell assigns (papermill injects only these)."""
    import papermill

    return set(papermill.inspect_notebook(str(notebook)))


def workbook_order() -> list[Path]:
    """The notebooks in the order they run: by number, with the teardown last (07's
    experiments and 08's device shadow need the stack and the device certificate)."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    return [p for p in found if p.name != TEARDOWN] + [p for p in found if p.name == TEARDOWN]


def run_notebooks(
    run_dir: Path, target: str, parameters: dict[str, Any], notebooks: list[Path] | None = None
) -> dict[str, Any]:
    """Save the run's settings, execute the notebooks into `run_dir`; return the figures.

    Raises NotebookFailed (the notebook, cell and message) when a notebook raises."""
    import papermill

    notebooks = notebooks or workbook_order()
    run_dir.mkdir(parents=True, exist_ok=True)
    shared = {k: v for k, v in parameters.items() if k in settings.NAMES}
    config = settings.load(run_dir, **{**shared, "TARGET": target})
    settings.save(run_dir, config)
    values = {**config.as_parameters(), **parameters, "TARGET": target, "RUN_DIR": str(run_dir)}
    started = time.monotonic()
    for notebook in notebooks:
        print(f"--- {notebook.name}", flush=True)
        wanted = declared_parameters(notebook)
        executed = run_dir / notebook.name
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed),
                parameters={k: v for k, v in values.items() if k in wanted},
                cwd=str(NOTEBOOKS),
                progress_bar=False,
                kernel_name="python3",
                extra_arguments=KERNEL_ARGUMENTS,
            )
        except papermill.PapermillExecutionError as exc:
            raise NotebookFailed(
                notebook.name, executed, exc.exec_count, f"{exc.ename}: {exc.evalue}"
            ) from exc
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
    print(f"publish run id       {publish.get('run_id')}")
    print(f"messages published   {publish.get('attempted')}")
    print(f"acknowledged         {publish.get('acknowledged')}")
    print(f"raw objects / lines  {batches.get('raw_objects')} / {batches.get('raw_lines')}")
    print(f"parsed objects/rows  {batches.get('parsed_objects')} / {batches.get('parsed_rows')}")
    print(f"processing-failed    {batches.get('processing_failed')}")
    print(f"  of which not JSON  {batches.get('not_json_objects')}")
    for name in ("partitioning_failed", "conversion_failed"):
        if batches.get(name):  # only with dynamic partitioning / record format conversion
            print(f"{name.replace('_', '-'):<21}{batches[name]}")
    print(f"rule errors          {batches.get('rule_errors')}")
    print(f"analysed rows        {analyse.get('rows')}")
    shadow = figures.get("08-device-shadow")
    if shadow:
        print(
            f"device shadow        {shadow.get('deltas_received')} deltas applied, in sync at"
            f" version {shadow.get('final_version')}, deleted: {not shadow.get('shadow_left')}"
        )
    print(f"wall time            {result['seconds']:.1f} s")
    if result["problems"]:
        print("DOES NOT RECONCILE:")
        for problem in result["problems"]:
            print(f"  - {problem}")
    else:
        print("reconciled: every acknowledged message is accounted for")


def print_failure(failure: NotebookFailed) -> None:
    print()
    print(f"FAILED: {failure.notebook}, cell [{failure.cell}]")
    print(f"  {failure.error}")
    print(f"  executed copy (with the traceback): {failure.executed}")


def teardown_after_failure(run_dir: Path, target: str, parameters: dict[str, Any]) -> None:
    """On AWS, delete what the failed run deployed (06-teardown), and say what went."""
    print(f"\n--- {TEARDOWN} after the failure, so that nothing stays deployed and billed")
    try:
        run_notebooks(run_dir, target, parameters, [NOTEBOOKS / TEARDOWN])
    except NotebookFailed as failure:
        print_failure(failure)
        print("  the stack may still exist: run notebook 06-teardown or delete it in the console")
        return
    report = summary.load(run_dir).get("06-teardown", {})
    print(
        f"teardown: {report.get('certificates_deleted')} certificate(s) and"
        f" {report.get('objects_deleted')} object(s) deleted, stack deleted,"
        f" left over: {report.get('left_over') or 'nothing'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=settings.TARGETS, default="local")
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or your profile's)")
    parser.add_argument(
        "--param", action="append", default=[], help="NAME=VALUE passed to every notebook"
    )
    args = parser.parse_args(argv)
    parameters = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.param)}
    if args.region:
        parameters["REGION"] = args.region
    run_dir = RUNS / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

    emulator_info = None
    try:
        if args.target == "aws":
            parameters = {**AWS_DEFAULTS, **parameters}
            from pipeline.target import open_target

            config = settings.load(None, **{**parameters, "TARGET": "aws"})
            parameters["REGION"] = settings.resolve_region(config)
            open_target("aws", parameters["REGION"])  # credentials checked before anything runs
        else:
            parameters = {**LOCAL_DEFAULTS, **parameters}
            settings.load(None, **{k: v for k, v in parameters.items() if k in settings.NAMES})
    except (settings.SettingsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.target == "local":
        from emulator import process

        port, mqtt_port = free_port(), free_port()
        os.environ.update(IOT_EMULATOR_PORT=str(port), IOT_EMULATOR_MQTT_PORT=str(mqtt_port))
        # The emulator started below inherits it (python -m emulator --time-scale).
        os.environ.setdefault("IOT_EMULATOR_TIME_SCALE", str(LOCAL_TIME_SCALE))
        run_dir.mkdir(parents=True, exist_ok=True)
        emulator_info = process.ensure_running(
            port=port, mqtt_port=mqtt_port, ephemeral=True, log_path=run_dir / "emulator.log"
        )
    try:
        result = run_notebooks(run_dir, args.target, parameters)
    except NotebookFailed as failure:
        print_failure(failure)
        problems = summary.reconcile(summary.load(run_dir))
        for problem in problems:
            print(f"  does not reconcile: {problem}")
        if args.target == "aws" and failure.notebook != TEARDOWN:
            teardown_after_failure(run_dir, args.target, parameters)
        return 1
    finally:
        if emulator_info is not None:
            process.stop(emulator_info)
    print_summary(result, run_dir)
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
