"""CreateDeliveryStream and UpdateDestination checked as Firehose checks them, before moto
stores anything (moto accepts every configuration).

Two kinds of refusal, as on AWS:
- The service model's member constraints (enum values, length and value ranges, patterns) give
  `ValidationException` in AWS's request-validation shape ("1 validation error detected: Value
  '200' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy
  constraint: Member must have value less than or equal to 128"). The constraints are read from
  botocore's copy of the model: BufferingHints (SizeInMBs 1-128, IntervalInSeconds 0-900),
  CompressionFormat, FileExtension (`^$|\\.[0-9a-z!\\-_.*'()]+`, at most 128), ProcessorType...
  (https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html,
  API_ExtendedS3DestinationConfiguration.html, API_BufferingHints.html).
- Documented rules across members give `InvalidArgumentException` (`rules()` below), and so do
  features the local data path does not implement: they are refused here rather than delivered
  in another shape than AWS would (fail closed).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import botocore.session

from emulator.firehose import conversion, keys, partitioning
from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error

OPERATIONS = ("CreateDeliveryStream", "UpdateDestination")

# Observed on AWS for a Prefix with expressions and no ErrorOutputPrefix (typo included):
# "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be
# null or empty when Prefix contains expressions". The guide lists the other prefix rules
# (https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html, "Semantic rules") but not
# AWS's message for each: they are given with the same lead-in and the rule's wording.
PREFIX_LEAD = "Ths supplied prefix(es) do not satisfy the following constraint: "
ERROR_TYPE = "!{firehose:error-output-type}"
NOT_IMPLEMENTED = "the local emulator does not implement it yet"

# Lambda processor parameters (guide "data-transformation",
# https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html): "The buffering size
# hint ranges between 0.2 MB and 3MB ... The Lambda buffering interval hint ranges between 0 and
# 900 seconds".
PROCESSOR_BUFFER_MB = (0.2, 3.0)
PROCESSOR_INTERVAL_S = (0, 900)
# Record format conversion ("record-format-conversion",
# https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html): SizeInMBs at
# least 64 and CompressionFormat UNCOMPRESSED.
CONVERSION_MIN_SIZE_MB = 64
IMPLEMENTED_PROCESSORS = ("Lambda", "AppendDelimiterToRecord")
PARTITIONING_PROCESSORS = ("MetadataExtraction", "RecordDeAggregation")


class Invalid(ValueError):
    """A configuration Firehose refuses with InvalidArgumentException."""


# Member constraints of the service model ----------------------------------------------------
@cache
def _model() -> Any:
    return botocore.session.get_session().get_service_model("firehose")


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _string_problems(value: str, shape: Any) -> list[str]:
    meta = shape.metadata
    problems = []
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        problems.append(f"Member must satisfy enum value set: [{', '.join(enum)}]")
    if "min" in meta and len(value) < meta["min"]:
        problems.append(f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and len(value) > meta["max"]:
        problems.append(f"Member must have length less than or equal to {meta['max']}")
    pattern = meta.get("pattern")
    if pattern and value:
        try:
            matched = re.fullmatch(pattern, value) is not None
        except re.error:
            matched = True  # a Java-only construct (e.g. \p{L}): left to moto
        if not matched:
            problems.append(f"Member must satisfy regular expression pattern: {pattern}")
    return problems


def _number_problems(value: float, shape: Any) -> list[str]:
    meta = shape.metadata
    problems = []
    if "min" in meta and value < meta["min"]:
        problems.append(f"Member must have value greater than or equal to {meta['min']}")
    if "max" in meta and value > meta["max"]:
        problems.append(f"Member must have value less than or equal to {meta['max']}")
    return problems


def constraint_errors(operation: str, body: dict[str, Any]) -> list[str]:
    """Each "Value '…' at '…' failed to satisfy constraint: …" clause for `body`."""
    errors: list[str] = []

    def walk(value: Any, shape: Any, path: str) -> None:
        kind = shape.type_name
        if kind == "structure" and isinstance(value, dict):
            for name, member in shape.members.items():
                if name in value and value[name] is not None:
                    walk(value[name], member, f"{path}.{_camel(name)}" if path else _camel(name))
        elif kind == "list" and isinstance(value, list):
            for index, item in enumerate(value, start=1):
                walk(item, shape.member, f"{path}.{index}.member")
        elif kind == "string" and isinstance(value, str):
            for problem in _string_problems(value, shape):
                errors.append(
                    f"Value '{value}' at '{path}' failed to satisfy constraint: {problem}"
                )
        elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
            if isinstance(value, bool):
                return
            for problem in _number_problems(value, shape):
                errors.append(
                    f"Value '{_value_text(value)}' at '{path}' failed to satisfy constraint: "
                    f"{problem}"
                )

    walk(body, _model().operation_model(operation).input_shape, "")
    return errors


# Documented rules ---------------------------------------------------------------------------
def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _enabled(config: dict[str, Any] | None, default: bool) -> bool:
    if not isinstance(config, dict):
        return False
    return _truthy(config.get("Enabled", default))


def _check_expressions(prefix: str, member: str) -> None:
    # "The sequence !{ can only appear in !{namespace:value} expressions."
    if "!{" in keys._EXPRESSION.sub("", prefix):
        raise Invalid(
            f"{PREFIX_LEAD}The sequence '!{{' can only appear in !{{namespace:value}} "
            f"expressions ({member}: {prefix!r})"
        )


def _evaluate(prefix: str, member: str, when: datetime, error_type: str | None = None) -> None:
    """Evaluate once now: the 512-character rule, and fail closed on what cannot be evaluated."""
    try:
        if error_type is None:
            evaluated = keys.destination_prefix(prefix, when)
        else:
            evaluated = keys.evaluate(prefix, when, error_output_type=error_type)
    except keys.PrefixError as exc:
        if "evaluated prefix is" in str(exc):
            # "Neither Prefix nor ErrorOutputPrefix can be greater than 512 characters after
            # they're evaluated."
            raise Invalid(
                f"{PREFIX_LEAD}{member} can't be greater than {keys.MAX_EVALUATED_PREFIX} "
                f"characters after it is evaluated ({prefix!r})"
            ) from exc
        # AWS's message for an unknown namespace or pattern is not documented.
        raise Invalid(f"{member} {prefix!r} cannot be evaluated: {exc}") from exc
    if len(evaluated) > keys.MAX_EVALUATED_PREFIX:
        raise Invalid(
            f"{PREFIX_LEAD}{member} can't be greater than {keys.MAX_EVALUATED_PREFIX} characters "
            f"after it is evaluated ({prefix!r})"
        )


def check_prefixes(config: dict[str, Any], *, backup: bool = False) -> None:
    """The "Semantic rules" of the s3-prefixes page for one S3 configuration.

    In a backup configuration "the Prefix is used for backing up the raw data, whereas the
    ErrorOutputPrefix is ignored": only the rules on Prefix apply there."""
    prefix = config.get("Prefix") or ""
    error_prefix = config.get("ErrorOutputPrefix") or ""
    when = datetime.now(UTC)
    _check_expressions(prefix, "Prefix")
    if ERROR_TYPE in prefix:
        raise Invalid(f"{PREFIX_LEAD}Prefix can't contain {ERROR_TYPE}")
    if not backup:
        if keys.has_expressions(prefix) and not error_prefix:
            raise Invalid(
                f"{PREFIX_LEAD}ErrorOutputPrefix cannot be null or empty when Prefix contains "
                "expressions"
            )
        _check_expressions(error_prefix, "ErrorOutputPrefix")
        if keys.has_expressions(error_prefix) and ERROR_TYPE not in error_prefix:
            raise Invalid(
                f"{PREFIX_LEAD}ErrorOutputPrefix must include at least one instance of "
                f"{ERROR_TYPE} when it contains expressions"
            )
        if error_prefix:
            if keys.has_expressions(error_prefix):
                _evaluate(error_prefix, "ErrorOutputPrefix", when, "processing-failed")
            else:
                _evaluate(error_prefix, "ErrorOutputPrefix", when)
    if _enabled(config.get("DynamicPartitioningConfiguration"), default=False):
        # Partition keys are known per record; the rest of the prefix is checked now.
        prefix = partitioning.without_keys(prefix)
    _evaluate(prefix, "Prefix", when)


