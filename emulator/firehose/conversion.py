"""Record format conversion: JSON records to Apache Parquet or ORC with a Glue table's schema.

Guide, "Convert input data format" (https://docs.aws.amazon.com/firehose/latest/dev/
record-format-conversion.html): a deserializer reads the JSON (OpenX JSON SerDe or Apache Hive
JSON SerDe), the columns come from the AWS Glue Data Catalog table of SchemaConfiguration, and
a serializer writes Parquet or ORC (here with pyarrow). One record may hold several JSON
documents (`{"a":1}{"a":2}`), each a row; a JSON array is not valid input. A record that can't
be deserialized goes to the error output `format-conversion-failed` with the documented fields
("record-format-conversion-error-handling"). Objects end in `.parquet` / `.orc` unless
FileExtension says otherwise ("s3-object-name").

Firehose reads the table with the stream's role (SchemaConfiguration.RoleARN, else the
destination's): `glue:GetTable`, `glue:GetTableVersion`, `glue:GetTableVersions` (guide,
"controlling-access", https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html).
A table that can't be read keeps the records spooled and retried, never delivered otherwise.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from emulator.firehose.s3 import DeliveryError

ERROR_OUTPUT_TYPE = "format-conversion-failed"
MALFORMED = "DataFormatConversion.MalformedData"
GLUE_ACTIONS = ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")
# API_ParquetSerDe: Compression SNAPPY (default), GZIP, UNCOMPRESSED; API_OrcSerDe: SNAPPY
# (default), ZLIB, NONE.
PARQUET_CODECS = {"SNAPPY": "snappy", "GZIP": "gzip", "UNCOMPRESSED": "none"}
ORC_CODECS = {"SNAPPY": "snappy", "ZLIB": "zlib", "NONE": "uncompressed"}
EXTENSIONS = {"Parquet": ".parquet", "ORC": ".orc"}
# API_ParquetSerDe: PageSizeBytes default 1 MiB; API_OrcSerDe: StripeSizeBytes default 64 MiB,
# RowIndexStride default 10,000.
DEFAULT_PAGE_BYTES = 1024 * 1024
DEFAULT_STRIPE_BYTES = 64 * 1024 * 1024
DEFAULT_ROW_INDEX_STRIDE = 10_000


class SchemaError(DeliveryError):
    """The Glue table can't be read or used; the records wait (code in Firehose's terms)."""


class RecordError(ValueError):
    """One record that the deserializer can't turn into rows of the table."""


# Configuration --------------------------------------------------------------------------------
def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value is True or str(value).lower() == "true"


@dataclass(frozen=True)
class Conversion:
    """DataFormatConversionConfiguration, as delivery uses it."""

    deserializer: str  # "OpenX" or "Hive"
    output: str  # "Parquet" or "ORC"
    database: str
    table: str
    region: str
    catalog_id: str
    version_id: str
    role_arn: str
    case_insensitive: bool = True
    key_mappings: dict[str, str] = field(default_factory=dict)
    dots_to_underscores: bool = False
    timestamp_formats: tuple[str, ...] = ()
    serde: dict[str, Any] = field(default_factory=dict)  # ParquetSerDe / OrcSerDe members

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.output]


def enabled(config: dict[str, Any] | None) -> bool:
    """DataFormatConversionConfiguration.Enabled "Defaults to true" (when the member is given)."""
    return isinstance(config, dict) and _truthy(config.get("Enabled"), True)


