"""The optional hot path: the latest reading of each device topic, kept in DynamoDB by the
template's HotPathTopicRule (parameter HotPathTable=true), read back for 05 next to the S3 data.

Plain boto3 (Scan, paginated), so it reads the same table on AWS and on the emulator. A scan
reads the whole table: fine for one item per device topic, the table's size by design.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd

OUTPUT = "LatestReadingTableName"  # the template's output, present only with HotPathTable=true


def table_name(outputs: dict[str, str]) -> str | None:
    """The hot-path table of a deployed stack, or None when it was deployed without one."""
    return outputs.get(OUTPUT)


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals as int/float, recursively, for pandas."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def latest_readings(dynamodb: Any, table: str) -> pd.DataFrame:
    """One row per device topic: its latest reading, newest first, with `received_at` (when
    IoT Core received it) as a UTC timestamp."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    rows = [
        {name: _plain(deserializer.deserialize(v)) for name, v in item.items()}
        for page in dynamodb.get_paginator("scan").paginate(TableName=table)
        for item in page["Items"]
    ]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["received_at"] = pd.to_datetime(frame["received_at"], unit="ms", utc=True)
    first = ["topic", "received_at"]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    return frame.sort_values("received_at", ascending=False, ignore_index=True)


def next_to_cold(hot: pd.DataFrame, parsed: pd.DataFrame) -> pd.DataFrame:
    """Per equipment (the topic's last level, as in the parsed data): the hot path's latest
    reading next to the newest parsed S3 row of the analysed run. The hot table keeps the last
    reading of any run, so a device that published later than this run shows a newer one."""
    columns = ["sequence", "temperature_c"]
    hot = hot.assign(equipment_id=hot["topic"].str.rsplit("/", n=1).str[-1])
    hot = hot.set_index("equipment_id")[["received_at", *columns]]
    cold = parsed.sort_values("sequence").groupby("equipment_id").tail(1)
    cold = cold.set_index("equipment_id")[columns]
    cold = cold.rename(columns={c: f"{c} (S3)" for c in columns})
    return hot.join(cold, how="outer").sort_index()