def check_time_zone(config: dict[str, Any]) -> None:
    zone = config.get("CustomTimeZone")
    if not zone or zone == "UTC":
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        # The supported zones are listed on
        # https://docs.aws.amazon.com/firehose/latest/dev/s3-object-name.html; AWS's message for
        # another one is not documented.
        raise Invalid(f"CustomTimeZone {zone!r} is not a supported time zone") from exc


def _number(text: str, name: str, integer: bool) -> float:
    try:
        return int(text) if integer else float(text)
    except (TypeError, ValueError) as exc:
        kind = "an integer" if integer else "a number"
        raise Invalid(f"Processor parameter {name} must be {kind}, got {text!r}") from exc


def check_processing(config: dict[str, Any]) -> None:
    processing = config.get("ProcessingConfiguration")
    if not _enabled(processing, default=False):
        return
    processors = processing.get("Processors") or []
    types = [p.get("Type") for p in processors if isinstance(p, dict)]
    partitioned = _enabled(config.get("DynamicPartitioningConfiguration"), default=False)
    implemented = IMPLEMENTED_PROCESSORS + (PARTITIONING_PROCESSORS if partitioned else ())
    for processor in processors:
        kind = processor.get("Type")
        if kind in PARTITIONING_PROCESSORS and not partitioned:
            raise Invalid(
                f"Processor type {kind} is only used with dynamic partitioning: enable "
                "DynamicPartitioningConfiguration or remove the processor"
            )
        if kind not in implemented:
            raise Invalid(
                f"Processor type {kind} is not supported: {NOT_IMPLEMENTED} (it implements "
                f"{', '.join(implemented)})"
            )
        params = {
            p.get("ParameterName"): p.get("ParameterValue")
            for p in processor.get("Parameters") or []
        }
        if kind != "Lambda":
            continue
        if not params.get("LambdaArn"):
            raise Invalid("A Lambda processor needs the parameter LambdaArn")
        if "BufferSizeInMBs" in params:
            size = _number(params["BufferSizeInMBs"], "BufferSizeInMBs", integer=False)
            low, high = PROCESSOR_BUFFER_MB
            if not low <= size <= high:
                raise Invalid(
                    f"Processor parameter BufferSizeInMBs is {params['BufferSizeInMBs']}; it "
                    f"must be between {low} and {high:g}"
                )
        if "BufferIntervalInSeconds" in params:
            interval = _number(
                params["BufferIntervalInSeconds"], "BufferIntervalInSeconds", integer=True
            )
            low, high = PROCESSOR_INTERVAL_S
            if not low <= interval <= high:
                raise Invalid(
                    "Processor parameter BufferIntervalInSeconds is "
                    f"{params['BufferIntervalInSeconds']}; it must be between {low} and {high}"
                )
        if "NumberOfRetries" in params:
            if _number(params["NumberOfRetries"], "NumberOfRetries", integer=True) < 0:
                raise Invalid("Processor parameter NumberOfRetries must not be negative")
    if "Lambda" in types and "AppendDelimiterToRecord" in types and not partitioned:
        raise Invalid(
            "A Lambda processor combined with AppendDelimiterToRecord is not supported: "
            f"{NOT_IMPLEMENTED}"
        )


