"""What Firehose delivered: the objects in the raw and parsed buckets, read and reconciled.

Firehose names each object `<prefix><stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>.gz` after the
arrival time of its oldest record (UTC), so the key alone tells when a batch started; the
object's size against the buffering hint tells whether size or the interval closed it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEY_TIME = re.compile(r"-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[0-9a-f-]{36}(\.[A-Za-z0-9.]+)?$")


@dataclass(frozen=True)
class DeliveredObject:
    bucket: str
    key: str
    size: int
    last_modified: datetime

    @property
    def batch_started(self) -> datetime | None:
        """The oldest record's arrival time, as Firehose wrote it into the key."""
        match = KEY_TIME.search(self.key)
        if not match:
            return None
        return datetime.strptime(match.group(1), "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)


def list_objects(s3: Any, bucket: str, prefix: str = "") -> list[DeliveredObject]:
    """Every object under `prefix`, oldest batch first."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found.append(DeliveredObject(bucket, item["Key"], item["Size"], item["LastModified"]))
    return sorted(found, key=lambda o: (o.batch_started or o.last_modified, o.key))


def read_object(s3: Any, obj: DeliveredObject) -> bytes:
    """The object's bytes as stored (still gzip-compressed for Firehose's GZIP objects)."""
    response = s3.get_object(Bucket=obj.bucket, Key=obj.key)
    return response["Body"].read()


def iter_bodies(s3: Any, objects: list[DeliveredObject]) -> Iterator[bytes]:
    for obj in objects:
        yield read_object(s3, obj)


def object_table(
    objects: list[DeliveredObject], lines: list[int] | None = None
) -> list[dict[str, Any]]:
    rows = []
    for i, obj in enumerate(objects):
        row = {
            "key": obj.key,
            "bytes": obj.size,
            "batch started (UTC)": obj.batch_started,
            "written": obj.last_modified,
        }
        if lines is not None:
            row["records"] = lines[i]
        rows.append(row)
    return rows


def flush_reason(uncompressed_bytes: int, buffer_size_mb: int) -> str:
    """Why Firehose closed a batch: 'size' when it reached the buffer size, else 'interval'."""
    return "size" if uncompressed_bytes >= buffer_size_mb * 1024 * 1024 else "interval"
