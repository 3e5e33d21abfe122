"""Execution environments: warm reuse, one invocation at a time per worker, new workers for
new code or configuration, and the Python interface other components call."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from emulator.lambda_.runtime import LambdaError

ACCOUNT, REGION = "123456789012", "us-east-1"


def test_warm_worker_is_reused(aws, deploy):
    # Given a function that reports its process id
    name = deploy("app.pid")
    client = aws("lambda")

    # When it is invoked twice in a row
    pids = []
    for _ in range(2):
        response = client.invoke(FunctionName=name, Payload=b"{}")
        pids.append(json.loads(response["Payload"].read())["pid"])

    # Then the second call ran in the same (warm) process
    assert pids[0] == pids[1]


def test_warm_call_skips_init(lambdas, deploy):
    # Given a function invoked once (cold)
    name = deploy("app.echo")
    cold = lambdas.invoke(ACCOUNT, REGION, name, b"{}")

    # When it is invoked again
    started = time.monotonic()
    warm = lambdas.invoke(ACCOUNT, REGION, name, b'{"n": 2}')
    warm_seconds = time.monotonic() - started

    # Then only the cold call reported an init phase, and the warm one is fast
    assert "Init Duration" in cold.log_tail
    assert "Init Duration" not in warm.log_tail
    assert json.loads(warm.payload) == {"echo": {"n": 2}}
    assert warm_seconds < 0.25


def test_concurrent_invocations_get_separate_workers(lambdas, deploy):
    # Given a handler that sleeps for 1 s
    name = deploy("app.sleep", timeout=5)

    # When two invocations run at the same time
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(lambdas.invoke, ACCOUNT, REGION, name, b'{"seconds": 1}') for _ in range(2)
        ]
        results = [future.result(timeout=15) for future in futures]
    elapsed = time.monotonic() - started

    # Then both succeed, in parallel, each in its own process
    assert [r.function_error for r in results] == [None, None]
    pids = {json.loads(r.payload)["pid"] for r in results}
    assert len(pids) == 2
    assert elapsed < 1.9
    assert set(lambdas.worker_pids(name)) >= pids


def test_new_code_runs_in_a_new_worker(aws, lambdas, deploy, app_package):
    # Given a function that was invoked once
    name = deploy("app.echo")
    client = aws("lambda")
    assert json.loads(lambdas.invoke(ACCOUNT, REGION, name, b"{}").payload) == {"echo": {}}

    # When its code is updated
    new_code = app_package('return {"echo": event}', 'return {"echo2": event}')
    client.update_function_code(FunctionName=name, ZipFile=new_code)

    # Then the next invocation runs the new code
    result = lambdas.invoke(ACCOUNT, REGION, name, b"{}")
    assert json.loads(result.payload) == {"echo2": {}}


def test_new_configuration_is_seen(aws, lambdas, deploy):
    # Given a function invoked with STAGE=one
    name = deploy("app.environment", environment={"STAGE": "one"})
    event = json.dumps({"names": ["STAGE"]}).encode()
    assert json.loads(lambdas.invoke(ACCOUNT, REGION, name, event).payload) == {"STAGE": "one"}

    # When its environment changes
    aws("lambda").update_function_configuration(
        FunctionName=name, Environment={"Variables": {"STAGE": "two"}}
    )

    # Then the next invocation sees the new value
    assert json.loads(lambdas.invoke(ACCOUNT, REGION, name, event).payload) == {"STAGE": "two"}


def test_invoke_by_arn_from_python(lambdas, deploy):
    # Given a function addressed by its ARN, as Firehose and topic rules address it
    name = deploy("app.echo")
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"

    # When another component invokes it directly
    result = lambdas.invoke(ACCOUNT, REGION, arn, b'{"records": []}')

    # Then it gets the function's response
    assert result.status_code == 200
    assert result.function_error is None
    assert json.loads(result.payload) == {"echo": {"records": []}}
    assert result.executed_version == "$LATEST"


def test_unknown_function_raises_lambda_error(lambdas):
    # When a missing function is invoked from Python
    with pytest.raises(LambdaError) as raised:
        lambdas.invoke(ACCOUNT, REGION, "missing-fn", b"{}")

    # Then the error is Lambda's ResourceNotFoundException
    assert raised.value.code == "ResourceNotFoundException"
    assert raised.value.message.endswith(":function:missing-fn")


def test_large_output_does_not_block_the_worker(lambdas, deploy):
    # Given a handler that prints more than a pipe buffer holds (64 KiB)
    name = deploy("app.big_output")

    # When it is invoked
    result = lambdas.invoke(ACCOUNT, REGION, name, b'{"size": 300000}')

    # Then it completes and the tail is the last 4 KB of its log
    assert json.loads(result.payload) == "done"
    assert len(result.log_tail.encode()) <= 4096
    assert result.log_tail.rstrip("\n").split("\n")[-1].startswith("REPORT RequestId:")


def test_calls_beyond_the_worker_cap_wait_for_a_free_worker(lambdas, deploy, monkeypatch):
    # Given a cap of one execution environment per function
    monkeypatch.setattr("emulator.lambda_.runtime.MAX_WORKERS_PER_FUNCTION", 1)
    name = deploy("app.sleep", timeout=5)

    # When two 0.5 s invocations arrive together
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(lambdas.invoke, ACCOUNT, REGION, name, b'{"seconds": 0.5}')
            for _ in range(2)
        ]
        results = [future.result(timeout=15) for future in futures]
    elapsed = time.monotonic() - started

    # Then both succeed, one after the other, in the same environment
    assert [r.function_error for r in results] == [None, None]
    assert len({json.loads(r.payload)["pid"] for r in results}) == 1
    assert elapsed >= 1.0
