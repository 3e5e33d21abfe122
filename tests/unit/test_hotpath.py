"""pipeline.hotpath.next_to_cold: the hot path's latest reading per equipment next to the
newest parsed S3 row (what 05 shows when HOT_PATH_TABLE is on)."""

from __future__ import annotations

import pandas as pd

from pipeline import hotpath


def test_each_equipment_shows_the_hot_reading_next_to_the_newest_parsed_row():
    hot = pd.DataFrame(
        {
            "topic": ["t/root/pump-01", "t/root/fan-02"],
            "received_at": pd.to_datetime([2_000, 1_000], unit="ms", utc=True),
            "sequence": [9, 4],
            "temperature_c": [48.0, 30.5],
        }
    )
    parsed = pd.DataFrame(
        {
            "equipment_id": ["pump-01", "pump-01", "fan-02", "valve-03"],
            "sequence": [9, 8, 3, 1],
            "temperature_c": [48.0, 47.0, 30.0, 12.0],
        }
    )
    side = hotpath.next_to_cold(hot, parsed)
    assert side.loc["pump-01", ["sequence", "sequence (S3)"]].tolist() == [9, 9]
    # the hot path is ahead of S3 for fan-02 (its last reading is not in this run's objects)
    assert side.loc["fan-02", ["sequence", "sequence (S3)"]].tolist() == [4, 3]
    # equipment only in S3 (the hot path was off when it published) has no hot reading
    assert pd.isna(side.loc["valve-03", "received_at"])
    assert side.loc["valve-03", "temperature_c (S3)"] == 12.0
