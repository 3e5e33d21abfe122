"""Invocation logs land in CloudWatch Logs as Lambda writes them: group /aws/lambda/<function>,
one stream per execution environment, START/END/REPORT around the function's own output."""

from __future__ import annotations

import json
import re


def test_logs_are_readable_with_filter_log_events(aws, deploy, lambdas):
    # Given a function that prints and logs, invoked twice
    name = deploy("app.chatty")
    client = aws("lambda")
    request_ids = []
    for marker in ("first", "second"):
        response = client.invoke(FunctionName=name, Payload=json.dumps({"marker": marker}))
        request_ids.append(response["ResponseMetadata"]["RequestId"])

    # When the log group is read after the writer caught up
    assert lambdas.flush_logs(timeout=10)
    events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    messages = [event["message"] for event in events]

    # Then each invocation has START, its output, END and REPORT, in that order
    for request_id, marker in zip(request_ids, ("first", "second"), strict=True):
        start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
        printed = messages.index(f"hello from print {marker}")
        end = messages.index(f"END RequestId: {request_id}")
        report = next(
            i for i, m in enumerate(messages) if m.startswith(f"REPORT RequestId: {request_id}")
        )
        assert start < printed < end < report
        assert re.fullmatch(
            rf"REPORT RequestId: {request_id}\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
            r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB(\tInit Duration: \d+\.\d\d ms)?\t",
            messages[report],
        )
    # and the module's init output comes once, before the first START
    assert messages.count("init: module loaded") == 1
    assert messages.index("init: module loaded") < messages.index(
        f"START RequestId: {request_ids[0]} Version: $LATEST"
    )


def test_each_environment_has_its_own_stream(aws, deploy, lambdas):
    # Given a function whose handler reports its log stream
    name = deploy("app.context_info")

    # When it is invoked
    response = aws("lambda").invoke(FunctionName=name, Payload=b"{}")
    stream = json.loads(response["Payload"].read())["log_stream_name"]

    # Then that stream exists in the function's group and holds the invocation's lines
    assert lambdas.flush_logs(timeout=10)
    logs = aws("logs")
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]
    events = logs.get_log_events(logGroupName=f"/aws/lambda/{name}", logStreamName=stream)
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"END RequestId: {request_id}" in [e["message"] for e in events["events"]]


def test_timeout_is_logged(aws, deploy, lambdas):
    # Given a function that times out
    name = deploy("app.sleep", timeout=1)
    response = aws("lambda").invoke(FunctionName=name, Payload=b'{"seconds": 3}')
    request_id = response["ResponseMetadata"]["RequestId"]

    # When its log is read
    assert lambdas.flush_logs(timeout=10)
    events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    messages = [event["message"] for event in events]

    # Then Lambda's timeout line and REPORT status are there
    assert any(
        re.fullmatch(
            rf"\d{{4}}-\d\d-\d\dT[\d:.]+Z {request_id} Task timed out after 1.00 seconds", m
        )
        for m in messages
    )
    report = next(m for m in messages if m.startswith(f"REPORT RequestId: {request_id}"))
    assert report.endswith("\tStatus: timeout\t")


def _starts(aws, name: str, request_id: str) -> int:
    events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    return [e["message"] for e in events].count(f"START RequestId: {request_id} Version: $LATEST")


def test_failed_event_invocation_is_retried_twice(aws, deploy, lambdas, monkeypatch):
    # Given a failing function, and retry waits shortened from Lambda's minutes
    monkeypatch.setattr(lambdas, "async_retry_delays_s", (0.05, 0.05))
    name = deploy("app.fail")

    # When it is invoked asynchronously
    response = aws("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    request_id = response["ResponseMetadata"]["RequestId"]

    # Then Lambda ran it three times in all, under the same request id
    assert lambdas.wait_for_background(timeout=20)
    assert lambdas.flush_logs(timeout=10)
    assert _starts(aws, name, request_id) == 3


def test_event_retries_follow_maximum_retry_attempts(aws, deploy, lambdas, monkeypatch):
    # Given a failing function configured for no retries
    monkeypatch.setattr(lambdas, "async_retry_delays_s", (0.05, 0.05))
    name = deploy("app.fail")
    aws("lambda").put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)

    # When it is invoked asynchronously
    response = aws("lambda").invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    request_id = response["ResponseMetadata"]["RequestId"]

    # Then it ran once
    assert lambdas.wait_for_background(timeout=20)
    assert lambdas.flush_logs(timeout=10)
    assert _starts(aws, name, request_id) == 1
