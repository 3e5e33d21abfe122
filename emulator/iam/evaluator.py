"""AWS's IAM policy evaluation logic for one request (pure, no I/O).

Policies are compiled once (`Policy.parse`) and evaluated against a `Request`: who acts
(a role session or a service principal), the action, the resource and the request context.
`evaluate()` combines the policy types as AWS documents for a request within one account:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
1. an applicable Deny in any policy (identity-based, permissions boundary, resource-based)
   decides: explicit deny;
2. an Allow in the resource-based policy for the role session's own ARN decides: allowed, even
   without an identity-based Allow; for the role's ARN (or `*`) it still needs the permissions
   boundary, if the role has one, to allow;
3. otherwise an identity-based Allow is needed, and the permissions boundary (if any) must allow
   as well; nothing allowing means an implicit deny.
A service principal (`iot.amazonaws.com` invoking a function) has no identity-based policies:
only the resource-based policy can allow it. Trust policies are resource-based policies of the
role, evaluated for `sts:AssumeRole`.

What cannot be evaluated fails closed. A statement that AWS would refuse to store (an unknown
condition operator, a value of the wrong type, an identity statement without Resource) is kept
as "malformed": if its Action/Resource/Principal apply, a malformed Deny denies and a malformed
Allow allows nothing. A condition on a key the caller could not supply (`None` from
conditions.Condition) makes a Deny apply and an Allow not apply. Either way the Decision says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from emulator.iam.conditions import Condition, PolicyError, compile_block
from emulator.iam.patterns import VARIABLES_VERSION, Unresolved, arn_match, wildcard_match

SUPPORTED_VERSIONS = ("2012-10-17", "2008-10-17")
PolicyType = Literal["identity", "boundary", "resource", "trust"]
# SimulatePrincipalPolicy's EvalDecision values.
EvalDecision = Literal["allowed", "explicitDeny", "implicitDeny"]


# ------------------------------------------------------------------------- the request
@dataclass(frozen=True)
class Principal:
    """Who makes the call: a role session (`arn` is the assumed-role ARN) or a service."""

    kind: Literal["AWS", "Service"]
    arn: str  # arn:aws:sts::123456789012:assumed-role/Name/session, or iot.amazonaws.com
    role_arn: str | None = None  # arn:aws:iam::123456789012:role/path/Name for a session
    account: str | None = None

    @staticmethod
    def role_session(role_arn: str, session: str) -> Principal:
        _, partition, _, _, account, resource = role_arn.split(":", 5)
        name = resource.rsplit("/", 1)[-1]
        return Principal(
            "AWS",
            f"arn:{partition}:sts::{account}:assumed-role/{name}/{session}",
            role_arn,
            account,
        )

    @staticmethod
    def service(name: str) -> Principal:
        return Principal("Service", name)


@dataclass(frozen=True)
class Request:
    principal: Principal
    action: str  # service:Operation
    resource: str  # an ARN, or "*" for actions without a resource
    # Context keys (any case) -> value(s). Multi-valued keys are lists.
    context: Mapping[str, Any] = field(default_factory=dict)
    # True when the context holds every key AWS would put in this request: a missing
    # service-specific key is then absent rather than unknown.
    complete: bool = False

    def lookup_table(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for key, value in self.context.items():
            items = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
            table[key.lower()] = [_text(v) for v in items]
        return table


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Statement:
    index: int
    sid: str | None
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # None: no Resource element (resource-based policies)
    not_resources: tuple[str, ...] | None
    principals: Mapping[str, tuple[str, ...]] | None  # {"AWS": (...), "Service": (...)}, "*"
    not_principals: Mapping[str, tuple[str, ...]] | None
    conditions: tuple[Condition, ...]
    malformed: str | None = None  # why AWS would refuse this statement

    def label(self) -> str:
        return f"Sid {self.sid!r}" if self.sid else f"statement #{self.index + 1}"


@dataclass(frozen=True)
class Policy:
    """A compiled policy document with an id for explanations (name or ARN and version)."""

    policy_id: str
    policy_type: PolicyType
    statements: tuple[Statement, ...]
    variables: bool
    document: str

    @staticmethod
    def parse(document: str | Mapping[str, Any], policy_id: str, policy_type: PolicyType) -> Policy:
        """Compile a document. Raises PolicyError for a document that is not a policy at all."""
        text = document if isinstance(document, str) else json.dumps(document)
        try:
            raw = json.loads(text) if isinstance(document, str) else document
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{policy_id}: not valid JSON ({exc.msg})") from exc
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{policy_id}: a policy document must be a JSON object")
        version = raw.get("Version", "2008-10-17")
        if version not in SUPPORTED_VERSIONS:
            raise PolicyError(
                f"{policy_id}: Version must be one of {', '.join(SUPPORTED_VERSIONS)}"
            )
        items = raw.get("Statement")
        if isinstance(items, Mapping):
            items = [items]
        if not isinstance(items, list) or not items:
            raise PolicyError(f"{policy_id}: Statement must be a statement or a list of them")
        variables = version == VARIABLES_VERSION
        statements = tuple(
            _compile_statement(item, i, variables, policy_type) for i, item in enumerate(items)
        )
        return Policy(policy_id, policy_type, statements, variables, text)

    def problems(self) -> list[str]:
        """Why AWS would refuse to store this policy (empty when it would accept it)."""
        return [f"{s.label()}: {s.malformed}" for s in self.statements if s.malformed]


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    if key not in raw:
        return None
    value = raw[key]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"{key} must be a string or a list of strings")
    return tuple(items)


def _principals(raw: Mapping[str, Any], key: str) -> Mapping[str, tuple[str, ...]] | None:
    if key not in raw:
        return None
    value = raw[key]
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, Mapping) or not value:
        raise PolicyError(f'{key} must be "*" or an object such as {{"Service": ...}}')
    out = {}
    for kind, names in value.items():
        items = names if isinstance(names, list) else [names]
        if kind not in ("AWS", "Service", "Federated", "CanonicalUser") or not all(
            isinstance(n, str) for n in items
        ):
            raise PolicyError(f"{key} has an invalid principal type or value: {kind}")
        out[kind] = tuple(items)
    return out


def _compile_statement(raw: Any, index: int, variables: bool, policy_type: PolicyType) -> Statement:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"statement #{index + 1} must be an object")
    sid = raw.get("Sid") if isinstance(raw.get("Sid"), str) else None
    effect = raw.get("Effect")
    problem = None
    try:
        if effect not in ("Allow", "Deny"):
            raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
        actions, not_actions = _strings(raw, "Action"), _strings(raw, "NotAction")
        resources, not_resources = _strings(raw, "Resource"), _strings(raw, "NotResource")
        principals, not_principals = _principals(raw, "Principal"), _principals(raw, "NotPrincipal")
        if (actions is None) == (not_actions is None):
            raise PolicyError("exactly one of Action and NotAction is required")
        if resources is not None and not_resources is not None:
            raise PolicyError("Resource and NotResource cannot both be present")
        if policy_type in ("identity", "boundary"):
            if resources is None and not_resources is None:
                raise PolicyError("Policy statement must contain resources")
            if principals is not None or not_principals is not None:
                raise PolicyError("Principal is not allowed in an identity-based policy")
        elif principals is None and not_principals is None:
            raise PolicyError("a resource-based policy statement needs Principal or NotPrincipal")
        elif policy_type == "trust" and (resources is not None or not_resources is not None):
            # A trust policy is attached to the role itself: AWS refuses a Resource element.
            raise PolicyError("Has prohibited field Resource")
        conditions = compile_block(raw.get("Condition"), variables)
    except PolicyError as exc:
        # Kept (not raised) so that evaluation can fail closed on it; see module doc.
        problem = str(exc)
        actions = tuple(_loose(raw.get("Action"))) or None
        not_actions = tuple(_loose(raw.get("NotAction"))) or None
        resources = tuple(_loose(raw.get("Resource"))) or None
        not_resources = tuple(_loose(raw.get("NotResource"))) or None
        principals = not_principals = None
        conditions = ()
        if effect not in ("Allow", "Deny"):
            effect = "Deny"  # an unreadable effect is treated as the stricter one
    return Statement(
        index,
        sid,
        effect,
        actions,
        not_actions,
        resources,
        not_resources,
        principals,
        not_principals,
        conditions,
        problem,
    )


def _loose(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, str)]


# ------------------------------------------------------------------------- matching
def action_matches(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(wildcard_match(p, action, ignore_case=True) for p in statement.actions)
    if statement.not_actions is not None:
        return not any(wildcard_match(p, action, ignore_case=True) for p in statement.not_actions)
    return True  # a malformed statement without either: assume it applies


def _resource_matches(statement: Statement, resource: str, lookup, variables: bool) -> bool:
    def matches(pattern: str) -> bool:
        try:
            return arn_match(pattern, resource, lookup if variables else None)
        except Unresolved:
            return False

    if statement.resources is not None:
        return any(matches(p) for p in statement.resources)
    if statement.not_resources is not None:
        return not any(matches(p) for p in statement.not_resources)
    return True  # no Resource element: the resource the policy is attached to


def _principal_specificity(names: Mapping[str, tuple[str, ...]], who: Principal) -> str | None:
    """How a Principal element names `who`: "session", "role", "any", "account" or None."""
    if "*" in names:
        return "any"
    if who.kind == "Service":
        return "service" if who.arn in names.get("Service", ()) else None
    best = None
    for name in names.get("AWS", ()):
        if name == "*":
            best = best or "any"
        elif name == who.arn:
            return "session"
        elif who.role_arn and name == who.role_arn:
            best = "role"
        elif who.account and name in (who.account, f"arn:aws:iam::{who.account}:root"):
            best = best or "account"
    return best


def _principal_matches(statement: Statement, who: Principal) -> str | None:
    if statement.principals is not None:
        return _principal_specificity(statement.principals, who)
    if statement.not_principals is not None:
        return None if _principal_specificity(statement.not_principals, who) else "any"
    return "identity"


# ------------------------------------------------------------------------- decisions
@dataclass(frozen=True)
class MatchedStatement:
    policy_id: str
    policy_type: PolicyType
    statement: str  # "Sid 'x'" or "statement #n"
    effect: str
    note: str = ""  # why a fail-closed rule applied


@dataclass(frozen=True)
class Decision:
    decision: EvalDecision
    principal: str
    action: str
    resource: str
    reason: str  # one sentence a learner can act on
    matched: tuple[MatchedStatement, ...] = ()
    missing_context: tuple[str, ...] = ()  # condition keys the caller could not supply

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the emulator's activity and deliveries views and its log."""
        return {
            "decision": self.decision,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "message": self.message(),
            "statements": [
                {
                    "policy": m.policy_id,
                    "policyType": m.policy_type,
                    "statement": m.statement,
                    "effect": m.effect,
                    **({"note": m.note} if m.note else {}),
                }
                for m in self.matched
            ],
            "missingContext": list(self.missing_context),
        }

    def message(self) -> str:
        """AWS's AccessDenied wording ("User: ... is not authorized to perform: ...")."""
        if self.allowed:
            return f"{self.principal} is allowed to perform {self.action} on {self.resource}"
        return (
            f"User: {self.principal} is not authorized to perform: {self.action} on resource: "
            f"{self.resource} {self.reason}"
        )


