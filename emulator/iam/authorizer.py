"""Authorise what a service does on a user's behalf with the role the user named.

`IamAuthorizer` reads a role from moto's IAM backend (its inline policies, its attached managed
policies at their default version, its permissions boundary and its trust policy), compiles
each document once and asks `evaluator.evaluate`. Callers pass the resource-based policy of the
target (an S3 bucket policy, a Lambda function policy) as a document; the authorizer never
looks them up itself, so the service that owns the resource decides which policy applies.

- `authorize(role_arn, action, resource, context)`: may a session of the role do this?
- `can_assume(role_arn, "iot.amazonaws.com", context)`: does the trust policy let the service
  assume the role (`aws:SourceAccount` / `aws:SourceArn` in `context`)?
- `authorize_service("iot.amazonaws.com", action, resource, policy, context)`: a service
  principal acting on a resource with only a resource-based policy (the lambda rule action).

Decisions are cached per (role fingerprint, action, resource, resource policy, context); the
fingerprint holds the inline documents, each attached managed policy's default version id (a
version's document never changes), the boundary's version and the role's tags, so a changed
policy changes the key and there is nothing to invalidate. A policy that reads the clock
(`aws:CurrentTime`, `aws:EpochTime`) is evaluated afresh every time.

AWS managed policies come from moto's own offline copy of their documents
(`moto.iam.aws_managed_policies`), read once at first use.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from urllib.parse import unquote

from emulator.iam.conditions import PolicyError
from emulator.iam.evaluator import Decision, Policy, PolicyType, Principal, Request, evaluate

DEFAULT_SESSION = "emulator"
_CLOCK_KEYS = ("aws:currenttime", "aws:epochtime")
_CACHE_LIMIT = 10_000
_AWS_MANAGED_PREFIX = ":iam::aws:policy/"


@cache
def _aws_managed_documents() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def aws_managed_policy_document(arn: str) -> str | None:
    """The default version of an AWS managed policy, e.g. AWSLambdaBasicExecutionRole."""
    if _AWS_MANAGED_PREFIX not in arn:
        return None
    path_and_name = arn.split(":policy", 1)[1]
    name = path_and_name.rsplit("/", 1)[-1]
    data = _aws_managed_documents().get(name)
    if data is None or path_and_name != f"{data.get('Path', '/')}{name}":
        return None
    return json.dumps(data["Document"])


@lru_cache(maxsize=2048)
def compile_policy(document: str, policy_id: str, policy_type: PolicyType) -> Policy:
    """Compile once per document text; a document that is not a policy at all allows nothing
    and, as a Deny everything, never lets a request through (fail closed)."""
    try:
        return Policy.parse(_decode(document), policy_id, policy_type)
    except PolicyError as exc:
        deny_all = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Principal": "*"}],
        }
        policy = Policy.parse(deny_all, policy_id, policy_type)
        statement = policy.statements[0]
        broken = type(statement)(**{**statement.__dict__, "malformed": str(exc)})
        return Policy(policy_id, policy_type, (broken,), False, document)


def _decode(document: str) -> str:
    # IAM returns documents URL-encoded; moto may hold either form.
    text = document.strip()
    return text if text.startswith("{") else unquote(text)


class NoEvaluator(RuntimeError):
    """IAM enforcement is on but the emulator has no IAM component."""


def enforcing(emulator: Any) -> Any | None:
    """The emulator's IAM component when enforcement is on (`--no-iam` / IOT_EMULATOR_IAM=off
    turn it off), None when it is off. Enforcement without an evaluator raises `NoEvaluator`:
    a caller refuses then, never allows for want of an answer."""
    if not getattr(emulator, "iam_enforced", True):
        return None
    iam = emulator.find("iam")
    if iam is None:
        raise NoEvaluator("IAM enforcement is on but the emulator has no IAM component")
    return iam


def source_context(source_arn: str) -> dict[str, str]:
    """The confused-deputy keys a service sets when it acts for a resource, e.g. IoT Core for
    a topic rule: aws:SourceArn, and aws:SourceAccount (the account in that ARN).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"""
    return {"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]}


class IamAuthorizer:
    """Evaluates a role's policies as AWS would; see the module doc."""

    def __init__(self, account_id: str, region: str = "us-east-1", partition: str = "aws"):
        self.account_id = account_id
        self.region = region
        self.partition = partition
        self._cache: dict[tuple, Decision] = {}
        self._roles: dict[str, Any] = {}  # role ARN -> moto Role, checked against the backend
        self._lock = threading.Lock()

    # ------------------------------------------------------------------- public interface
    def authorize(
        self,
        role_arn: str,
        action: str,
        resource: str,
        context: Mapping[str, Any] | None = None,
        *,
        resource_policy: str | None = None,
        resource_policy_id: str = "resource policy",
        session: str = DEFAULT_SESSION,
        complete: bool = False,
    ) -> Decision:
        """May a session of `role_arn` perform `action` on `resource`?"""
        role = self._role(role_arn)
        if role is None:
            principal_arn = (
                Principal.role_session(role_arn, session).arn
                if role_arn.count(":") == 5
                else role_arn
            )
            return _no_role(role_arn, principal_arn, action, resource)
        key = (
            "role",
            self._fingerprint(role),
            session,
            action,
            resource,
            resource_policy,
            complete,
            _frozen(context),
        )
        found = self._cache.get(key)
        if found is not None:
            return found
        identity, boundary = self._identity_policies(role)
        resource_compiled = (
            compile_policy(resource_policy, resource_policy_id, "resource")
            if resource_policy
            else None
        )
        full_context = {**self._role_context(role, session), **(context or {})}
        request = Request(
            Principal.role_session(role.arn, session), action, resource, full_context, complete
        )
        return self._decide(
            key,
            request,
            lambda r: evaluate(r, identity, boundary, resource_compiled),
            [*identity, boundary, resource_compiled],
        )

    def can_assume(
        self, role_arn: str, service_principal: str, context: Mapping[str, Any] | None = None
    ) -> Decision:
        """Does the role's trust policy let `service_principal` call sts:AssumeRole?"""
        role = self._role(role_arn)
        if role is None:
            return _no_role(role_arn, service_principal, "sts:AssumeRole", role_arn)
        key = ("trust", role.id, role.assume_role_policy_document, service_principal)
        key += (_frozen(context),)
        found = self._cache.get(key)
        if found is not None:
            return found
        trust = compile_policy(
            role.assume_role_policy_document, f"trust policy of role {role.name}", "trust"
        )
        return self._service_decision(
            key, service_principal, "sts:AssumeRole", role.arn, trust, context
        )

    def authorize_service(
        self,
        service_principal: str,
        action: str,
        resource: str,
        resource_policy: str | None,
        context: Mapping[str, Any] | None = None,
        *,
        resource_policy_id: str = "resource policy",
    ) -> Decision:
        """A service principal acting on a resource: only its resource-based policy can allow."""
        key = ("service", service_principal, action, resource, resource_policy, _frozen(context))
        found = self._cache.get(key)
        if found is not None:
            return found
        compiled = (
            compile_policy(resource_policy, resource_policy_id, "resource")
            if resource_policy
            else None
        )
        return self._service_decision(key, service_principal, action, resource, compiled, context)

    def role_policies(self, role_arn: str) -> tuple[list[Policy], Policy | None] | None:
        """The role's compiled identity-based policies and boundary (None: no such role)."""
        role = self._role(role_arn)
        return None if role is None else self._identity_policies(role)

    # ------------------------------------------------------------------- moto's state
    def _backend(self):
        from moto.iam.models import iam_backends

        # BackendDict.__getitem__ takes a lock and scans every backend on each call; a plain
        # dict read finds an existing account (services ask for each message they act on).
        account = dict.get(iam_backends, self.account_id)
        if account is None:
            account = iam_backends[self.account_id]
        return account[self.partition]

    def _role(self, role_arn: str):
        roles = self._backend().roles  # role id -> Role
        known = self._roles.get(role_arn)
        if known is not None and roles.get(known.id) is known:
            return known
        # list(): a snapshot, as API threads may add roles while a service thread reads.
        for role in list(roles.values()):
            if role.arn == role_arn:
                self._roles[role_arn] = role
                return role
        return None

    def _fingerprint(self, role) -> tuple:
        """Everything a role's decisions depend on, cheaply: inline documents, the attached
        managed policies' default version ids (a version's document never changes), the
        boundary and its default version, and the tags (aws:PrincipalTag)."""
        boundary_version = None
        if role.permissions_boundary_arn:
            policy = self._backend().managed_policies.get(role.permissions_boundary_arn)
            boundary_version = (policy.id, policy.default_version_id) if policy else None
        return (
            role.id,
            tuple(list(role.policies.items())),
            # The policy's id too: a policy deleted and created again restarts at v1.
            tuple(
                (arn, p.id, p.default_version_id) for arn, p in list(role.managed_policies.items())
            ),
            role.permissions_boundary_arn,
            boundary_version,
            tuple((t["Key"], t["Value"]) for t in role.tags or ()),
        )

    def managed_policy_document(self, arn: str) -> str | None:
        """The default version's document of a customer or AWS managed policy."""
        policy = self._backend().managed_policies.get(arn)
        if policy is not None:
            for version in policy.versions:
                if version.version_id == policy.default_version_id:
                    return version.document
        return aws_managed_policy_document(arn)

    def _identity_policies(self, role) -> tuple[list[Policy], Policy | None]:
        identity = [
            compile_policy(doc, f"role {role.name} inline policy {name}", "identity")
            for name, doc in sorted(list(role.policies.items()))
        ]
        managed = dict(list(role.managed_policies.items()))
        for arn in sorted(managed):
            policy = managed[arn]
            document = self.managed_policy_document(arn) or ""
            identity.append(
                compile_policy(
                    document, f"managed policy {arn} ({policy.default_version_id})", "identity"
                )
            )
        boundary = None
        if role.permissions_boundary_arn:
            arn = role.permissions_boundary_arn
            document = self.managed_policy_document(arn)
            # A boundary that no longer exists allows nothing (fail closed).
            boundary = compile_policy(
                document
                or '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*",'
                '"Resource":"*"}]}',
                f"permissions boundary {arn}",
                "boundary",
            )
        return identity, boundary

    # ------------------------------------------------------------------- request context
    def _role_context(self, role, session: str) -> dict[str, Any]:
        """Global keys AWS sets for a call made with a role session's credentials.
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
        """
        context: dict[str, Any] = {
            "aws:PrincipalArn": role.arn,
            "aws:PrincipalAccount": role.account_id,
            "aws:PrincipalType": "AssumedRole",
            "aws:userid": f"{role.id}:{session}",
            "aws:SecureTransport": True,  # services call each other over TLS
            "aws:RequestedRegion": self.region,
            "aws:PrincipalIsAWSService": False,
        }
        for tag in role.tags or []:
            context[f"aws:PrincipalTag/{tag['Key']}"] = tag["Value"]
        return context

    def _service_decision(
        self,
        key: tuple,
        service_principal: str,
        action: str,
        resource: str,
        policy: Policy | None,
        context: Mapping[str, Any] | None,
    ) -> Decision:
        """A service principal is judged by one policy on the resource's side (a trust or
        resource-based policy): no identity policy applies to it."""
        request = Request(
            Principal.service(service_principal),
            action,
            resource,
            {**self._service_context(service_principal), **(context or {})},
        )
        return self._decide(
            key,
            request,
            lambda r: evaluate(r, resource_policy=policy, identity_applies=False),
            [policy],
        )

    def _service_context(self, service_principal: str) -> dict[str, Any]:
        return {
            "aws:PrincipalIsAWSService": True,
            "aws:PrincipalServiceName": service_principal,
            "aws:SecureTransport": True,
            "aws:RequestedRegion": self.region,
        }

    # ------------------------------------------------------------------- caching
    def _decide(self, key: tuple, request: Request, compute, policies) -> Decision:
        if _reads_clock(policies):
            now = time.time()
            clock = {
                "aws:CurrentTime": datetime.fromtimestamp(now, UTC).isoformat(),
                "aws:EpochTime": int(now),
            }
            return compute(replace(request, context={**clock, **request.context}))
        decision = compute(request)
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def cache_size(self) -> int:
        return len(self._cache)


def _frozen(context: Mapping[str, Any] | None) -> tuple:
    if not context:
        return ()
    return tuple(
        sorted(
            (k, tuple(v) if isinstance(v, (list, tuple, set, frozenset)) else v)
            for k, v in context.items()
        )
    )


def _reads_clock(policies) -> bool:
    return any(
        condition.key in _CLOCK_KEYS
        or any(key in str(v).lower() for v in condition.values for key in _CLOCK_KEYS)
        for policy in policies
        if policy is not None
        for statement in policy.statements
        for condition in statement.conditions
    )


def _no_role(role_arn: str, principal: str, action: str, resource: str) -> Decision:
    return Decision(
        "implicitDeny",
        principal=principal,
        action=action,
        resource=resource,
        reason=f"because the role {role_arn} does not exist",
    )
