"""The project's own Firehose transform handler (`pipeline.handler.lambda_handler`), deployed as
a .zip with `pipeline/` at its root and run by the emulator's Lambda runtime: the recorded
event must give the reviewed expected response, exactly as a local call of the handler does."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EVENT = ROOT / "data" / "events" / "firehose-transform.json"
EXPECTED = ROOT / "data" / "events" / "firehose-transform.expected.json"
# What the handler needs at run time (it uses the standard library only).
HANDLER_MODULES = ("pipeline/__init__.py", "pipeline/handler.py", "pipeline/transform.py")


def _package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in HANDLER_MODULES:
            archive.write(ROOT / relative, relative)
    return buffer.getvalue()


@pytest.mark.skipif(
    not all((ROOT / m).exists() for m in HANDLER_MODULES) or not EXPECTED.exists(),
    reason="pipeline.handler or its recorded event is not in this checkout",
)
def test_pipeline_handler_runs_in_the_emulator(aws, lambda_role, lambdas, unique):
    # Given the project's handler deployed as Lambda would run it
    name = f"pipeline-transform-{unique}"
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=lambda_role,
        Handler="pipeline.handler.lambda_handler",
        Code={"ZipFile": _package()},
        Timeout=60,
        MemorySize=256,
    )

    # When the recorded Firehose event is sent
    response = aws("lambda").invoke(FunctionName=name, Payload=EVENT.read_bytes())

    # Then it answers with the reviewed response, one entry per input record
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body == json.loads(EXPECTED.read_text())
    sent = json.loads(EVENT.read_text())["records"]
    assert [r["recordId"] for r in body["records"]] == [r["recordId"] for r in sent]
