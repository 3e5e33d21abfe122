"""Notebook 08 (Device Shadow) executed by papermill against an emulator in its own process:
the device reports, the notebook sets a desired state, the device applies the delta and
reports back, and the notebook deletes the shadow."""

from __future__ import annotations

import pytest
from test_workbook import local_emulator, notebooks  # noqa: F401 (local_emulator: a fixture)

from pipeline.run import LOCAL_DEFAULTS, NotebookFailed, run_notebooks

# The emulator in its own process, on free ports, that test_workbook.py's tests use.
pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("local_emulator")]


def test_without_a_stack_it_names_the_notebook_to_run_first(tmp_path):
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-shadow-none"}
    with pytest.raises(NotebookFailed) as failure:
        run_notebooks(tmp_path, "local", params, notebooks("08"))
    assert failure.value.notebook == "08-device-shadow.ipynb"
    assert "run 01-deploy-stack first" in failure.value.error


def test_the_device_applies_the_desired_state_and_the_shadow_is_deleted(tmp_path):
    # given a deployed stack and the device's certificate (01, 02)
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-shadow"}
    run_notebooks(tmp_path, "local", params, notebooks("01", "02"))
    try:
        # when notebook 08 runs with its own desired values
        desired = {"target_temperature_c": 23.0, "sampling_interval_s": 15}
        result = run_notebooks(tmp_path, "local", {**params, "DESIRED": desired}, notebooks("08"))
    finally:
        run_notebooks(tmp_path, "local", params, notebooks("06"))
    figures = result["figures"]["08-device-shadow"]
    # then the device got the deltas and its settings are the last desired ones
    assert figures["first_version"] == 1
    assert figures["synced_version"] == 3  # 1 report, 2 desired, 3 the device's report back
    assert figures["deltas_received"] == 2  # section 2's desired state, then section 4's
    assert figures["device_settings"] == {
        "target_temperature_c": 23.0,
        "sampling_interval_s": 5,  # section 4's accepted versioned write
        "firmware": "1.4.2",
    }
    # and the notebook deleted the shadow it made
    assert figures["deleted_version"] == figures["final_version"] == 5
    assert figures["shadow_left"] is False
