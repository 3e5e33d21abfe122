"""The parsed row's reviewed layout, written out by hand (not read from pipeline.transform), so
that a test of the transform or of the analysis fails when the layout changes."""

from __future__ import annotations

# The columns every parsed row starts with, in this order: the topic, its levels, the
# equipment, then the two clocks.
LEADING_COLUMNS = ["topic", "topic_1", "topic_2", "equipment_id", "arrival_time", "device_time"]
