"""Record format conversion on real delivery streams: a Glue table made with boto3, records put
with PutRecordBatch, the Parquet / ORC objects read back with pyarrow with the table's columns
and types, records that don't fit the table in `format-conversion-failed`, the Glue read done
with the stream's role, and the create-time rules."""

from __future__ import annotations

import base64
import io
import json
import re
from datetime import datetime

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from firehose_helpers import KEY_SUFFIX, TIME_PATH, make_stream, read_object, wait_for_objects
from iam_roles import ensure_role, firehose_delivery_policy, firehose_trust
from support.waiting import wait_until

COLUMNS = [
    {"Name": "equipment_id", "Type": "string"},
    {"Name": "temperature", "Type": "double"},
    {"Name": "readings", "Type": "int"},
    {"Name": "ts", "Type": "timestamp"},
    {"Name": "tags", "Type": "array<string>"},
    {"Name": "site_name", "Type": "string"},
]
GLUE_READ = {
    "Effect": "Allow",
    "Action": ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
    "Resource": "*",
}


def glue_table(aws, database: str, table: str, columns=COLUMNS) -> None:
    glue = aws("glue")
    glue.create_database(DatabaseInput={"Name": database})
    glue.create_table(
        DatabaseName=database,
        TableInput={"Name": table, "StorageDescriptor": {"Columns": columns}},
    )


def conversion_role(aws, name: str, glue: bool = True) -> str:
    policy = firehose_delivery_policy()
    if glue:
        policy["Statement"].append(GLUE_READ)
    return ensure_role(aws("iam"), name, firehose_trust(), policy)


def conversion_config(
    role: str, database: str, table: str, deserializer: dict, serializer: dict
) -> dict:
    return {
        "Enabled": True,
        "InputFormatConfiguration": {"Deserializer": deserializer},
        "OutputFormatConfiguration": {"Serializer": serializer},
        "SchemaConfiguration": {"RoleARN": role, "DatabaseName": database, "TableName": table},
    }


def converting_stream(aws, name: str, role: str, conversion: dict, **extra) -> None:
    make_stream(
        aws, name, name,
        RoleARN=role,
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 1},
        DataFormatConversionConfiguration=conversion,
        **extra,
    )  # fmt: skip


def put(aws, stream: str, records: list[bytes]) -> None:
    answer = aws("firehose").put_record_batch(
        DeliveryStreamName=stream, Records=[{"Data": d} for d in records]
    )
    assert answer["FailedPutCount"] == 0


def test_openx_records_land_as_parquet_with_the_glue_types(aws, unique):
    # Given a Glue table and a stream converting with the OpenX SerDe to GZIP Parquet
    stream, database = f"pq-{unique}", f"db_{unique}"
    glue_table(aws, database, "telemetry")
    role = conversion_role(aws, f"conv-{unique}")
    openx = {
        "OpenXJsonSerDe": {
            "ColumnToJsonKeyMappings": {"ts": "timestamp"},
            "ConvertDotsInJsonKeysToUnderscores": True,
        }
    }
    conversion = conversion_config(
        role, database, "telemetry", openx, {"ParquetSerDe": {"Compression": "GZIP"}}
    )
    converting_stream(aws, stream, role, conversion)

    # When good records (mixed-case keys, a dotted key, two documents in one record, a Hive
    # keyword mapped to a column) and two bad ones are put
    good = [
        b'{"Equipment_ID": "press-1", "Temperature": 71.5, "readings": "3", '
        b'"timestamp": "2026-01-02T03:04:05.250Z", "tags": ["a", "b"], "site.name": "north"}',
        b'{"equipment_id": "press-2", "temperature": 20, "timestamp": 1767323045000}'
        b'{"equipment_id": "press-3", "timestamp": "2026-01-02 03:04:05"}',
    ]
    bad = [b'{"equipment_id": "press-4", "temperature": "hot"}', b"not json", b"[{}]"]
    put(aws, stream, good + bad)

    # Then one .parquet object holds the rows with the table's columns and types
    s3 = aws("s3")
    suffix = KEY_SUFFIX.format(stream=stream, version=1)
    (obj,) = wait_for_objects(s3, stream, prefix="20")
    assert re.fullmatch(TIME_PATH + suffix + r"\.parquet", obj["Key"]), obj["Key"]
    body, response = read_object(s3, stream, obj["Key"])
    assert response.get("ContentEncoding") is None
    parquet = pq.ParquetFile(io.BytesIO(body))
    assert parquet.metadata.row_group(0).column(0).compression == "GZIP"
    table = parquet.read()
    assert table.schema.names == [c["Name"] for c in COLUMNS]
    assert table.schema.field("temperature").type == pa.float64()
    assert table.schema.field("readings").type == pa.int32()
    assert pa.types.is_timestamp(table.schema.field("ts").type)
    assert table.schema.field("tags").type == pa.list_(pa.string())
    rows = table.to_pylist()
    assert [r["equipment_id"] for r in rows] == ["press-1", "press-2", "press-3"]
    assert rows[0]["temperature"] == 71.5 and rows[0]["readings"] == 3
    assert rows[0]["ts"] == datetime(2026, 1, 2, 3, 4, 5, 250000)
    assert rows[0]["tags"] == ["a", "b"] and rows[0]["site_name"] == "north"
    assert rows[1]["temperature"] == 20.0 and rows[1]["ts"] == datetime(2026, 1, 2, 3, 4, 5)
    assert rows[2]["temperature"] is None and rows[2]["ts"] == datetime(2026, 1, 2, 3, 4, 5)

    # And the bad records are in format-conversion-failed with the documented fields
    (failed,) = wait_for_objects(s3, stream, prefix="format-conversion-failed/")
    assert re.fullmatch("format-conversion-failed/" + TIME_PATH + suffix, failed["Key"])
    lines = [json.loads(x) for x in read_object(s3, stream, failed["Key"])[0].splitlines()]
    assert [base64.b64decode(x["rawData"]) for x in lines] == bad
    for line in lines:
        assert line["lastErrorCode"] == "DataFormatConversion.MalformedData"
        assert line["dataCatalogTable"]["databaseName"] == database
        assert line["dataCatalogTable"]["tableName"] == "telemetry"
        assert line["dataCatalogTable"]["versionId"] == "1"
        assert line["attemptEndingTimestamp"] >= line["arrivalTimestamp"]
    assert "temperature" in lines[0]["lastErrorMessage"]