def parse(
    config: dict[str, Any] | None, account_id: str, region: str, role_arn: str
) -> Conversion | None:
    """The conversion of a destination configuration, or None when it is off."""
    if not enabled(config):
        return None
    assert config is not None
    deserializer = (config.get("InputFormatConfiguration") or {}).get("Deserializer") or {}
    serializer = (config.get("OutputFormatConfiguration") or {}).get("Serializer") or {}
    schema = config.get("SchemaConfiguration") or {}
    openx = deserializer.get("OpenXJsonSerDe")
    hive = deserializer.get("HiveJsonSerDe")
    kind = "OpenX" if openx is not None else "Hive"
    output = "Parquet" if serializer.get("ParquetSerDe") is not None else "ORC"
    openx = openx or {}
    return Conversion(
        deserializer=kind,
        output=output,
        database=schema.get("DatabaseName", ""),
        table=schema.get("TableName", ""),
        region=schema.get("Region") or region,
        catalog_id=schema.get("CatalogId") or account_id,
        version_id=str(schema.get("VersionId") or "LATEST"),
        role_arn=schema.get("RoleARN") or role_arn,
        case_insensitive=_truthy(openx.get("CaseInsensitive"), True),
        key_mappings=dict(openx.get("ColumnToJsonKeyMappings") or {}),
        dots_to_underscores=_truthy(openx.get("ConvertDotsInJsonKeysToUnderscores"), False),
        timestamp_formats=tuple((hive or {}).get("TimestampFormats") or ()),
        serde=dict(serializer.get("ParquetSerDe") or serializer.get("OrcSerDe") or {}),
    )


def config_problems(config: dict[str, Any]) -> list[str]:
    """What CreateDeliveryStream refuses in an enabled DataFormatConversionConfiguration
    (API_DataFormatConversionConfiguration: the three members "required if Enabled is set to
    true"; API_Deserializer / API_Serializer: exactly one of the two)."""
    problems = []
    for member in ("InputFormatConfiguration", "OutputFormatConfiguration", "SchemaConfiguration"):
        if not isinstance(config.get(member), dict):
            problems.append(
                f"DataFormatConversionConfiguration.{member} is required when it is enabled"
            )
    if problems:
        return problems
    deserializer = config["InputFormatConfiguration"].get("Deserializer") or {}
    given = [k for k in ("OpenXJsonSerDe", "HiveJsonSerDe") if deserializer.get(k) is not None]
    if len(given) != 1:
        problems.append(
            "InputFormatConfiguration.Deserializer needs exactly one of OpenXJsonSerDe and "
            "HiveJsonSerDe"
        )
    serializer = config["OutputFormatConfiguration"].get("Serializer") or {}
    given = [k for k in ("ParquetSerDe", "OrcSerDe") if serializer.get(k) is not None]
    if len(given) != 1:
        problems.append(
            "OutputFormatConfiguration.Serializer needs exactly one of ParquetSerDe and OrcSerDe"
        )
    schema = config["SchemaConfiguration"]
    for member in ("DatabaseName", "TableName", "RoleARN"):
        if not schema.get(member):
            problems.append(f"SchemaConfiguration.{member} is required")
    for pattern in (deserializer.get("HiveJsonSerDe") or {}).get("TimestampFormats") or []:
        if pattern == "millis":
            continue
        try:
            joda_regex(pattern)
        except ValueError as exc:
            problems.append(str(exc))
    return problems  # fmt: skip


# Glue schema ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schema:
    columns: tuple[tuple[str, pa.DataType], ...]
    version_id: str

    def arrow(self) -> pa.Schema:
        return pa.schema([pa.field(name, kind) for name, kind in self.columns])


_PRIMITIVES = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "binary": pa.binary(),
}


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def hive_type(text: str) -> pa.DataType:
    """A Glue/Hive column type as an Arrow type; ValueError for one we can't write."""
    raw = text.strip()
    lower = raw.lower()
    if lower in _PRIMITIVES:
        return _PRIMITIVES[lower]
    if re.fullmatch(r"(var)?char\(\s*\d+\s*\)", lower):
        return pa.string()
    match = re.fullmatch(r"decimal(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?", lower)
    if match:
        # Hive's default decimal is decimal(10,0).
        return pa.decimal128(int(match.group(1) or 10), int(match.group(2) or 0))
    match = re.fullmatch(r"(array|map|struct)<(.*)>", raw, flags=re.IGNORECASE | re.DOTALL)
    if match:
        kind, inner = match.group(1).lower(), match.group(2)
        if kind == "array":
            return pa.list_(hive_type(inner))
        if kind == "map":
            key, value = _split_top(inner)
            return pa.map_(hive_type(key), hive_type(value))
        fields = []
        for member in _split_top(inner):
            name, _, member_type = member.partition(":")
            fields.append(pa.field(name.strip().lower(), hive_type(member_type)))
        return pa.struct(fields)
    raise ValueError(f"column type {text!r} is not a Hive type the local emulator can write")