def check_features(config: dict[str, Any]) -> None:
    config_member = config.get("DataFormatConversionConfiguration")
    # DataFormatConversionConfiguration.Enabled "Defaults to true".
    if conversion.enabled(config_member):
        compression = config.get("CompressionFormat") or "UNCOMPRESSED"
        if compression != "UNCOMPRESSED":
            raise Invalid(
                "CompressionFormat must be UNCOMPRESSED when DataFormatConversionConfiguration "
                f"is enabled (got {compression}); the serializer compresses the data"
            )
        size = (config.get("BufferingHints") or {}).get("SizeInMBs")
        if size is not None and size < CONVERSION_MIN_SIZE_MB:
            raise Invalid(
                f"BufferingHints.SizeInMBs is {size}; it can't be less than "
                f"{CONVERSION_MIN_SIZE_MB} when DataFormatConversionConfiguration is enabled"
            )
        problems = conversion.config_problems(config_member)
        if problems:
            raise Invalid("; ".join(problems))
    check_dynamic_partitioning(config)


def check_dynamic_partitioning(config: dict[str, Any]) -> None:
    """Dynamic partitioning's create-time rules (developer guide pages cited below)."""
    prefix = config.get("Prefix") or ""
    used = partitioning.used_keys(prefix)
    processing = config.get("ProcessingConfiguration")
    processors: dict[str, dict[str, Any]] = {}
    if _enabled(processing, default=False):
        for proc in processing.get("Processors") or []:
            if isinstance(proc, dict):
                processors[str(proc.get("Type"))] = {
                    p.get("ParameterName"): p.get("ParameterValue")
                    for p in proc.get("Parameters") or []
                    if isinstance(p, dict)
                }
    if not _enabled(config.get("DynamicPartitioningConfiguration"), default=False):
        if used[partitioning.QUERY_NAMESPACE] or used[partitioning.LAMBDA_NAMESPACE]:
            raise Invalid(
                f"{PREFIX_LEAD}Prefix can only use !{{partitionKeyFromQuery:…}} and "
                "!{partitionKeyFromLambda:…} when DynamicPartitioningConfiguration is enabled"
            )
        return
    # https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-error-handling.html:
    # "You must specify an S3 error bucket prefix ... if you want to enable dynamic partitioning"
    if not config.get("ErrorOutputPrefix"):
        raise Invalid(
            "ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled: "
            "records whose partition keys cannot be extracted are delivered there"
        )
    # https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-s3bucketprefix.html:
    # "if you choose to enable dynamic partitioning, you must specify the S3 bucket prefixes"
    if not prefix:
        raise Invalid("Prefix is required when DynamicPartitioningConfiguration is enabled")
    # https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-partitioning-keys.html:
    # "you must configure at least one of these methods" (inline parsing or a Lambda function).
    if "MetadataExtraction" not in processors and "Lambda" not in processors:
        raise Invalid(
            "DynamicPartitioningConfiguration is enabled without a way to extract partition "
            "keys: add a MetadataExtraction processor (jq) or a Lambda processor"
        )
    if used[partitioning.QUERY_NAMESPACE] and "MetadataExtraction" not in processors:
        raise Invalid(
            f"{PREFIX_LEAD}Prefix uses !{{partitionKeyFromQuery:…}} but no MetadataExtraction "
            "processor defines partition keys"
        )
    if used[partitioning.LAMBDA_NAMESPACE] and "Lambda" not in processors:
        raise Invalid(
            f"{PREFIX_LEAD}Prefix uses !{{partitionKeyFromLambda:…}} but there is no Lambda "
            "processor to return partition keys"
        )
    # https://docs.aws.amazon.com/firehose/latest/dev/buffering.html: "Zero buffering feature is
    # not available for dynamic partitioning."
    if (config.get("BufferingHints") or {}).get("IntervalInSeconds") == 0:
        raise Invalid(
            "BufferingHints.IntervalInSeconds can't be 0 when DynamicPartitioningConfiguration "
            "is enabled: zero buffering is not available for dynamic partitioning"
        )
    extraction = processors.get("MetadataExtraction")
    if extraction is not None:
        engine = extraction.get("JsonParsingEngine")
        if engine != partitioning.JQ_ENGINE:
            raise Invalid(
                f"MetadataExtraction parameter JsonParsingEngine is {engine!r}; the only "
                f"supported engine is {partitioning.JQ_ENGINE}"
            )
        query = extraction.get("MetadataExtractionQuery")
        if not query:
            raise Invalid("A MetadataExtraction processor needs MetadataExtractionQuery")
        try:
            partitioning.compile_query(query)
        except ValueError as exc:
            raise Invalid(
                f"MetadataExtractionQuery {query!r} is not a valid jq query: {exc}"
            ) from exc
    deaggregation = processors.get("RecordDeAggregation")
    if deaggregation is not None:
        kind = deaggregation.get("SubRecordType") or "JSON"
        if kind not in ("JSON", "DELIMITED"):
            raise Invalid(f"RecordDeAggregation SubRecordType {kind!r} must be JSON or DELIMITED")
        if kind == "DELIMITED":
            try:
                if not partitioning.decode_delimiter(deaggregation.get("Delimiter") or ""):
                    raise partitioning.PartitioningError("empty")
            except partitioning.PartitioningError as exc:
                raise Invalid(
                    "RecordDeAggregation with SubRecordType DELIMITED needs a Delimiter, "
                    "base64-encoded (#### is IyMjIw==)"
                ) from exc


