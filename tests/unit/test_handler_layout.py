"""pipeline.handler: the Firehose transformation contract, its 6 MB limit, and the handler run
from the layout Lambda sees (only build/lambda on sys.path, no site-packages)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cli import run_module

from pipeline.handler import (
    MAX_RESPONSE_BYTES,
    InvalidEvent,
    _size_bound,
    firehose_response,
    fit_response,
    lambda_handler,
)
from pipeline.package import build_lambda
from pipeline.paths import EVENTS
from pipeline.transform import OK, PROCESSING_FAILED, TransformedRecord, transform_record

EVENT = EVENTS / "firehose-transform.json"
EXPECTED = EVENTS / "firehose-transform.expected.json"


def firehose_event(payloads: list[bytes]) -> dict:
    return {
        "invocationId": "inv-1",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
        "region": "us-east-1",
        "records": [
            {
                "recordId": f"rec-{i:06d}",
                "approximateArrivalTimestamp": 1_795_000_000_000 + i,
                "data": base64.b64encode(p).decode(),
            }
            for i, p in enumerate(payloads)
        ],
    }


def telemetry(i: int, pad: int = 0) -> bytes:
    message = {
        "topic": f"iot-test-topic/pump-{i % 7:02d}",
        "device_id": f"pump-{i % 7:02d}",
        "timestamp": 1_795_000_000_000 + i,
        "temperature_c": 40 + i % 13,
        "status": {"code": i % 3, "message": "x" * pad},
    }
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def test_the_recorded_event_gives_the_reviewed_expected_response():
    # given the recorded event and its reviewed response
    event = json.loads(EVENT.read_text())
    expected = json.loads(EXPECTED.read_text())
    # when the handler runs in process
    response = lambda_handler(event, None)
    # then the response is exactly the reviewed one
    assert response == expected


def test_bad_records_are_processing_failed_and_counted_and_every_id_returns_once_in_order():
    # given the recorded event (11 good messages, 6 bad ones)
    event = json.loads(EVENT.read_text())
    # when it is handled
    out = lambda_handler(event, None)["records"]
    # then every recordId comes back once, in input order, with only the contract's keys
    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    assert all(set(r) == {"recordId", "result", "data"} for r in out if r["result"] != OK)
    # and each Ok record names its equipment as the Lambda partition key
    for r in (r for r in out if r["result"] == OK):
        row = json.loads(base64.b64decode(r["data"]))
        assert r["metadata"] == {"partitionKeys": {"equipment_id": row["equipment_id"]}}
    results = [r["result"] for r in out]
    assert (results.count(OK), results.count(PROCESSING_FAILED)) == (11, 6)
    # and the failed ones carry their original data
    by_id = {r["recordId"]: r for r in event["records"]}
    for r in out:
        if r["result"] == PROCESSING_FAILED:
            assert r["data"] == by_id[r["recordId"]]["data"]


def test_failures_are_logged_with_their_reason(caplog):
    # given an event with one bad record
    event = firehose_event([telemetry(0), b"[1]"])
    # when it is handled
    with caplog.at_level("INFO", logger="pipeline.handler"):
        lambda_handler(event, None)
    # then one log line counts them and names the failed record and why
    summary = json.loads(caplog.records[-1].getMessage())
    assert (summary["ok"], summary["processingFailed"]) == (1, 1)
    assert summary["reasons"] == {"not a JSON object but a JSON array": 1}
    assert summary["failures"] == [
        {"recordId": "rec-000001", "reason": "not a JSON object but a JSON array"}
    ]


def test_a_1_mib_batch_of_5000_records_is_handled():
    # given 5,000 telemetry records totalling at least 1 MiB, every 100th one broken
    payloads = [b"{broken" if i % 100 == 99 else telemetry(i, pad=110) for i in range(5000)]
    assert sum(map(len, payloads)) >= 1 << 20
    event = firehose_event(payloads)
    # when it is handled
    out = lambda_handler(event, None)["records"]
    # then all 5,000 come back in order: 4,950 Ok, 50 ProcessingFailed, response within 6 MB
    assert [r["recordId"] for r in out] == [f"rec-{i:06d}" for i in range(5000)]
    assert sum(r["result"] == OK for r in out) == 4950
    assert sum(r["result"] == PROCESSING_FAILED for r in out) == 50
    assert len(json.dumps({"records": out})) <= MAX_RESPONSE_BYTES


def test_records_that_would_overflow_the_6_mb_response_fail_with_their_original_data():
    # given 20,000 small messages: ~5 MB of request, but the transformed lines (topic levels,
    # times, base64) would make a response of ~9 MB
    event = firehose_event([telemetry(i) for i in range(20_000)])
    assert len(json.dumps(event)) < MAX_RESPONSE_BYTES
    all_ok = firehose_response([transform_record(r) for r in event["records"]])["records"]
    assert len(json.dumps({"records": all_ok})) > MAX_RESPONSE_BYTES
    # when it is handled
    out = lambda_handler(event, None)["records"]
    # then the response fits, every record is still there in order, the first ones Ok and the
    # overflow ProcessingFailed with the untouched input data
    assert len(json.dumps({"records": out}).encode()) <= MAX_RESPONSE_BYTES
    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    results = [r["result"] for r in out]
    first_failed = results.index(PROCESSING_FAILED)
    assert first_failed > 0 and set(results[:first_failed]) == {OK}
    for sent, got in zip(event["records"], out, strict=True):
        if got["result"] == PROCESSING_FAILED:
            assert got["data"] == sent["data"]
    # and no failed record could have stayed Ok: turning the first one Ok would not fit
    one_more = [*out[:first_failed], all_ok[first_failed], *out[first_failed + 1 :]]
    assert len(json.dumps({"records": one_more})) > MAX_RESPONSE_BYTES


def test_fit_response_names_the_reason_and_keeps_later_records_that_fit():
    # given three records, the middle one growing much more (a long topic is repeated in the
    # topic level fields), and a limit that fits exactly "Ok, failed, Ok"
    long_topic = "iot-test-topic/" + "x" * 2000
    payloads = [telemetry(0), f'{{"topic":"{long_topic}","v":1}}'.encode(), telemetry(2)]
    event = firehose_event(payloads)
    transformed = [transform_record(r) for r in event["records"]]
    failed_middle = {"recordId": "rec-000001", "result": PROCESSING_FAILED}
    failed_middle["data"] = event["records"][1]["data"]
    entries = firehose_response(transformed)["records"]
    limit = len(json.dumps({"records": [entries[0], failed_middle, entries[2]]}))
    # when the response is fitted to the limit
    fitted = fit_response(event["records"], transformed, limit=limit)
    # then only the big one fails, with a reason that says what to change
    assert [t.result for t in fitted] == [OK, PROCESSING_FAILED, OK]
    assert fitted[1].data == event["records"][1]["data"]
    assert "response" in fitted[1].reason and "BufferSizeInMBs" in fitted[1].reason


def response_bytes(transformed) -> int:
    """The response's size as awslambdaric writes it: json.dumps with default separators."""
    return len(json.dumps(firehose_response(transformed)).encode("utf-8"))