def table_arns(conv: Conversion) -> list[str]:
    """The resources a Glue GetTable is authorized on: catalog, database, table
    (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html)."""
    base = f"arn:aws:glue:{conv.region}:{conv.catalog_id}"
    return [
        f"{base}:catalog",
        f"{base}:database/{conv.database}",
        f"{base}:table/{conv.database}/{conv.table}",
    ]


def read_schema(conv: Conversion) -> Schema:
    """The table's columns from moto's Glue catalog (the version asked for, or the latest)."""
    from moto.glue.models import glue_backends

    where = f"{conv.database}.{conv.table} in {conv.region} (catalog {conv.catalog_id})"
    try:
        backend = glue_backends[conv.catalog_id][conv.region]
        table = backend.get_database(conv.database).tables[conv.table]
    except KeyError as exc:
        raise SchemaError(
            "DataFormatConversion.EntityNotFound",
            f"The Glue table {where} was not found: create it, or correct SchemaConfiguration",
        ) from exc
    except Exception as exc:  # moto's DatabaseNotFoundException
        raise SchemaError(
            "DataFormatConversion.EntityNotFound",
            f"The Glue database of {where} was not found ({exc})",
        ) from exc
    version = str(table._current_version) if conv.version_id == "LATEST" else conv.version_id
    table_input = table.versions.get(version)
    if table_input is None:
        raise SchemaError(
            "DataFormatConversion.EntityNotFound",
            f"The Glue table {where} has no version {conv.version_id}",
        )
    columns = (table_input.get("StorageDescriptor") or {}).get("Columns") or []
    if not columns:
        raise SchemaError(
            "DataFormatConversion.InvalidSchema",
            f"The Glue table {where} has no columns (StorageDescriptor.Columns)",
        )
    out = []
    for column in columns:
        try:
            out.append((str(column["Name"]).lower(), hive_type(str(column.get("Type", "")))))
        except (KeyError, ValueError) as exc:
            raise SchemaError(
                "DataFormatConversion.InvalidSchema", f"Glue table {where}: {exc}"
            ) from exc
    return Schema(tuple(out), version)


# Deserializers --------------------------------------------------------------------------------
_JODA = {
    "yyyy": r"(?P<year>\d{4})",
    "yy": r"(?P<year2>\d{2})",
    "MM": r"(?P<month>\d{2})",
    "M": r"(?P<month>\d{1,2})",
    "dd": r"(?P<day>\d{2})",
    "d": r"(?P<day>\d{1,2})",
    "HH": r"(?P<hour>\d{2})",
    "H": r"(?P<hour>\d{1,2})",
    "mm": r"(?P<minute>\d{2})",
    "m": r"(?P<minute>\d{1,2})",
    "ss": r"(?P<second>\d{2})",
    "s": r"(?P<second>\d{1,2})",
    "Z": r"(?P<zone>Z|[+-]\d{2}:?\d{2})",
    "ZZ": r"(?P<zone>Z|[+-]\d{2}:?\d{2})",
}


