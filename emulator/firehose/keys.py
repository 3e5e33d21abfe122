"""S3 object keys as Firehose names them: prefix expressions and the object-name suffix.

Pure functions, no I/O. Sources (Firehose developer guide): "s3-prefixes" (the `!{timestamp:…}`
and `!{firehose:…}` namespaces and their semantic rules) and "s3-object-name" (the suffix
`<stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><extension>`, UTC by default).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# "If you specify a prefix that doesn't contain a timestamp namespace expression, Firehose
# appends the expression !{timestamp:yyyy/MM/dd/HH/} to the value in the Prefix field."
DEFAULT_TIME_PATTERN = "yyyy/MM/dd/HH/"
MAX_EVALUATED_PREFIX = 512
ERROR_OUTPUT_TYPES = (
    "processing-failed",
    "elasticsearch-failed",
    "splunk-failed",
    "format-conversion-failed",
)

_EXPRESSION = re.compile(r"!\{([^:{}]*):([^{}]*)\}")


class PrefixError(ValueError):
    """A Prefix or ErrorOutputPrefix that Firehose would reject; the message says why."""


def random_string() -> str:
    """Eleven characters, like the guide's example `046b6c7f-0b` (the start of a UUID)."""
    return str(uuid.uuid4())[:11]


# Java DateTimeFormatter ----------------------------------------------------------------------
_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _field(letter: str, count: int, when: datetime) -> str:
    def num(value: int) -> str:
        return str(value).zfill(count)

    if letter in "yu":
        # Java: "yy" is the two-digit year; any other count pads the full year.
        return str(when.year % 100).zfill(2) if count == 2 else num(when.year)
    if letter in "ML":
        if count >= 4:
            return _MONTHS[when.month - 1]
        if count == 3:
            return _MONTHS[when.month - 1][:3]
        return num(when.month)
    if letter == "d":
        return num(when.day)
    if letter == "D":
        return num(when.timetuple().tm_yday)
    if letter == "H":
        return num(when.hour)
    if letter == "h":
        return num((when.hour % 12) or 12)
    if letter == "k":
        return num(when.hour or 24)
    if letter == "K":
        return num(when.hour % 12)
    if letter == "m":
        return num(when.minute)
    if letter == "s":
        return num(when.second)
    if letter == "S":
        # Fraction of second, truncated to `count` digits.
        return f"{when.microsecond:06d}{'0' * max(0, count - 6)}"[:count]
    if letter == "a":
        return "AM" if when.hour < 12 else "PM"
    if letter == "E":
        name = _DAYS[when.weekday()]
        return name if count >= 4 else name[:3]
    if letter == "e":
        return num(when.isoweekday())
    if letter == "w":
        return num(when.isocalendar()[1])
    raise PrefixError(
        f"the pattern letter '{letter}' is not supported by the local emulator's "
        "DateTimeFormatter (use y, M, d, D, H, h, k, K, m, s, S, a, E, e, w and quoted text)"
    )


