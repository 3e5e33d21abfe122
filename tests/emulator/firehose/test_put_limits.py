"""PutRecord / PutRecordBatch answered by our service with AWS's limits and error codes
(API reference: 1,000 KiB per record before base64, 500 records and 4 MiB per batch)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from firehose_helpers import make_stream


@pytest.fixture
def stream(aws, unique):
    name = f"lim-{unique}"
    make_stream(aws, name, name, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0})
    return name


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_record_of_exactly_1000_kib_is_accepted(aws, stream):
    answer = aws("firehose").put_record(
        DeliveryStreamName=stream, Record={"Data": b"x" * 1_024_000}
    )
    assert answer["RecordId"] and answer["Encrypted"] is False


def test_record_over_1000_kib_is_a_validation_error(aws, stream):
    code, message = error_of(
        lambda: aws("firehose").put_record(
            DeliveryStreamName=stream, Record={"Data": b"x" * 1_024_001}
        )
    )
    assert code == "ValidationException"
    assert "'record.data'" in message and "1024000" in message


def test_batch_of_501_records_is_a_validation_error(aws, stream):
    code, message = error_of(
        lambda: aws("firehose").put_record_batch(
            DeliveryStreamName=stream, Records=[{"Data": b"x"}] * 501
        )
    )
    assert code == "ValidationException" and "'records'" in message and "500" in message


def test_batch_over_4_mib_is_rejected(aws, stream):
    code, message = error_of(
        lambda: aws("firehose").put_record_batch(
            DeliveryStreamName=stream, Records=[{"Data": b"x" * 1_000_000}] * 5
        )
    )
    assert code == "InvalidArgumentException" and "4 MiB" in message


def test_oversized_member_of_a_batch_names_its_index(aws, stream):
    code, message = error_of(
        lambda: aws("firehose").put_record_batch(
            DeliveryStreamName=stream,
            Records=[{"Data": b"x"}, {"Data": b"x" * 1_024_001}],
        )
    )
    assert code == "ValidationException" and "'records.2.member.data'" in message


def test_unknown_stream_is_resource_not_found(aws, unique):
    code, message = error_of(
        lambda: aws("firehose").put_record(
            DeliveryStreamName=f"nope-{unique}", Record={"Data": b"x"}
        )
    )
    assert code == "ResourceNotFoundException" and f"nope-{unique}" in message


def test_batch_of_500_records_returns_one_id_each(aws, stream):
    answer = aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": b"%d\n" % i} for i in range(500)]
    )
    assert answer["FailedPutCount"] == 0
    ids = [r["RecordId"] for r in answer["RequestResponses"]]
    assert len(ids) == 500 and len(set(ids)) == 500


def test_describe_delivery_stream_still_answers(aws, stream):
    description = aws("firehose").describe_delivery_stream(DeliveryStreamName=stream)
    assert description["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_put_records_in_process_spools_and_raises_aws_errors(aws, stream, unique, firehose):
    # Given the in-process interface the rules engine uses
    from emulator.firehose.service import FirehoseError

    account, region = "123456789012", "us-east-1"

    # When records are put, then one id comes back per record
    ids = firehose.put_records(account, region, stream, [b"a\n", b"b\n"])
    assert len(ids) == 2 and ids[0] != ids[1]

    # and errors carry AWS's codes
    with pytest.raises(FirehoseError) as unknown:
        firehose.put_records(account, region, f"nope-{unique}", [b"a"])
    assert unknown.value.code == "ResourceNotFoundException"
    with pytest.raises(FirehoseError) as too_big:
        firehose.put_records(account, region, stream, [b"x" * 1_024_001])
    assert too_big.value.code == "ValidationException"
    with pytest.raises(FirehoseError) as too_many:
        firehose.put_records(account, region, stream, [b"x"] * 501)
    assert too_many.value.code == "ValidationException"
