"""IoT SQL's value model: the JSON types plus `Undefined`, and the documented conversions.

Python values stand for IoT SQL values: `int` (Int), `float` (Decimal), `bool` (Boolean), `str`
(String), `list` (Array), `dict` (Object), `None` (Null) and the `UNDEFINED` singleton.
Source: AWS IoT developer guide, "iot-sql-data-types" (Conversions tables) and "iot-sql-operators".

Approximation: AWS keeps Decimals with 34 digits of precision; here a Decimal is a double. With
SQL version 2016-03-23 a whole-number Decimal such as 10.0 is processed as the Int 10
("iot-sql-data-types"), which `normalize` does for computed results.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class _Undefined:
    """`Undefined`: not a value; omitted from JSON objects, "" when serialized by itself."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()

# "iot-sql-data-types": strings that convert to Decimal match ^-?\d+(\.\d+)?((?i)E-?\d+)?$
_DECIMAL_STRING = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")


def is_number(value: Any) -> bool:
    return (type(value) is int) or (type(value) is float)


def normalize(value: Any) -> Any:
    """SQL 2016-03-23: a whole-number Decimal is processed as an Int."""
    if type(value) is float and math.isfinite(value) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    return value


def to_decimal(value: Any) -> Any:
    """Standard conversion to a number (Int stays Int); Undefined when not convertible."""
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is str:
        if _DECIMAL_STRING.fullmatch(value):
            number = float(value)
            return number
        return UNDEFINED
    if value is None:
        return None
    return UNDEFINED


def to_int(value: Any, cast: bool = False) -> Any:
    """Standard conversion to Int ("To Int" table); `cast` adds Boolean -> 0/1 and rounds down."""
    kind = type(value)
    if kind is int:
        return value
    if kind is bool:
        return int(value) if cast else UNDEFINED
    if kind is float:
        if not math.isfinite(value):
            return UNDEFINED
        return math.floor(value) if cast else int(round(value))
    if kind is str:
        number = to_decimal(value)
        if number is UNDEFINED:
            return UNDEFINED
        return math.floor(number) if cast else int(number)
    if value is None and not cast:
        return None
    return UNDEFINED


def to_boolean(value: Any) -> Any:
    """Standard conversion to Boolean: only Booleans and "true"/"false" strings convert."""
    if type(value) is bool:
        return value
    if type(value) is str:
        lowered = value.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return UNDEFINED


def format_decimal(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return repr(value)


def to_string(value: Any) -> Any:
    """Standard conversion to String ("To String" table); Null and Undefined give Undefined."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return format_decimal(value)
    if kind is list or kind is dict:
        return dumps(value)
    return UNDEFINED


def type_name(value: Any) -> str:
    kind = type(value)
    if kind is bool:
        return "Boolean"
    if kind is int:
        return "Int"
    if kind is float:
        return "Decimal"
    if kind is str:
        return "String"
    if kind is list:
        return "Array"
    if kind is dict:
        return "Object"
    if value is None:
        return "Null"
    return "Undefined"


def _strip_undefined(value: Any) -> Any:
    if type(value) is dict:
        return {k: _strip_undefined(v) for k, v in value.items() if v is not UNDEFINED}
    if type(value) is list:
        return [_strip_undefined(v) for v in value if v is not UNDEFINED]
    return normalize(value)


def dumps(value: Any) -> str:
    """Compact JSON, as the rules engine emits it; Undefined members are omitted."""
    if value is UNDEFINED:
        return ""
    return json.dumps(_strip_undefined(value), separators=(",", ":"), ensure_ascii=False)


def equal(left: Any, right: Any) -> Any:
    """The `=` operator: Undefined if either side is; mismatched types are not equal."""
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    lk, rk = type(left), type(right)
    if (lk is int or lk is float) and (rk is int or rk is float):
        return left == right
    if lk is not rk:
        return False
    if lk is list:
        return len(left) == len(right) and all(
            equal(a, b) is True for a, b in zip(left, right, strict=True)
        )
    if lk is dict:
        return left.keys() == right.keys() and all(equal(left[k], right[k]) is True for k in left)
    return left == right
