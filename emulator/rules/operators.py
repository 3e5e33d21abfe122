"""IoT SQL operators and cast(), with AWS's type rules ("iot-sql-operators", "iot-sql-functions").

Comparisons and arithmetic convert Strings to numbers when they look like numbers, give
Undefined for Booleans, Null, Undefined and other types, and keep Int op Int an Int.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from emulator.rules.values import (
    DECIMAL_CONTEXT,
    UNDEFINED,
    from_double,
    make_decimal,
    normalize,
    to_boolean,
    to_decimal,
    to_int,
    to_string,
)


def numbers(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both operands as numbers (numeric Strings converted), or None when either is a Boolean,
    Null, Undefined or another type: the operation then gives Undefined."""
    if type(left) is bool or type(right) is bool:
        return None
    a, b = to_decimal(left), to_decimal(right)
    if a is UNDEFINED or b is UNDEFINED or a is None or b is None:
        return None
    return a, b


def comparison(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def compare(left: Any, right: Any) -> Any:
        pair = numbers(left, right)
        return UNDEFINED if pair is None else op(*pair)

    return compare


def divide(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        # Int / Int is an Int (truncated toward zero, as Java's integer division).
        quotient = abs(a) // abs(b)
        return quotient if (a >= 0) == (b >= 0) else -quotient
    return DECIMAL_CONTEXT.divide(Decimal(a), Decimal(b))


def arithmetic(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def arithmetic(left: Any, right: Any) -> Any:
        pair = numbers(left, right)
        if pair is None:
            return UNDEFINED
        try:
            with decimal.localcontext(DECIMAL_CONTEXT):
                result = op(*pair)
        except (ZeroDivisionError, ArithmeticError, ValueError):
            return UNDEFINED
        if type(result) is Decimal:
            return normalize(make_decimal(result))
        return result

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
    if (kl is int or kl is Decimal) and (kr is int or kr is Decimal):
        return _numeric_add(left, right)
    return UNDEFINED


def cast(value: Any, target: str) -> Any:
    """`cast(value AS type)` ("iot-sql-functions", cast)."""
    kind = type(value)
    if target == "String":
        return to_string(value)
    if target == "Boolean":
        if kind is int or kind is Decimal:
            return value != 0
        return to_boolean(value)
    if value is None or value is UNDEFINED or kind is list or kind is dict:
        return UNDEFINED
    if target == "Int":
        return to_int(value, cast=True)
    # Decimal / Double ("Cast to decimal": true = 1.0, false = 0.0; an Int keeps no decimal
    # point). 2016-03-23 then processes whole numbers as Ints; 2015-10-08 keeps the Decimal.
    if kind is bool:
        return normalize(Decimal("1.0") if value else Decimal("0.0"))
    number = to_decimal(value)
    if number is UNDEFINED:
        return UNDEFINED
    if target == "Double":  # "Casts value to Decimal (with double precision)"
        return from_double(float(number))
    return normalize(make_decimal(number))
