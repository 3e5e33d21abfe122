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
- `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$` (IAM "policy variables");
- Condition: every operator of IAM's condition-operator reference (String*, Numeric*, Date* with
  ISO 8601 or epoch values, Bool, BinaryEquals, IpAddress/NotIpAddress for IPv4 and IPv6, Arn*,
  Null), `...IfExists`, and the `ForAllValues:`/`ForAnyValue:` set qualifiers, with IAM's rules
  for missing keys, as emulator/iam/conditions.py evaluates them for every policy type; an
  operator name that is not IAM's makes the document malformed (AWS: MalformedPolicyException
  at CreatePolicy), so no statement is ever skipped for it;
- fail closed: a statement that reads a context key the emulator never sets (or a condition
  value it cannot parse as the operator's type) cannot be evaluated; if nothing else in it
  already fails, a Deny applies and an Allow does not (`evaluate` says which key).

Each document is compiled once; resource patterns without variables become one regex.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulator.iam.conditions import Condition, PolicyError, compile_block
from emulator.iam.patterns import wildcard_source

VARIABLES_VERSION = "2012-10-17"
SUPPORTED_VERSIONS = ("2012-10-17", "2008-10-17")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}

# Context key -> value; a multivalued key (iot:ConnectAttributes, a certificate's `.List`
# attributes) has a tuple of values, which never substitutes a `${...}` variable.
Context = Mapping[str, "str | tuple[str, ...]"]


def _text(context: Context, name: str) -> str | None:
    """The single value of a policy variable; None if it has none (or several)."""
    value = context.get(name)
    return value if isinstance(value, str) else None


class PolicyDocumentError(ValueError):
    """The document is not a valid IoT policy (AWS: MalformedPolicyException)."""


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
        return wildcard_source(piece)

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
            value = _text(context, name)
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
                value = _text(context, piece)
                if value is None:
                    return None
                out.append(value)
            else:
                out.append(piece[1:] if piece.startswith("\0") else piece)
        return "".join(out)

    def matches(self, value: str, context: Context) -> bool:
        pattern = self.regex(context)
        return pattern is not None and pattern.fullmatch(value) is not None

    def unresolved_verdict(self, context: Context) -> bool | None:
        """The match result when a variable has no value: False if every missing variable is
        a key the emulator models (absent on AWS too: "no value, nothing matches"), None
        (cannot tell) if one is a key the emulator never sets."""
        missing = [name for name in self.variables if _text(context, name) is None]
        return False if all(known_key(name) for name in missing) else None


# Conditions --------------------------------------------------------------------------------
# The operators, IAM's missing-key rules and the three-valued verdicts are emulator/iam/
# conditions.py's (the one implementation for IAM, IoT and S3 bucket policies); this module
# says which keys exist.
#
# The condition keys (and policy variables) the emulator puts in an MQTT request's context:
# `IotCore.policy_context` sets exactly these when they have a value ("basic-policy-variables",
# "thing-policy-variables", "cert-policy-variables"; aws:CurrentTime and aws:EpochTime are IAM
# global keys). A known key that is absent is absent on AWS too, so IAM's missing-key rules
# apply to it. Two keys are in a context only when the emulator knows them: iot:DomainName
# (the client's TLS SNI) and iot:ConnectAttributes (for iot:Connect). Absent, they and any
# other key (aws:PrincipalTag/..., a typo) cannot be given a value: see `_unknown`.
_KNOWN_KEYS = frozenset(
    k.lower()
    for k in (
        "iot:ClientId",
        "aws:SourceIp",
        "aws:CurrentTime",
        "aws:EpochTime",
        "iot:CertificateId",
        "iot:Certificate.SerialNumber",
        "iot:Connection.Thing.ThingName",
        "iot:Connection.Thing.ThingTypeName",
        "iot:Connection.Thing.IsAttached",
    )
)
_KNOWN_PREFIXES = tuple(
    p.lower()
    for p in (
        "iot:Certificate.Subject.",
        "iot:Certificate.Issuer.",
        "iot:Certificate.SubjectAlternativeName.",
        "iot:Certificate.IssuerAlternativeName.",
        "iot:Connection.Thing.Attributes[",
    )
)
TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime"})


