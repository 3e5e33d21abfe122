"""IoT SQL's value model: the JSON types plus `Undefined`, and the documented conversions.

Python values stand for IoT SQL values: `int` (Int), `decimal.Decimal` (Decimal), `bool` (Boolean),
`str` (String), `list` (Array), `dict` (Object), `None` (Null) and the `UNDEFINED` singleton.
Source: AWS IoT developer guide, "iot-sql-data-types" (Conversions tables) and "iot-sql-operators".

Decimals keep AWS's precision: 34 significant digits, magnitudes from 1E-999 to 9.999...E999
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-data-types.html), so payload
numbers such as 0.1 are exact and 0.1 + 0.2 is 0.3. Functions AWS documents as working "with
double precision" (sin, sqrt, power, ...) go through a float and back.

SQL versions: with 2016-03-23 (and beta) a whole-number Decimal such as 10.0 is processed as the
Int 10; with 2015-10-08 it stays the Decimal 10.0 ("iot-sql-data-types"). `normalize` reads the
version of the evaluation under way from `SQL_V1` (a context variable set by the evaluator).
"""

from __future__ import annotations

import decimal
import json
import math
import re
from contextvars import ContextVar
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

# Java's MathContext.DECIMAL128 (34 digits, half-even) with IoT's documented exponent range.
DECIMAL_CONTEXT = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=999,
    Emin=-999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

# True while a statement with SQL version 2015-10-08 is evaluated.
SQL_V1: ContextVar[bool] = ContextVar("iot_sql_v1", default=False)


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


class SqlEvaluationError(RuntimeError):
    """A message the statement cannot be evaluated on (for example `*, x` on binary data, or a
    function that calls another service and fails): the rule runs no action."""


# "iot-sql-data-types": strings that convert to Decimal match ^-?\d+(\.\d+)?((?i)E-?\d+)?$
_DECIMAL_STRING = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")


def is_number(value: Any) -> bool:
    return (type(value) is int) or (type(value) is Decimal)


def make_decimal(value: Any) -> Any:
    """A Decimal rounded to 34 digits; Undefined outside IoT's range (or NaN/infinity)."""
    try:
        number = DECIMAL_CONTEXT.create_decimal(value)
    except (decimal.InvalidOperation, decimal.Overflow, ValueError, TypeError):
        return UNDEFINED
    if not number.is_finite():
        return UNDEFINED
    if number and number.adjusted() < DECIMAL_CONTEXT.Emin:
        return Decimal(0)
    return number


def from_double(value: float) -> Any:
    """A double result as a Decimal, as Java's BigDecimal.valueOf(double) (shortest form)."""
    if not math.isfinite(value):
        return UNDEFINED
    return normalize(make_decimal(repr(value)))


def to_double(value: Any) -> float:
    """ "Decimal arguments are rounded to double precision before function application"."""
    return float(value)


def normalize(value: Any) -> Any:
    """SQL 2016-03-23: a whole-number Decimal is processed as an Int (2015-10-08: unchanged)."""
    if type(value) is Decimal and not SQL_V1.get() and value == value.to_integral_value():
        return int(value)
    return value


def parse_json(data: bytes | str) -> Any:
    """A payload's JSON with numbers as IoT values: Int, or Decimal kept to 34 digits."""
    return json.loads(data, parse_float=_json_decimal, parse_constant=_no_constant)


def _json_decimal(text: str) -> Any:
    number = make_decimal(text)
    if number is UNDEFINED:
        raise ValueError(f"number out of range: {text}")
    return number


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def to_decimal(value: Any) -> Any:
    """Standard conversion to a number (Int stays Int); Undefined when not convertible."""
    kind = type(value)
    if kind is int or kind is Decimal:
        return value
    if kind is str:
        if _DECIMAL_STRING.fullmatch(value):
            return make_decimal(value)
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
    if kind is Decimal:
        rounding = decimal.ROUND_FLOOR if cast else decimal.ROUND_HALF_EVEN
        return int(value.to_integral_value(rounding=rounding))
    if kind is str:
        number = to_decimal(value)
        if number is UNDEFINED:
            return UNDEFINED
        # "To int": a String is converted to a Decimal whose decimal places are truncated.
        if type(number) is int:
            return number
        rounding = decimal.ROUND_FLOOR if cast else decimal.ROUND_DOWN
        return int(number.to_integral_value(rounding=rounding))
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


def format_decimal(value: Decimal) -> str:
    """Java's BigDecimal.toString: scientific notation only for large or tiny exponents."""
    return str(value)


def to_string(value: Any) -> Any:
    """Standard conversion to String ("To String" table); Null and Undefined give Undefined."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is Decimal:
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
    if kind is Decimal:
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


def _encode(value: Any, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(encode_basestring(value))
    elif kind is bool:
        out.append("true" if value else "false")
    elif kind is int:
        out.append(str(value))
    elif kind is Decimal:
        out.append(format_decimal(normalize(value)) if value.is_finite() else "null")
    elif value is None:
        out.append("null")
    elif kind is dict:
        out.append("{")
        first = True
        for key, member in value.items():
            if member is UNDEFINED:
                continue
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring(str(key)))
            out.append(":")
            _encode(member, out)
        out.append("}")
    elif kind is list:
        out.append("[")
        first = True
        for member in value:
            if member is UNDEFINED:
                continue
            if not first:
                out.append(",")
            first = False
            _encode(member, out)
        out.append("]")
    elif kind is float:  # values built outside the evaluator
        out.append(repr(value) if math.isfinite(value) else "null")
    else:
        out.append("null")


def dumps(value: Any) -> str:
    """Compact JSON, as the rules engine emits it; Undefined members are omitted."""
    if value is UNDEFINED:
        return ""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def equal(left: Any, right: Any) -> Any:
    """The `=` operator: Undefined if either side is; mismatched types are not equal."""
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    lk, rk = type(left), type(right)
    if (lk is int or lk is Decimal) and (rk is int or rk is Decimal):
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
