"""Delivery stream names are checked against Firehose's pattern and lengths before moto sees
them, and the spool path is built from checked parts only."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError


@pytest.mark.parametrize("name", ["../escaped-stream", "a/b", "x" * 65, ""])
def test_create_delivery_stream_refuses_a_name_outside_the_pattern(aws, firehose, name):
    # Given a bucket
    aws("s3").create_bucket(Bucket="names-check-bucket")

    # When a delivery stream is created with a name Firehose does not allow
    with pytest.raises(ClientError) as raised:
        aws("firehose", config=Config(parameter_validation=False)).create_delivery_stream(
            DeliveryStreamName=name,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
                "BucketARN": "arn:aws:s3:::names-check-bucket",
            },
        )

    # Then Firehose's ValidationException names the constraint
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(f"1 validation error detected: Value '{name}' at ")
    assert "'deliveryStreamName' failed to satisfy constraint: Member must" in error["Message"]
    # and the stream does not exist, so no spool is ever opened for it
    assert name not in aws("firehose").list_delivery_streams()["DeliveryStreamNames"]


def test_put_record_checks_the_stream_name(aws):
    # When a record is put to a stream whose name holds "/"
    with pytest.raises(ClientError) as raised:
        aws("firehose").put_record(DeliveryStreamName="../../x", Record={"Data": b"x"})

    # Then it is refused before any spool is opened
    assert raised.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("account", "region", "name"),
    [("123456789012", "us-east-1", "../x"), ("123456789012", "..", "x"), ("..", "us-east-1", "x")],
)
def test_spool_path_refuses_unsafe_parts(tmp_path, account, region, name):
    from emulator.firehose.names import UnsafeName, spool_path

    # When a spool path is asked for with a part that could leave the root
    # Then it is refused
    with pytest.raises(UnsafeName):
        spool_path(tmp_path, account, region, name)


def test_dot_names_stay_file_names(tmp_path):
    from emulator.firehose.names import spool_path

    # "." and ".." are valid stream names: they stay inside the region directory
    for name in (".", ".."):
        path = spool_path(tmp_path, "123456789012", "us-east-1", name)
        assert path.parent == tmp_path / "123456789012" / "us-east-1"
        assert path.resolve().parent == path.parent.resolve()
