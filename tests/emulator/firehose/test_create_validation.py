"""CreateDeliveryStream and UpdateDestination refuse what Firehose refuses, through boto3 against
the running emulator (client-side parameter validation off, so the server is the judge)."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from firehose_helpers import ROLE, processing, processor

UNCHECKED = Config(parameter_validation=False)
LAMBDA_ARN = "arn:aws:lambda:us-east-1:123456789012:function:transform"


def _create(aws, name: str, **destination):
    config = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::validation-bucket", **destination}
    return aws("firehose", config=UNCHECKED).create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=config,
    )


def _refused(aws, name: str, **destination) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        _create(aws, name, **destination)
    error = caught.value.response["Error"]
    # Nothing was stored: the stream does not exist
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        aws("firehose").describe_delivery_stream(DeliveryStreamName=name)
    return error["Code"], error["Message"]


def _refused_with(aws, unique: str, code: str, destination: dict, message: str) -> str:
    """`destination` is refused with error `code` and a message that holds `message`."""
    found, text = _refused(aws, f"v-{unique}", **destination)
    assert found == code
    assert message in text, text
    return text


INVALID_ARGUMENT = {
    "prefix-expressions-without-error-prefix": (
        {"Prefix": "data/!{timestamp:yyyy}/"},
        "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions",
    ),
    "error-output-type-in-prefix": (
        {"Prefix": "data/!{firehose:error-output-type}/", "ErrorOutputPrefix": "e/"},
        "Prefix can't contain !{firehose:error-output-type}",
    ),
    "bang-brace-outside-expression": (
        {"Prefix": "data/!{oops/", "ErrorOutputPrefix": "e/"},
        "can only appear in !{namespace:value} expressions",
    ),
    "error-prefix-without-error-type": (
        {"Prefix": "d/!{timestamp:yyyy}/", "ErrorOutputPrefix": "e/!{timestamp:yyyy}/"},
        "ErrorOutputPrefix must include at least one instance of !{firehose:error-output-type}",
    ),
    "prefix-over-512-after-evaluation": (
        # 500 literal characters and a 4-digit year, plus the 14 of the appended yyyy/MM/dd/HH/
        {"Prefix": "p" * 500},
        "Prefix can't be greater than 512 characters after it is evaluated",
    ),
    "unknown-namespace": (
        {"Prefix": "d/!{nope:x}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}/"},
        "cannot be evaluated",
    ),
    "format-conversion-with-gzip": (
        {
            "CompressionFormat": "GZIP",
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 60},
            "DataFormatConversionConfiguration": {"Enabled": True},
        },
        "CompressionFormat must be UNCOMPRESSED when DataFormatConversionConfiguration",
    ),
    "format-conversion-small-buffer": (
        {
            "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60},
            "DataFormatConversionConfiguration": {"Enabled": True},
        },
        "can't be less than 64",
    ),
    "format-conversion-without-its-members": (
        {
            "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 60},
            "DataFormatConversionConfiguration": {"Enabled": True},
        },
        "DataFormatConversionConfiguration.InputFormatConfiguration is required when it is enabled",
    ),
    "dynamic-partitioning-needs-error-output-prefix": (
        {"DynamicPartitioningConfiguration": {"Enabled": True}},
        "ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled",
    ),
    "processor-not-implemented": (
        {
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [{"Type": "Decompression", "Parameters": []}],
            }
        },
        "Processor type Decompression is not supported: the local emulator does not "
        "implement it yet",
    ),
    "lambda-buffer-out-of-range": (
        {
            "ProcessingConfiguration": processing(
                processor("Lambda", LambdaArn=LAMBDA_ARN, BufferSizeInMBs="4")
            )
        },
        "BufferSizeInMBs is 4; it must be between 0.2 and 3",
    ),
    "backup-enabled-without-configuration": (
        {"S3BackupMode": "Enabled"},
        "S3BackupMode is Enabled without S3BackupConfiguration",
    ),
    "unknown-time-zone": (
        {"CustomTimeZone": "Mars/Olympus"},
        "CustomTimeZone 'Mars/Olympus' is not a supported time zone",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_ARGUMENT))
def test_documented_rules_are_refused_with_invalid_argument(aws, unique, case):
    _refused_with(aws, unique, "InvalidArgumentException", *INVALID_ARGUMENT[case])


def test_observed_message_for_prefix_without_error_prefix(aws, unique):
    # AWS's own wording, as reported by users (typo included)
    _, text = _refused(aws, f"v-{unique}", Prefix="x/!{timestamp:yyyy}/")
    assert text == (
        "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix "
        "cannot be null or empty when Prefix contains expressions"
    )


CONSTRAINTS = {
    "size-over-128": (
        {"BufferingHints": {"SizeInMBs": 200, "IntervalInSeconds": 60}},
        "Value '200' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to "
        "satisfy constraint: Member must have value less than or equal to 128",
    ),
    "size-under-1": (
        {"BufferingHints": {"SizeInMBs": 0, "IntervalInSeconds": 60}},
        "Member must have value greater than or equal to 1",
    ),
    "interval-over-900": (
        {"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 901}},
        "Value '901' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' "
        "failed to satisfy constraint: Member must have value less than or equal to 900",
    ),
    "unknown-compression": (
        {"CompressionFormat": "LZ4"},
        "Value 'LZ4' at 'extendedS3DestinationConfiguration.compressionFormat' failed to satisfy "
        "constraint: Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, "
        "HADOOP_SNAPPY]",
    ),
    "unknown-backup-mode": (
        {"S3BackupMode": "Sometimes"},
        "Member must satisfy enum value set: [Disabled, Enabled]",
    ),
    "unknown-processor-type": (
        {"ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "Shrink"}]}},
        "Value 'Shrink' at 'extendedS3DestinationConfiguration.processingConfiguration."
        "processors.1.member.type' failed to satisfy constraint: Member must satisfy enum value "
        "set:",
    ),
    "file-extension-without-dot": (
        {"FileExtension": "json"},
        "Value 'json' at 'extendedS3DestinationConfiguration.fileExtension' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern:",
    ),
    "file-extension-disallowed-character": (
        {"FileExtension": ".JSON/x"},
        "Member must satisfy regular expression pattern:",
    ),
    "file-extension-too-long": (
        {"FileExtension": "." + "a" * 128},
        "Member must have length less than or equal to 128",
    ),
}


@pytest.mark.parametrize("case", sorted(CONSTRAINTS))
def test_model_constraints_are_refused_with_validation_exception(aws, unique, case):
    text = _refused_with(aws, unique, "ValidationException", *CONSTRAINTS[case])
    assert text.startswith("1 validation error detected: ")


def test_valid_configuration_is_created(aws, unique):
    # Expressions with an ErrorOutputPrefix naming the error type, a custom extension, a Lambda
    # processor inside its ranges and a backup: all accepted
    _create(
        aws, f"ok-{unique}",
        Prefix="d/!{timestamp:yyyy}/!{firehose:random-string}/",
        ErrorOutputPrefix="e/!{firehose:error-output-type}/!{timestamp:yyyy}/",
        BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 0},
        CompressionFormat="HADOOP_SNAPPY",
        FileExtension=".json.snappy",
        CustomTimeZone="Asia/Tokyo",
        ProcessingConfiguration=processing(
            processor(
                "Lambda", LambdaArn=LAMBDA_ARN, BufferSizeInMBs="0.2", BufferIntervalInSeconds="900"
            )
        ),
        DataFormatConversionConfiguration={"Enabled": False},
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::validation-raw", "Prefix": "raw/",
        },
    )  # fmt: skip
    described = aws("firehose").describe_delivery_stream(DeliveryStreamName=f"ok-{unique}")
    assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"


def test_update_destination_is_checked_against_the_merged_configuration(aws, unique):
    # Given a stream with an expression Prefix and an ErrorOutputPrefix
    name = f"upd-{unique}"
    _create(
        aws,
        name,
        Prefix="d/!{timestamp:yyyy}/",
        ErrorOutputPrefix="e/!{firehose:error-output-type}/",
    )
    client = aws("firehose", config=UNCHECKED)
    description = client.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"
    ]

    def update(**changes):
        return client.update_destination(
            DeliveryStreamName=name,
            CurrentDeliveryStreamVersionId=description["VersionId"],
            DestinationId=description["Destinations"][0]["DestinationId"],
            ExtendedS3DestinationUpdate=changes,
        )

    # When an update puts the error type into the Prefix, or an out-of-range hint
    # Then each is refused and the stream keeps its version
    with pytest.raises(ClientError) as caught:
        update(Prefix="d/!{firehose:error-output-type}/")
    assert caught.value.response["Error"]["Code"] == "InvalidArgumentException"
    with pytest.raises(ClientError) as caught:
        update(BufferingHints={"SizeInMBs": 129, "IntervalInSeconds": 60})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as caught:
        update(CompressionFormat="GZIP", DataFormatConversionConfiguration={"Enabled": True})
    assert "UNCOMPRESSED" in caught.value.response["Error"]["Message"]
    after = client.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert after["VersionId"] == description["VersionId"]

    # And an update that only changes the compression is accepted: the stored ErrorOutputPrefix
    # still satisfies the rule for the stored expression Prefix
    update(CompressionFormat="ZIP")
    after = client.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
    assert after["VersionId"] != description["VersionId"]


def test_redshift_intermediate_prefix_must_not_hold_expressions(aws, unique):
    with pytest.raises(ClientError) as caught:
        aws("firehose", config=UNCHECKED).create_delivery_stream(
            DeliveryStreamName=f"rs-{unique}",
            RedshiftDestinationConfiguration={
                "RoleARN": ROLE,
                "ClusterJDBCURL": "jdbc:redshift://example.abc123.us-east-1.redshift.amazonaws.com:5439/db",
                "CopyCommand": {"DataTableName": "t"},
                "Username": "u",
                "Password": "password1",
                "S3Configuration": {
                    "RoleARN": ROLE,
                    "BucketARN": "arn:aws:s3:::validation-bucket",
                    "Prefix": "rs/!{timestamp:yyyy}/",
                },
            },
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidArgumentException"
    assert (
        "Prefix must not contain expressions when the destination is Amazon Redshift"
        in (error["Message"])
    )
