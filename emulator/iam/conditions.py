"""IAM condition operators (pure): compile a Condition block once, evaluate it per request.

The one implementation of the Condition element for every policy the emulator evaluates: IAM's
(evaluator.py), AWS IoT Core's (emulator/iot/policy.py) and S3 bucket policies
(emulator/s3/bucket_policy.py).

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- Several operators in a block, and several keys under one operator, must all hold (AND); several
  values for one key are alternatives (OR) for the positive operators and must all differ (NOR)
  for the negated ones (`StringNotEquals`, `NotIpAddress`, `ArnNotLike`, ...).
- A key absent from the request (or a multivalued key with no value) makes a positive operator
  false and a negated one true, except `...IfExists` (true when absent), `ForAllValues:` (true),
  `ForAnyValue:` (false) and `Null` (which tests exactly that).
- `ForAllValues:` is true when every request value matches; `ForAnyValue:` when at least one does.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
- Keys are case insensitive, values as the operator says. Policy variables (Version 2012-10-17)
  are substituted in the values of the String and Arn operators.

A result is True, False or None: None means "the emulator cannot know", because the key (or a
variable in a value) is one the request might carry on AWS but the caller could not supply, a
multivalued key meets an operator without a set qualifier, or a policy value cannot be read. The
statement decides what None means so that a Deny is never skipped (evaluator.py, iot/policy.py).
An operator name the IAM reference does not define is a PolicyError, which AWS reports when the
policy is stored (IAM MalformedPolicyDocument, IoT MalformedPolicyException); so is a value of
the wrong type unless the caller compiles leniently (`strict=False`: that value is unknown).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulator.iam.patterns import (
    Lookup,
    Unresolved,
    arn_match,
    has_variables,
    resolve,
    variable_names,
)
from emulator.iam.patterns import wildcard_match as _wildcard_match

# Says whether a (lower-cased) context key the request lacks might be present on AWS.
Unknown = Callable[[str], bool]


class PolicyError(ValueError):
    """The document is not a valid IAM policy (AWS: MalformedPolicyDocument)."""


_NUMBER = re.compile(r"\s*-?\d+(\.\d+)?\s*")


def _parse_number(text: str) -> float:
    return float(text)


def _parse_date(text: str) -> datetime:
    """An ISO 8601 date/time (UTC unless it says otherwise) or seconds since the epoch: the
    Date operators accept both."""
    if _NUMBER.fullmatch(text):
        return datetime.fromtimestamp(float(text), UTC)
    parsed = datetime.fromisoformat(text.strip())
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
    # (parsed policy value, request value, lookup for variables or None) -> match; raises
    # ValueError for a request value of the wrong type (it matches nothing).
    compare: Callable[[Any, str, Lookup | None], bool]
    variables: bool = False  # policy variables allowed in the values


def _substituted(expected: str, lookup: Lookup | None) -> str:
    return resolve(expected, lookup, False) if lookup and has_variables(expected) else expected


def _string_equals(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _substituted(expected, lookup) == actual


def _string_equals_ic(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _substituted(expected, lookup).casefold() == actual.casefold()


def _string_like(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    return _wildcard_match(expected, actual, lookup=lookup)


def _arn_like(expected: Any, actual: str, lookup: Lookup | None) -> bool:
    # A request value that is no ARN (fewer than six colon-separated components) matches no
    # Arn* value, not even "*".
    return actual.count(":") >= 5 and arn_match(expected, actual, lookup=lookup)


def _numeric(op: Callable[[float, float], bool]) -> Callable[[Any, str, Lookup | None], bool]:
    return lambda expected, actual, _lookup: op(float(actual), expected)


def _date(op: Callable[[datetime, datetime], bool]) -> Callable[[Any, str, Lookup | None], bool]:
    return lambda expected, actual, _lookup: op(_parse_date(actual), expected)


def _bool(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    return actual.lower() == expected


def _binary(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    return _parse_base64(actual) == expected


def _ip(expected: Any, actual: str, _lookup: Lookup | None) -> bool:
    return ipaddress.ip_address(actual.strip()) in expected


_EQ, _LT, _LE = (lambda a, b: a == b), (lambda a, b: a < b), (lambda a, b: a <= b)
_GT, _GE = (lambda a, b: a > b), (lambda a, b: a >= b)

# operator (lower case) -> (canonical name, family, negated)
_OPERATORS: dict[str, tuple[str, _Family, bool]] = {}


def _add(names: dict[str, bool], family: _Family) -> None:
    for name, negated in names.items():
        _OPERATORS[name.lower()] = (name, family, negated)


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
OPERATOR_NAMES = tuple(name for name, _family, _negated in _OPERATORS.values()) + ("Null",)
_QUALIFIERS = {"forallvalues": "ForAllValues", "foranyvalue": "ForAnyValue"}


class _Unreadable:
    """A policy value the operator cannot read (kept by a lenient compile): it matches
    nothing for Null and makes every other comparison unknown."""

    def __init__(self, text: str) -> None:
        self.text = text


def _any3(results: Any) -> bool | None:
    """Three-valued OR: True if one is True, else None if one is unknown, else False."""
    unknown = False
    for result in results:
        if result:
            return True
        if result is None:
            unknown = True
    return None if unknown else False


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
    name: str = ""  # the key as written (messages name it so)

    @property
    def is_null(self) -> bool:
        return self.family is None

    def evaluate(self, lookup: Lookup, unknown: Unknown) -> bool | None:
        """True, False, or None when the emulator cannot tell (see the module doc)."""
        actual = lookup(self.key)
        if actual is None and unknown(self.key):
            return None
        if self.family is None:  # Null: "true" means the key must be absent, "false" present
            wanted = "true" if not actual else "false"
            return any(v == wanted for v in self.values)
        if not actual:
            if self.if_exists or self.qualifier == "forallvalues":
                return True
            if self.qualifier == "foranyvalue":
                return False
            return self.negated
        if self.qualifier is None and len(actual) > 1:
            return None  # a multivalued key needs ForAllValues:/ForAnyValue:
        verdicts = [self._one(value, lookup, unknown) for value in actual]
        if self.qualifier == "forallvalues":
            if any(v is False for v in verdicts):
                return False
            return None if any(v is None for v in verdicts) else True
        return _any3(verdicts)

    def _one(self, actual: str, lookup: Lookup, unknown: Unknown) -> bool | None:
        """One request value against the condition's values (ORed), then negated if asked."""
        found = _any3(self._match(expected, actual, lookup, unknown) for expected in self.values)
        if found is None or not self.negated:
            return found
        return not found

    def _match(self, expected: Any, actual: str, lookup: Lookup, unknown: Unknown) -> bool | None:
        assert self.family is not None
        if isinstance(expected, _Unreadable):
            return None
        try:
            return self.family.compare(expected, actual, lookup if self.variables else None)
        except Unresolved as missing:
            # A variable without a value matches nothing, unless AWS might have given it one.
            return None if unknown(str(missing).lower()) else False
        except (ValueError, OverflowError, binascii.Error):
            return False  # a request value of the wrong type (e.g. not a number)

    def references(self) -> set[str]:
        """Every context key this condition reads, as written: its key and the variables in
        its values."""
        names = {self.name or self.key}
        if self.variables:
            for value in self.values:
                if isinstance(value, str):
                    names.update(variable_names(value))
        return names

    def describe(self) -> str:
        return f"{self.operator} {self.key}"