def known_key(name: str) -> bool:
    """Whether the emulator models context key `name` (condition keys are case-insensitive)."""
    lowered = name.lower()
    return lowered in _KNOWN_KEYS or lowered.startswith(_KNOWN_PREFIXES)


def _lookup(keys: Mapping[str, Any]) -> Callable[[str], list[str] | None]:
    """conditions.py's view of a lowered context: every key's values as a list."""

    def lookup(key: str) -> list[str] | None:
        value = keys.get(key)
        if value is None:
            return None
        return [value] if isinstance(value, str) else list(value)

    return lookup


def _unknown(key: str) -> bool:
    # Asked only for a key the request lacks. A key the emulator never sets: IAM would treat
    # it as missing (a negated operator then holds, a positive one fails), but on AWS it may
    # well be present; guessing "missing" could drop a Deny or widen an Allow, so the answer
    # is "unknown" (the statement fails closed).
    return not known_key(key)


def _compile_conditions(
    block: Any, with_variables: bool, index: int, strict: bool
) -> tuple[Condition, ...]:
    where = f"Statement {index}"
    if not isinstance(block, dict):
        raise PolicyDocumentError(f"{where}: Condition must be an object of operators")
    try:
        # Not strict: a value the operator cannot read is evaluated as unknown (fails closed).
        return compile_block(block, with_variables, strict=strict)
    except PolicyError as exc:
        raise PolicyDocumentError(f"{where}: {exc}") from exc


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
    conditions: tuple[Condition, ...]
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

    def resource_state(self, resource: str, context: Context) -> bool | None:
        """Whether the Resource (or NotResource) covers `resource`; None if that depends on a
        variable the emulator cannot give a value to."""
        if not self.not_resource:
            unknown = False
            for pattern in self.resources:
                regex = pattern.regex(context)
                if regex is None:
                    unknown = unknown or pattern.unresolved_verdict(context) is None
                elif regex.fullmatch(resource):
                    return True
            return None if unknown else False
        # NotResource: an exclusion that cannot be resolved must neither widen an Allow nor
        # drop a Deny, so the statement's scope is unknown (it fails closed).
        for pattern in self.resources:
            regex = pattern.regex(context)
            if regex is None:
                return None
            if regex.fullmatch(resource):
                return False
        return True

    def applies(self, resource: str, context: Context, keys: Mapping[str, Any]) -> bool | None:
        """Three-valued: True (resource and every condition match), False (something does not),
        None (nothing fails but something cannot be evaluated). Conditions are ANDed, so one
        False decides even next to an unknown one."""
        state = self.resource_state(resource, context)
        if state is False:
            return False
        lookup = _lookup(keys)
        for condition in self.conditions:
            holds = condition.evaluate(lookup, _unknown)
            if holds is False:
                return False
            if holds is None:
                state = None
        return state

    def unknown_keys(self, context: Context) -> list[str]:
        """The keys this statement reads that the emulator cannot give a value to."""
        lowered = _lowered(context)
        return sorted(n for n in self.references() if n.lower() not in lowered and not known_key(n))

    def references(self) -> set[str]:
        """Every context key the statement reads (resource variables, condition keys and
        condition values' variables)."""
        names: set[str] = set()
        for pattern in self.resources:
            names.update(pattern.variables)
        for condition in self.conditions:
            names.update(condition.references())
        return names


def _lowered(context: Context) -> dict[str, Any]:
    # "Condition key names are not case-sensitive" (IAM "Condition" element).
    return {key.lower(): value for key, value in context.items()}


def _strings(statement: dict[str, Any], key: str, index: int) -> list[str]:
    value = statement[key]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyDocumentError(
            f"Statement {index}: {key} must be a non-empty string or list of strings"
        )
    return values


