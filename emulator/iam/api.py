"""iam:SimulatePrincipalPolicy and iam:SimulateCustomPolicy, answered with the emulator's own
evaluator (moto has neither), so the simulator and enforcement never disagree.

https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulateCustomPolicy.html
- SimulatePrincipalPolicy: the role's (or user's) inline and attached managed policies, plus
  PolicyInputList; its permissions boundary unless PermissionsBoundaryPolicyInputList replaces
  it; the ResourcePolicy's Principal is matched against the role (or CallerArn for a user).
- SimulateCustomPolicy: only the given documents; CallerArn (an IAM user) is required with a
  ResourcePolicy "so that the policy's Principal element has a value to use".
- ContextEntries supply the keys; a condition key the request does not supply is treated as
  absent and listed in MissingContextValues, as the simulator does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from emulator.gateway import AwsRequest, AwsResponse, Gateway, ServiceError, query_error
from emulator.iam.authorizer import compile_policy
from emulator.iam.conditions import PolicyError
from emulator.iam.evaluator import (
    Decision,
    Policy,
    PolicyType,
    Principal,
    Request,
    action_matches,
    evaluate,
)

if TYPE_CHECKING:
    from emulator.iam.service import IamService

_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_LIST_TYPES = {
    "stringList",
    "numericList",
    "booleanList",
    "ipList",
    "binaryList",
    "dateList",
}
_CONTEXT_TYPES = {"string", "numeric", "boolean", "ip", "binary", "date"} | _LIST_TYPES


class _InputError(ServiceError):
    """A request IAM refuses, answered in the query protocol's error shape."""


def register(service: IamService, gateway: Gateway) -> None:
    handlers = _Handlers(service)
    gateway.on("iam", "SimulatePrincipalPolicy", handlers.simulate_principal_policy)
    gateway.on("iam", "SimulateCustomPolicy", handlers.simulate_custom_policy)
    # moto stores any trust policy; AWS refuses a malformed one, and enforcement would
    # otherwise meet it only when a service tries to assume the role.
    gateway.on("iam", "CreateRole", handlers.check_trust_policy)
    gateway.on("iam", "UpdateAssumeRolePolicy", handlers.check_trust_policy)


def _members(form: dict[str, list[str]], name: str) -> list[str]:
    found = []
    for key, values in form.items():
        prefix = f"{name}.member."
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            found.append((int(key[len(prefix) :]), values[0]))
    return [v for _, v in sorted(found)]


def _context_entries(form: dict[str, list[str]]) -> dict[str, object]:
    entries: dict[int, dict[str, object]] = {}
    for key, values in form.items():
        if not key.startswith("ContextEntries.member."):
            continue
        rest = key[len("ContextEntries.member.") :]
        index, _, field = rest.partition(".")
        if not index.isdigit():
            continue
        entry = entries.setdefault(int(index), {"values": {}})
        if field == "ContextKeyName":
            entry["name"] = values[0]
        elif field == "ContextKeyType":
            entry["type"] = values[0]
        elif field.startswith("ContextKeyValues.member."):
            position = field.rsplit(".", 1)[-1]
            entry["values"][int(position) if position.isdigit() else 0] = values[0]  # type: ignore[index]
    context: dict[str, object] = {}
    for _, entry in sorted(entries.items()):
        name, kind = entry.get("name"), entry.get("type", "string")
        if not isinstance(name, str) or kind not in _CONTEXT_TYPES:
            raise _InputError(
                "InvalidInput",
                f"ContextEntries: each entry needs a ContextKeyName and a ContextKeyType of "
                f"{', '.join(sorted(_CONTEXT_TYPES))}",
                400,
            )
        values = [v for _, v in sorted(entry["values"].items())]  # type: ignore[union-attr]
        context[name] = values if kind in _LIST_TYPES else (values[0] if values else "")
    return context


def _compile(document: str, source_id: str, policy_type: PolicyType) -> Policy:
    try:
        policy = Policy.parse(document, source_id, policy_type)
    except PolicyError as exc:
        raise _InputError("MalformedPolicyDocument", f"{source_id}: {exc}", 400) from exc
    if policy.problems():
        raise _InputError(
            "MalformedPolicyDocument", f"{source_id}: {'; '.join(policy.problems())}", 400
        )
    return policy


