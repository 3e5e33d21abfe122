"""AWS IoT Core policy documents: parsing, compiling and evaluating them (pure, no I/O).

Semantics follow the AWS IoT developer guide ("iot-policies", "pub-sub-policy",
"basic-policy-variables", "thing-policy-variables", "cert-policy-variables") and the IAM
policy evaluation logic it borrows:
- a statement applies when its Action (or NotAction), its Resource (or NotResource) and all of
  its Condition operators match; an explicit Deny in any attached policy beats every Allow, and
  nothing allowed means denied;
- `*` matches any run of characters (including `/`) and `?` exactly one, in actions (case
  insensitive) and resources (case sensitive); MQTT's `+` and `#` are plain characters;
- `${...}` policy variables are substituted only in documents of Version 2012-10-17; their values
  are literal text (a client id of `+` does not become a wildcard); a variable without a value
  (for instance a thing variable when no thing named like the client id is attached to the
  certificate) makes that resource or condition value match nothing, so an Allow that needs it
  does not apply ("thing-policy-examples": "this variable won't be resolved and will result in an
  access denied error");
- `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$` (IAM "policy variables").

Each document is compiled once; resource patterns without variables become one regex.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

VARIABLES_VERSION = "2012-10-17"
SUPPORTED_VERSIONS = ("2012-10-17", "2008-10-17")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}

Context = Mapping[str, str]


class PolicyDocumentError(ValueError):
    """The document is not a valid IoT policy (AWS: MalformedPolicyException)."""


def _wildcard_source(text: str) -> str:
    """The regex source for an IAM wildcard string: `*` any run, `?` one character."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


class _Pattern:
    """A Resource or Condition value: literal text, wildcards and (maybe) policy variables."""

    __slots__ = ("text", "_parts", "_static", "_flags", "_cache", "variables")

    def __init__(self, text: str, with_variables: bool, ignore_case: bool = False) -> None:
        self.text = text
        self._flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
        parts: list[tuple[bool, str]] = []  # (is_variable, literal text or variable name)
        position = 0
        if with_variables:
            for match in _VARIABLE.finditer(text):
                parts.append((False, text[position : match.start()]))
                name = match.group(1)
                if name in _LITERAL_ESCAPES:
                    parts.append((False, "\0" + name))  # a literal wildcard character
                else:
                    parts.append((True, name))
                position = match.end()
        parts.append((False, text[position:]))
        self._parts = tuple(p for p in parts if p[1])
        self.variables = tuple(name for is_var, name in self._parts if is_var)
        self._static = None if self.variables else self._compile(())
        self._cache: dict[tuple[str, ...], re.Pattern[str]] = {}

    def _literal_source(self, piece: str) -> str:
        if piece.startswith("\0"):
            return re.escape(piece[1:])
        return _wildcard_source(piece)

    def _compile(self, values: tuple[str, ...]) -> re.Pattern[str]:
        it = iter(values)
        source = "".join(
            re.escape(next(it)) if is_var else self._literal_source(piece)
            for is_var, piece in self._parts
        )
        return re.compile(source, self._flags)

    def regex(self, context: Context) -> re.Pattern[str] | None:
        """The compiled pattern with variables substituted; None if one has no value."""
        if self._static is not None:
            return self._static
        values = []
        for name in self.variables:
            value = context.get(name)
            if value is None:
                return None
            values.append(value)
        key = tuple(values)
        pattern = self._cache.get(key)
        if pattern is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            pattern = self._cache[key] = self._compile(key)
        return pattern

    def literal(self, context: Context) -> str | None:
        """The value as plain text (for the Equals operators); None if a variable has no value."""
        out = []
        for is_var, piece in self._parts:
            if is_var:
                value = context.get(piece)
                if value is None:
                    return None
                out.append(value)
            else:
                out.append(piece[1:] if piece.startswith("\0") else piece)
        return "".join(out)

    def matches(self, value: str, context: Context) -> bool:
        pattern = self.regex(context)
        return pattern is not None and pattern.fullmatch(value) is not None


# Conditions --------------------------------------------------------------------------------
_STRING_OPERATORS = {
    "StringEquals": ("equals", False, False),
    "StringNotEquals": ("equals", False, True),
    "StringEqualsIgnoreCase": ("equals", True, False),
    "StringNotEqualsIgnoreCase": ("equals", True, True),
    "StringLike": ("like", False, False),
    "StringNotLike": ("like", False, True),
    "ArnEquals": ("like", False, False),
    "ArnLike": ("like", False, False),
    "ArnNotEquals": ("like", False, True),
    "ArnNotLike": ("like", False, True),
    "Bool": ("equals", True, False),
    "IpAddress": ("ip", False, False),
    "NotIpAddress": ("ip", False, True),
    "NumericEquals": ("numeric", False, False),
    "NumericNotEquals": ("numeric", False, True),
    "NumericLessThan": ("numeric", False, False),
    "NumericLessThanEquals": ("numeric", False, False),
    "NumericGreaterThan": ("numeric", False, False),
    "NumericGreaterThanEquals": ("numeric", False, False),
}
_NUMERIC = {
    "NumericEquals": lambda a, b: a == b,
    "NumericNotEquals": lambda a, b: a == b,  # negated below
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}


