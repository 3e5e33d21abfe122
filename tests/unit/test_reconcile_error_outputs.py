"""The parsed side accounts for every raw record with rows and every Firehose error output:
processing-failed, partitioning-failed (dynamic partitioning) and format-conversion-failed
(record format conversion), whose documents spell their error fields differently."""

from __future__ import annotations

import base64
import json

from pipeline import batches, summary


def figures(parsed: int, **failed: int) -> dict:
    return {
        "03-publish": {"run_id": "r", "acknowledged": 10},
        "04-inspect-batches": {"run_id": "r", "raw_lines": 10, "rule_errors": 0,
                               "parsed_rows": parsed, "processing_failed": 1, **failed},
    }  # fmt: skip


def test_rows_and_all_three_error_outputs_reconcile():
    assert summary.reconcile(figures(6, partitioning_failed=1, conversion_failed=2)) == []


def test_a_missing_record_names_every_error_output():
    [problem] = summary.reconcile(figures(6, conversion_failed=2))
    assert problem == (
        "raw lines 10 != parsed rows 6 + processing-failed 1 + partitioning-failed 0"
        " + conversion-failed 2"
    )


def test_format_conversion_error_documents_are_read():
    line = {
        "attemptsMade": 1,
        "arrivalTimestamp": 1795000000000,
        "lastErrorCode": "DataFormatConversion.MalformedData",
        "lastErrorMessage": "column 'temperature_c' (double): 'hot' is not a number",
        "attemptEndingTimestamp": 1795000001000,
        "rawData": base64.b64encode(b'{"temperature_c": "hot"}').decode(),
    }
    [record] = batches.iter_processing_failed(json.dumps(line).encode() + b"\n")
    assert record.error_code == "DataFormatConversion.MalformedData"
    assert "is not a number" in record.error_message
    assert record.raw_data == b'{"temperature_c": "hot"}'


def test_parquet_rows_are_counted_by_run():
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.workbook import _parquet_run_ids

    def parquet(table: pa.Table) -> bytes:
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    with_runs = parquet(pa.table({"run_id": ["a", "b", None], "x": [1, 2, 3]}))
    assert _parquet_run_ids(with_runs) == ["a", "b", None]
    assert _parquet_run_ids(parquet(pa.table({"x": [1, 2]}))) == [None, None]


def test_athena_rows_become_a_frame_named_by_the_first_row():
    from pipeline.workbook import athena_frame

    rows = [
        {"Data": [{"VarCharValue": "equipment_id"}, {"VarCharValue": "readings"}]},
        {"Data": [{"VarCharValue": "pump-01"}, {"VarCharValue": "250"}]},
        {"Data": [{"VarCharValue": "pump-02"}, {}]},
    ]
    frame = athena_frame(rows)
    assert list(frame.columns) == ["equipment_id", "readings"]
    assert frame["equipment_id"].tolist() == ["pump-01", "pump-02"]
    assert frame["readings"].iloc[0] == "250" and frame["readings"].isna().iloc[1]
    assert athena_frame([]).empty
