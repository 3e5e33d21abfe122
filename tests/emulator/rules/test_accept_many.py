"""accept_many: the messages of one MQTT read, with one spool write per Firehose stream.

Each message's Firehose put is still checked on its own (a missing stream goes to that rule's
errorAction, the others are spooled); if the grouped write fails, accept_many raises and none
of the batch's background actions runs (the broker acknowledges none of it)."""

from __future__ import annotations

import json
import time

import pytest
from support.rules import create_rule, error_message, new_bucket, s3_action
from support.streams import create_stream

from emulator.firehose.service import FirehoseError
from emulator.iot.messages import InboundMessage


def _message(emulator, topic: str, payload: bytes) -> InboundMessage:
    return InboundMessage(
        topic, payload, 1, "dev-1", "ab" * 32, int(time.time() * 1000),
        emulator.account_id, emulator.region,
    )  # fmt: skip


@pytest.fixture
def firehose(emulator):
    return emulator.firehose


def _stream(aws, name: str, role_arn: str, bucket: str) -> None:
    create_stream(
        aws, name, bucket, role_arn, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900}
    )


def test_one_spool_write_per_stream_and_errors_per_message(
    emulator, rules, aws, unique, role_arn, firehose, monkeypatch
):
    # given two streams, a rule per stream, and a rule whose stream does not exist
    bucket = f"many-{unique}"
    s3 = new_bucket(aws, bucket)
    _stream(aws, f"a-{unique}", role_arn, bucket)
    _stream(aws, f"b-{unique}", role_arn, bucket)
    fh = lambda stream: {"firehose": {"deliveryStreamName": stream, "roleArn": role_arn}}  # noqa: E731
    create_rule(aws("iot"), f"ma_{unique}", f"SELECT n FROM 'many/{unique}/a'", [fh(f"a-{unique}")])
    create_rule(aws("iot"), f"mb_{unique}", f"SELECT n FROM 'many/{unique}/b'", [fh(f"b-{unique}")])
    create_rule(
        aws("iot"),
        f"mx_{unique}",
        f"SELECT n FROM 'many/{unique}/x'",
        [fh(f"missing-{unique}")],
        error_action=s3_action(bucket, "error-${n}", role_arn),
    )
    writes = []
    real = firehose.put_checked

    def spy(account_id, region, stream, records):
        writes.append((stream, list(records)))
        return real(account_id, region, stream, records)

    monkeypatch.setattr(firehose, "put_checked", spy)
    topics = ["a", "b", "a", "x", "b", "a"]
    # when six messages of one read are accepted together
    rules.accept_many(
        [
            _message(emulator, f"many/{unique}/{t}", json.dumps({"n": i}).encode())
            for i, t in enumerate(topics)
        ]
    )
    # then each stream got one write with its records in arrival order
    assert sorted(writes) == [
        (f"a-{unique}", [b'{"n":0}', b'{"n":2}', b'{"n":5}']),
        (f"b-{unique}", [b'{"n":1}', b'{"n":4}']),
    ]
    # and the message for the missing stream went to its rule's errorAction
    assert rules.drain(10)
    error = error_message(s3, bucket, "error-3")
    assert "ResourceNotFoundException" in error["failures"][0]["errorMessage"]


def test_failed_spool_write_refuses_the_batch_and_runs_none_of_its_actions(
    emulator, rules, aws, unique, role_arn, firehose, monkeypatch
):
    # given a rule with a firehose and an S3 action, and a spool that cannot be written
    bucket = f"many-fail-{unique}"
    s3 = new_bucket(aws, bucket)
    _stream(aws, f"f-{unique}", role_arn, bucket)
    create_rule(
        aws("iot"),
        f"mf_{unique}",
        f"SELECT n FROM 'manyfail/{unique}'",
        [
            {"firehose": {"deliveryStreamName": f"f-{unique}", "roleArn": role_arn}},
            s3_action(bucket, "copy-${n}", role_arn),
        ],
    )

    def full_disk(*_args):
        raise FirehoseError("ServiceUnavailableException", "No space left on device", 503)

    monkeypatch.setattr(firehose, "put_checked", full_disk)
    # when a batch of two messages is accepted
    with pytest.raises(FirehoseError):
        rules.accept_many(
            [_message(emulator, f"manyfail/{unique}", b'{"n": %d}' % i) for i in range(2)]
        )
    # then it is refused as a whole, and no background action of the batch ran
    assert rules.drain(10)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_trace_id_is_drawn_only_when_read_and_stays_one_per_message(
    emulator, rules, aws, unique, role_arn, recording_firehose
):
    # given a rule that selects traceid() twice
    create_rule(
        aws("iot"),
        f"mt_{unique}",
        f"SELECT traceid() AS a, traceid() AS b FROM 'manytrace/{unique}'",
        [{"firehose": {"deliveryStreamName": "s", "roleArn": role_arn}}],
    )
    # when two messages are accepted
    rules.accept_many([_message(emulator, f"manytrace/{unique}", b"{}") for _ in range(2)])
    # then each record carries one UUID for its message, and the two messages differ
    first, second = (json.loads(call[3][0]) for call in recording_firehose.calls)
    assert first["a"] == first["b"] and second["a"] == second["b"]
    assert first["a"] != second["a"] and len(first["a"]) == 36
