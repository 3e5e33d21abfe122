"""IoT SQL operators and cast(), with AWS's type rules ("iot-sql-operators", "iot-sql-functions").

Comparisons and arithmetic convert Strings to numbers when they look like numbers, give
Undefined for Booleans, Null, Undefined and other types, and keep Int op Int an Int.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from emulator.rules.values import (
    UNDEFINED,
    normalize,
    to_boolean,
    to_decimal,
    to_int,
    to_string,
)


def comparison(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def compare(left: Any, right: Any) -> Any:
        if type(left) is bool or type(right) is bool:
            return UNDEFINED
        a, b = to_decimal(left), to_decimal(right)
        if a is UNDEFINED or b is UNDEFINED or a is None or b is None:
            return UNDEFINED
        return op(a, b)

    return compare


def divide(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        # Int / Int is an Int (truncated toward zero, as Java's integer division).
        quotient = abs(a) // abs(b)
        return quotient if (a >= 0) == (b >= 0) else -quotient
    return a / b


def arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def arithmetic(left: Any, right: Any) -> Any:
        if type(left) is bool or type(right) is bool:
            return UNDEFINED
        a, b = to_decimal(left), to_decimal(right)
        if a is UNDEFINED or b is UNDEFINED or a is None or b is None:
            return UNDEFINED
        try:
            result = op(a, b)
        except (ZeroDivisionError, OverflowError, ValueError):
            return UNDEFINED
        return normalize(result) if type(result) is float else result

    return arithmetic


_numeric_add = arithmetic(lambda a, b: a + b)


def add(left: Any, right: Any) -> Any:
    """`+`: concatenation when either side is a String, else addition."""
    if type(left) is str or type(right) is str:
        a, b = to_string(left), to_string(right)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        return a + b
    kl, kr = type(left), type(right)
    if (kl is int or kl is float) and (kr is int or kr is float):
        return _numeric_add(left, right)
    return UNDEFINED


def cast(value: Any, target: str) -> Any:
    """`cast(value AS type)` ("iot-sql-functions", cast)."""
    kind = type(value)
    if target == "String":
        return to_string(value)
    if target == "Boolean":
        if kind is int or kind is float:
            return value != 0
        return to_boolean(value)
    if value is None or value is UNDEFINED or kind is list or kind is dict:
        return UNDEFINED
    if target == "Int":
        return to_int(value, cast=True)
    # Decimal / Double
    if kind is bool:
        return 1 if value else 0
    number = to_decimal(value)
    if number is UNDEFINED:
        return UNDEFINED
    return normalize(float(number)) if math.isfinite(float(number)) else UNDEFINED
