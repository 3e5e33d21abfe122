"""`pipeline.analysis.parsed_dataset` reads Hive-partitioned Parquet objects over the
emulator's S3 with pyarrow: the partitions become columns, and a filter on the equipment reads
only that equipment's objects (partition pruning)."""

from __future__ import annotations

import io

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from pipeline.analysis import parsed_dataset
from pipeline.target import Target


def parquet(**columns: list) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def test_a_filter_on_the_equipment_reads_only_its_objects(aws, emulator, unique):
    # Given Parquet objects under equipment_id=<id>/dt=<day>/ as the stack's stream writes them
    bucket, s3 = f"pds-{unique}", aws("s3")
    s3.create_bucket(Bucket=bucket)
    layout = {
        "equipment_id=pump-01/dt=2026-12-05/a.parquet": parquet(temperature_c=[47.5, 48.0]),
        "equipment_id=pump-01/dt=2026-12-06/b.parquet": parquet(temperature_c=[49.0]),
        "equipment_id=press-02/dt=2026-12-05/c.parquet": parquet(temperature_c=[70.0]),
    }
    for key, body in layout.items():
        s3.put_object(Bucket=bucket, Key=f"dev/data/{key}", Body=body)
    session = boto3.Session(region_name=emulator.region)
    target = Target("local", emulator.region, emulator.endpoint_url, "", 0, "", session)

    # When the dataset is opened and filtered on one equipment
    dataset = parsed_dataset(target, bucket, "dev/data/")
    only = ds.field("equipment_id") == "pump-01"

    # Then the partitions are columns, and only that equipment's two objects are read
    assert {"equipment_id", "dt"} <= set(dataset.schema.names)
    assert len(list(dataset.get_fragments())) == 3
    fragments = list(dataset.get_fragments(filter=only))
    assert sorted(f.path.rsplit("/", 1)[-1] for f in fragments) == ["a.parquet", "b.parquet"]
    table = dataset.to_table(filter=only)
    assert sorted(table.column("temperature_c").to_pylist()) == [47.5, 48.0, 49.0]
    assert set(table.column("dt").to_pylist()) == {"2026-12-05", "2026-12-06"}
