"""The workbook with the optional hot path on (HOT_PATH_TABLE=True in 01): the stack gets the
DynamoDB table, 05 shows each device's latest reading next to the S3 data, 06 removes it."""

from __future__ import annotations

import json

import pytest
from test_workbook import local_emulator, notebooks  # noqa: F401 (the module's fixture)

from pipeline.run import LOCAL_DEFAULTS, run_notebooks

pytestmark = pytest.mark.timeout(600)


def _outputs_text(path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join(
        "".join(output.get("data", {}).get("text/plain", "")) + "".join(output.get("text", ""))
        for cell in cells
        for output in cell.get("outputs", [])
    )


def test_hot_path_table_is_read_next_to_the_s3_data(local_emulator, tmp_path):  # noqa: F811
    params = {**LOCAL_DEFAULTS, "STACK_NAME": "wb-hot", "N_MESSAGES": 60, "HOT_PATH_TABLE": True}
    try:
        run_notebooks(tmp_path, "local", params, notebooks("01", "02", "03", "04", "05"))
        shown = _outputs_text(tmp_path / "05-analyse.ipynb")
        # the hot table has one row per piece of equipment, next to the S3 columns
        assert "No hot-path table" not in shown
        assert "sequence (S3)" in shown
        for equipment in ("pump-01", "pump-02", "compressor-01"):
            assert f"iot-test-topic/{equipment}" in shown
    finally:
        result = run_notebooks(tmp_path, "local", params, notebooks("06"))
    assert result["figures"]["06-teardown"]["left_over"] == []