class _Handlers:
    def __init__(self, service: IamService) -> None:
        self.service = service

    def check_trust_policy(self, request: AwsRequest) -> AwsResponse | None:
        form = request.form()
        field = (
            "AssumeRolePolicyDocument" if request.operation == "CreateRole" else "PolicyDocument"
        )
        document = form.get(field)
        if not document:
            return None  # moto answers the missing parameter
        try:
            _compile(document, field, "trust")
        except _InputError as exc:
            return query_error(exc.code, exc.message, exc.status)
        return None

    def simulate_principal_policy(self, request: AwsRequest) -> AwsResponse:
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        try:
            source = (form.get("PolicySourceArn") or [""])[0]
            types: dict[str, str] = {}
            identity, boundary, principal = self._principal_policies(source, types)
            identity += [
                _compile(doc, f"PolicyInputList.{i}", "identity")
                for i, doc in enumerate(_members(form, "PolicyInputList"), 1)
            ]
            boundaries = _members(form, "PermissionsBoundaryPolicyInputList")
            if boundaries:
                boundary = _compile(
                    boundaries[0], "PermissionsBoundaryPolicyInputList.1", "boundary"
                )
            caller = (form.get("CallerArn") or [None])[0]
            if caller:
                principal = _caller(caller)
            return self._simulate(
                "SimulatePrincipalPolicy", form, identity, boundary, principal, types
            )
        except _InputError as exc:
            return query_error(exc.code, exc.message, exc.status)

    def simulate_custom_policy(self, request: AwsRequest) -> AwsResponse:
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        try:
            documents = _members(form, "PolicyInputList")
            if not documents:
                raise _InputError("InvalidInput", "PolicyInputList needs at least one policy", 400)
            identity = [
                _compile(doc, f"PolicyInputList.{i}", "identity")
                for i, doc in enumerate(documents, 1)
            ]
            boundaries = _members(form, "PermissionsBoundaryPolicyInputList")
            boundary = (
                _compile(boundaries[0], "PermissionsBoundaryPolicyInputList.1", "boundary")
                if boundaries
                else None
            )
            caller = (form.get("CallerArn") or [None])[0]
            if (form.get("ResourcePolicy") or [""])[0] and not caller:
                raise _InputError(
                    "InvalidInput",
                    "CallerArn is required with a ResourcePolicy, so that its Principal element "
                    "has a value to match: give the ARN of an IAM user",
                    400,
                )
            principal = _caller(caller) if caller else Principal("AWS", "", None, None)
            return self._simulate("SimulateCustomPolicy", form, identity, boundary, principal, {})
        except _InputError as exc:
            return query_error(exc.code, exc.message, exc.status)

    # ------------------------------------------------------------------------------------
    def _principal_policies(
        self, source: str, types: dict[str, str]
    ) -> tuple[list[Policy], Policy | None, Principal]:
        from moto.iam.models import iam_backends

        authorizer = self.service.authorizer
        backend = iam_backends[authorizer.account_id][authorizer.partition]
        entity = None
        kind = source.split(":", 5)[-1].split("/", 1)[0] if source.count(":") >= 5 else ""
        if kind == "role":
            entity = next((r for r in backend.roles.values() if r.arn == source), None)
        elif kind == "user":
            entity = next((u for u in backend.users.values() if u.arn == source), None)
        if entity is None:
            raise _InputError(
                "NoSuchEntity",
                f"PolicySourceArn {source!r} is not an existing IAM role or user of this account",
                404,
            )
        identity = []
        for name, doc in sorted(entity.policies.items()):
            identity.append(_compile(doc, name, "identity"))
            types[name] = kind
        for arn in sorted(entity.managed_policies):
            document = authorizer.managed_policy_document(arn) or ""
            name = arn.rsplit("/", 1)[-1]
            identity.append(_compile(document, name, "identity"))
            types[name] = "aws-managed" if ":iam::aws:policy/" in arn else "user-managed"
        boundary = None
        boundary_arn = getattr(entity, "permissions_boundary_arn", None) or getattr(
            entity, "permissions_boundary", None
        )
        if isinstance(boundary_arn, str) and boundary_arn:
            document = authorizer.managed_policy_document(boundary_arn) or ""
            boundary = compile_policy(document, boundary_arn.rsplit("/", 1)[-1], "boundary")
        if kind == "role":
            principal = Principal("AWS", entity.arn, entity.arn, authorizer.account_id)
        else:
            principal = Principal("AWS", entity.arn, None, authorizer.account_id)
        return identity, boundary, principal

    def _simulate(
        self,
        operation: str,
        form: dict[str, list[str]],
        identity: list[Policy],
        boundary: Policy | None,
        principal: Principal,
        types: dict[str, str],
    ) -> AwsResponse:
        actions = _members(form, "ActionNames")
        if not actions:
            raise _InputError("InvalidInput", "ActionNames needs at least one action", 400)
        resources = _members(form, "ResourceArns") or ["*"]
        resource_document = (form.get("ResourcePolicy") or [""])[0]
        resource_policy = (
            _compile(resource_document, "ResourcePolicy", "resource") if resource_document else None
        )
        context = _context_entries(form)
        results = []
        for action in actions:
            for resource in resources:
                request = Request(principal, action, resource, context, complete=True)
                decision = evaluate(request, identity, boundary, resource_policy)
                missing = _missing_keys(
                    [*identity, boundary, resource_policy], action, context.keys()
                )
                in_boundary = None
                if boundary is not None:
                    as_identity = replace(boundary, policy_type="identity")
                    in_boundary = evaluate(request, [as_identity]).allowed
                results.append(_result_xml(decision, missing, types, in_boundary))
        body = (
            f'<{operation}Response xmlns="{_NAMESPACE}"><{operation}Result>'
            f"<EvaluationResults>{''.join(results)}</EvaluationResults>"
            f"<IsTruncated>false</IsTruncated></{operation}Result>"
            "<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId>"
            f"</ResponseMetadata></{operation}Response>"
        )
        return AwsResponse(200, body.encode(), {"Content-Type": "text/xml"})


