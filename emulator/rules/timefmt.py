"""Date/time patterns for parse_time() (Joda-Time) and time_to_epoch() (JDK 11).

parse_time formats epoch milliseconds with a Joda-Time pattern
(https://www.joda.org/joda-time/apidocs/org/joda/time/format/DateTimeFormat.html);
time_to_epoch parses a timestamp with a java.time DateTimeFormatter pattern
(https://docs.oracle.com/en/java/javase/11/docs/api/java.base/java/time/format/DateTimeFormatter.html).
Both read pattern letters in runs (`yyyy`, `MM`, ...) with text in single quotes (`''` is a
quote). A letter this module does not know makes the result Undefined rather than a guess.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emulator.rules.values import UNDEFINED

_MONTHS = list(calendar.month_name)[1:]
_DAYS = list(calendar.day_name)  # Monday first, as datetime.weekday()
_OFFSET = re.compile(r"(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?")


def _tokens(pattern: str) -> list[tuple[str, int]] | None:
    """[(letter, count)] and [("'", literal)] pieces; None for an unclosed quote."""
    out: list[tuple[str, Any]] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = i + 1
            text = []
            while True:
                if end >= len(pattern):
                    return None
                if pattern[end] == "'":
                    if end + 1 < len(pattern) and pattern[end + 1] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(pattern[end])
                end += 1
            out.append(("'", "".join(text) if end > i + 1 else "'"))
            i = end + 1
            continue
        j = i
        while j < len(pattern) and pattern[j] == char:
            j += 1
        if char.isalpha():
            out.append((char, j - i))
        else:
            out.append(("'", pattern[i:j]))
        i = j
    return out


def zone_of(name: str) -> tzinfo | None:
    """A time zone from an id (America/Belize), UTC/GMT/Z or an offset (+01:00, UTC+01:00)."""
    if name.upper() in ("UTC", "GMT", "Z", "UT"):
        return UTC
    match = _OFFSET.fullmatch(name)
    if match:
        sign, hours, minutes, seconds = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
        if delta > timedelta(hours=18):
            return None
        return timezone(-delta if sign == "-" else delta)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name):
        return None  # a zone name never becomes a path outside the zone database
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_text(moment: datetime, colon: bool) -> str:
    offset = moment.utcoffset() or timedelta(0)
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total) // 60, 60)
    return f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"


def _joda_field(letter: str, count: int, moment: datetime, zone_name: str) -> str | None:
    number = {
        "y": moment.year,
        "Y": moment.year,
        "M": moment.month,
        "d": moment.day,
        "H": moment.hour,
        "k": moment.hour or 24,
        "K": moment.hour % 12,
        "h": (moment.hour % 12) or 12,
        "m": moment.minute,
        "s": moment.second,
        "D": moment.timetuple().tm_yday,
        "e": moment.isoweekday(),
        "C": moment.year // 100,
    }
    if letter in ("y", "Y") and count == 2:
        return f"{moment.year % 100:02d}"
    if letter == "M" and count >= 3:
        name = _MONTHS[moment.month - 1]
        return name if count >= 4 else name[:3]
    if letter == "E":
        name = _DAYS[moment.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "a":
        return "AM" if moment.hour < 12 else "PM"
    if letter == "G":
        return "AD"
    if letter == "S":
        return f"{moment.microsecond // 1000:03d}"[:count].ljust(count, "0")
    if letter == "z":
        # Joda prints the short name (CST); the long form (zzzz) is printed as the zone id.
        return (moment.tzname() or zone_name) if count < 4 else zone_name
    if letter == "Z":
        if count >= 3:
            return zone_name
        return _offset_text(moment, colon=count == 2)
    if letter in number:
        return str(number[letter]).rjust(count, "0")
    return None


def format_time(pattern: str, epoch_ms: int, zone_name: str) -> Any:
    """parse_time(): `epoch_ms` in `zone_name` as the Joda-Time `pattern` prints it."""
    tokens = _tokens(pattern)
    zone = zone_of(zone_name)
    if tokens is None or zone is None:
        return UNDEFINED
    try:
        moment = datetime.fromtimestamp(epoch_ms / 1000, tz=zone)
    except (OverflowError, OSError, ValueError):
        return UNDEFINED
    out = []
    for letter, count in tokens:
        if letter == "'":
            out.append(count)
            continue
        text = _joda_field(letter, count, moment, zone_name if zone is not UTC else "UTC")
        if text is None:
            return UNDEFINED
        out.append(text)
    return "".join(out)


# time_to_epoch ------------------------------------------------------------------------------
def _number(name: str, count: int, widest: int = 2) -> str:
    width = f"{{{count}}}" if count > 1 else f"{{1,{widest}}}"
    return f"(?P<{name}>\\d{width})"


def _names(values: list[str], short: bool) -> str:
    return "|".join(re.escape(v[:3] if short else v) for v in values)


def _jdk_regex(tokens: list[tuple[str, Any]]) -> str | None:
    parts = []
    seen: set[str] = set()
    for letter, count in tokens:
        if letter == "'":
            parts.append(re.escape(count))
            continue
        if letter in seen and letter not in "'":
            return None
        seen.add(letter)
        if letter in ("y", "u"):
            parts.append(
                "(?P<yy>\\d{2})" if count == 2 else f"(?P<year>[+-]?\\d{{{max(count, 1)},9}})"
            )
        elif letter in ("M", "L"):
            if count >= 4:
                parts.append(f"(?P<monthname>{_names(_MONTHS, False)})")
            elif count == 3:
                parts.append(f"(?P<monthabbr>{_names(_MONTHS, True)})")
            else:
                parts.append(_number("month", count))
        elif letter == "d":
            parts.append(_number("day", count))
        elif letter in ("H", "h", "K", "k"):
            parts.append(_number(f"hour_{letter}", count))
        elif letter == "m":
            parts.append(_number("minute", count))
        elif letter == "s":
            parts.append(_number("second", count))
        elif letter == "S":
            parts.append(f"(?P<fraction>\\d{{{count}}})")
        elif letter == "a":
            parts.append("(?P<ampm>AM|PM|am|pm)")
        elif letter == "E":
            parts.append(f"(?:{_names(_DAYS, count < 4)})")
        elif letter in ("z", "V"):
            parts.append("(?P<zone>[A-Za-z][A-Za-z0-9_/+\\-:]*)")
        elif letter in ("X", "x", "Z", "O"):
            parts.append("(?P<offset>Z|(?:GMT)?[+-]\\d{1,2}(?::?\\d{2})?(?::?\\d{2})?)")
        else:
            return None
    return "".join(parts)


def parse_epoch_ms(timestamp: str, pattern: str) -> Any:
    """time_to_epoch(): milliseconds since the epoch, UTC when the text names no zone."""
    tokens = _tokens(pattern)
    if tokens is None:
        return UNDEFINED
    regex = _jdk_regex(tokens)
    if regex is None:
        return UNDEFINED
    match = re.fullmatch(regex, timestamp)
    if match is None:
        return UNDEFINED
    fields = {k: v for k, v in match.groupdict().items() if v is not None}
    try:
        if "yy" in fields:
            year = 2000 + int(fields["yy"])
        else:
            year = int(fields["year"])
        if "monthname" in fields:
            month = _MONTHS.index(fields["monthname"]) + 1
        elif "monthabbr" in fields:
            month = [m[:3] for m in _MONTHS].index(fields["monthabbr"]) + 1
        else:
            month = int(fields["month"])
        day = int(fields["day"])
        hour = 0
        if "hour_H" in fields:
            hour = int(fields["hour_H"])
        elif "hour_k" in fields:
            hour = int(fields["hour_k"]) % 24
        elif "hour_h" in fields or "hour_K" in fields:
            if "ampm" not in fields:
                return UNDEFINED  # 12-hour clock without AM/PM cannot be resolved
            hour = int(fields.get("hour_h", fields.get("hour_K"))) % 12
            hour += 12 if fields["ampm"].upper() == "PM" else 0
        fraction = fields.get("fraction", "")
        micro = int((fraction + "000000")[:6]) if fraction else 0
        zone: tzinfo | None = UTC
        if "zone" in fields:
            zone = zone_of(fields["zone"])
        elif "offset" in fields:
            zone = zone_of(fields["offset"].removeprefix("GMT"))
        if zone is None:
            return UNDEFINED
        moment = datetime(
            year,
            month,
            day,
            hour,
            int(fields.get("minute", 0)),
            int(fields.get("second", 0)),
            micro,
            tzinfo=zone,
        )
    except (KeyError, ValueError, OverflowError):
        return UNDEFINED
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400_000) + (delta.seconds * 1000) + delta.microseconds // 1000
