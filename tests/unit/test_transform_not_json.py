"""The record the template's NotJsonTopicRule sends (`topic` + `payload_base64`) is failed with
its reason, so a payload that is not a JSON object ends in processing-failed/, never as a row."""

from __future__ import annotations

import base64
import json

import pytest

from pipeline.transform import (
    DROPPED,
    PROCESSING_FAILED,
    RecordError,
    transform_data,
    transform_record,
)


@pytest.mark.parametrize("payload", [b"temperature=48.2", b"[1, 2, 3]", b"\xff\xfe\x00bad"])
def test_not_json_rule_record_is_processing_failed_with_the_original_data(payload):
    line = json.dumps(
        {"topic": "iot/pump-01", "payload_base64": base64.b64encode(payload).decode()}
    ).encode()
    original = base64.b64encode(line + b"\n").decode()
    out = transform_record({"recordId": "r1", "data": original, "approximateArrivalTimestamp": 1})
    assert out.result == PROCESSING_FAILED
    assert out.data == original  # Firehose writes the untouched bytes to processing-failed/
    assert "not a JSON object" in out.reason and f"{len(payload)} bytes" in out.reason


def test_unreadable_base64_is_still_a_reason_not_a_bug():
    with pytest.raises(RecordError, match="unreadable base64"):
        transform_data(b'{"topic":"a/b","payload_base64":"%%%"}\n', 1)


def test_a_json_payload_with_more_fields_is_a_row():
    # only the exact shape of the not-JSON rule is failed: a device field of the same name is data
    out = transform_data(b'{"topic":"a/b","payload_base64":"eA==","run_id":"r"}\n', 1)
    assert json.loads(out)["payload_base64"] == "eA=="


def test_a_json_object_forwarded_by_the_not_json_rule_is_dropped_not_duplicated():
    # a JSON object without run_id matches both rules: the first delivered it, this copy drops
    payload = base64.b64encode(b'{"device_id": "pump-01", "t": 1}').decode()
    line = json.dumps({"topic": "iot/pump-01", "payload_base64": payload}).encode()
    original = base64.b64encode(line + b"\n").decode()
    out = transform_record({"recordId": "r1", "data": original, "approximateArrivalTimestamp": 1})
    assert out.result == DROPPED and out.data == original
