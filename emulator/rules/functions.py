"""IoT SQL's built-in functions that depend only on their arguments, and the registry of all.

Each entry maps a lower-case function name to a callable taking the evaluated arguments. A wrong
number or wrong type of arguments gives `Undefined`, as "iot-sql-data-types" documents ("Functions
called with invalid arguments ... return Undefined"). Functions that read the message (topic(),
clientid(), timestamp(), principal(), encode(*), get_user_properties, ...) live in `sql.py`.
Source: AWS IoT developer guide, "iot-sql-functions".
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import math
import random
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from emulator.constants import IOT_MESSAGE_MAX_BYTES
from emulator.rules.md2 import md2_hex
from emulator.rules.operators import arithmetic, numbers
from emulator.rules.service_functions import MACHINE_LEARNING_RETIRED, SERVICE_FUNCTIONS
from emulator.rules.timefmt import format_time, parse_epoch_ms
from emulator.rules.values import (
    DECIMAL_CONTEXT,
    UNDEFINED,
    dumps,
    from_double,
    is_number,
    normalize,
    parse_json,
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
    """Double-precision math on one numeric argument (strings convert; others: Undefined).

    "Decimal arguments are rounded to double precision before function application" and the
    result is "a Decimal value of double precision" ("iot-sql-functions", e.g. sinh()).
    """

    @_arity(1)
    def fn(value: Any) -> Any:
        number = _number_arg(value)
        if number is UNDEFINED or number is None:
            return UNDEFINED
        try:
            return from_double(op(float(number)))
        except (ValueError, OverflowError):
            return UNDEFINED

    return fn


@_arity(1)
def abs_(value: Any) -> Any:
    number = _number_arg(value)
    if number is UNDEFINED or number is None:
        return UNDEFINED
    return abs(number)


def _rounding(mode: str) -> Function:
    """ceil/floor/round: an Int from an Int, Decimal or numeric String; else Undefined."""

    @_arity(1)
    def fn(value: Any) -> Any:
        number = _number_arg(value)
        if number is UNDEFINED or number is None:
            return UNDEFINED
        if type(number) is int:
            return number
        return int(number.to_integral_value(rounding=mode))

    return fn


def java_mod(a: Any, b: Any) -> Any:
    """Remainder with the sign of the dividend (Java's %), Int for two Ints."""
    if type(a) is int and type(b) is int:
        if b == 0:
            raise ZeroDivisionError
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    # Decimal's % keeps the dividend's sign, as Java's BigDecimal.remainder does.
    return DECIMAL_CONTEXT.remainder(Decimal(a), Decimal(b))


# mod(): the arithmetic of the `%` operator ("iot-sql-functions", mod).
mod = _arity(2)(arithmetic(java_mod))


def _double_op(op: Callable[[float, float], float]) -> Function:
    """Two-argument math "rounded to double precision before function application"."""

    @_arity(2)
    def fn(left: Any, right: Any) -> Any:
        pair = numbers(left, right)
        if pair is None:
            return UNDEFINED
        try:
            return from_double(op(float(pair[0]), float(pair[1])))
        except (ValueError, OverflowError, ZeroDivisionError):
            return UNDEFINED

    return fn


@_arity(2)
def trunc(value: Any, places: Any) -> Any:
    # "iot-sql-functions" trunc(): places below 0 become 0, above 34 become 34, a non-Int
    # second argument is rounded down, and trailing zeroes are stripped from the result.
    number = _number_arg(value)
    digits = (
        to_int(places, cast=True) if type(places) is not bool and places is not None else UNDEFINED
    )
    if number is UNDEFINED or number is None or type(digits) is not int:
        return UNDEFINED
    if type(number) is int:
        return number
    digits = min(max(digits, 0), 34)
    try:
        cut = number.quantize(Decimal(1).scaleb(-digits), rounding=decimal.ROUND_DOWN)
    except decimal.InvalidOperation:  # more digits than the 34 of precision: nothing to cut
        cut = number
    if cut == cut.to_integral_value():
        cut = cut.quantize(Decimal(1))
    else:
        cut = cut.normalize()
    return normalize(cut)


def _sign(value: Any) -> Any:
    number = _number_arg(value)
    if number is UNDEFINED or number is None:
        return UNDEFINED
    return (number > 0) - (number < 0)


def _strings(*values: Any) -> list[str] | None:
    converted = [to_string(v) for v in values]
    return None if any(v is UNDEFINED for v in converted) else converted


def _string_fn(op: Callable[..., Any], count: int = 1) -> Function:
    """A function of `count` String arguments: each converted to a String, Undefined when one
    cannot be; an invalid regular expression (the regexp_* functions) also gives Undefined."""

    @_arity(count)
    def fn(*values: Any) -> Any:
        args = _strings(*values)
        if args is None:
            return UNDEFINED
        try:
            return op(*args)
        except re.error:
            return UNDEFINED

    return fn


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
    if not any(type(a) is str for a in args):
        return UNDEFINED  # the table lists no result without an Array or a String
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
    # "iot-sql-functions" nanvl(): Undefined, Null and a NaN Decimal give the second argument.
    if value is UNDEFINED or value is None:
        return fallback
    if (type(value) is Decimal and value.is_nan()) or (type(value) is float and math.isnan(value)):
        return fallback
    return value


@_arity(2)
def get_or_default(value: Any, fallback: Any) -> Any:
    # "iot-sql-functions" get_or_default(): the second argument when the first is Undefined or
    # Null, else the first.
    return fallback if value is UNDEFINED or value is None else value


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
        return parse_json(raw)
    except (ValueError, RecursionError):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None


def _hash(name: str) -> Function:
    if name == "md2":  # OpenSSL 3 has no MD2: RFC 1319 in emulator.rules.md2
        return _string_fn(lambda text: md2_hex(text.encode("utf-8")))
    return _string_fn(lambda text: hashlib.new(name, text.encode("utf-8")).hexdigest())


def _regexp_replace(text: str, pattern: str, replacement: str) -> str:
    # Java's $1 group references become Python's \1.
    return re.sub(pattern, re.sub(r"\$(\d+)", r"\\\1", replacement), text)


def _regexp_substr(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    return found.group(0) if found else ""


def _bit_int(value: Any) -> Any:
    # "iot-sql-functions" bitand(): non-Int numbers and numeric strings are rounded down.
    if type(value) is bool or value is None:
        return UNDEFINED
    return to_int(value, cast=True)


def _bitwise(op: Callable[[int, int], int]) -> Function:
    @_arity(2)
    def fn(left: Any, right: Any) -> Any:
        a, b = _bit_int(left), _bit_int(right)
        if type(a) is not int or type(b) is not int:
            return UNDEFINED
        return op(a, b)

    return fn


@_arity(1)
def bitnot(value: Any) -> Any:
    number = _bit_int(value)
    return ~number if type(number) is int else UNDEFINED


@_arity(2, 3)
def parse_time(pattern: Any, millis: Any, zone: Any = "UTC") -> Any:
    # "iot-sql-functions" parse_time(String, Long[, String]): a Joda-Time pattern, epoch
    # milliseconds and an optional time zone (default UTC).
    epoch_ms = to_int(millis, cast=True) if is_number(millis) or type(millis) is str else None
    if type(pattern) is not str or type(epoch_ms) is not int or type(zone) is not str:
        return UNDEFINED
    return format_time(pattern, epoch_ms, zone)


@_arity(2)
def time_to_epoch(timestamp: Any, pattern: Any) -> Any:
    # "iot-sql-functions" time_to_epoch(String, String): JDK 11 DateTimeFormatter patterns; a
    # timestamp without a time zone is read as UTC.
    if type(timestamp) is not str or type(pattern) is not str:
        return UNDEFINED
    return parse_epoch_ms(timestamp, pattern)


# "iot-sql-functions" transform(): "The array returned by this function is limited to 128 KiB."
TRANSFORM_LIMIT_BYTES = IOT_MESSAGE_MAX_BYTES


@_arity(3)
def transform(mode: Any, attributes: Any, array: Any) -> Any:
    """transform('enrichArray', Object, Array of objects): each object plus the attributes."""
    if mode != "enrichArray" or type(attributes) is not dict or type(array) is not list:
        return UNDEFINED
    if not all(type(item) is dict for item in array):
        return UNDEFINED
    result = [{**item, **attributes} for item in array]
    if len(dumps(result).encode("utf-8")) > TRANSFORM_LIMIT_BYTES:
        return UNDEFINED
    return result


FUNCTIONS: dict[str, Function] = {
    "abs": abs_,
    "acos": _math1(math.acos),
    "asin": _math1(math.asin),
    "atan": _math1(math.atan),
    "atan2": _double_op(math.atan2),
    "bitand": _bitwise(lambda a, b: a & b),
    "bitor": _bitwise(lambda a, b: a | b),
    "bitxor": _bitwise(lambda a, b: a ^ b),
    "bitnot": bitnot,
    "ceil": _rounding(decimal.ROUND_CEILING),
    "chr": chr_,
    "concat": concat,
    "cos": _math1(math.cos),
    "cosh": _math1(math.cosh),
    "decode": decode,
    "endswith": _string_fn(str.endswith, 2),
    "exp": _math1(math.exp),
    "floor": _rounding(decimal.ROUND_FLOOR),
    "get": get,
    "get_or_default": get_or_default,
    "indexof": _string_fn(str.find, 2),
    "isnull": is_null,
    "isundefined": is_undefined,
    "length": _string_fn(len),
    "ln": _math1(math.log),
    "log": _math1(math.log10),
    "lower": _string_fn(str.lower),
    "lpad": _pad(left=True),
    "ltrim": _string_fn(lambda s: s.lstrip(" \t")),
    "md2": _hash("md2"),
    "md5": _hash("md5"),
    "mod": mod,
    "nanvl": nanvl,
    "newuuid": _arity(0)(lambda: str(uuid.uuid4())),
    "numbytes": _string_fn(lambda text: len(text.encode("utf-8"))),
    "parse_time": parse_time,
    "power": _double_op(math.pow),
    "rand": _arity(0)(random.random),
    "regexp_matches": _string_fn(lambda text, pattern: re.search(pattern, text) is not None, 2),
    "regexp_replace": _string_fn(_regexp_replace, 3),
    "regexp_substr": _string_fn(_regexp_substr, 2),
    "remainder": mod,
    "replace": _string_fn(str.replace, 3),
    # round(): "If the Decimal is equidistant from two Int values ... rounded up", and the
    # examples show round(-1.5) = -2: half away from zero.
    "round": _rounding(decimal.ROUND_HALF_UP),
    "rpad": _pad(left=False),
    "rtrim": _string_fn(lambda s: s.rstrip(" \t")),
    "sha1": _hash("sha1"),
    "sha224": _hash("sha224"),
    "sha256": _hash("sha256"),
    "sha384": _hash("sha384"),
    "sha512": _hash("sha512"),
    "sign": _arity(1)(_sign),
    "sin": _math1(math.sin),
    "sinh": _math1(math.sinh),
    "sqrt": _math1(math.sqrt),
    "startswith": _string_fn(str.startswith, 2),
    "substring": substring,
    "time_to_epoch": time_to_epoch,
    "transform": transform,
    "tan": _math1(math.tan),
    "tanh": _math1(math.tanh),
    "trim": _string_fn(str.strip),
    "trunc": trunc,
    "upper": _string_fn(str.upper),
}

# The functions that call other services (aws_lambda, get_dynamodb, ...) take the message's
# context first: emulator/rules/service_functions.py.
FUNCTIONS.update(SERVICE_FUNCTIONS)

# Functions AWS documents that this emulator does not implement: refused at rule creation with
# the reason, rather than evaluated to a silent Undefined.
UNSUPPORTED_FUNCTIONS = {
    "machinelearning_predict": MACHINE_LEARNING_RETIRED,
    # Two arguments: only 'base64'; decode(*, 'proto', ...) takes six (protobuf_decode.py).
    "decode": "with two arguments supports only the 'base64' scheme; protobuf payloads take "
    "six: decode(*, 'proto', '<bucket>', '<descriptor key>', '<proto file>', '<message type>')",
}