_TYPE_WORDS = {
    "identity": "identity-based policy",
    "boundary": "permissions boundary",
    "resource": "resource-based policy",
    "trust": "trust policy",
}


def _applies(
    statement: Statement, policy: Policy, request: Request, lookup, unknown
) -> tuple[str | None, str]:
    """(how the principal matched, or None when the statement does not apply; a note)."""
    if not action_matches(statement, request.action):
        return None, ""
    if not _resource_matches(statement, request.resource, lookup, policy.variables):
        return None, ""
    specificity = _principal_matches(statement, request.principal)
    if statement.malformed:
        if policy.policy_type in ("resource", "trust") and statement.principals is None:
            specificity = "any"  # cannot read Principal: assume it names the caller
        return specificity or "identity", f"malformed: {statement.malformed}"
    if specificity is None:
        return None, ""
    note = ""
    for condition in statement.conditions:
        result = condition.evaluate(lookup, unknown)
        if result is False:
            return None, ""
        if result is None:
            note = f"condition {condition.describe()} needs a value the emulator does not know"
    return specificity, note


def evaluate(
    request: Request,
    identity: Sequence[Policy] = (),
    boundary: Policy | None = None,
    resource_policy: Policy | None = None,
    *,
    identity_applies: bool = True,
) -> Decision:
    """The decision for one request. `identity_applies` is False for a service principal."""
    table = request.lookup_table()

    def lookup(key: str) -> list[str] | None:
        return table.get(key)

    def unknown(key: str) -> bool:
        # Global keys are set by the emulator for the calls it makes, so a missing one is
        # absent on AWS too; resource tags and service-specific keys depend on the caller.
        if request.complete:
            return False
        return not key.startswith("aws:") or key.startswith("aws:resourcetag/")

    policies: list[Policy] = list(identity) if identity_applies else []
    if boundary is not None and identity_applies:
        policies.append(boundary)
    if resource_policy is not None:
        policies.append(resource_policy)

    allows: dict[str, list[tuple[MatchedStatement, str]]] = {}
    denies: list[MatchedStatement] = []
    missing: set[str] = set()
    for policy in policies:
        for statement in policy.statements:
            specificity, note = _applies(statement, policy, request, lookup, unknown)
            if specificity is None:
                continue
            if note.startswith("condition"):
                missing.update(
                    c.key for c in statement.conditions if c.evaluate(lookup, unknown) is None
                )
            matched = MatchedStatement(
                policy.policy_id, policy.policy_type, statement.label(), statement.effect, note
            )
            if statement.effect == "Deny":
                if specificity != "identity" or policy.policy_type in ("identity", "boundary"):
                    denies.append(matched)
            elif not note:  # an Allow needs every condition known and true
                allows.setdefault(policy.policy_type, []).append((matched, specificity))

    base = dict(principal=request.principal.arn, action=request.action, resource=request.resource)
    if denies:
        first = denies[0]
        kind = _TYPE_WORDS[first.policy_type]
        return Decision(
            "explicitDeny",
            reason=(
                f"with an explicit deny in {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                f"({first.policy_id}, {first.statement}"
                + (f"; {first.note}" if first.note else "")
                + ")"
            ),
            matched=tuple(denies),
            missing_context=tuple(sorted(missing)),
            **base,
        )

    boundary_ok = boundary is None or bool(allows.get("boundary"))
    for policy_type in ("resource", "trust"):
        for matched, specificity in allows.get(policy_type, ()):
            if specificity in ("session", "service") or (
                specificity in ("role", "any") and (boundary_ok or not identity_applies)
            ):
                return Decision(
                    "allowed",
                    reason=f"allowed by {matched.policy_id}, {matched.statement}",
                    matched=(matched,),
                    **base,
                )
            # "account": the resource policy delegates to the account, whose identity-based
            # policies decide below.
    identity_allows = [m for m, _ in allows.get("identity", ())]
    if identity_applies and identity_allows and boundary_ok:
        return Decision(
            "allowed",
            reason=f"allowed by {identity_allows[0].policy_id}, {identity_allows[0].statement}",
            matched=tuple(identity_allows),
            **base,
        )
    if (
        not identity_applies
        or resource_policy is not None
        and resource_policy.policy_type == "trust"
    ):
        missing_type = resource_policy.policy_type if resource_policy else "resource"
        reason = f"because no {_TYPE_WORDS[missing_type]} allows the {request.action} action"
    elif identity_allows and not boundary_ok:
        reason = f"because no permissions boundary allows the {request.action} action"
    else:
        reason = f"because no identity-based policy allows the {request.action} action"
    return Decision("implicitDeny", reason=reason, missing_context=tuple(sorted(missing)), **base)