class _UnsupportedCondition(Exception):
    pass


@dataclass(frozen=True)
class _Condition:
    operator: str
    key: str
    values: tuple[_Pattern, ...]
    if_exists: bool

    def holds(self, context: Context) -> bool:
        actual = context.get(self.key)
        if self.operator == "Null":
            wanted = {(v.literal(context) or "").lower() for v in self.values}
            absent = actual is None
            return ("true" in wanted and absent) or ("false" in wanted and not absent)
        kind, ignore_case, negated = _STRING_OPERATORS[self.operator]
        if actual is None:
            # IAM: a missing key fails a positive operator and satisfies a negated one;
            # ...IfExists makes a missing key satisfy the condition.
            return self.if_exists or negated
        found = any(self._match_one(kind, ignore_case, actual, v, context) for v in self.values)
        return not found if negated else found

    def _match_one(
        self, kind: str, ignore_case: bool, actual: str, value: _Pattern, context: Context
    ) -> bool:
        if kind == "like":
            return value.matches(actual, context)
        wanted = value.literal(context)
        if wanted is None:
            return False
        if kind == "equals":
            return actual.casefold() == wanted.casefold() if ignore_case else actual == wanted
        if kind == "ip":
            try:
                return ipaddress.ip_address(actual) in ipaddress.ip_network(wanted, strict=False)
            except ValueError:
                return False
        try:
            return _NUMERIC[self.operator](float(actual), float(wanted))
        except ValueError:
            return False


def _condition_text(value: Any) -> str:
    # JSON true/false in a Bool condition mean the strings "true"/"false".
    return str(value).lower() if isinstance(value, bool) else str(value)


def _compile_conditions(block: Any, with_variables: bool) -> tuple[_Condition, ...]:
    if not isinstance(block, dict):
        raise PolicyDocumentError("Condition must be an object of operators")
    conditions = []
    for operator, entries in block.items():
        base, if_exists = operator, False
        if base.endswith("IfExists") and base != "IfExists":
            base, if_exists = base[: -len("IfExists")], True
        if ":" in base:  # ForAnyValue: / ForAllValues: (multi-valued keys)
            raise _UnsupportedCondition(f"condition operator {operator}")
        if base != "Null" and base not in _STRING_OPERATORS:
            raise _UnsupportedCondition(f"condition operator {operator}")
        if not isinstance(entries, dict):
            raise PolicyDocumentError(f"Condition operator {operator} must map keys to values")
        for key, values in entries.items():
            raw = values if isinstance(values, list) else [values]
            patterns = tuple(_Pattern(_condition_text(v), with_variables) for v in raw)
            conditions.append(_Condition(base, key, patterns, if_exists))
    return tuple(conditions)


# Statements and documents ------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: str  # "Allow" | "Deny"
    actions: tuple[re.Pattern[str], ...]
    not_action: bool
    resources: tuple[_Pattern, ...]
    not_resource: bool
    conditions: tuple[_Condition, ...]
    # Set when a construct we do not evaluate is present: the statement never applies.
    unsupported: str | None = None
    # Actions are few (iot:Connect, iot:Publish, ...): remember each answer.
    _action_memo: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def label(self) -> str:
        return f"statement {self.index}" + (f", Sid {self.sid}" if self.sid else "")

    def action_matches(self, action: str) -> bool:
        known = self._action_memo.get(action)
        if known is None:
            hit = any(p.fullmatch(action) for p in self.actions)
            known = self._action_memo[action] = hit != self.not_action
        return known

    def resource_matches(self, resource: str, context: Context) -> bool:
        if not self.not_resource:
            return any(p.matches(resource, context) for p in self.resources)
        # NotResource: an exclusion that cannot be resolved must not widen the statement.
        excluded = []
        for pattern in self.resources:
            regex = pattern.regex(context)
            if regex is None:
                return False
            excluded.append(regex)
        return not any(regex.fullmatch(resource) for regex in excluded)

    def conditions_hold(self, context: Context) -> bool:
        return all(c.holds(context) for c in self.conditions)


def _strings(statement: dict[str, Any], key: str, index: int) -> list[str]:
    value = statement[key]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyDocumentError(
            f"Statement {index}: {key} must be a non-empty string or list of strings"
        )
    return values


