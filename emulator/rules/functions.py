"""IoT SQL's built-in functions that depend only on their arguments.

Each entry maps a lower-case function name to a callable taking the evaluated arguments. A wrong
number or wrong type of arguments gives `Undefined`, as "iot-sql-data-types" documents ("Functions
called with invalid arguments ... return Undefined"). Functions that read the message (topic(),
clientid(), timestamp(), principal(), encode(*), get_user_property, ...) live in `sql.py`.
Source: AWS IoT developer guide, "iot-sql-functions".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from emulator.rules.values import (
    UNDEFINED,
    is_number,
    normalize,
    to_decimal,
    to_int,
    to_string,
)

Function = Callable[..., Any]


def _arity(low: int, high: int | None = None) -> Callable[[Function], Function]:
    high = low if high is None else high

    def wrap(fn: Function) -> Function:
        def checked(*args: Any) -> Any:
            if not low <= len(args) <= high:
                return UNDEFINED
            return fn(*args)

        checked.__name__ = fn.__name__
        return checked

    return wrap


def _number_arg(value: Any) -> Any:
    if type(value) is bool or value is None:
        return UNDEFINED
    return to_decimal(value)


def _math1(op: Callable[[float], float]) -> Function:
    """Double-precision math on one numeric argument (strings convert; others: Undefined)."""

    @_arity(1)
    def fn(value: Any) -> Any:
        number = _number_arg(value)
        if number is UNDEFINED:
            return UNDEFINED
        try:
            return normalize(op(float(number)))
        except (ValueError, OverflowError):
            return UNDEFINED

    return fn


@_arity(1)
def abs_(value: Any) -> Any:
    number = _number_arg(value)
    return UNDEFINED if number is UNDEFINED else abs(number)


def _rounding(op: Callable[[float], int]) -> Function:
    @_arity(1)
    def fn(value: Any) -> Any:
        number = _number_arg(value)
        if number is UNDEFINED:
            return UNDEFINED
        if type(number) is int:
            return number
        return op(number) if math.isfinite(number) else UNDEFINED

    return fn


def _round_half_up(number: float) -> int:
    # "iot-sql-functions" round(): 0.5 rounds up in magnitude: round(-1.5) = -2.
    return int(math.copysign(math.floor(abs(number) + 0.5), number))


def _arith(left: Any, right: Any, op: Callable[[Any, Any], Any]) -> Any:
    a, b = _number_arg(left), _number_arg(right)
    if a is UNDEFINED or b is UNDEFINED or a is None or b is None:
        return UNDEFINED
    try:
        return normalize(op(a, b))
    except (ZeroDivisionError, ValueError, OverflowError):
        return UNDEFINED


def java_mod(a: Any, b: Any) -> Any:
    """Remainder with the sign of the dividend (Java's %), Int for two Ints."""
    if type(a) is int and type(b) is int:
        if b == 0:
            raise ZeroDivisionError
        return int(math.fmod(a, b)) if abs(a) < 2**52 else a - b * int(a / b)
    return math.fmod(a, b)


@_arity(2)
def mod(left: Any, right: Any) -> Any:
    return _arith(left, right, java_mod)


@_arity(2)
def power(left: Any, right: Any) -> Any:
    return _arith(left, right, lambda a, b: math.pow(float(a), float(b)))


@_arity(2)
def trunc(value: Any, places: Any) -> Any:
    number = _number_arg(value)
    digits = to_int(places, cast=True) if is_number(places) or type(places) is str else UNDEFINED
    if number is UNDEFINED or number is None or digits is UNDEFINED:
        return UNDEFINED
    if type(number) is int:
        return number
    digits = min(max(digits, 0), 34)
    factor = 10**digits
    return normalize(math.trunc(number * factor) / factor)


def _string_fn(op: Callable[[str], Any]) -> Function:
    @_arity(1)
    def fn(value: Any) -> Any:
        text = to_string(value)
        return UNDEFINED if text is UNDEFINED else op(text)

    return fn


def _strings(*values: Any) -> list[str] | None:
    converted = [to_string(v) for v in values]
    return None if any(v is UNDEFINED for v in converted) else converted


@_arity(2)
def startswith(text: Any, prefix: Any) -> Any:
    pair = _strings(text, prefix)
    return UNDEFINED if pair is None else pair[0].startswith(pair[1])


@_arity(2)
def endswith(text: Any, suffix: Any) -> Any:
    pair = _strings(text, suffix)
    return UNDEFINED if pair is None else pair[0].endswith(pair[1])


@_arity(2)
def indexof(text: Any, part: Any) -> Any:
    pair = _strings(text, part)
    return UNDEFINED if pair is None else pair[0].find(pair[1])


@_arity(3)
def replace(text: Any, old: Any, new: Any) -> Any:
    args = _strings(text, old, new)
    return UNDEFINED if args is None else args[0].replace(args[1], args[2])


@_arity(2, 3)
def substring(text: Any, start: Any, end: Any = None) -> Any:
    string = to_string(text)
    begin = to_int(start, cast=True) if type(start) is not bool else UNDEFINED
    if string is UNDEFINED or begin is UNDEFINED:
        return UNDEFINED
    size = len(string)
    begin = min(max(begin, 0), size)
    if end is None:
        return string[begin:]
    stop = to_int(end, cast=True) if type(end) is not bool else UNDEFINED
    if stop is UNDEFINED:
        return UNDEFINED
    stop = min(max(stop, 0), size)
    return string[begin:stop] if begin < stop else ""


def _pad(left: bool) -> Function:
    @_arity(2)
    def fn(text: Any, count: Any) -> Any:
        string = to_string(text)
        if type(count) is bool or not (is_number(count) or type(count) is str):
            return UNDEFINED
        number = to_int(count, cast=True)
        if string is UNDEFINED or number is UNDEFINED:
            return UNDEFINED
        spaces = " " * min(max(number, 0), 1000)
        return spaces + string if left else string + spaces

    return fn


def concat(*args: Any) -> Any:
    # "iot-sql-functions" concat(): arrays win; else the string forms of all arguments.
    if not args:
        return UNDEFINED
    if len(args) == 1:
        return args[0]
    if any(type(a) is list for a in args):
        result: list[Any] = []
        for arg in args:
            if type(arg) is list:
                result.extend(arg)
            else:
                result.append(arg)
        return result
    strings = _strings(*args)
    return UNDEFINED if strings is None else "".join(strings)


@_arity(2)
def get(collection: Any, key: Any) -> Any:
    kind = type(collection)
    if kind is dict:
        return collection.get(key, UNDEFINED) if type(key) is str else UNDEFINED
    if kind is list or kind is str:
        index = to_int(key)
        if type(index) is not int or not 0 <= index < len(collection):
            return UNDEFINED
        return collection[index]
    return UNDEFINED


@_arity(1)
def is_null(value: Any) -> bool:
    return value is None


@_arity(1)
def is_undefined(value: Any) -> bool:
    return value is UNDEFINED


@_arity(2)
def nanvl(value: Any, fallback: Any) -> Any:
    return fallback if type(value) is float and math.isnan(value) else value


@_arity(1)
def chr_(value: Any) -> Any:
    code = to_int(value, cast=True) if type(value) is not bool else UNDEFINED
    if type(code) is not int or not 0 <= code < 128:
        return UNDEFINED
    return chr(code)


@_arity(2)
def decode(value: Any, scheme: Any) -> Any:
    # "iot-sql-functions" decode(): a JSON document becomes addressable; else a string;
    # Null when the value cannot be decoded.
    if type(scheme) is not str or scheme.lower() != "base64" or type(value) is not str:
        return UNDEFINED
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _hash(name: str) -> Function:
    return _string_fn(lambda text: hashlib.new(name, text.encode("utf-8")).hexdigest())


@_arity(1)
def numbytes(value: Any) -> Any:
    text = to_string(value)
    return UNDEFINED if text is UNDEFINED else len(text.encode("utf-8"))


@_arity(2)
def regexp_matches(text: Any, pattern: Any) -> Any:
    args = _strings(text, pattern)
    if args is None:
        return UNDEFINED
    try:
        return re.search(args[1], args[0]) is not None
    except re.error:
        return UNDEFINED


@_arity(3)
def regexp_replace(text: Any, pattern: Any, replacement: Any) -> Any:
    args = _strings(text, pattern, replacement)
    if args is None:
        return UNDEFINED
    try:
        # Java's $1 group references become Python's \1.
        return re.sub(args[1], re.sub(r"\$(\d+)", r"\\\1", args[2]), args[0])
    except re.error:
        return UNDEFINED


@_arity(2)
def regexp_substr(text: Any, pattern: Any) -> Any:
    args = _strings(text, pattern)
    if args is None:
        return UNDEFINED
    try:
        found = re.search(args[1], args[0])
    except re.error:
        return UNDEFINED
    return found.group(0) if found else ""


def _bitwise(op: Callable[[int, int], int]) -> Function:
    @_arity(2)
    def fn(left: Any, right: Any) -> Any:
        a, b = to_int(left), to_int(right)
        if type(a) is not int or type(b) is not int:
            return UNDEFINED
        return op(a, b)

    return fn


@_arity(1)
def bitnot(value: Any) -> Any:
    number = to_int(value)
    return ~number if type(number) is int else UNDEFINED


# Joda-Time pattern letters -> strftime, for parse_time (the common subset).
_JODA = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("hh", "%I"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
    ("a", "%p"),
    ("Z", "%z"),
    ("z", "%Z"),
    ("G", "AD"),
]


def _joda_format(pattern: str, moment: datetime) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.find("'", i + 1)
            end = len(pattern) if end < 0 else end
            out.append(pattern[i + 1 : end] or "'")
            i = end + 1
            continue
        for token, fmt in _JODA:
            if pattern.startswith(token, i):
                if token == "SSS":
                    out.append(f"{moment.microsecond // 1000:03d}")
                elif token == "G":
                    out.append("AD")
                else:
                    out.append(moment.strftime(fmt))
                i += len(token)
                break
        else:
            if pattern[i] == "d":
                out.append(str(moment.day))
            elif pattern[i] == "M":
                out.append(str(moment.month))
            elif pattern[i] == "H":
                out.append(str(moment.hour))
            else:
                out.append(pattern[i])
            i += 1
    return "".join(out)


@_arity(2, 3)
def parse_time(pattern: Any, millis: Any, zone: Any = "UTC") -> Any:
    epoch_ms = to_int(millis)
    if type(pattern) is not str or type(epoch_ms) is not int or type(zone) is not str:
        return UNDEFINED
    try:
        tz = UTC if zone.upper() == "UTC" else ZoneInfo(zone)
    except Exception:
        return UNDEFINED
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=tz)
    return _joda_format(pattern, moment)