def joda_regex(pattern: str) -> re.Pattern[str]:
    """A Joda-Time DateTimeFormat pattern (the letters above, S fractions, quoted literals) as a
    regex; ValueError for a letter the local emulator can't parse (refused at create)."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end < 0:
                raise ValueError(f"TimestampFormats {pattern!r}: unterminated quote")
            out.append(re.escape(pattern[i + 1 : end]) if end > i + 1 else "'")
            i = end + 1
            continue
        if char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            run = pattern[i:j]
            if char == "S":
                out.append(rf"(?P<fraction>\d{{1,{len(run)}}})")
            elif run in _JODA:
                out.append(_JODA[run])
            else:
                raise ValueError(
                    f"TimestampFormats {pattern!r}: the pattern letters {run!r} are not "
                    "supported by the local emulator (y, M, d, H, m, s, S, Z and quoted text are)"
                )
            i = j
            continue
        out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def _from_groups(found: dict[str, str | None]) -> datetime:
    year = int(found["year"]) if found.get("year") else 2000 + int(found.get("year2") or 70) % 100
    fraction = (found.get("fraction") or "0").ljust(6, "0")[:6]
    when = datetime(
        year, int(found.get("month") or 1), int(found.get("day") or 1),
        int(found.get("hour") or 0), int(found.get("minute") or 0), int(found.get("second") or 0),
        int(fraction),
    )  # fmt: skip
    zone = found.get("zone")
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when


# java.sql.Timestamp.valueOf: "yyyy-[m]m-[d]d hh:mm:ss[.f...]".
_SQL_TIMESTAMP = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2}) (?P<hour>\d{1,2}):(?P<minute>\d{2})"
    r":(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
)
# The OpenX formats the guide lists: yyyy-MM-dd'T'HH:mm:ss[.S]'Z' and yyyy-[M]M-[d]d
# HH:mm:ss[.S] (up to 9 fraction digits), epoch seconds and milliseconds.
_OPENX_TIMESTAMPS = (
    re.compile(
        r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})T(?P<hour>\d{2}):(?P<minute>\d{2})"
        r":(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?(?P<zone>Z)"
    ),
    _SQL_TIMESTAMP,
)
EPOCH_MILLIS_FROM = 10**11  # an epoch number this large is read as milliseconds (OpenX)


def _epoch(value: float, millis: bool) -> datetime:
    seconds = value / 1000 if millis else value
    return datetime(1970, 1, 1) + timedelta(seconds=seconds)


def _timestamp(value: Any, conv: Conversion) -> datetime:
    if isinstance(value, bool):
        raise RecordError(f"{value!r} is not a timestamp")
    if conv.deserializer == "OpenX":
        if isinstance(value, int | float):
            return _epoch(value, abs(value) >= EPOCH_MILLIS_FROM)
        if isinstance(value, str):
            if re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
                number = float(value)
                return _epoch(number, abs(number) >= EPOCH_MILLIS_FROM)
            for pattern in _OPENX_TIMESTAMPS:
                found = pattern.fullmatch(value.strip())
                if found:
                    return _from_groups(found.groupdict())
        raise RecordError(f"{value!r} is not a timestamp in a format the OpenX JSON SerDe reads")
    for fmt in conv.timestamp_formats or ():
        if fmt == "millis":
            if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
                return _epoch(float(value), True)
            continue
        if isinstance(value, str):
            found = joda_regex(fmt).fullmatch(value)
            if found:
                return _from_groups(found.groupdict())
    if not conv.timestamp_formats and isinstance(value, str):
        found = _SQL_TIMESTAMP.fullmatch(value)
        if found:
            return _from_groups(found.groupdict())
    formats = ", ".join(conv.timestamp_formats) or "java.sql.Timestamp::valueOf"
    raise RecordError(
        f"{value!r} does not match the Hive JSON SerDe's TimestampFormats ({formats})"
    )


def _integer(value: Any, bits: int) -> int:
    if isinstance(value, bool):
        raise RecordError(f"{value!r} is not an integer")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if not isinstance(value, int):
        raise RecordError(f"{value!r} is not an integer")
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise RecordError(f"{value} is out of range for a {bits}-bit integer column")
    return value


def _coerce(value: Any, kind: pa.DataType, conv: Conversion) -> Any:
    """A JSON value as a value of the column type; RecordError when it can't be one."""
    if value is None:
        return None
    if pa.types.is_string(kind):
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if pa.types.is_boolean(kind):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise RecordError(f"{value!r} is not a boolean")
    if pa.types.is_integer(kind):
        return _integer(value, kind.bit_width)
    if pa.types.is_floating(kind):
        if isinstance(value, bool):
            raise RecordError(f"{value!r} is not a number")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"{value!r} is not a number") from exc
        if not math.isfinite(number) and not isinstance(value, str):
            raise RecordError(f"{value!r} is not a finite number")
        return number
    if pa.types.is_decimal(kind):
        try:
            return Decimal(str(value)).quantize(Decimal(1).scaleb(-kind.scale))
        except (InvalidOperation, ValueError) as exc:
            raise RecordError(f"{value!r} is not a decimal({kind.precision},{kind.scale})") from exc
    if pa.types.is_timestamp(kind):
        return _timestamp(value, conv)
    if pa.types.is_date(kind):
        if isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError as exc:
                raise RecordError(f"{value!r} is not a date (yyyy-MM-dd)") from exc
        if isinstance(value, int) and not isinstance(value, bool):
            return date(1970, 1, 1) + timedelta(days=value)
        raise RecordError(f"{value!r} is not a date")
    if pa.types.is_binary(kind):
        if not isinstance(value, str):
            raise RecordError(f"{value!r} is not a string for a binary column")
        return value.encode()
    if pa.types.is_list(kind):
        if not isinstance(value, list):
            raise RecordError(f"{value!r} is not an array")
        return [_coerce(v, kind.value_type, conv) for v in value]
    if pa.types.is_map(kind):
        if not isinstance(value, dict):
            raise RecordError(f"{value!r} is not an object for a map column")
        return [
            (_coerce(k, kind.key_type, conv), _coerce(v, kind.item_type, conv))
            for k, v in value.items()
        ]
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            raise RecordError(f"{value!r} is not an object for a struct column")
        return {
            kind.field(i).name: _coerce(value.get(kind.field(i).name), kind.field(i).type, conv)
            for i in range(kind.num_fields)
        }
    raise RecordError(f"no conversion to {kind}")


