"""The notebook tests run the workbook as `make run` does: AWS-valid buffering hints
(`LOCAL_DEFAULTS`), on emulators that divide buffer intervals by `LOCAL_TIME_SCALE`. Every
emulator these tests start inherits it from the environment."""

from __future__ import annotations

import pytest

from emulator.firehose.service import TIME_SCALE_ENV
from pipeline.run import LOCAL_TIME_SCALE


@pytest.fixture(scope="session", autouse=True)
def _local_time_scale():
    monkey = pytest.MonkeyPatch()
    monkey.setenv(TIME_SCALE_ENV, str(LOCAL_TIME_SCALE))
    yield
    monkey.undo()