# Text in single quotes, '' inside it a quote; quotes around nothing ('') are a quote too. As
# DateTimeFormatterBuilder.appendPattern reads them: '''' is one quote, not two.
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def format_java(pattern: str, when: datetime) -> str:
    """Format `when` with a Java DateTimeFormatter pattern (letters, 'quoted text', '')."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            quoted = _QUOTED.match(pattern, i)
            if quoted is None:
                raise PrefixError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append(quoted.group(1).replace("''", "'") or "'")
            i = quoted.end()
        elif char.isascii() and char.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == char:
                j += 1
            out.append(_field(char, j - i, when))
            i = j
        elif char in "[]{}#":
            raise PrefixError(f"'{char}' is reserved in DateTimeFormatter pattern {pattern!r}")
        else:
            out.append(char)
            i += 1
    return "".join(out)


# Prefix evaluation ------------------------------------------------------------------------------
def has_expressions(prefix: str | None) -> bool:
    return bool(prefix) and "!{" in prefix


def _has_timestamp(prefix: str) -> bool:
    return any(m.group(1) == "timestamp" for m in _EXPRESSION.finditer(prefix))


def evaluate(
    prefix: str,
    when: datetime,
    *,
    error_output_type: str | None = None,
    random: Callable[[], str] = random_string,
    partition_keys: dict[str, dict[str, str]] | None = None,
) -> str:
    """Evaluate every `!{namespace:value}` expression of `prefix` at instant `when`.

    `partition_keys` (namespace -> key -> value) holds a record's dynamic partitioning keys."""

    def replace(match: re.Match[str]) -> str:
        namespace, value = match.group(1), match.group(2)
        if namespace == "timestamp":
            return format_java(value, when)
        if namespace == "firehose":
            if value == "random-string":
                # "every instance evaluates to a new random string"
                return random()
            if value == "error-output-type":
                if error_output_type is None:
                    raise PrefixError(
                        "!{firehose:error-output-type} can only be used in ErrorOutputPrefix"
                    )
                return error_output_type
            raise PrefixError(
                f"unknown firehose namespace value {value!r}: use random-string or "
                "error-output-type"
            )
        if namespace in ("partitionKeyFromQuery", "partitionKeyFromLambda"):
            if partition_keys is not None:
                found = partition_keys.get(namespace, {})
                if value not in found:
                    raise PrefixError(f"the record has no partition key {value!r} ({namespace})")
                return found[value]
            raise PrefixError(
                f"!{{{namespace}:…}} can only be used with dynamic partitioning "
                "(DynamicPartitioningConfiguration Enabled)"
            )
        raise PrefixError(
            f"unknown namespace {namespace!r} in {match.group(0)!r}: use timestamp or firehose"
        )

    evaluated = _EXPRESSION.sub(replace, prefix)
    leftover = _EXPRESSION.sub("", prefix)
    if "!{" in leftover:
        raise PrefixError(
            f"the sequence '!{{' can only appear in !{{namespace:value}} expressions: {prefix!r}"
        )
    if len(evaluated) > MAX_EVALUATED_PREFIX:
        raise PrefixError(
            f"the evaluated prefix is {len(evaluated)} characters; Firehose allows "
            f"{MAX_EVALUATED_PREFIX}"
        )
    return evaluated


def destination_prefix(
    prefix: str | None, when: datetime, random: Callable[[], str] = random_string
) -> str:
    """The evaluated `Prefix` for delivered (or backed-up) data."""
    prefix = prefix or ""
    if not _has_timestamp(prefix):
        prefix += "!{timestamp:" + DEFAULT_TIME_PATTERN + "}"
    return evaluate(prefix, when, random=random)


def error_prefix(
    prefix: str | None,
    error_output_prefix: str | None,
    when: datetime,
    error_output_type: str = "processing-failed",
    random: Callable[[], str] = random_string,
) -> str:
    """The evaluated `ErrorOutputPrefix` for records that failed (e.g. processing-failed).

    Without ErrorOutputPrefix, the guide's rule: `<Prefix><error-output-type>/yyyy/MM/dd/HH/`
    (observed keys read `processing-failed/2019/11/29/09/` for an empty Prefix). A static
    ErrorOutputPrefix is treated the same way; one with expressions must name
    `!{firehose:error-output-type}` and is evaluated as written.
    """
    if error_output_prefix and has_expressions(error_output_prefix):
        if "!{firehose:error-output-type}" not in error_output_prefix:
            raise PrefixError(
                "an ErrorOutputPrefix with expressions must include at least one "
                "!{firehose:error-output-type}"
            )
        return evaluate(
            error_output_prefix, when, error_output_type=error_output_type, random=random
        )
    base = error_output_prefix or prefix or ""
    if has_expressions(base):
        raise PrefixError("ErrorOutputPrefix can't be null when Prefix contains expressions")
    template = base + "!{firehose:error-output-type}/!{timestamp:" + DEFAULT_TIME_PATTERN + "}"
    return evaluate(template, when, error_output_type=error_output_type, random=random)


def object_name(
    evaluated_prefix: str,
    stream_name: str,
    version: str | int,
    when: datetime,
    extension: str = "",
    object_uuid: str | None = None,
) -> str:
    """`<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><extension>`."""
    suffix_time = when.strftime("%Y-%m-%d-%H-%M-%S")
    return (
        f"{evaluated_prefix}{stream_name}-{version}-{suffix_time}-"
        f"{object_uuid or uuid.uuid4()}{extension}"
    )


def arrival_instant(epoch_ms: int, time_zone: str | None = None) -> datetime:
    """The instant used for keys: the oldest record's arrival, in UTC or CustomTimeZone."""
    zone = ZoneInfo(time_zone) if time_zone and time_zone != "UTC" else UTC
    return datetime.fromtimestamp(epoch_ms / 1000, tz=zone)
