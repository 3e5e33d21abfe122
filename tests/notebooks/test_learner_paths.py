"""The workbook as a learner uses it, driven through papermill on one persistent emulator:
passes re-run with other parameters, 03 re-run before 04, notebooks out of order, a port that
another program holds, and the emulator stopped with `python -m emulator stop`.

Each test starts the emulator (or the notebooks do) in its own process on free ports, with its
own data directory, as `make run` and JupyterLab do.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from support.cli import run_module

from emulator import process
from pipeline import summary
from pipeline.paths import ROOT
from pipeline.run import LOCAL_DEFAULTS, NOTEBOOKS, NotebookFailed, free_port, run_notebooks

pytestmark = pytest.mark.timeout(900)


def notebooks(*names: str):
    return [next(NOTEBOOKS.glob(f"{name}-*.ipynb")) for name in names]


@pytest.fixture(scope="module")
def persistent_emulator(tmp_path_factory):
    """One emulator with saved state (not ephemeral), found by the kernels through the env."""
    data_dir = tmp_path_factory.mktemp("emulator-state")
    log = tmp_path_factory.mktemp("emulator-log") / "emulator.log"
    # (ports the emulator chooses itself: none chosen beforehand can be taken in the meantime)
    info = process.ensure_running(port=0, mqtt_port=0, data_dir=data_dir, log_path=log)
    monkey = pytest.MonkeyPatch()
    monkey.setenv("IOT_EMULATOR_PORT", str(info.port))
    monkey.setenv("IOT_EMULATOR_MQTT_PORT", str(info.mqtt_port))
    monkey.setenv("IOT_EMULATOR_DATA_DIR", str(data_dir))
    yield info
    process.stop(info)
    monkey.undo()


def test_two_passes_and_a_second_publish_reconcile_per_run(persistent_emulator, tmp_path):
    # given one RUN_DIR kept across passes, as runs/manual is in JupyterLab
    base = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-passes"}
    # when the whole sequence runs with 100 messages
    first = run_notebooks(tmp_path, "local", {**base, "N_MESSAGES": 100})
    assert first["problems"] == []
    assert (
        first["figures"]["05-analyse"]["rows"]
        == first["figures"]["04-inspect-batches"]["parsed_rows"]
    )
    # and again with 40, where 03 runs twice (30, then 40) before 04, without a teardown between
    second = base | {"N_MESSAGES": 30}
    run_notebooks(tmp_path, "local", second, notebooks("01", "02", "03"))
    earlier_run = summary.load(tmp_path)["03-publish"]["run_id"]
    result = run_notebooks(
        tmp_path, "local", base | {"N_MESSAGES": 40}, notebooks("03", "04", "05")
    )
    # then 04 and 05 count the latest run only, and report the earlier run's records apart
    figures = result["figures"]
    assert result["problems"] == []
    assert figures["03-publish"]["run_id"] != earlier_run
    assert figures["03-publish"]["acknowledged"] == 40
    batches = figures["04-inspect-batches"]
    assert batches["run_id"] == figures["03-publish"]["run_id"]
    assert batches["raw_lines"] + batches["rule_errors"] == 40
    assert batches["earlier_runs"]["raw lines"] + batches["earlier_runs"]["rule errors"] == 30
    assert figures["05-analyse"]["rows"] == batches["parsed_rows"]
    run_notebooks(tmp_path, "local", base, notebooks("06"))
    assert summary.load(tmp_path)["06-teardown"]["left_over"] == []


def failure_of(run_dir, params, name) -> str:
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(run_dir, "local", params, notebooks(name))
    assert failure.value.notebook.startswith(name)
    assert failure.value.executed.exists()  # the executed copy with the traceback is kept
    return failure.value.error


def test_out_of_order_notebooks_name_the_one_to_run(persistent_emulator, tmp_path):
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-order", "N_MESSAGES": 20}
    # 03 with no stack: run 01
    assert "run 01-deploy-stack first" in failure_of(tmp_path, params, "03")
    run_notebooks(tmp_path, "local", params, notebooks("01"))
    try:
        # 03 with a stack but no certificate: run 02
        assert "run 02-certificates first" in failure_of(tmp_path, params, "03")
        # 04 and 05 with nothing published: run 03
        assert "run 03-publish first" in failure_of(tmp_path, params, "04")
        assert "run 03-publish first" in failure_of(tmp_path, params, "05")
    finally:
        run_notebooks(tmp_path, "local", params, notebooks("06"))


def test_a_port_held_by_another_program_gives_the_one_line_fix(tmp_path, monkeypatch):
    # given a plain TCP listener on the port the notebooks are told to use
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("IOT_EMULATOR_PORT", str(port))
        monkeypatch.setenv("IOT_EMULATOR_MQTT_PORT", str(free_port()))
        monkeypatch.setenv("IOT_EMULATOR_DATA_DIR", str(tmp_path / "state"))
        # when 01 runs, then it fails on the port, naming the variable to change
        error = failure_of(tmp_path, {"STACK_NAME": "wb-port"}, "01")
    assert f"port {port} is taken by another program" in error
    assert "IOT_EMULATOR_PORT=" in error


def test_a_taken_default_port_moves_to_a_free_one():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        port, message = process.choose_port(taken, "the emulator's AWS endpoint")
    assert port != taken and message and f"port {taken}" in message and str(port) in message


def emulator_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return run_module("emulator", *args, env=env)


def test_emulator_stop_leaves_nothing_running(tmp_path):
    # given an emulator started in the background as the notebooks start it
    log = tmp_path / "emulator.log"
    info = process.ensure_running(port=0, mqtt_port=0, data_dir=tmp_path / "state", log_path=log)
    port, mqtt_port = info.port, info.mqtt_port
    try:
        # when status runs, then it shows the instance: pid, ports, data dir, log
        shown = emulator_cli("status", "--data-dir", str(tmp_path / "state"))
        assert f"pid {info.pid}" in shown.stdout
        assert f":{mqtt_port}" in shown.stdout and str(log) in shown.stdout
        # when stop runs
        stopped = emulator_cli("stop", "--data-dir", str(tmp_path / "state"))
        assert stopped.returncode == 0, stopped.stderr
        assert f"pid {info.pid}" in stopped.stdout
        # then the process is gone and both ports are free
        assert not process._alive(info.pid)
        assert not process.port_in_use(port) and not process.port_in_use(mqtt_port)
        again = emulator_cli("status", "--data-dir", str(tmp_path / "state"))
        assert "no emulator is running" in again.stdout
    finally:
        process.stop(info)


def test_make_run_failure_is_a_summary_not_a_traceback(tmp_path):
    # given a run that pretends one raw record is missing
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for variable in ("IOT_EMULATOR_PORT", "IOT_EMULATOR_MQTT_PORT", "IOT_EMULATOR_DATA_DIR"):
        env.pop(variable, None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.run",
            "--param",
            "SIMULATE_LOSS=1",
            "--param",
            "N_MESSAGES=40",
            "--param",
            "STACK_NAME=wb-summary",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    # then it exits non-zero with the notebook, the cell, the message and the executed copy
    assert done.returncode == 1
    assert "FAILED: 04-inspect-batches.ipynb, cell [" in done.stdout
    assert "acknowledged 40 != raw lines 39" in done.stdout
    assert "executed copy (with the traceback):" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert "Passed unknown parameter" not in done.stdout + done.stderr
    assert "Kernel is running over TCP" not in done.stdout + done.stderr


def test_teardown_after_a_failure_deletes_the_stack_and_says_what_went(
    persistent_emulator, tmp_path, capsys
):
    from pipeline.run import teardown_after_failure

    # given a deployed stack with a certificate, as a run that failed in 03 leaves it
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-after-failure"}
    run_notebooks(tmp_path, "local", params, notebooks("01", "02"))
    # when the teardown that `make run TARGET=aws` runs after a failure runs
    teardown_after_failure(tmp_path, "local", params)
    # then it says what it deleted, and nothing is left
    out = capsys.readouterr().out
    assert re.search(
        r"teardown: 1 certificate\(s\) and \d+ object\(s\) deleted, stack deleted", out
    )
    assert "left over: nothing" in out
    assert summary.load(tmp_path)["06-teardown"]["left_over"] == []
