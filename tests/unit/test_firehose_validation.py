"""The create-time checks without a server: AWS's shape for several constraint errors, and the
prefix rules of a backup configuration (its ErrorOutputPrefix is ignored)."""

from __future__ import annotations

import pytest

from emulator.firehose import validation


def test_each_violated_constraint_is_one_clause_with_the_member_path():
    errors = validation.constraint_errors(
        "CreateDeliveryStream",
        {
            "DeliveryStreamName": "s",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::123456789012:role/r",
                "BucketARN": "arn:aws:s3:::b",
                "BufferingHints": {"SizeInMBs": 129, "IntervalInSeconds": -1},
                "S3BackupConfiguration": {
                    "RoleARN": "arn:aws:iam::123456789012:role/r",
                    "BucketARN": "arn:aws:s3:::b",
                    "CompressionFormat": "gzip",
                },
            },
        },
    )
    assert errors == [
        "Value '129' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to "
        "satisfy constraint: Member must have value less than or equal to 128",
        "Value '-1' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' "
        "failed to satisfy constraint: Member must have value greater than or equal to 0",
        "Value 'gzip' at 'extendedS3DestinationConfiguration.s3BackupConfiguration."
        "compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: "
        "[UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]",
    ]


def test_backup_prefix_rules_ignore_its_error_output_prefix():
    # An expression Prefix without ErrorOutputPrefix is fine in a backup configuration...
    validation.check_prefixes({"Prefix": "raw/!{timestamp:yyyy}/"}, backup=True)
    # ...but the rules on Prefix itself still apply
    with pytest.raises(validation.Invalid, match="Prefix can't contain"):
        validation.check_prefixes({"Prefix": "raw/!{firehose:error-output-type}/"}, backup=True)
    with pytest.raises(validation.Invalid, match="ErrorOutputPrefix cannot be null"):
        validation.check_prefixes({"Prefix": "raw/!{timestamp:yyyy}/"})


def test_static_prefixes_and_the_guide_examples_pass():
    # Examples from the s3-prefixes page
    validation.check_prefixes(
        {
            "Prefix": "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/",
            "ErrorOutputPrefix": "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM}/"
            "!{firehose:error-output-type}",
        }
    )
    validation.check_prefixes({"Prefix": "myFirehosePrefix"})
    validation.check_prefixes(
        {"ErrorOutputPrefix": "myFirehoseFailures/!{firehose:error-output-type}/"}
    )
