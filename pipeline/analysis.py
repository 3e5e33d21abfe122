"""Load the parsed bucket's batches (the transform's JSON lines) into one pandas DataFrame.

pandas and pyarrow are imported inside the functions: the Lambda imports `pipeline`, and this
module must cost it nothing.

Why pyarrow: measured on this machine (2 shared cores) for 100,000 transformed rows in ten gzip
objects, building from a list of dicts (`json.loads` per line + `DataFrame.from_records`) took
about 0.8 s and `pandas.read_json(lines=True)` about 0.65 s, against about 0.15 s for
`pyarrow.json.read_json` + `to_pandas` on the same bytes. Only the pyarrow reader reaches half of
pyarrow's speed, so it is the main path; the time columns are parsed by pyarrow itself (an
explicit `timestamp[ms, UTC]` schema for them: the transform writes milliseconds and `Z`).
pyarrow refuses a column whose JSON type changes between rows (a number, later a string); such
data is loaded through the slower dict path instead, where that column becomes `object`.

Each object is read by pyarrow on its own, gzip included (`pyarrow.input_stream(...,
compression="gzip")`: gunzipped in C++, no joined copy of every line in Python), and the tables
are concatenated. That gives the frame reading the joined lines gives (the explicit schema is the
same, columns missing from an object are null there), as long as each column has one type in
every object; when the objects' tables do not concatenate as they are (an int64 column in one
object, double in another) or pyarrow refuses an object, the joined lines are read as before
(`_load_joined`): the result never depends on which path ran. Measured with bench/analysis.py
(100,000 rows in 21 objects, 2 cores): 143 ms joined, 76-80 ms object by object on a thread
per core, against 66-72 ms for pyarrow's own reader of the joined lines (the floor).
"""

from __future__ import annotations

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


def _joined_lines(objects: Iterable[bytes]) -> bytes:
    """The objects' decompressed lines, concatenated; each object ends with a separator."""
    parts = []
    for data in objects:
        body = decompress(data)
        if body and not body.endswith(b"\n"):
            body += b"\n"  # a missing final separator must not glue two objects' lines
        parts.append(body)
    return b"".join(parts)


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series([], dtype="datetime64[ms, UTC]") for c in TIME_COLUMNS})


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


def _line_order(first_line: bytes, columns: list[str]) -> list[str]:
    """The columns in the first line's order, then the others in the table's order.

    The explicit schema puts the time columns first; the frame keeps the lines' own order.
    """
    first = json.loads(first_line or b"{}")
    ordered = [c for c in first if c in columns]
    return ordered + [c for c in columns if c not in first]


def _via_pyarrow(data: bytes) -> pd.DataFrame:
    table = _read_json(io.BytesIO(data))
    # Columns chosen on the table (no copy), not on the frame (a copy of every column).
    return table.select(_line_order(data[: data.find(b"\n")], table.column_names)).to_pandas()


def _via_pyarrow_objects(objects: list[bytes]) -> pd.DataFrame | None:
    """The frame `_via_pyarrow` gives for the joined lines, reading object by object; None
    when that cannot be sure to be the same frame (the caller then reads the joined lines)."""
    import pyarrow as pa

    sources = []
    first_line = None  # the joined lines' first line: the first non-empty object's
    for data in objects:
        if first_line is None:
            body = decompress(data)  # as the joined path would: same errors, same first line
            if not body:
                continue
            end = body.find(b"\n")
            first_line = body[:end] if end >= 0 else body
            sources.append(pa.BufferReader(body))
        elif is_gzip(data):
            sources.append(pa.input_stream(pa.py_buffer(data), compression="gzip"))
        elif data:
            sources.append(pa.BufferReader(data))
        # (an empty object has no lines)
    # Objects read side by side: a gzip stream is inflated by one thread, and pyarrow releases
    # the GIL while it reads (measured: 139 ms one after another, 104 ms on 2 threads).
    workers = min(len(sources), pa.cpu_count())
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            tables = list(pool.map(_read_json, sources))
    else:
        tables = [_read_json(source) for source in sources]
    if first_line is None or not any(t.num_rows for t in tables):
        return None  # nothing, or only blank lines: the joined path says what that gives
    # "default" promotion fills the columns an object lacks with nulls and nothing else: a
    # column typed differently in two objects raises, and the joined lines decide its type.
    table = pa.concat_tables(tables, promote_options="default")
    return table.select(_line_order(first_line, table.column_names)).to_pandas()


def _via_records(data: bytes) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for number, line in enumerate(data.split(b"\n"), start=1):
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


def load_parsed(objects: Iterable[bytes]) -> pd.DataFrame:
    """One DataFrame of every line of the given parsed-bucket objects (gzip or plain bytes).

    `arrival_time` and `device_time` are `datetime64[ms, UTC]` (NaT where the device sent no
    clock); strings are pandas strings, numbers int64/float64, as the JSON holds them.
    """
    import pyarrow as pa

    objects = list(objects)
    try:
        frame = _via_pyarrow_objects(objects)
    except (pa.ArrowException, OSError):  # refused or undecodable: the joined path says how
        frame = None
    return frame if frame is not None else _load_joined(objects)


def _load_joined(objects: list[bytes]) -> pd.DataFrame:
    """Every object's lines joined and read at once; the dict path when pyarrow refuses them."""
    import pyarrow as pa

    data = _joined_lines(objects)
    if not data.strip():
        return _empty_frame()
    try:
        return _via_pyarrow(data)
    except pa.ArrowInvalid:
        return _via_records(data)
