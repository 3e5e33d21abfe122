"""Reading a stream's configuration as moto stores it (API or CloudFormation shapes), and the
object encodings."""

from __future__ import annotations

import gzip
from types import SimpleNamespace

import pytest

from emulator.firehose import config
from emulator.firehose.s3 import UnsupportedCompression, encode


def moto_stream(destination: dict, **extra) -> SimpleNamespace:
    return SimpleNamespace(
        delivery_stream_name="s",
        delivery_stream_arn="arn:aws:firehose:us-east-1:123456789012:deliverystream/s",
        delivery_stream_type="DirectPut",
        version_id="2",
        destinations=[{"destination_id": "destinationId-000000000001", **destination}],
        delivery_stream_encryption_configuration=extra.get("encryption"),
    )


def test_extended_s3_with_processor_and_backup_as_cloudformation_stores_it():
    # CloudFormation passes scalars as strings ("true", "60").
    stream = moto_stream(
        {
            "ExtendedS3": {
                "BucketARN": "arn:aws:s3:::parsed",
                "Prefix": "dev/data/",
                "ErrorOutputPrefix": "dev/errors/!{firehose:error-output-type}/",
                "BufferingHints": {"SizeInMBs": "2", "IntervalInSeconds": "60"},
                "CompressionFormat": "GZIP",
                "ProcessingConfiguration": {
                    "Enabled": "true",
                    "Processors": [
                        {
                            "Type": "Lambda",
                            "Parameters": [
                                {"ParameterName": "LambdaArn", "ParameterValue": "arn:fn"},
                                {"ParameterName": "BufferSizeInMBs", "ParameterValue": "0.5"},
                            ],
                        }
                    ],
                },
                "S3BackupMode": "Enabled",
                "S3BackupDescription": {"BucketARN": "arn:aws:s3:::raw", "Prefix": "dev/raw/"},
            }
        },
        encryption={"Status": "ENABLED"},
    )

    cfg = config.from_model("123456789012", "us-east-1", stream)

    assert cfg.version == "2" and cfg.encrypted
    assert cfg.destination.bucket == "parsed" and cfg.destination.extension == ".gz"
    assert cfg.destination.buffering == config.BufferingHints(2 * config.MIB, 60)
    (proc,) = cfg.processors
    assert proc.lambda_arn == "arn:fn" and proc.retries == 3
    assert proc.buffer_bytes == config.MIB // 2
    assert cfg.backup.bucket == "raw" and cfg.backup.compression == "UNCOMPRESSED"
    assert cfg.backup.buffering == config.BufferingHints()  # 5 MiB / 300 s


def test_file_extension_overrides_the_compression_extension():
    stream = moto_stream(
        {"ExtendedS3": {"BucketARN": "arn:aws:s3:::b", "CompressionFormat": "GZIP",
                        "FileExtension": ".json.gz"}}
    )  # fmt: skip
    assert config.from_model("1", "r", stream).destination.extension == ".json.gz"


def test_disabled_processing_and_other_destinations():
    stream = moto_stream(
        {"ExtendedS3": {"BucketARN": "arn:aws:s3:::b",
                        "ProcessingConfiguration": {"Enabled": False, "Processors": []}}}
    )  # fmt: skip
    assert config.from_model("1", "r", stream).processors == ()
    http = config.from_model("1", "r", moto_stream({"HttpEndpoint": {"Url": "https://x"}}))
    assert http.destination is None and http.destination_type == "HttpEndpoint"


def test_encodings():
    assert encode(b"abc", "UNCOMPRESSED") == (b"abc", None)
    body, content_encoding = encode(b"abc", "GZIP")
    assert gzip.decompress(body) == b"abc" and content_encoding == "gzip"
    with pytest.raises(UnsupportedCompression, match="LZ4"):
        encode(b"abc", "LZ4")