def _values(raw: Any, operator: str, key: str) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise PolicyError(f"condition key {key} has no value")
    out = []
    for item in items:
        # JSON true/false in a Bool condition mean the strings "true"/"false".
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, (str, int, float)):
            out.append(str(item))
        else:
            raise PolicyError(
                f"{operator} {key}: condition values must be strings, numbers or booleans"
            )
    return out


def _parse_operator(operator: Any) -> tuple[str | None, _Family | None, bool, bool]:
    """(qualifier, family or None for Null, negated, IfExists) of an operator name."""
    if not isinstance(operator, str):
        raise PolicyError("condition operators must be strings")
    qualifier, _, name = operator.lower().rpartition(":")
    if_exists = name.endswith("ifexists") and name != "ifexists"
    if if_exists:
        name = name[: -len("ifexists")]
    known = (not qualifier or qualifier in _QUALIFIERS) and (
        name in _OPERATORS
        # Null tests existence itself: it takes neither IfExists nor a set qualifier.
        or (name == "null" and not if_exists and not qualifier)
    )
    if not known:
        hint = difflib.get_close_matches(operator, OPERATOR_NAMES, n=1)
        raise PolicyError(
            f"{operator!r} is not a condition operator"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + "; use one of IAM's operators (StringEquals, StringLike, NumericLessThan, "
            "DateGreaterThan, Bool, IpAddress, ArnLike, Null, ...), optionally with IfExists "
            "or a ForAllValues:/ForAnyValue: qualifier"
        )
    if name == "null":
        return None, None, False, False
    _canonical, family, negated = _OPERATORS[name]
    return qualifier or None, family, negated, if_exists


def compile_block(block: Any, with_variables: bool, strict: bool = True) -> tuple[Condition, ...]:
    """Compile a statement's Condition element; raises PolicyError where AWS would refuse it.

    With `strict` False a value the operator cannot read (an IpAddress that is no address) is
    kept, and any comparison with it is unknown (None) instead of refusing the document."""
    if block is None:
        return ()
    if not isinstance(block, Mapping):
        raise PolicyError("Condition must be an object of condition operators")
    out: list[Condition] = []
    for operator, keys in block.items():
        qualifier, family, negated, if_exists = _parse_operator(operator)
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"condition operator {operator} must map condition keys to values")
        for key, raw in keys.items():
            if not isinstance(key, str) or not key:
                raise PolicyError("condition keys must be non-empty strings")
            texts = _values(raw, operator, key)
            parse = _parse_bool if family is None else family.parse
            parsed: list[Any] = []
            for text in texts:
                try:
                    parsed.append(parse(text))
                except (ValueError, OverflowError, OSError, binascii.Error) as exc:
                    if strict:
                        raise PolicyError(f"{operator} {key}: invalid value ({exc})") from exc
                    parsed.append(_Unreadable(text))
            out.append(
                Condition(
                    operator,
                    key.lower(),
                    tuple(parsed),
                    family,
                    negated,
                    if_exists,
                    qualifier,
                    with_variables and family is not None and family.variables,
                    key,
                )
            )
    return tuple(out)
