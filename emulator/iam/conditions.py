"""IAM condition operators (pure): compile a Condition block once, evaluate it per request.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- Several operators in a block, and several keys under one operator, must all hold (AND); several
  values for one key are alternatives (OR) for the positive operators and must all differ (NOR)
  for the negated ones (`StringNotEquals`, `NotIpAddress`, `ArnNotLike`, ...).
- A key absent from the request makes a positive operator false and a negated one true, except
  `...IfExists` (true when absent) and `Null`.
- `ForAllValues:` is true when every request value matches (and when the key is absent or
  empty); `ForAnyValue:` when at least one does (false when absent).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
- Keys are case insensitive, values as the operator says.

A result is True, False or None: None means "the emulator cannot know", because the key is one
the request might carry on AWS but the caller did not say (a service-specific key, a resource
tag). The statement decides what None means so that a Deny is never skipped (see evaluator.py).
An operator name or a value the IAM reference does not define is a PolicyError, which AWS
reports as MalformedPolicyDocument when the policy is stored.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulator.iam.patterns import Lookup, Unresolved, arn_match, has_variables, resolve
from emulator.iam.patterns import wildcard_match as _wildcard_match


class PolicyError(ValueError):
    """The document is not a valid IAM policy (AWS: MalformedPolicyDocument)."""


def _parse_number(text: str) -> float:
    return float(text)


def _parse_date(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_bool(text: str) -> str:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"{text!r} is not true or false")
    return lowered


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


def _parse_base64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True)
class _Family:
    """How one operator family reads policy values and compares a request value with them."""

    parse: Callable[[str], Any]  # policy value -> comparable (raises ValueError)
    compare: Callable[
        [Any, str, Lookup | None], bool
    ]  # (parsed policy value, request value, lookup)
    variables: bool = False  # policy variables allowed in the values


def _substituted(expected: str, lookup: Lookup | None) -> str:
    return resolve(expected, lookup, False) if lookup and has_variables(expected) else expected


def _string_equals(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _substituted(expected, lookup) == actual


def _string_equals_ic(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _substituted(expected, lookup).lower() == actual.lower()


def _string_like(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _wildcard_match(expected, actual, lookup=lookup)


def _arn_like(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return arn_match(expected, actual, lookup=lookup)


def _numeric(op: Callable[[float, float], bool]) -> Callable[[Any, str, Lookup | None], bool]:
    return lambda expected, actual, _lookup: op(float(actual), expected)


def _date(op: Callable[[datetime, datetime], bool]) -> Callable[[Any, str, Lookup | None], bool]:
    return lambda expected, actual, _lookup: op(_parse_date(actual), expected)


def _bool(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    return actual.lower() == expected


def _binary(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    try:
        return _parse_base64(actual) == expected
    except (binascii.Error, ValueError):
        return False


def _ip(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    try:
        return ipaddress.ip_address(actual.strip()) in expected
    except ValueError:
        return False


_EQ, _LT, _LE = (lambda a, b: a == b), (lambda a, b: a < b), (lambda a, b: a <= b)
_GT, _GE = (lambda a, b: a > b), (lambda a, b: a >= b)

# operator -> (family, negated)
_OPERATORS: dict[str, tuple[_Family, bool]] = {}


def _add(names: dict[str, bool], family: _Family) -> None:
    for name, negated in names.items():
        _OPERATORS[name.lower()] = (family, negated)


_add({"StringEquals": False, "StringNotEquals": True}, _Family(str, _string_equals, True))
_add(
    {"StringEqualsIgnoreCase": False, "StringNotEqualsIgnoreCase": True},
    _Family(str, _string_equals_ic, True),
)
_add({"StringLike": False, "StringNotLike": True}, _Family(str, _string_like, True))
_add({"NumericEquals": False, "NumericNotEquals": True}, _Family(_parse_number, _numeric(_EQ)))
_add({"NumericLessThan": False}, _Family(_parse_number, _numeric(_LT)))
_add({"NumericLessThanEquals": False}, _Family(_parse_number, _numeric(_LE)))
_add({"NumericGreaterThan": False}, _Family(_parse_number, _numeric(_GT)))
_add({"NumericGreaterThanEquals": False}, _Family(_parse_number, _numeric(_GE)))
_add({"DateEquals": False, "DateNotEquals": True}, _Family(_parse_date, _date(_EQ)))
_add({"DateLessThan": False}, _Family(_parse_date, _date(_LT)))
_add({"DateLessThanEquals": False}, _Family(_parse_date, _date(_LE)))
_add({"DateGreaterThan": False}, _Family(_parse_date, _date(_GT)))
_add({"DateGreaterThanEquals": False}, _Family(_parse_date, _date(_GE)))
_add({"Bool": False}, _Family(_parse_bool, _bool))
_add({"BinaryEquals": False}, _Family(_parse_base64, _binary))
_add({"IpAddress": False, "NotIpAddress": True}, _Family(_parse_network, _ip))
# ArnEquals and ArnLike behave the same: both accept wildcards in every segment.
_add(
    {"ArnEquals": False, "ArnLike": False, "ArnNotEquals": True, "ArnNotLike": True},
    _Family(str, _arn_like, True),
)


def _values(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise PolicyError(f"condition value {item!r} must be a string, number or boolean")
    return out


@dataclass(frozen=True)
class Condition:
    """One (operator, key, values) of a Condition block."""

    operator: str  # as written, for explanations
    key: str  # lower-cased
    values: tuple[Any, ...]
    family: _Family | None  # None for Null
    negated: bool
    if_exists: bool
    qualifier: str | None  # "forallvalues" | "foranyvalue" | None
    # Policy variables are substituted (Version 2012-10-17 and an operator that takes them);
    # otherwise `${...}` is literal text.
    variables: bool = False

    def evaluate(self, lookup: Lookup, unknown: Callable[[str], bool]) -> bool | None:
        actual = lookup(self.key)
        if actual is None and unknown(self.key):
            return None
        if self.family is None:  # Null: "true" means the key must be absent
            return (actual is None) == (self.values[0] == "true")
        if actual is None or (self.qualifier and not actual):
            if self.qualifier == "forallvalues":
                return True
            if self.qualifier == "foranyvalue":
                return False
            return True if (self.if_exists or self.negated) else False
        try:
            if self.qualifier == "forallvalues":
                return all(self._one(value, lookup) for value in actual)
            return any(self._one(value, lookup) for value in actual)
        except (ValueError, OverflowError):
            return False  # a request value of the wrong type (e.g. not a number) never matches

    def _one(self, actual: str, lookup: Lookup) -> bool:
        assert self.family is not None
        variables = lookup if self.variables else None
        matches = False
        for expected in self.values:
            try:
                if self.family.compare(expected, actual, variables):
                    matches = True
                    break
            except Unresolved:
                continue  # a value whose variable has no value matches nothing
        return not matches if self.negated else matches

    def describe(self) -> str:
        return f"{self.operator} {self.key}"


def compile_block(block: Any, with_variables: bool) -> tuple[Condition, ...]:
    """Compile a statement's Condition element; raises PolicyError where AWS would refuse it."""
    if block is None:
        return ()
    if not isinstance(block, Mapping):
        raise PolicyError("Condition must be an object of condition operators")
    out: list[Condition] = []
    for operator, keys in block.items():
        name = operator.lower()
        qualifier = None
        for prefix in ("forallvalues:", "foranyvalue:"):
            if name.startswith(prefix):
                qualifier, name = prefix[:-1], name[len(prefix) :]
        if_exists = name.endswith("ifexists") and name != "ifexists"
        if if_exists:
            name = name[: -len("ifexists")]
        if name == "null" and not if_exists:
            family, negated = None, False
        elif name in _OPERATORS:
            family, negated = _OPERATORS[name]
        else:
            raise PolicyError(f"Condition operator {operator} is not an IAM condition operator")
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"{operator} must map condition keys to values")
        for key, raw in keys.items():
            texts = _values(raw)
            if not texts:
                raise PolicyError(f"{operator} {key} has no values")
            if family is None:
                try:
                    parsed: tuple[Any, ...] = tuple(_parse_bool(t) for t in texts)
                except ValueError as exc:
                    raise PolicyError(f"Null {key}: {exc}") from exc
            else:
                try:
                    parsed = tuple(family.parse(t) for t in texts)
                except (ValueError, binascii.Error) as exc:
                    raise PolicyError(f"{operator} {key}: invalid value ({exc})") from exc
            out.append(
                Condition(
                    operator,
                    key.lower(),
                    parsed,
                    family,
                    negated,
                    if_exists,
                    qualifier,
                    with_variables and family is not None and family.variables,
                )
            )
    return tuple(out)
