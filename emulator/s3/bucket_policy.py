"""Bucket policies as S3 applies them to the bucket owner's own requests.

moto 5.2.5 checks a bucket's policy before object reads and writes
(`FakeBucket.get_permission`), but its condition evaluation knows only `StringEquals` and treats
every other operator as satisfied. A common statement such as the SAM CLI's managed bucket's

    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", ...,
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

therefore denies every request, where on AWS it denies only requests without TLS. This module
replaces that check with one that evaluates the statement's Principal, Action/NotAction,
Resource/NotResource and its Condition (every IAM operator, by emulator/iam/conditions.py), for
a request made with the account's own credentials (the emulator has no other callers of S3 yet).

Fail closed: a Deny whose condition uses an operator AWS would refuse or a key this module does
not supply is applied as if the condition held; an Allow with one is ignored. Never a skipped
Deny.

Request context: the emulator's API endpoint is plain HTTP on 127.0.0.1 standing in for AWS's
HTTPS endpoints, so `aws:SecureTransport` is "true" (a documented deviation).
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport
"""

from __future__ import annotations

import json
from typing import Any

from moto.iam.access_control import PermissionResult

from emulator.iam.conditions import PolicyError, compile_block
from emulator.iam.patterns import VARIABLES_VERSION, wildcard_match


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, case: bool = True) -> bool:
    return wildcard_match(pattern, value, ignore_case=not case)


# The keys a request to the emulator's S3 carries (lower-case; condition keys are not
# case-sensitive): the owner's own requests over the stand-in for AWS's HTTPS endpoint.
_CONTEXT_KEYS = ("aws:securetransport", "aws:principalaccount")
# Keys absent from such a request on AWS too: they are set only when a service calls on a
# resource's behalf or for a service principal ("reference_policies_condition-keys").
_ABSENT_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:principalservicename"})


def _unknown(key: str) -> bool:
    return key not in _ABSENT_KEYS


def _conditions_hold(block: Any, context: dict[str, str], variables: bool) -> bool | None:
    """True, False, or None when a condition cannot be evaluated here: an operator AWS would
    refuse, or a key the emulator does not supply (aws:PrincipalArn, s3:TlsVersion, ...)."""
    try:
        conditions = compile_block(block or None, variables)
    except PolicyError:
        return None

    def lookup(key: str) -> list[str] | None:
        return [context[key]] if key in context else None

    verdicts = [condition.evaluate(lookup, _unknown) for condition in conditions]
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _principal_matches(principal: Any, account_id: str) -> bool:
    """The caller is the bucket owner's account itself (not a service, not another account)."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for value in _list(principal.get("AWS", [])):
        value = str(value)
        if value == "*" or value == account_id or value == f"arn:aws:iam::{account_id}:root":
            return True
    return False


def _matches(patterns: Any, value: str, case: bool) -> bool:
    return any(_like(str(p), value, case) for p in _list(patterns))


def evaluate(policy: dict[str, Any], action: str, resource: str, account_id: str) -> Any:
    """PermissionResult for `action` on `resource` by the owner account's own credentials."""
    context = dict(zip(_CONTEXT_KEYS, ("true", account_id), strict=True))
    variables = policy.get("Version") == VARIABLES_VERSION
    allowed = False
    for statement in _list(policy.get("Statement", [])):
        if not isinstance(statement, dict):
            continue
        deny = statement.get("Effect") == "Deny"
        if "NotPrincipal" in statement:
            if not deny:
                continue  # NotPrincipal with Allow: AWS advises against it; grant nothing
        elif not _principal_matches(statement.get("Principal"), account_id):
            continue
        if "Action" in statement and not _matches(statement["Action"], action, case=False):
            continue
        if "NotAction" in statement and _matches(statement["NotAction"], action, case=False):
            continue
        if "Resource" in statement and not _matches(statement["Resource"], resource, True):
            continue
        if "NotResource" in statement and _matches(statement["NotResource"], resource, True):
            continue
        holds = _conditions_hold(statement.get("Condition"), context, variables)
        if holds is None:
            holds = deny  # fail closed: a Deny applies, an Allow grants nothing
        if not holds:
            continue
        if deny:
            return PermissionResult.DENIED
        allowed = True
    return PermissionResult.PERMITTED if allowed else PermissionResult.NEUTRAL


def _get_permission(bucket: Any, action: str, resource: str) -> Any:
    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    try:
        policy = json.loads(bucket.policy)
    except ValueError:
        return PermissionResult.DENIED  # S3 validated it on PutBucketPolicy; never skip
    return evaluate(policy, action, resource, bucket.account_id)


def install() -> None:
    """Make moto's S3 use this evaluation (idempotent)."""
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