FUNCTIONS: dict[str, Function] = {
    "abs": abs_,
    "acos": _math1(math.acos),
    "asin": _math1(math.asin),
    "atan": _math1(math.atan),
    "atan2": _arity(2)(lambda y, x: _arith(y, x, lambda a, b: math.atan2(a, b))),
    "bitand": _bitwise(lambda a, b: a & b),
    "bitor": _bitwise(lambda a, b: a | b),
    "bitxor": _bitwise(lambda a, b: a ^ b),
    "bitnot": bitnot,
    "ceil": _rounding(math.ceil),
    "chr": chr_,
    "concat": concat,
    "cos": _math1(math.cos),
    "cosh": _math1(math.cosh),
    "decode": decode,
    "endswith": endswith,
    "exp": _math1(math.exp),
    "floor": _rounding(math.floor),
    "get": get,
    "indexof": indexof,
    "isnull": is_null,
    "isundefined": is_undefined,
    "length": _string_fn(len),
    "ln": _math1(math.log),
    "log": _math1(math.log10),
    "lower": _string_fn(str.lower),
    "lpad": _pad(left=True),
    "ltrim": _string_fn(lambda s: s.lstrip(" \t")),
    "md5": _hash("md5"),
    "mod": mod,
    "nanvl": nanvl,
    "newuuid": _arity(0)(lambda: str(uuid.uuid4())),
    "numbytes": numbytes,
    "parse_time": parse_time,
    "power": power,
    "rand": _arity(0)(random.random),
    "regexp_matches": regexp_matches,
    "regexp_replace": regexp_replace,
    "regexp_substr": regexp_substr,
    "remainder": mod,
    "replace": replace,
    "round": _rounding(_round_half_up),
    "rpad": _pad(left=False),
    "rtrim": _string_fn(lambda s: s.rstrip(" \t")),
    "sha1": _hash("sha1"),
    "sha224": _hash("sha224"),
    "sha256": _hash("sha256"),
    "sha384": _hash("sha384"),
    "sha512": _hash("sha512"),
    "sign": _math1(lambda x: (x > 0) - (x < 0)),
    "sin": _math1(math.sin),
    "sinh": _math1(math.sinh),
    "sqrt": _math1(math.sqrt),
    "startswith": startswith,
    "substring": substring,
    "tan": _math1(math.tan),
    "tanh": _math1(math.tanh),
    "trim": _string_fn(str.strip),
    "trunc": trunc,
    "upper": _string_fn(str.upper),
}
if "md2" in hashlib.algorithms_available:  # OpenSSL 3 usually has no MD2
    FUNCTIONS["md2"] = _hash("md2")

# Functions AWS documents that this emulator does not implement: refused at rule creation with
# the reason, rather than evaluated to a silent Undefined.
_CALLS_ANOTHER_SERVICE = "calls another AWS service, which this emulator does not do from SQL"
UNSUPPORTED_FUNCTIONS = {
    "aws_lambda": _CALLS_ANOTHER_SERVICE,
    "get_dynamodb": _CALLS_ANOTHER_SERVICE,
    "get_secret": _CALLS_ANOTHER_SERVICE,
    "get_thing_shadow": _CALLS_ANOTHER_SERVICE,
    "get_registry_data": _CALLS_ANOTHER_SERVICE,
    "machinelearning_predict": _CALLS_ANOTHER_SERVICE,
    "decode": "is supported only with the 'base64' scheme here",
    "transform": "is not implemented by this emulator",
    "time_to_epoch": "is not implemented by this emulator (JDK time patterns)",
    "md2": "is not available in this Python's OpenSSL",
}