def _compile_statement(raw: Any, index: int, with_variables: bool, strict: bool) -> Statement:
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
        re.compile(wildcard_source(a), re.IGNORECASE) for a in _strings(raw, action_key, index)
    )
    resources = tuple(_Pattern(r, with_variables) for r in _strings(raw, resource_key, index))
    conditions: tuple[Condition, ...] = ()
    if "Condition" in raw:
        conditions = _compile_conditions(raw["Condition"], with_variables, index, strict)
    return Statement(
        index=index,
        sid=raw.get("Sid"),
        effect=effect,
        actions=actions,
        not_action=action_key == "NotAction",
        resources=resources,
        not_resource=resource_key == "NotResource",
        conditions=conditions,
    )


@dataclass(frozen=True)
class CompiledPolicy:
    statements: tuple[Statement, ...]
    version: str
    # Whether a decision can depend on aws:CurrentTime / aws:EpochTime: such decisions are
    # evaluated with the time of the request and never cached.
    time_dependent: bool = False

    @classmethod
    def parse(cls, document: str | Mapping[str, Any], strict: bool = False) -> CompiledPolicy:
        """Compile a policy document (JSON text or parsed); PolicyDocumentError if malformed.

        `strict` (CreatePolicy) also refuses a condition value its operator cannot read (an
        IpAddress that is no address, a date that is none); otherwise, for a document already
        stored, such a value makes its condition unknown, and the statement fails closed."""
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
        statements = tuple(
            _compile_statement(s, i, with_variables, strict) for i, s in enumerate(raw_statements)
        )
        time_dependent = any(
            name.lower() in TIME_KEYS for s in statements for name in s.references()
        )
        return cls(statements, version, time_dependent)


def time_context(now: float) -> dict[str, str]:
    """aws:CurrentTime (ISO 8601, UTC) and aws:EpochTime (seconds) for a request at `now`."""
    moment = datetime.fromtimestamp(int(now), tz=UTC)
    return {
        "aws:CurrentTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }


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
    """Decide `action` on `resource` under every attached policy, AWS style.

    Fail closed: a Deny statement that cannot be evaluated (it reads a context key the
    emulator never sets, and nothing else in it already fails) is applied; an Allow statement
    that cannot be evaluated is not. The reason names the keys.
    """
    keys = _lowered(context)
    allow: tuple[str, Statement] | None = None
    skipped: list[str] = []
    for name, policy in policies:
        for statement in policy.statements:
            if not statement.action_matches(action):
                continue
            state = statement.applies(resource, context, keys)
            if state is False:
                continue
            if state is None:
                unknown = ", ".join(statement.unknown_keys(context)) or "a condition value"
                if statement.effect == "Deny":
                    return Evaluation(
                        False,
                        f"explicit Deny in policy {name} ({statement.label()}) applied because "
                        f"the emulator cannot evaluate {unknown} (fails closed)",
                        name,
                        statement.index,
                    )
                skipped.append(
                    f"policy {name} {statement.label()}: the emulator cannot evaluate {unknown}"
                )
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
        reason += " (not applied: " + "; ".join(skipped) + ")"
    return Evaluation(False, reason)


@dataclass(frozen=True)
class Explanation:
    """Every policy's verdict on one request (what TestAuthorization reports)."""

    allowing: tuple[str, ...]  # policies with a matching Allow statement
    denying: tuple[str, ...]  # policies with a matching (or unevaluable) Deny statement
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
    keys = _lowered(context)
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
                if condition.key in keys:
                    continue
                # A key the emulator never sets always counts (it may have decided the
                # statement); a modelled one only where its absence is not what is tested.
                if not known_key(condition.key) or (
                    not condition.is_null and not condition.if_exists
                ):
                    missing.add(condition.name)
            state = statement.applies(resource, context, keys)
            if state is True or (state is None and statement.effect == "Deny"):
                effects.add(statement.effect)
        if "Deny" in effects:
            denying.append(name)
        elif "Allow" in effects:
            allowing.append(name)
        else:
            silent.append(name)
    return Explanation(tuple(allowing), tuple(denying), tuple(silent), tuple(sorted(missing)))