def _normalise_keys(value: Any, conv: Conversion) -> Any:
    """Keys as the SerDe matches them: lowercased (OpenX CaseInsensitive, default true; Hive
    column names are lowercase), dots to underscores when asked (OpenX)."""
    if isinstance(value, list):
        return [_normalise_keys(v, conv) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        name = str(key)
        if conv.deserializer == "Hive" or conv.case_insensitive:
            name = name.lower()
        if conv.deserializer == "OpenX" and conv.dots_to_underscores:
            name = name.replace(".", "_")
        out[name] = _normalise_keys(item, conv)
    return out


def _documents(data: bytes) -> list[Any]:
    """The JSON documents of one record: `{"a":1}{"a":2}` is two (guide: Deserializer)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("the record is not UTF-8 text") from exc
    decoder = json.JSONDecoder()
    documents, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            document, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise RecordError(f"the record is not valid JSON: {exc}") from exc
        documents.append(document)
    if not documents:
        raise RecordError("the record holds no JSON document")
    return documents


ARROW_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError)


def check_fits(table_rows: list[dict[str, Any]], schema: Schema) -> None:
    """RecordError when a value can't be held by its column's Arrow type (e.g. a decimal beyond
    its precision). Costly per record: callers try the whole batch first."""
    try:
        pa.Table.from_pylist(table_rows, schema=schema.arrow())
    except ARROW_ERRORS as exc:
        raise RecordError(f"a value does not fit its column: {exc}") from exc


def rows(data: bytes, conv: Conversion, schema: Schema) -> list[dict[str, Any]]:
    out = []
    for document in _documents(data):
        if not isinstance(document, dict):
            kind = "an array" if isinstance(document, list) else type(document).__name__
            raise RecordError(f"each JSON document must be an object, not {kind}")
        mapped_keys = {c.lower(): k for c, k in conv.key_mappings.items()}
        original = document
        document = _normalise_keys(document, conv)
        row = {}
        for name, kind in schema.columns:
            if name in mapped_keys:
                # ColumnToJsonKeyMappings names the JSON key as it is written.
                key = mapped_keys[name]
                value = original.get(key, document.get(key.lower()))
            else:
                value = document.get(name)
            try:
                row[name] = _coerce(value, kind, conv)
            except RecordError as exc:
                raise RecordError(f"column {name!r} ({kind}): {exc}") from exc
        out.append(row)
    return out


# Serializers ----------------------------------------------------------------------------------
def serialize(table_rows: list[dict[str, Any]], conv: Conversion, schema: Schema) -> bytes:
    """One Parquet or ORC file of the rows, with the serializer's options (ARROW_ERRORS when a
    value does not fit its column: see `check_fits`)."""
    table = pa.Table.from_pylist(table_rows, schema=schema.arrow())
    sink = io.BytesIO()
    serde = conv.serde
    if conv.output == "Parquet":
        import pyarrow.parquet as pq

        pq.write_table(
            table,
            sink,
            compression=PARQUET_CODECS[serde.get("Compression") or "SNAPPY"],
            data_page_size=int(serde.get("PageSizeBytes") or DEFAULT_PAGE_BYTES),
            use_dictionary=_truthy(serde.get("EnableDictionaryCompression"), False),
            data_page_version="2.0" if serde.get("WriterVersion") == "V2" else "1.0",
        )
    else:
        import pyarrow.orc as orc

        orc.write_table(
            table,
            sink,
            compression=ORC_CODECS[serde.get("Compression") or "SNAPPY"],
            file_version="0.11" if serde.get("FormatVersion") == "V0_11" else "0.12",
            stripe_size=int(serde.get("StripeSizeBytes") or DEFAULT_STRIPE_BYTES),
            row_index_stride=int(serde.get("RowIndexStride") or DEFAULT_ROW_INDEX_STRIDE),
            # API_OrcSerDe: PaddingTolerance (default 0.05) "is ignored if EnablePadding is
            # false" (the default); DictionaryKeyThreshold default 0; BloomFilter fpp 0.05.
            padding_tolerance=float(serde.get("PaddingTolerance", 0.05))
            if _truthy(serde.get("EnablePadding"), False)
            else 0.0,
            dictionary_key_size_threshold=float(serde.get("DictionaryKeyThreshold") or 0.0),
            bloom_filter_fpp=float(serde.get("BloomFilterFalsePositiveProbability") or 0.05),
            bloom_filter_columns=[
                i
                for i, (name, _) in enumerate(schema.columns)
                if name in (serde.get("BloomFilterColumns") or [])
            ],
        )
    return sink.getvalue()


def error_line(
    data: bytes, arrival_ms: int, message: str, ending_ms: int, conv: Conversion, schema: Schema
) -> bytes:
    """One line of a format-conversion-failed object. Field names as the guide's example
    document (https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion-error-
    handling.html) shows them in its HTML version; its markdown source has ErrorCode."""
    document = {
        "attemptsMade": 1,
        "arrivalTimestamp": arrival_ms,
        "lastErrorCode": MALFORMED,
        "lastErrorMessage": message,
        "attemptEndingTimestamp": ending_ms,
        "rawData": base64.b64encode(data).decode(),
        "sequenceNumber": None,
        "subSequenceNumber": None,
        "dataCatalogTable": {
            "catalogId": conv.catalog_id,
            "databaseName": conv.database,
            "tableName": conv.table,
            "region": conv.region,
            "versionId": schema.version_id,
            "catalogArn": f"arn:aws:glue:{conv.region}:{conv.catalog_id}:catalog",
        },
    }
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def now_utc_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