def test_hive_records_land_as_orc_read_from_the_table_version(aws, unique):
    # Given a table whose second version adds a column, and a stream reading version 1 as ORC
    stream, database = f"orc-{unique}", f"db_{unique}"
    columns = [{"Name": "id", "Type": "bigint"}, {"Name": "at", "Type": "timestamp"}]
    glue_table(aws, database, "events", columns)
    aws("glue").update_table(
        DatabaseName=database,
        TableInput={
            "Name": "events",
            "StorageDescriptor": {"Columns": [*columns, {"Name": "extra", "Type": "string"}]},
        },
    )
    role = conversion_role(aws, f"conv-{unique}")
    hive = {"HiveJsonSerDe": {"TimestampFormats": ["yyyy/MM/dd HH:mm", "millis"]}}
    orc_serde = {"OrcSerDe": {"FormatVersion": "V0_11", "Compression": "ZLIB"}}
    conversion = conversion_config(role, database, "events", hive, orc_serde)
    conversion["SchemaConfiguration"]["VersionId"] = "1"
    converting_stream(aws, stream, role, conversion)

    # When records with either timestamp format (and one with none of them) are put
    put(aws, stream, [b'{"id": 1, "at": "2026/01/02 03:04"}', b'{"id": 2, "at": 1767323045000}',
                      b'{"id": 3, "at": "2026-01-02T03:04:05Z"}'])  # fmt: skip

    # Then the .orc object has version 1's columns and the parsed timestamps
    (obj,) = wait_for_objects(s3 := aws("s3"), stream, prefix="20")
    assert obj["Key"].endswith(".orc")
    orc_file = orc.ORCFile(io.BytesIO(read_object(s3, stream, obj["Key"])[0]))
    assert (orc_file.file_version, orc_file.compression) == ("0.11", "ZLIB")
    table = orc_file.read()
    assert table.schema.names == ["id", "at"]
    assert table.schema.field("id").type == pa.int64()
    assert table.to_pylist() == [
        {"id": 1, "at": datetime(2026, 1, 2, 3, 4)},
        {"id": 2, "at": datetime(2026, 1, 2, 3, 4, 5)},
    ]
    (failed,) = wait_for_objects(s3, stream, prefix="format-conversion-failed/")
    (line,) = read_object(s3, stream, failed["Key"])[0].splitlines()
    assert "TimestampFormats" in json.loads(line)["lastErrorMessage"]


def test_a_role_without_glue_access_keeps_the_records(aws, unique, firehose):
    # Given a stream whose role may write to S3 but not read the Glue table
    stream, database = f"noglue-{unique}", f"db_{unique}"
    glue_table(aws, database, "telemetry")
    role = conversion_role(aws, f"noglue-{unique}", glue=False)
    conversion = conversion_config(
        role, database, "telemetry", {"OpenXJsonSerDe": {}}, {"ParquetSerDe": {}}
    )
    converting_stream(aws, stream, role, conversion)

    # When a record is put
    put(aws, stream, [b'{"equipment_id": "press-1"}'])

    # Then the delivery fails with an access error naming the Glue actions, nothing is written
    errors = wait_until(lambda: firehose.errors(stream), timeout=10)
    assert errors[0]["errorCode"] == "DataFormatConversion.AccessDenied"
    assert "glue:GetTable" in errors[0]["message"]
    assert "glue:GetTable" in errors[0]["denial"]["message"]
    assert aws("s3").list_objects_v2(Bucket=stream).get("KeyCount") == 0

    # And once the role may read the table, the spooled record is delivered
    conversion_role(aws, f"noglue-{unique}")
    (obj,) = wait_for_objects(aws("s3"), stream, timeout=40)
    assert obj["Key"].endswith(".parquet")


