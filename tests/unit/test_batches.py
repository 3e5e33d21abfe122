"""pipeline.batches: batch objects round trip, bad lines reported by number, error output read."""

from __future__ import annotations

import base64
import gzip
import io
import json

import pytest

from pipeline.batches import (
    FailedRecord,
    decompress,
    is_gzip,
    iter_batch_records,
    iter_processing_failed,
    split_lines,
    write_batch,
)

ROWS = [{"topic": "iot-test-topic/pump-01", "v": i, "status_code": i % 2} for i in range(50)]


def test_write_then_read_round_trips_gzip_and_plain():
    for compress in (True, False):
        # given a batch written with or without gzip
        data = write_batch(ROWS, compress=compress)
        # when it is read back
        lines = list(iter_batch_records(data))
        # then every row comes back, in order, numbered from 1, without error
        assert [line.value for line in lines] == ROWS
        assert [line.line for line in lines] == list(range(1, 51))
        assert all(line.ok for line in lines)
        assert data[:2] == (b"\x1f\x8b" if compress else b'{"')


def test_the_written_batch_is_newline_separated_json_and_deterministic():
    data = write_batch(ROWS[:2])
    assert (
        gzip.decompress(data) == b'{"topic":"iot-test-topic/pump-01","v":0,"status_code":0}\n'
        b'{"topic":"iot-test-topic/pump-01","v":1,"status_code":1}\n'
    )
    assert write_batch(ROWS[:2]) == data  # no timestamp in the gzip header


def test_a_missing_final_separator_is_tolerated():
    data = b'{"a":1}\n{"a":2}'
    assert [line.value for line in iter_batch_records(data)] == [{"a": 1}, {"a": 2}]


def test_concatenated_gzip_members_are_read_as_one_object():
    data = write_batch(ROWS[:3]) + write_batch(ROWS[3:5])
    assert [line.value["v"] for line in iter_batch_records(data)] == [0, 1, 2, 3, 4]


def test_bad_lines_are_reported_with_their_1_based_line_number():
    # given a batch with good lines around bad ones
    data = write_batch([{"a": 1}, b"[1, 2]", b"\xff\xfe", b"", b"{nope", b"7", {"a": 2}])
    # when it is read
    lines = list(iter_batch_records(data))
    # then each bad line is named by number and reason, and reading went on after it
    errors = {line.line: line.error for line in lines if not line.ok}
    assert errors == {
        2: "not a JSON object but a JSON array",
        3: "not valid UTF-8 at byte 0",
        4: "empty line",
        5: "not valid JSON: Expecting property name enclosed in double quotes at column 2",
        6: "not a JSON object but a JSON number",
    }
    assert [(line.line, line.value) for line in lines if line.ok] == [(1, {"a": 1}), (7, {"a": 2})]
    assert lines[1].raw == b"[1, 2]"


def test_an_empty_object_has_no_lines():
    assert list(iter_batch_records(b"")) == []
    assert list(iter_batch_records(gzip.compress(b""))) == []


def test_a_truncated_gzip_object_is_a_clear_error():
    data = write_batch(ROWS)
    with pytest.raises(ValueError, match="cannot be decompressed.*truncated"):
        list(iter_batch_records(data[:-10]))


def test_plain_bytes_that_start_with_the_gzip_magic_but_no_gzip_header_are_plain():
    # given plain batches whose first bytes are 1f 8b, then a compression method other than
    # deflate (8), or reserved header flags set (RFC 1952 2.3.1: no gzip member has them)
    for plain in (b"\x1f\x8b\x00 one\ntwo\n", b"\x1f\x8b\x08\xe0 one\ntwo\n"):
        # then they are read as they are, line by line
        assert not is_gzip(plain)
        assert decompress(plain) == plain
        assert split_lines(plain) == [plain.split(b"\n")[0], b"two"]