def check_partitioning_update(stored: dict[str, Any], update: dict[str, Any]) -> None:
    """https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-enable.html: dynamic
    partitioning can only be enabled when the stream is created."""
    was = _enabled(stored.get("DynamicPartitioningConfiguration"), default=False)
    wanted = _enabled(update.get("DynamicPartitioningConfiguration"), default=False)
    if wanted and not was:
        raise Invalid(
            "You can't enable dynamic partitioning on an existing Firehose stream that does not "
            "have it enabled: create a new stream with DynamicPartitioningConfiguration"
        )


def check_s3(config: dict[str, Any], member: str, *, extended: bool) -> None:
    """Every rule for an (Extended)S3 destination configuration, merged for an update.

    Not enforced: API_BufferingHints says that giving one of SizeInMBs / IntervalInSeconds
    requires the other, but whether AWS refuses one alone is not documented; the missing one
    takes its default here."""
    check_prefixes(config)
    check_time_zone(config)
    if not extended:
        return
    check_features(config)
    check_processing(config)
    if config.get("S3BackupMode") == "Enabled":
        backup = config.get("S3BackupConfiguration") or config.get("S3BackupDescription")
        if not backup:
            raise Invalid(
                f"{member}.S3BackupMode is Enabled without S3BackupConfiguration: give the "
                "backup bucket"
            )
        check_prefixes(backup, backup=True)
        check_time_zone(backup)


