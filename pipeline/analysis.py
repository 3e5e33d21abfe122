"""Load the parsed bucket's batches (the transform's JSON lines, or Parquet objects when the
stream converts records) into one pandas DataFrame.

pandas and pyarrow are imported inside the functions: the Lambda imports `pipeline`, and this
module must cost it nothing.

One pyarrow path, one fallback. Each object is read by `pyarrow.json.read_json` on its own, gzip
inflated by pyarrow (`pyarrow.input_stream(..., compression="gzip")`: in C++, without the GIL, so
the objects are read side by side on a thread per core), the time columns parsed by pyarrow itself
(an explicit `timestamp[ms, UTC]` schema: the transform writes milliseconds and `Z`), and the
tables concatenated, columns an object lacks filled with nulls and an int64 column that is double
in another object promoted to double, as reading the joined lines would type it. pyarrow refuses
a column whose JSON type changes (a number, later a string) and bytes it cannot read: such data
is loaded by the fallback, `json.loads` per line and `DataFrame.from_records`, where that column
becomes `object` and a bad object or line is named. Measured on this machine (2 cores) with
bench/analysis.py: see bench/README.md.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pipeline.batches import decompress, is_gzip
from pipeline.transform import ARRIVAL_TIME, DEVICE_TIME

if TYPE_CHECKING:
    import pandas as pd

TIME_COLUMNS = (ARRIVAL_TIME, DEVICE_TIME)


def load_parsed(objects: Iterable[bytes]) -> pd.DataFrame:
    """One DataFrame of every line of the given parsed-bucket objects (gzip or plain bytes).

    `arrival_time` and `device_time` are `datetime64[ms, UTC]` (NaT where the device sent no
    clock); strings are pandas strings, numbers int64/float64, as the JSON holds them.
    """
    import pyarrow as pa

    objects = [data for data in objects if data]  # an empty object has no lines
    if objects and all(is_parquet(data) for data in objects):
        return _via_parquet(objects)
    try:
        return _via_pyarrow(objects)
    except (pa.ArrowException, OSError, EOFError):  # refused or unreadable: the fallback says why
        return _via_records(objects)


def is_parquet(data: bytes) -> bool:
    """A Parquet file starts and ends with the magic `PAR1` (Apache Parquet, "File Format")."""
    return len(data) >= 8 and data[:4] == data[-4:] == b"PAR1"


def _via_parquet(objects: list[bytes]) -> pd.DataFrame:
    """Objects Firehose converted to Parquet with a Glue table's schema (record format
    conversion): one table per object, concatenated; the time columns, which Firehose writes
    as timestamps without a zone, are UTC as the transform wrote them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(pa.BufferReader(data)) for data in objects]
    table = pa.concat_tables(tables, promote_options="permissive")
    for column in TIME_COLUMNS:
        if column in table.column_names:
            index = table.column_names.index(column)
            utc = table.column(column).cast(pa.timestamp("ms")).cast(pa.timestamp("ms", tz="UTC"))
            table = table.set_column(index, column, utc)
    return table.to_pandas()


def parsed_dataset(target: Any, bucket: str, prefix: str) -> Any:
    """The `.parquet` objects under s3://bucket/prefix as one `pyarrow.dataset.Dataset`, read over
    S3 (the emulator's endpoint or AWS's) with the Hive-style partitions of the keys
    (`equipment_id=.../dt=.../`) as columns: a filter on them reads only the matching objects
    (partition pruning, as Athena does with the Glue table's partition projection)."""
    import pyarrow.dataset as ds
    from pyarrow.fs import S3FileSystem

    credentials = target.session.get_credentials().get_frozen_credentials()
    filesystem = S3FileSystem(
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        session_token=credentials.token,
        region=target.region,
        endpoint_override=target.endpoint_url,  # None on AWS
    )
    # The objects are listed with boto3 and named one by one, so pyarrow never asks S3 about
    # the prefix itself (a HeadObject on a key that does not exist).
    paginator = target.client("s3").get_paginator("list_objects_v2")
    paths = [
        f"{bucket}/{obj['Key']}"
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].endswith(".parquet")
    ]
    return ds.dataset(
        paths,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(flavor="hive"),
        partition_base_dir=f"{bucket}/{prefix}",
    )


def _read_json(source: Any) -> Any:
    """pyarrow's JSON reader with the time columns' explicit schema (a pyarrow Table)."""
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([(c, pa.timestamp("ms", tz="UTC")) for c in TIME_COLUMNS])
    return pj.read_json(
        source,
        # 1 MiB blocks (the default, stated): blocks parse in parallel; 16 MiB was slower here.
        read_options=pj.ReadOptions(block_size=1 << 20),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer"),
    )


def _via_pyarrow(objects: list[bytes]) -> pd.DataFrame:
    import pyarrow as pa

    sources = [
        pa.input_stream(pa.py_buffer(data), compression="gzip")
        if is_gzip(data)
        else pa.BufferReader(data)
        for data in objects
    ]
    with ThreadPoolExecutor(max(1, min(len(sources), pa.cpu_count()))) as pool:
        tables = list(pool.map(_read_json, sources))
    if not any(table.num_rows for table in tables):
        raise pa.ArrowInvalid("no lines")  # the fallback gives the empty frame its time columns
    table = pa.concat_tables(tables, promote_options="permissive")
    # The explicit schema puts the time columns first: the frame keeps the lines' own order.
    # Columns are chosen on the table (no copy), not on the frame (a copy of every column).
    first = json.loads(_first_line(objects[0]) or b"{}")
    order = [c for c in first if c in table.column_names]
    order += [c for c in table.column_names if c not in first]
    return table.select(order).to_pandas()


def _first_line(data: bytes) -> bytes:
    """The object's first line, reading no further (gzip is inflated only that far)."""
    stream = gzip.GzipFile(fileobj=io.BytesIO(data)) if is_gzip(data) else io.BytesIO(data)
    return stream.readline().strip()


def _via_records(objects: list[bytes]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for number, line in enumerate(_joined_lines(objects).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"parsed batches, line {number} (objects joined): {exc}") from exc
        if not isinstance(row, dict):
            raise ValueError(f"parsed batches, line {number} (objects joined): not a JSON object")
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    for column in TIME_COLUMNS:
        values = frame[column] if column in frame else pd.Series([None] * len(frame))
        frame[column] = pd.to_datetime(values, utc=True, format="ISO8601").astype(
            "datetime64[ms, UTC]"
        )
    return frame


def _joined_lines(objects: Iterable[bytes]) -> bytes:
    """The objects' decompressed lines, concatenated; each object ends with a separator."""
    parts = []
    for data in objects:
        body = decompress(data)
        if body and not body.endswith(b"\n"):
            body += b"\n"  # a missing final separator must not glue two objects' lines
        parts.append(body)
    return b"".join(parts)