# Record ids and data that json.dumps writes as they are, and ones it escapes (quote, backslash,
# control characters, DEL, non-ASCII, a character outside the BMP), plus data that is no string.
odd_text = st.sampled_from(["rec-1", 'q"uote', "back\\slash", "tab\t", "\x7f", "é", "😀", ""])
ids = st.one_of(odd_text, st.text(max_size=12))
input_data = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),  # base64 of anything
    st.sampled_from([" e30=", "e30=\n", '"e30="', "e30\\=", "é", ""]),  # not strict base64
    st.builds(lambda i: base64.b64encode(telemetry(i)).decode(), st.integers(0, 99)),  # Ok ones
    odd_text,
    st.integers(),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(ids, input_data), min_size=1, max_size=8), st.data())
def test_any_records_are_fitted_by_the_greedy_rule_on_json_dumps_sizes(items, data):
    # given input records of any id and data (escaped, non-ASCII, not strings), the transform's
    # result for each, and a limit between "all failed" and "all as transformed"
    records = [{"recordId": i, "data": d} for i, d in items]
    transformed = [transform_record(r) for r in records]
    failed = [
        TransformedRecord(t.record_id, PROCESSING_FAILED, r["data"])
        for r, t in zip(records, transformed, strict=True)
    ]
    low, high = response_bytes(failed), response_bytes(transformed)
    limit = data.draw(st.integers(low, max(low, high)))
    # when fitted
    fitted = fit_response(records, transformed, limit=limit)
    # then the response fits, every record id is there in order, and each record kept as it was
    # transformed is one that fits by json.dumps with the earlier decisions and every later
    # record failed (the documented greedy rule)
    assert response_bytes(fitted) <= limit
    assert [t.record_id for t in fitted] == [r["recordId"] for r in records]
    for n, t in enumerate(fitted):
        trial = [*fitted[:n], transformed[n], *failed[n + 1 :]]
        assert (t == transformed[n]) == (response_bytes(trial) <= limit), n
        if t != transformed[n]:  # failed for size: the untouched input data and the reason
            assert t.data == records[n]["data"] and "response size" in t.reason


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ids, input_data, odd_text | st.text(max_size=12)), min_size=1))
def test_the_size_bound_that_spares_the_encoding_is_never_below_the_response_size(items):
    # given records of any id and data, the Ok ones with any partition key value
    transformed = []
    for record_id, data, key in items:
        t = transform_record({"recordId": record_id, "data": data})
        transformed.append(
            t._replace(partition_keys={"equipment_id": key}) if t.result == OK else t
        )
    # then the bound fit_response trusts to skip the encoding is at least the encoded size
    assert _size_bound(transformed) >= response_bytes(transformed)


