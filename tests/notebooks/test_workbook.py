"""The workbook as CI runs it: every notebook executed by papermill against the emulator.

The emulator runs in its own process (as `make run` starts it) on free ports; the notebooks'
kernels find it through IOT_EMULATOR_PORT / IOT_EMULATOR_MQTT_PORT.
"""

from __future__ import annotations

import pytest

from emulator import process
from pipeline import summary
from pipeline.run import LOCAL_DEFAULTS, NOTEBOOKS, NotebookFailed, free_port, run_notebooks

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def local_emulator(tmp_path_factory):
    port, mqtt_port = free_port(), free_port()
    monkey = pytest.MonkeyPatch()
    monkey.setenv("IOT_EMULATOR_PORT", str(port))
    monkey.setenv("IOT_EMULATOR_MQTT_PORT", str(mqtt_port))
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    info = process.ensure_running(port=port, mqtt_port=mqtt_port, ephemeral=True, log_path=log)
    yield info
    process.stop(info)
    monkey.undo()


def notebooks(*prefixes: str):
    return [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if p.name[:2] in prefixes]


def test_every_notebook_runs_and_the_counts_reconcile(local_emulator, tmp_path):
    # given small parameters: 200 messages (196 telemetry + the sample's first bad ones)
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-full", "N_MESSAGES": 200}
    # when the six notebooks run in order
    result = run_notebooks(tmp_path, "local", params)
    figures = result["figures"]
    # then every acknowledged message is accounted for and nothing is left behind
    assert result["problems"] == []
    published, delivered = figures["03-publish"], figures["04-inspect-batches"]
    assert published["attempted"] == published["acknowledged"] == 200
    assert delivered["raw_lines"] + delivered["rule_errors"] == 200
    assert delivered["parsed_rows"] + delivered["processing_failed"] == delivered["raw_lines"]
    assert delivered["parsed_rows"] > 0 and delivered["raw_objects"] >= 1
    assert figures["05-analyse"]["rows"] == delivered["parsed_rows"]
    assert figures["05-analyse"]["equipment"] == 4
    assert figures["06-teardown"]["left_over"] == []
    # and the executed notebooks were kept, with outputs
    assert (tmp_path / "04-inspect-batches.ipynb").exists()


def test_a_lost_record_makes_the_run_fail(local_emulator, tmp_path):
    # given a run that pretends one raw record is missing
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-loss", "N_MESSAGES": 40, "SIMULATE_LOSS": 1}
    try:
        # when the notebooks up to the reconciliation run
        with pytest.raises(NotebookFailed) as failure:
            run_notebooks(tmp_path, "local", params, notebooks("01", "02", "03", "04"))
        # then notebook 04 stops on the equation that does not hold
        assert "acknowledged 40 != raw lines" in str(failure.value)
        assert summary.reconcile(summary.load(tmp_path)) != []
    finally:
        run_notebooks(tmp_path, "local", params, notebooks("06"))