def check_redshift(s3_config: dict[str, Any]) -> None:
    # s3-prefixes: "If the destination is Amazon Redshift, Prefix must not contain expressions
    # and ErrorOutputPrefix must be null."
    if keys.has_expressions(s3_config.get("Prefix")):
        raise Invalid(
            f"{PREFIX_LEAD}Prefix must not contain expressions when the destination is "
            "Amazon Redshift"
        )
    if s3_config.get("ErrorOutputPrefix"):
        raise Invalid(
            f"{PREFIX_LEAD}ErrorOutputPrefix must be null when the destination is Amazon Redshift"
        )
    # API_S3DestinationUpdate: "The compression formats SNAPPY or ZIP cannot be specified for
    # Amazon Redshift destinations".
    compression = s3_config.get("CompressionFormat")
    if compression in ("Snappy", "ZIP", "HADOOP_SNAPPY"):
        raise Invalid(
            f"CompressionFormat {compression} cannot be specified for Amazon Redshift "
            "destinations: the Redshift COPY command does not read it"
        )


def _current_destination(request: AwsRequest, name: str) -> tuple[str, dict[str, Any]] | None:
    from moto.firehose.models import firehose_backends

    try:
        stream = firehose_backends[request.account_id][request.region].delivery_streams.get(name)
    except KeyError:
        return None
    if stream is None or not stream.destinations:
        return None
    destination = stream.destinations[0]
    for kind in ("ExtendedS3", "S3", "Redshift"):
        if kind in destination:
            return kind, dict(destination[kind])
    return None


