"""Bucket policies as S3 applies them to the bucket owner's own requests.

moto 5.2.5 checks a bucket's policy before object reads and writes
(`FakeBucket.get_permission`), but its condition evaluation knows only `StringEquals` and treats
every other operator as satisfied. A common statement such as the SAM CLI's managed bucket's

    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", ...,
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}

therefore denies every request, where on AWS it denies only requests without TLS. This module
replaces that check with one that evaluates the statement's Principal, Action/NotAction,
Resource/NotResource and the condition operators below, for a request made with the account's
own credentials (the emulator has no other callers of S3 yet).

Fail closed: a Deny whose condition uses an operator or key this module does not evaluate is
applied as if the condition held; an Allow with one is ignored. Never a skipped Deny.

Request context: the emulator's API endpoint is plain HTTP on 127.0.0.1 standing in for AWS's
HTTPS endpoints, so `aws:SecureTransport` is "true" (a documented deviation).
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport
Operators: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from moto.iam.access_control import PermissionResult


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _like(pattern: str, value: str, case: bool = True) -> bool:
    # IAM wildcards: `*` any run, `?` one character; nothing else is special.
    translated = pattern.replace("[", "[[]")
    if not case:
        return fnmatch.fnmatchcase(value.lower(), translated.lower())
    return fnmatch.fnmatchcase(value, translated)


def _string_ops() -> dict[str, Any]:
    return {
        "StringEquals": lambda want, have: have == want,
        "StringNotEquals": lambda want, have: have != want,
        "StringEqualsIgnoreCase": lambda want, have: have.lower() == want.lower(),
        "StringNotEqualsIgnoreCase": lambda want, have: have.lower() != want.lower(),
        "StringLike": lambda want, have: _like(want, have),
        "StringNotLike": lambda want, have: not _like(want, have),
        "ArnEquals": lambda want, have: _like(want, have),
        "ArnLike": lambda want, have: _like(want, have),
        "ArnNotEquals": lambda want, have: not _like(want, have),
        "ArnNotLike": lambda want, have: not _like(want, have),
        "Bool": lambda want, have: have.lower() == str(want).lower(),
    }


_OPERATORS = _string_ops()
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals",
            "ArnNotLike"}  # fmt: skip


class _Unknown(Exception):
    """The condition uses something this module does not evaluate."""


def _condition_holds(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator[: -len("IfExists")] if if_exists else operator
        if not isinstance(pairs, dict):
            raise _Unknown(operator)
        for key, wanted in pairs.items():
            key = key.lower()
            have = context.get(key)
            if base == "Null":
                # Null: "true" holds when the key is absent.
                if any(str(w).lower() == "true" for w in _list(wanted)) != (have is None):
                    return False
                continue
            test = _OPERATORS.get(base)
            if test is None:
                raise _Unknown(operator)
            if key not in _CONTEXT_KEYS:
                raise _Unknown(key)
            if have is None:
                if if_exists:
                    continue
                if base in _NEGATED:
                    raise _Unknown(key)  # a negated test of an absent key: not decided here
                return False  # a missing key does not match (IAM User Guide, operators page)
            values = [str(w) for w in _list(wanted)]
            if base in _NEGATED:
                if not all(test(w, have) for w in values):
                    return False
            elif not any(test(w, have) for w in values):
                return False
    return True


# The keys a request to the emulator's S3 carries (lower-case; condition keys are not
# case-sensitive). Keys outside this set cannot be evaluated here.
_CONTEXT_KEYS = {"aws:securetransport", "aws:principalaccount", "aws:principalarn",
                 "aws:sourceaccount", "aws:sourcearn", "aws:principalservicename"}  # fmt: skip


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
    context = {"aws:securetransport": "true", "aws:principalaccount": account_id}
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
        try:
            holds = _condition_holds(statement.get("Condition") or {}, context)
        except _Unknown:
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