def test_partitioned_records_are_converted_per_partition(aws, unique):
    # Given a stream partitioned by equipment with jq, converting to Parquet
    stream, database = f"pqp-{unique}", f"db_{unique}"
    glue_table(aws, database, "telemetry")
    role = conversion_role(aws, f"conv-{unique}")
    conversion = conversion_config(
        role, database, "telemetry", {"OpenXJsonSerDe": {}}, {"ParquetSerDe": {}}
    )
    jq = {
        "Type": "MetadataExtraction",
        "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{e: .equipment_id}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
        ],
    }
    converting_stream(
        aws, stream, role, conversion,
        Prefix="equipment_id=!{partitionKeyFromQuery:e}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        ProcessingConfiguration={"Enabled": True, "Processors": [jq]},
        DynamicPartitioningConfiguration={"Enabled": True},
    )  # fmt: skip

    # When records of two machines and one that doesn't fit the table are put
    put(aws, stream, [b'{"equipment_id": "a", "readings": 1}', b'{"equipment_id": "b"}',
                      b'{"equipment_id": "a", "readings": 2}',
                      b'{"equipment_id": "a", "readings": "many"}'])  # fmt: skip

    # Then each partition is one Parquet object of its rows; the misfit is an error line
    s3 = aws("s3")
    objects = wait_for_objects(s3, stream, prefix="equipment_id=", count=2)
    found = {}
    for obj in objects:
        assert obj["Key"].endswith(".parquet")
        table = pq.read_table(io.BytesIO(read_object(s3, stream, obj["Key"])[0]))
        found[obj["Key"].split("/")[0]] = table.column("readings").to_pylist()
    assert found == {"equipment_id=a": [1, 2], "equipment_id=b": [None]}
    (failed,) = wait_for_objects(s3, stream, prefix="errors/format-conversion-failed/")
    (line,) = read_object(s3, stream, failed["Key"])[0].splitlines()
    assert base64.b64decode(json.loads(line)["rawData"]).startswith(b'{"equipment_id": "a"')


CREATE_CASES = {
    "both-deserializers": (
        {"OpenXJsonSerDe": {}, "HiveJsonSerDe": {}},
        {"ParquetSerDe": {}},
        "exactly one of OpenXJsonSerDe and HiveJsonSerDe",
    ),
    "no-serializer": ({"OpenXJsonSerDe": {}}, {}, "exactly one of ParquetSerDe and OrcSerDe"),
    "unsupported-timestamp-letters": (
        {"HiveJsonSerDe": {"TimestampFormats": ["EEE, dd MMM yyyy"]}},
        {"ParquetSerDe": {}},
        "the pattern letters 'EEE' are not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(CREATE_CASES))
def test_create_time_rules(aws, unique, case):
    deserializer, serializer, message = CREATE_CASES[case]
    conversion = conversion_config("arn:aws:iam::123456789012:role/x", "db", "t", deserializer,
                                   serializer)  # fmt: skip
    with pytest.raises(ClientError) as raised:
        converting_stream(aws, f"bad-{unique}", "arn:aws:iam::123456789012:role/x", conversion)
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidArgumentException"
    assert message in error["Message"]


def test_schema_configuration_needs_the_table(aws, unique):
    conversion = conversion_config("arn:aws:iam::123456789012:role/x", "db", "",
                                   {"OpenXJsonSerDe": {}}, {"ParquetSerDe": {}})  # fmt: skip
    del conversion["SchemaConfiguration"]["TableName"]
    with pytest.raises(ClientError) as raised:
        converting_stream(aws, f"bad-{unique}", "arn:aws:iam::123456789012:role/x", conversion)
    assert "SchemaConfiguration.TableName is required" in raised.value.response["Error"]["Message"]


def test_a_value_its_column_cannot_hold_fails_only_its_record(aws, unique):
    # Given a table with a decimal(5,2) column
    stream, database = f"dec-{unique}", f"db_{unique}"
    glue_table(aws, database, "amounts", [{"Name": "amount", "Type": "decimal(5,2)"}])
    role = conversion_role(aws, f"conv-{unique}")
    conversion = conversion_config(
        role, database, "amounts", {"OpenXJsonSerDe": {}}, {"ParquetSerDe": {}}
    )
    converting_stream(aws, stream, role, conversion)

    # When one amount fits and one needs more than 5 digits
    put(aws, stream, [b'{"amount": 123.4}', b'{"amount": 12345.6}'])

    # Then the Parquet object holds the one that fits, the other is a conversion failure
    s3 = aws("s3")
    (obj,) = wait_for_objects(s3, stream, prefix="20")
    table = pq.read_table(io.BytesIO(read_object(s3, stream, obj["Key"])[0]))
    assert [str(v) for v in table.column("amount").to_pylist()] == ["123.40"]
    (failed,) = wait_for_objects(s3, stream, prefix="format-conversion-failed/")
    (line,) = read_object(s3, stream, failed["Key"])[0].splitlines()
    assert base64.b64decode(json.loads(line)["rawData"]) == b'{"amount": 12345.6}'