def _caller(arn: str) -> Principal:
    if ":user/" not in arn:
        raise _InputError(
            "InvalidInput",
            f"CallerArn {arn!r} must be the ARN of an IAM user (not a role, assumed role or "
            "service principal)",
            400,
        )
    return Principal("AWS", arn, None, arn.split(":")[4])


def _missing_keys(policies, action: str, supplied) -> list[str]:
    given = {k.lower() for k in supplied}
    missing: dict[str, str] = {}
    for policy in policies:
        if policy is None:
            continue
        for statement in policy.statements:
            if not action_matches(statement, action):
                continue
            for condition in statement.conditions:
                if condition.key not in given:
                    missing.setdefault(condition.key, condition.key)
    return sorted(missing.values())


def _result_xml(
    decision: Decision, missing: Sequence[str], types: dict[str, str], in_boundary: bool | None
) -> str:
    statements = "".join(
        "<member>"
        f"<SourcePolicyId>{escape(m.policy_id)}</SourcePolicyId>"
        f"<SourcePolicyType>{_source_type(m.policy_id, m.policy_type, types)}</SourcePolicyType>"
        "</member>"
        for m in decision.matched
    )
    missing_xml = "".join(f"<member>{escape(k)}</member>" for k in missing)
    detail = ""
    if in_boundary is not None:
        allowed = "true" if in_boundary else "false"
        detail = (
            "<PermissionsBoundaryDecisionDetail>"
            f"<AllowedByPermissionsBoundary>{allowed}</AllowedByPermissionsBoundary>"
            "</PermissionsBoundaryDecisionDetail>"
        )
    return (
        "<member>"
        f"<EvalActionName>{escape(decision.action)}</EvalActionName>"
        f"<EvalResourceName>{escape(decision.resource)}</EvalResourceName>"
        f"<EvalDecision>{decision.decision}</EvalDecision>"
        f"<MatchedStatements>{statements}</MatchedStatements>"
        f"<MissingContextValues>{missing_xml}</MissingContextValues>"
        f"{detail}"
        "</member>"
    )


def _source_type(policy_id: str, policy_type: str, types: dict[str, str]) -> str:
    """SimulatePrincipalPolicy's SourcePolicyType: user, group, role, aws-managed,
    user-managed, resource, none (a policy passed in the request)."""
    if policy_type == "resource":
        return "resource"
    return types.get(policy_id, "none")