def _compile_statement(raw: Any, index: int, with_variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyDocumentError(f"Statement {index} must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyDocumentError(f'Statement {index}: Effect must be "Allow" or "Deny"')
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyDocumentError(f"Statement {index}: exactly one of Action or NotAction")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyDocumentError(f"Statement {index}: exactly one of Resource or NotResource")
    action_key = "Action" if "Action" in raw else "NotAction"
    resource_key = "Resource" if "Resource" in raw else "NotResource"
    actions = tuple(
        re.compile(_wildcard_source(a), re.IGNORECASE) for a in _strings(raw, action_key, index)
    )
    resources = tuple(_Pattern(r, with_variables) for r in _strings(raw, resource_key, index))
    unsupported = None
    conditions: tuple[_Condition, ...] = ()
    if "Condition" in raw:
        try:
            conditions = _compile_conditions(raw["Condition"], with_variables)
        except _UnsupportedCondition as exc:
            unsupported = f"unsupported {exc}"
            log.warning("IoT policy statement %d uses an %s: it never applies", index, unsupported)
    return Statement(
        index=index,
        sid=raw.get("Sid"),
        effect=effect,
        actions=actions,
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=resource_key == "NotResource",
        conditions=conditions,
        unsupported=unsupported,
    )


@dataclass(frozen=True)
class CompiledPolicy:
    statements: tuple[Statement, ...]
    version: str

    @classmethod
    def parse(cls, document: str | Mapping[str, Any]) -> CompiledPolicy:
        """Compile a policy document (JSON text or parsed); PolicyDocumentError if malformed."""
        if isinstance(document, str):
            try:
                parsed = json.loads(document)
            except json.JSONDecodeError as exc:
                raise PolicyDocumentError(f"policy document is not valid JSON: {exc}") from exc
        else:
            parsed = document
        if not isinstance(parsed, dict):
            raise PolicyDocumentError("policy document must be a JSON object")
        version = parsed.get("Version", "2008-10-17")
        if version not in SUPPORTED_VERSIONS:
            raise PolicyDocumentError(
                f"Version {version!r} is not supported; use {VARIABLES_VERSION!r}"
            )
        raw_statements = parsed.get("Statement")
        if raw_statements is None:
            raise PolicyDocumentError("policy document has no Statement")
        if isinstance(raw_statements, dict):
            raw_statements = [raw_statements]
        if not isinstance(raw_statements, list) or not raw_statements:
            raise PolicyDocumentError("Statement must be an object or a non-empty list")
        with_variables = version == VARIABLES_VERSION
        return cls(
            tuple(_compile_statement(s, i, with_variables) for i, s in enumerate(raw_statements)),
            version,
        )


# Evaluation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    allowed: bool
    reason: str
    policy_name: str | None = None
    statement: int | None = None


def evaluate(
    policies: Sequence[tuple[str, CompiledPolicy]],
    action: str,
    resource: str,
    context: Context,
) -> Evaluation:
    """Decide `action` on `resource` under every attached policy, AWS style."""
    allow: tuple[str, Statement] | None = None
    skipped: list[str] = []
    for name, policy in policies:
        for statement in policy.statements:
            if not statement.action_matches(action):
                continue
            if not statement.resource_matches(resource, context):
                continue
            if statement.unsupported:
                skipped.append(f"policy {name} {statement.label()}: {statement.unsupported}")
                continue
            if not statement.conditions_hold(context):
                continue
            if statement.effect == "Deny":
                return Evaluation(
                    False,
                    f"explicit Deny in policy {name} ({statement.label()})",
                    name,
                    statement.index,
                )
            if allow is None:
                allow = (name, statement)
    if allow is not None:
        name, statement = allow
        reason = f"allowed by policy {name} ({statement.label()})"
        return Evaluation(True, reason, name, statement.index)
    reason = f"no attached policy allows {action} on {resource}"
    if skipped:
        reason += " (not evaluated: " + "; ".join(skipped) + ")"
    return Evaluation(False, reason)


@dataclass(frozen=True)
class Explanation:
    """Every policy's verdict on one request (what TestAuthorization reports)."""

    allowing: tuple[str, ...]  # policies with a matching Allow statement
    denying: tuple[str, ...]  # policies with a matching Deny statement
    silent: tuple[str, ...]  # policies with neither
    missing_context: tuple[str, ...]  # variables/keys without a value in matching statements

    @property
    def decision(self) -> str:
        if self.denying:
            return "EXPLICIT_DENY"
        return "ALLOWED" if self.allowing else "IMPLICIT_DENY"


def explain(
    policies: Sequence[tuple[str, CompiledPolicy]],
    action: str,
    resource: str,
    context: Context,
) -> Explanation:
    """Like `evaluate`, but looks at every statement of every policy."""
    allowing: list[str] = []
    denying: list[str] = []
    silent: list[str] = []
    missing: set[str] = set()
    for name, policy in policies:
        effects = set()
        for statement in policy.statements:
            if not statement.action_matches(action):
                continue
            for pattern in statement.resources:
                missing.update(v for v in pattern.variables if v not in context)
            for condition in statement.conditions:
                if condition.operator != "Null" and not condition.if_exists:
                    if condition.key not in context:
                        missing.add(condition.key)
            if statement.unsupported or not statement.resource_matches(resource, context):
                continue
            if statement.conditions_hold(context):
                effects.add(statement.effect)
        if "Deny" in effects:
            denying.append(name)
        elif "Allow" in effects:
            allowing.append(name)
        else:
            silent.append(name)
    return Explanation(tuple(allowing), tuple(denying), tuple(silent), tuple(sorted(missing)))