def _merged_update(request: AwsRequest, body: dict[str, Any]) -> list[tuple[str, dict, str]]:
    """(kind, configuration as it will be after the update, member) for UpdateDestination."""
    current = _current_destination(request, body.get("DeliveryStreamName", ""))
    if current is None:
        return []  # moto answers ResourceNotFoundException
    kind, stored = current
    out: list[tuple[str, dict, str]] = []
    for member, update_kind in (
        ("ExtendedS3DestinationUpdate", "ExtendedS3"),
        ("S3DestinationUpdate", "S3"),
    ):
        update = body.get(member)
        if not isinstance(update, dict):
            continue
        # An S3DestinationUpdate may change an ExtendedS3 destination's common members.
        base = stored if kind in ("ExtendedS3", "S3") else {}
        merged = {**base, **update}
        if "S3BackupUpdate" in update:
            old = base.get("S3BackupDescription") or base.get("S3BackupConfiguration") or {}
            merged["S3BackupConfiguration"] = {**old, **update["S3BackupUpdate"]}
            merged.pop("S3BackupDescription", None)
        if update_kind == "ExtendedS3":
            check_partitioning_update(base, update)
        # S3BackupMode: "If backup is enabled, you can't update the Firehose stream to disable
        # it." (API_ExtendedS3DestinationUpdate)
        if base.get("S3BackupMode") == "Enabled" and update.get("S3BackupMode") == "Disabled":
            raise Invalid(
                "S3BackupMode can't be updated from Enabled to Disabled: once source record "
                "backup is enabled it stays enabled"
            )
        out.append((update_kind, merged, member))
    redshift = body.get("RedshiftDestinationUpdate")
    if isinstance(redshift, dict) and isinstance(redshift.get("S3Update"), dict):
        base = stored.get("S3Configuration", {}) if kind == "Redshift" else {}
        out.append(("Redshift", {**base, **redshift["S3Update"]}, "RedshiftDestinationUpdate"))
    return out


def rules(request: AwsRequest, body: dict[str, Any]) -> None:
    """Raise Invalid for a configuration Firehose refuses or the emulator cannot deliver."""
    if request.operation == "CreateDeliveryStream":
        targets: list[tuple[str, dict, str]] = []
        for member, kind in (
            ("ExtendedS3DestinationConfiguration", "ExtendedS3"),
            ("S3DestinationConfiguration", "S3"),
        ):
            if isinstance(body.get(member), dict):
                targets.append((kind, body[member], member))
        redshift = body.get("RedshiftDestinationConfiguration")
        if isinstance(redshift, dict) and isinstance(redshift.get("S3Configuration"), dict):
            targets.append(("Redshift", redshift["S3Configuration"], "RedshiftDestination"))
    else:
        targets = _merged_update(request, body)
    for kind, config, member in targets:
        if kind == "Redshift":
            check_redshift(config)
        else:
            check_s3(config, member, extended=kind == "ExtendedS3")


def check(request: AwsRequest) -> AwsResponse | None:
    """The gateway handler: an error response, or None to let moto store the configuration."""
    try:
        body = request.json()
    except ValueError:
        return None  # moto answers a malformed body itself
    if not isinstance(body, dict):
        return None
    errors = constraint_errors(request.operation or "", body)
    if errors:
        noun = "validation error" if len(errors) == 1 else "validation errors"
        return json_error(
            "ValidationException", f"{len(errors)} {noun} detected: " + "; ".join(errors)
        )
    try:
        rules(request, body)
    except Invalid as exc:
        return json_error("InvalidArgumentException", str(exc))
    return None


def register(gateway: Gateway) -> None:
    for operation in OPERATIONS:
        gateway.on("firehose", operation, check)