@pytest.mark.parametrize("record_id", ["rec", 'q"uote-é-😀'])
def test_a_limit_equal_to_the_response_size_keeps_every_record_and_one_byte_less_does_not(
    record_id,
):
    # given a batch and the exact size of its all-Ok response (json.dumps, as Lambda writes it)
    event = firehose_event([telemetry(i) for i in range(40)])
    for n, record in enumerate(event["records"]):
        record["recordId"] = f"{record_id}-{n}"
    transformed = [transform_record(r) for r in event["records"]]
    exact = response_bytes(transformed)
    # when it is fitted to exactly that size, then nothing fails and the size is the limit
    fitted = fit_response(event["records"], transformed, limit=exact)
    assert [t.result for t in fitted] == [OK] * 40
    assert response_bytes(fitted) == exact
    # when the limit is one byte lower, then the last record fails (original data, smaller)
    # and the response fits the lower limit
    fitted = fit_response(event["records"], transformed, limit=exact - 1)
    assert [t.result for t in fitted] == [OK] * 39 + [PROCESSING_FAILED]
    assert fitted[-1].data == event["records"][-1]["data"]
    assert response_bytes(fitted) <= exact - 1


def test_the_greedy_fitting_is_the_one_json_dumps_sizes_give():
    # given a batch whose records grow differently, and every limit between "all failed" and
    # "all Ok" in steps
    payloads = [telemetry(i, pad=(i * 37) % 300) for i in range(30)]
    event = firehose_event(payloads)
    transformed = [transform_record(r) for r in event["records"]]
    failed = [
        TransformedRecord(t.record_id, PROCESSING_FAILED, r["data"])
        for r, t in zip(event["records"], transformed, strict=True)
    ]
    low, high = response_bytes(failed), response_bytes(transformed)
    for limit in range(low, high + 1, 97):
        # when fitted
        fitted = fit_response(event["records"], transformed, limit=limit)
        # then the response fits, and each record kept Ok is one that fits by json.dumps with
        # the earlier decisions and every later record failed (the documented greedy rule)
        assert response_bytes(fitted) <= limit
        for n, t in enumerate(fitted):
            trial = [*fitted[:n], transformed[n], *failed[n + 1 :]]
            assert (t.result == OK) == (response_bytes(trial) <= limit), (limit, n)


def test_fit_response_refuses_when_even_the_original_data_cannot_fit():
    event = firehose_event([telemetry(0)])
    with pytest.raises(ValueError, match="BufferSizeInMBs"):
        fit_response(event["records"], [transform_record(event["records"][0])], limit=50)


@pytest.mark.parametrize(
    "event",
    [None, {}, {"records": "x"}, {"records": [{"data": ""}]}, {"records": [{"recordId": 1}]}],
)
def test_an_event_that_is_not_a_firehose_event_fails_the_invocation(event):
    with pytest.raises(InvalidEvent):
        lambda_handler(event, None)


def test_an_empty_batch_gives_an_empty_response():
    assert lambda_handler(firehose_event([]), None) == {"records": []}


LAMBDA_RUNNER = """
import json, sys
assert not any("site-packages" in p for p in sys.path), sys.path
import pipeline.handler
assert pipeline.handler.__file__.startswith(sys.path[0]), pipeline.handler.__file__
from pipeline.handler import lambda_handler
print(json.dumps(lambda_handler(json.load(sys.stdin), None)))
"""


def test_the_handler_runs_from_the_lambda_layout_alone(tmp_path: Path):
    # given the Lambda code directory built into a temporary folder
    code_dir = build_lambda(tmp_path / "lambda")
    # when a fresh interpreter with ONLY that folder on sys.path (-I: no user site, no
    # PYTHONPATH, no cwd; -S: no site-packages) handles the recorded event from stdin
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(code_dir)!r})\n" + LAMBDA_RUNNER,
        ],
        input=EVENT.read_bytes(),
        capture_output=True,
        cwd=tmp_path,
        timeout=60,
    )
    # then it succeeds (standard library only) and answers exactly the reviewed response
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout) == json.loads(EXPECTED.read_text())
    assert b"processingFailed" in proc.stderr  # the failure summary went to the log (stderr)


def test_python_m_pipeline_handler_summarises_the_recorded_event():
    # when the local invoke runs on the recorded event (the default)
    proc = run_module("pipeline.handler", check=True)
    lines = proc.stdout.splitlines()
    # then one line per record shows its result and decoded line or reason, then the counts
    assert lines[-1] == "17 records: 11 Ok, 6 ProcessingFailed"
    assert '"equipment_id":"pump-01"' in lines[0] and "Ok" in lines[0]
    assert "reason: not a JSON object but a JSON array" in lines[8]
    # and --json prints exactly the handler's response
    raw = run_module("pipeline.handler", str(EVENT), "--json", check=True)
    assert json.loads(raw.stdout) == json.loads(EXPECTED.read_text())
