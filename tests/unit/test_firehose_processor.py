"""The Lambda transformation contract (guide: "data-transformation", "data-transformation-status-
model", "data-transformation-failure-handling"): every record comes out exactly once as
delivered, dropped or processing-failed, with AWS's error codes. The function is a small fake
with the signature of `emulator.lambdas.invoke`."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest
from support import firehose_lambdas

from emulator.firehose import processor
from emulator.firehose.buffering import BufferedRecord
from emulator.firehose.config import Processor

ARN = "arn:aws:lambda:us-east-1:123456789012:function:transform"
STREAM_ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/s"


@dataclass
class Result:
    status_code: int
    payload: bytes
    function_error: str | None = None
    log_tail: str = ""


class FakeLambda:
    """Answers each invocation with `respond(event)`; remembers the events."""

    def __init__(self, respond):
        self.respond = respond
        self.events: list[dict] = []

    def __call__(self, account_id, region, function_arn, payload):
        event = json.loads(payload)
        self.events.append(event)
        return self.respond(event)


def ok_upper(event) -> Result:
    return Result(200, json.dumps(firehose_lambdas.transform(event, None)).encode())


def make_records(*datas: bytes) -> list[BufferedRecord]:
    return [BufferedRecord(f"id{i}", 1_700_000_000_000 + i, d) for i, d in enumerate(datas)]


def run(fake, records, **params) -> processor.ProcessorOutcome:
    proc = Processor("Lambda", {"LambdaArn": ARN, **{k: str(v) for k, v in params.items()}})
    return processor.run(
        fake, account_id="123456789012", region="us-east-1", stream_arn=STREAM_ARN,
        processor=proc, records=records, sleep=lambda _s: None, clock=lambda: 1_700_000_100.0,
    )  # fmt: skip


def test_event_has_the_documented_shape():
    fake = FakeLambda(ok_upper)
    run(fake, make_records(b"a"))
    (event,) = fake.events
    assert set(event) == {"invocationId", "deliveryStreamArn", "region", "records"}
    assert event["deliveryStreamArn"] == STREAM_ARN and event["region"] == "us-east-1"
    assert event["records"] == [
        {"recordId": "id0", "approximateArrivalTimestamp": 1_700_000_000_000, "data": "YQ=="}
    ]


def test_ok_dropped_and_failed_records_are_each_accounted_once():
    outcome = run(FakeLambda(ok_upper), make_records(b"a\n", b"drop", b"bad", b"b\n"))
    assert outcome.delivered == [b"A\n", b"B\n"]
    assert outcome.dropped == 1
    (failed,) = outcome.failed
    line = failed.error_line()
    assert line == {
        "attemptsMade": 1,
        "arrivalTimestamp": 1_700_000_000_002,
        "errorCode": "Lambda.ProcessingFailedStatus",
        "errorMessage": "ProcessingFailed status set for record",
        "attemptEndingTimestamp": 1_700_000_100_000,
        "rawData": base64.b64encode(b"bad").decode(),
        "lambdaArn": ARN,
    }


def test_function_error_is_retried_then_every_record_fails():
    fake = FakeLambda(lambda e: Result(200, b'{"errorMessage":"boom"}', "Unhandled"))
    outcome = run(fake, make_records(b"a", b"b"), NumberOfRetries=2)
    assert len(fake.events) == 3
    assert [f.error_code for f in outcome.failed] == ["Lambda.FunctionError"] * 2
    assert {f.attempts_made for f in outcome.failed} == {3}
    assert outcome.delivered == [] and outcome.dropped == 0


def test_default_number_of_retries_is_three():
    fake = FakeLambda(lambda e: Result(200, b"{}", "Unhandled"))
    outcome = run(fake, make_records(b"a"))
    assert len(fake.events) == 4 and outcome.failed[0].attempts_made == 4


def test_retry_succeeds_after_a_transient_failure():
    answers = iter([Result(200, b"{}", "Unhandled")])
    fake = FakeLambda(lambda e: next(answers, None) or ok_upper(e))
    outcome = run(fake, make_records(b"a"))
    assert outcome.delivered == [b"A"] and outcome.failed == []
    assert len(fake.events) == 2
    # Each attempt is a new invocation with the same record ids.
    assert fake.events[0]["invocationId"] != fake.events[1]["invocationId"]
    assert fake.events[0]["records"] == fake.events[1]["records"]


def test_invoke_api_error_is_retried_and_named():
    class NotFound(Exception):
        code = "ResourceNotFoundException"
        message = "Function not found"

    def respond(event):
        raise NotFound()

    fake = FakeLambda(respond)
    outcome = run(fake, make_records(b"a"), NumberOfRetries=1)
    assert len(fake.events) == 2
    assert outcome.failed[0].error_code == "Lambda.ResourceNotFound"


def missing_one(event) -> Result:
    out = [
        {"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in event["records"][1:]
    ]
    return Result(200, json.dumps({"records": out}).encode())


def duplicated(event) -> Result:
    r = event["records"][0]
    out = [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]}] * 2
    return Result(200, json.dumps({"records": out}).encode())


def every_record(result: str, data: str):
    """A respond() answering `result` and `data` for each of the event's records."""

    def respond(event) -> Result:
        records = [
            {"recordId": r["recordId"], "result": result, "data": data} for r in event["records"]
        ]
        return Result(200, json.dumps({"records": records}).encode())

    return respond


@pytest.mark.parametrize(
    ("respond", "code"),
    [
        (missing_one, "Lambda.MissingRecordId"),
        (duplicated, "Lambda.DuplicatedRecordId"),
        (lambda e: Result(200, b"not json"), "Lambda.JsonProcessingException"),
        (lambda e: Result(200, b'{"records": 1}'), "Lambda.JsonProcessingException"),
        (every_record("Maybe", ""), "Lambda.JsonProcessingException"),
        (every_record("Ok", "%%"), "Lambda.JsonProcessingException"),
    ],
)
def test_malformed_response_fails_the_batch_once(respond, code):
    # Observed on AWS: attemptsMade 1 for Lambda.MissingRecordId / Lambda.DuplicatedRecordId.
    fake = FakeLambda(respond)
    records = make_records(b"a", b"b")
    outcome = run(fake, records)
    assert len(fake.events) == 1
    assert [f.record.record_id for f in outcome.failed] == ["id0", "id1"]
    assert {(f.error_code, f.attempts_made) for f in outcome.failed} == {(code, 1)}
    assert outcome.delivered == []


def test_ids_that_were_not_sent_are_ignored():
    def extra(event):
        result = json.loads(ok_upper(event).payload)
        result["records"].append({"recordId": "other", "result": "Ok", "data": "eA=="})
        return Result(200, json.dumps(result).encode())

    outcome = run(FakeLambda(extra), make_records(b"a"))
    assert outcome.delivered == [b"A"] and outcome.failed == []


def test_buffer_is_split_into_invocations_by_buffer_size():
    fake = FakeLambda(ok_upper)
    records = make_records(*[b"x" * 300_000] * 5)
    outcome = run(fake, records, BufferSizeInMBs=1)
    assert [len(e["records"]) for e in fake.events] == [3, 2]
    assert len(outcome.delivered) == 5
