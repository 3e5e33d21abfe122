"""A delivery stream's configuration, read from moto's control plane at call time.

moto keeps what CreateDeliveryStream / UpdateDestination (or CloudFormation) stored in
`firehose_backends[account][region].delivery_streams[name]`: `destinations[0]["ExtendedS3"]`
(or `["S3"]`) holds the request's destination configuration, with `S3BackupConfiguration`
renamed to `S3BackupDescription`; `version_id` counts configuration changes. Reading it on every
delivery means streams created by the API and by CloudFormation both work, and an update takes
effect for the next object, as on AWS.

Defaults (API reference, BufferingHints and ProcessorParameter): 5 MiB / 300 s for delivery;
for a Lambda processor NumberOfRetries 3, BufferSizeInMBs 1 (0.2–3), BufferIntervalInSeconds 60.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.firehose import conversion as conversion_config

MIB = 1024 * 1024
DEFAULT_BUFFER_MB = 5
DEFAULT_BUFFER_INTERVAL_S = 300
DEFAULT_PROCESSOR_RETRIES = 3
DEFAULT_PROCESSOR_BUFFER_MB = 1.0
DEFAULT_PROCESSOR_INTERVAL_S = 60

# Extensions Firehose appends per CompressionFormat (guide: "s3-object-name",
# https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html); HADOOP_SNAPPY objects
# also end in ".snappy" on AWS (observed; see compression.py).
COMPRESSION_EXTENSIONS = {
    "UNCOMPRESSED": "",
    "GZIP": ".gz",
    "ZIP": ".zip",
    "Snappy": ".snappy",
    "HADOOP_SNAPPY": ".snappy",
}


class StreamNotFound(LookupError):
    pass


@dataclass(frozen=True)
class BufferingHints:
    size_bytes: int = DEFAULT_BUFFER_MB * MIB
    interval_s: float = DEFAULT_BUFFER_INTERVAL_S

    @classmethod
    def from_config(cls, hints: dict[str, Any] | None) -> BufferingHints:
        hints = hints or {}
        size_mb = float(hints.get("SizeInMBs") or DEFAULT_BUFFER_MB)
        interval = hints.get("IntervalInSeconds")
        return cls(
            size_bytes=int(size_mb * MIB),
            interval_s=float(DEFAULT_BUFFER_INTERVAL_S if interval is None else interval),
        )


@dataclass(frozen=True)
class S3Target:
    """Where and how one kind of object is written (destination or backup)."""

    bucket: str
    prefix: str
    error_output_prefix: str | None
    buffering: BufferingHints
    compression: str
    extension: str
    time_zone: str | None = None
    role_arn: str = ""  # the role Firehose writes this target with (its RoleARN)


@dataclass(frozen=True)
class Processor:
    type: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def lambda_arn(self) -> str:
        return self.parameters.get("LambdaArn", "")

    @property
    def role_arn(self) -> str:
        """The processor's own RoleArn parameter; empty: the destination's role is used."""
        return self.parameters.get("RoleArn", "")

    @property
    def retries(self) -> int:
        return int(self.parameters.get("NumberOfRetries", DEFAULT_PROCESSOR_RETRIES))

    @property
    def buffer_bytes(self) -> int:
        return int(float(self.parameters.get("BufferSizeInMBs", DEFAULT_PROCESSOR_BUFFER_MB)) * MIB)


@dataclass(frozen=True)
class StreamConfig:
    account_id: str
    region: str
    name: str
    arn: str
    version: str
    stream_type: str
    destination_type: str  # "ExtendedS3", "S3", or another type we do not deliver to
    destination: S3Target | None
    processors: tuple[Processor, ...] = ()
    backup: S3Target | None = None
    encrypted: bool = False
    # CloudWatchLoggingOptions of the destination: (log group, log stream) when enabled.
    logging: tuple[str, str] | None = None
    # DynamicPartitioningConfiguration.Enabled (ExtendedS3 only): see partitioned.py.
    dynamic_partitioning: bool = False
    # DataFormatConversionConfiguration when enabled (ExtendedS3 only): see conversion.py.
    conversion: conversion_config.Conversion | None = None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _bucket_name(bucket_arn: str) -> str:
    return bucket_arn.split(":::")[-1] if ":::" in bucket_arn else bucket_arn.split(":")[-1]


def _target(config: dict[str, Any], converted: str = "") -> S3Target:
    compression = config.get("CompressionFormat") or "UNCOMPRESSED"
    # FileExtension replaces the default extension (ExtendedS3 only): the compression's, or
    # with format conversion `.parquet` / `.orc` (`converted`).
    extension = config.get("FileExtension")
    if extension is None:
        extension = converted or COMPRESSION_EXTENSIONS.get(compression, "")
    return S3Target(
        bucket=_bucket_name(config.get("BucketARN", "")),
        prefix=config.get("Prefix") or "",
        error_output_prefix=config.get("ErrorOutputPrefix") or None,
        buffering=BufferingHints.from_config(config.get("BufferingHints")),
        compression=compression,
        extension=extension,
        time_zone=config.get("CustomTimeZone") or None,
        role_arn=config.get("RoleARN") or "",
    )


def _processors(config: dict[str, Any]) -> tuple[Processor, ...]:
    processing = config.get("ProcessingConfiguration") or {}
    if not _truthy(processing.get("Enabled", False)):
        return ()
    found = []
    for proc in processing.get("Processors") or []:
        params = {p["ParameterName"]: str(p["ParameterValue"]) for p in proc.get("Parameters", [])}
        found.append(Processor(proc.get("Type", ""), params))
    return tuple(found)


def from_model(account_id: str, region: str, stream: Any) -> StreamConfig:
    """Build a StreamConfig from moto's DeliveryStream model."""
    destination = stream.destinations[0] if stream.destinations else {}
    if "ExtendedS3" in destination:
        dest_type, dest = "ExtendedS3", destination["ExtendedS3"]
    elif "S3" in destination:
        dest_type, dest = "S3", destination["S3"]
    else:
        names = [k for k in destination if k != "destination_id"]
        return StreamConfig(
            account_id, region, stream.delivery_stream_name, stream.delivery_stream_arn,
            str(stream.version_id), stream.delivery_stream_type, names[0] if names else "None",
            None,
        )  # fmt: skip
    backup = None
    if dest_type == "ExtendedS3" and dest.get("S3BackupMode") == "Enabled":
        backup_config = dest.get("S3BackupDescription") or dest.get("S3BackupConfiguration")
        if backup_config:
            backup = _target(backup_config)
    logging = None
    options = dest.get("CloudWatchLoggingOptions") or {}
    if _truthy(options.get("Enabled", False)) and options.get("LogGroupName"):
        logging = (options["LogGroupName"], options.get("LogStreamName") or "DestinationDelivery")
    encryption = stream.delivery_stream_encryption_configuration or {}
    conversion = None
    if dest_type == "ExtendedS3":
        conversion = conversion_config.parse(
            dest.get("DataFormatConversionConfiguration"), account_id, region,
            dest.get("RoleARN") or "",
        )  # fmt: skip
    return StreamConfig(
        account_id=account_id,
        region=region,
        name=stream.delivery_stream_name,
        arn=stream.delivery_stream_arn,
        version=str(stream.version_id),
        stream_type=stream.delivery_stream_type,
        destination_type=dest_type,
        destination=_target(dest, conversion.extension if conversion else ""),
        processors=_processors(dest) if dest_type == "ExtendedS3" else (),
        backup=backup,
        encrypted=encryption.get("Status") == "ENABLED",
        logging=logging,
        dynamic_partitioning=dest_type == "ExtendedS3"
        and _truthy((dest.get("DynamicPartitioningConfiguration") or {}).get("Enabled", False)),
        conversion=conversion,
    )


def load(account_id: str, region: str, name: str) -> StreamConfig:
    """The stream's configuration now; StreamNotFound if moto does not know it."""
    from moto.firehose.models import firehose_backends

    try:
        stream = firehose_backends[account_id][region].delivery_streams.get(name)
    except KeyError:
        stream = None
    if stream is None:
        raise StreamNotFound(f"Firehose {name} under account {account_id} not found.")
    return from_model(account_id, region, stream)