@pytest.mark.parametrize("cut", [2, 3, 4, 10, 20])
def test_a_gzip_object_cut_anywhere_after_its_magic_number_is_still_a_clear_error(cut):
    # given a gzip batch truncated to its first `cut` bytes (the header is intact so far)
    data = write_batch(ROWS)[:cut]
    # then it is recognised as gzip, and reading it says it cannot be decompressed
    assert is_gzip(data)
    with pytest.raises(ValueError, match="cannot be decompressed.*truncated"):
        decompress(data)


def test_gzip_objects_are_recognised_by_their_header():
    # given gzip written by write_batch, by gzip with a file name (FLG.FNAME), and plain JSON
    named = gzip.GzipFile(filename="batch.json", mode="wb", fileobj=(buffer := io.BytesIO()))
    named.write(b'{"a":1}\n')
    named.close()
    # then the gzip ones are gzip and decompress; JSON lines are not gzip
    assert is_gzip(write_batch(ROWS)) and is_gzip(buffer.getvalue())
    assert decompress(buffer.getvalue()) == b'{"a":1}\n'
    assert not is_gzip(b'{"a":1}\n') and not is_gzip(b"") and not is_gzip(b"\x1f")


def error_record(raw: bytes, **overrides) -> dict:
    # The processing-failed record shape (Firehose developer guide, "data-transformation");
    # the code, message and ARN are sample values.
    arn = "arn:aws:lambda:us-east-1:123456789012:function:iot-core-pipeline-dev-transform:$LATEST"
    record = {
        "attemptsMade": 4,
        "arrivalTimestamp": 1_795_000_000_412,
        "errorCode": "Lambda.ProcessingFailed",
        "errorMessage": "The Lambda function returned ProcessingFailed for this record.",
        "attemptEndingTimestamp": 1_795_000_060_000,
        "rawData": base64.b64encode(raw).decode(),
        "lambdaArn": arn,
    }
    record.update(overrides)
    return record


def test_processing_failed_records_are_read_with_raw_data_decoded():
    # given an error output object with two failed records, one with format-conversion keys
    second = error_record(b"\xff\xfe\x00bad\n")
    second["ErrorCode"] = second.pop("errorCode")
    second["ErrorMessage"] = second.pop("errorMessage")
    data = write_batch([error_record(b"temperature=48.2\n"), second])
    # when it is read
    failed = list(iter_processing_failed(data))
    # then rawData is decoded bytes, times are UTC datetimes, both key spellings are read
    assert all(isinstance(f, FailedRecord) for f in failed)
    first = failed[0]
    assert first.raw_data == b"temperature=48.2\n"
    assert first.arrival_time.isoformat() == "2026-11-18T11:06:40.412000+00:00"
    assert first.attempt_ending_time.isoformat() == "2026-11-18T11:07:40+00:00"
    assert (first.attempts_made, first.error_code) == (4, "Lambda.ProcessingFailed")
    assert first.lambda_arn.endswith(":function:iot-core-pipeline-dev-transform:$LATEST")
    assert failed[1].raw_data == b"\xff\xfe\x00bad\n"
    assert failed[1].error_code == "Lambda.ProcessingFailed" and failed[1].line == 2


def test_a_bad_error_line_is_reported_not_raised():
    data = write_batch([b"not json", error_record(b"x", rawData="***")])
    bad = list(iter_processing_failed(data))
    assert [(b.line, b.error) for b in bad] == [
        (1, "not valid JSON: Expecting value at column 1"),
        (2, "rawData is not valid base64"),
    ]


def test_reads_what_the_handler_would_fail(tmp_path):
    # given the recorded event's failed records as Firehose would write them
    from pipeline.handler import lambda_handler
    from pipeline.paths import EVENTS

    event = json.loads((EVENTS / "firehose-transform.json").read_text())
    response = lambda_handler(event, None)
    failed = [r for r in response["records"] if r["result"] == "ProcessingFailed"]
    data = write_batch([error_record(base64.b64decode(r["data"])) for r in failed])
    # when the error output is read
    raws = [f.raw_data for f in iter_processing_failed(data)]
    # then the original bytes of each failed record come back
    assert raws[0] == b"temperature=48.2;vibration=2.0\n" and raws[4] == b""
    assert len(raws) == 6
