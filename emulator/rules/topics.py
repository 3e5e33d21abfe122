"""MQTT topic filters in a rule's FROM clause: validation and matching.

`+` matches one whole level; `#` matches the remaining levels and, in a rule, at least one of
them: 'topic/#' does not match 'topic' ("iot-sql-from"). Wildcards in the first level do not
match topics that start with '$' (MQTT 3.1.1, 4.7.2).
"""

from __future__ import annotations

from collections.abc import Callable


def topic_matcher(topic_filter: str) -> Callable[[str], bool]:
    levels = topic_filter.split("/")
    if "#" not in levels and "+" not in levels:
        return topic_filter.__eq__
    prefix_len = len(levels) - 1 if levels[-1] == "#" else len(levels)

    def matches(topic: str) -> bool:
        parts = topic.split("/")
        if levels[-1] == "#":
            # '#' matches one or more levels here: 'a/#' does not match 'a' ("iot-sql-from").
            if len(parts) <= prefix_len:
                return False
        elif len(parts) != prefix_len:
            return False
        # Wildcards in the first level do not match topics that start with '$' (MQTT 4.7.2).
        if parts[0].startswith("$") and levels[0] in ("+", "#"):
            return False
        for want, got in zip(levels[:prefix_len], parts, strict=False):
            if want != "+" and want != got:
                return False
        return True

    return matches


def check_topic_filter(topic_filter: str) -> str | None:
    """Why `topic_filter` is not a valid MQTT topic filter, or None."""
    if not topic_filter:
        return "the topic filter is empty"
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be a whole level and the last one"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None
