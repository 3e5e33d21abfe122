"""Buffering decisions: whichever of size and interval comes first (API: BufferingHints)."""

from __future__ import annotations

from emulator.firehose.buffering import (
    INTERVAL,
    SIZE,
    BufferedRecord,
    batch_length,
    flush_reason,
    next_due_ms,
)
from emulator.firehose.config import MIB, BufferingHints

HINTS = BufferingHints(size_bytes=1 * MIB, interval_s=60)


def records(sizes: list[int], arrival_ms: int = 1_000_000) -> list[BufferedRecord]:
    return [BufferedRecord(str(i), arrival_ms + i, b"x" * size) for i, size in enumerate(sizes)]


def test_nothing_buffered_is_never_due():
    assert flush_reason([], 10**12, HINTS) is None
    assert next_due_ms([], HINTS) is None


def test_small_fresh_buffer_waits():
    assert flush_reason(records([100]), 1_000_500, HINTS) is None
    assert next_due_ms(records([100]), HINTS) == 1_000_000 + 60_000


def test_interval_counts_from_the_oldest_record():
    assert flush_reason(records([100, 100]), 1_060_000, HINTS) == INTERVAL


def test_size_reached_flushes_before_the_interval():
    assert flush_reason(records([MIB // 2, MIB // 2]), 1_000_001, HINTS) == SIZE


def test_zero_interval_flushes_at_once():
    hints = BufferingHints(size_bytes=MIB, interval_s=0)
    assert flush_reason(records([1]), 1_000_000, hints) == INTERVAL


def test_batch_stops_before_exceeding_the_size_hint():
    assert batch_length(records([400_000, 400_000, 400_000]), HINTS) == 2


def test_batch_takes_at_least_one_record_even_if_larger_than_the_hint():
    hints = BufferingHints(size_bytes=10, interval_s=60)
    assert batch_length(records([50, 1]), hints) == 1


def test_buffering_hints_defaults_are_five_mib_and_300_seconds():
    hints = BufferingHints.from_config(None)
    assert hints.size_bytes == 5 * MIB and hints.interval_s == 300
    assert BufferingHints.from_config({"IntervalInSeconds": 0}).interval_s == 0
