"""When a delivery stream writes an object, and which records go in it. Pure logic.

API reference, BufferingHints: "The buffering option … is treated as a hint. Firehose delivers
when the size (SizeInMBs, 1–128, default 5) or the interval (IntervalInSeconds, 0–900,
default 300) is reached, whichever comes first"; the size is counted on the data as received,
before compression (guide: "basic-deliver"). The interval runs from the arrival of the oldest
record still buffered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from emulator.firehose.config import BufferingHints

SIZE = "size"
INTERVAL = "interval"


@dataclass(frozen=True)
class BufferedRecord:
    """A record as the stream holds it: its id, arrival (epoch ms) and data."""

    record_id: str
    arrival_ms: int
    data: bytes
    end_offset: int = 0  # where its spool entry ends; the checkpoint after delivering it


def flush_reason(
    records: Sequence[BufferedRecord], now_ms: int, hints: BufferingHints
) -> str | None:
    """ "size" or "interval" if an object is due now, else None."""
    if not records:
        return None
    if sum(len(r.data) for r in records) >= hints.size_bytes:
        return SIZE
    if now_ms - records[0].arrival_ms >= hints.interval_s * 1000:
        return INTERVAL
    return None


def batch_length(records: Sequence[BufferedRecord], hints: BufferingHints) -> int:
    """How many of the oldest records fill one object: up to the size hint, at least one."""
    total = 0
    for count, record in enumerate(records):
        if count and total + len(record.data) > hints.size_bytes:
            return count
        total += len(record.data)
    return len(records)


def next_due_ms(records: Sequence[BufferedRecord], hints: BufferingHints) -> int | None:
    """When the interval of the oldest buffered record expires (epoch ms)."""
    if not records:
        return None
    return records[0].arrival_ms + int(hints.interval_s * 1000)
