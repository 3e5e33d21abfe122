"""The project's own Firehose transform handler (`pipeline.handler.lambda_handler`), deployed as
a .zip with `pipeline/` at its root and run by the emulator's Lambda runtime: the recorded
event must give the reviewed expected response, exactly as a local call of the handler does."""

from __future__ import annotations

import json
from pathlib import Path

from support.lambdas import create_function

from pipeline import package

ROOT = Path(__file__).resolve().parents[3]
EVENT = ROOT / "data" / "events" / "firehose-transform.json"
EXPECTED = ROOT / "data" / "events" / "firehose-transform.expected.json"


def test_pipeline_handler_runs_in_the_emulator(aws, lambda_role, lambdas, unique, tmp_path):
    # Given the project's handler packaged by pipeline.package and deployed as SAM would
    code = package.lambda_zip(package.build_lambda(tmp_path / "lambda"))
    name = f"pipeline-transform-{unique}"
    handler = "pipeline.handler.lambda_handler"
    create_function(aws, lambda_role, name, code, handler, Timeout=60, MemorySize=256)

    # When the recorded Firehose event is sent
    response = aws("lambda").invoke(FunctionName=name, Payload=EVENT.read_bytes())

    # Then it answers with the reviewed response, one entry per input record
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    assert body == json.loads(EXPECTED.read_text())
    sent = json.loads(EVENT.read_text())["records"]
    assert [r["recordId"] for r in body["records"]] == [r["recordId"] for r in sent]
