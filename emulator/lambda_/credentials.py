"""A function's own AWS calls are made with its execution role, as on Lambda.

Lambda gives each execution environment temporary credentials of the execution role
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN: "Defined runtime environment
variables", https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
and every SDK call the function makes is authorised against that role's policies
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).

Here each worker gets an access key id of its own (`ASIA...`, the prefix of temporary
credentials); `ExecutionRoleGuard` runs in the gateway before anything answers, maps a request
signed with such a key back to the role, works out the IAM action and resource of the call and
asks `emulator.iam`. A call whose permission the emulator cannot work out is refused (fail
closed) with a message saying so. Requests signed with any other key are left alone.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from emulator.gateway import AwsResponse, RequestContext, error_for

log = logging.getLogger(__name__)

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ACCESS_KEY = re.compile(r"Credential=(ASIA[A-Z2-7]{16})/")
_PRESIGNED_KEY = re.compile(r"X-Amz-Credential=(ASIA[A-Z2-7]{16})(?:/|%2F)")


def _temporary_access_key_id() -> str:
    return "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class SessionCredentials:
    """Temporary credentials of `role_arn` for one execution environment of a function."""

    role_arn: str
    function_name: str
    access_key_id: str = field(default_factory=_temporary_access_key_id)
    secret_access_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    session_token: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }


class CredentialStore:
    """The credentials handed to live execution environments, by access key id."""

    def __init__(self) -> None:
        self._by_key: dict[str, SessionCredentials] = {}
        self._lock = threading.Lock()

    def issue(self, role_arn: str, function_name: str) -> SessionCredentials:
        issued = SessionCredentials(role_arn, function_name)
        with self._lock:
            self._by_key[issued.access_key_id] = issued
        return issued

    def revoke(self, access_key_id: str) -> None:
        with self._lock:
            self._by_key.pop(access_key_id, None)

    def lookup(self, access_key_id: str) -> SessionCredentials | None:
        return self._by_key.get(access_key_id)


STORE = CredentialStore()  # one per process: keys are random, workers are this process's


def _access_key(environ: dict[str, Any]) -> str | None:
    found = _ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", "")) or _PRESIGNED_KEY.search(
        environ.get("QUERY_STRING", "")
    )
    return found.group(1) if found else None


def _s3_permissions(environ: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The S3 object and bucket reads and writes a function typically makes (path-style
    requests, as the SDK sends them to a custom endpoint); None for anything else.
    Actions as the S3 authorization reference names them
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html)."""
    path = unquote(environ.get("PATH_INFO", "/")).lstrip("/")
    bucket, _, key = path.partition("/")
    method = environ.get("REQUEST_METHOD", "GET")
    query = environ.get("QUERY_STRING", "")
    if not bucket:
        return None
    if not key:
        listing = method == "GET" and all(
            p.split("=")[0] in ("", "list-type", "prefix", "delimiter", "max-keys",
                                "continuation-token", "start-after", "encoding-type", "marker")
            for p in query.split("&")
        )  # fmt: skip
        return [("s3:ListBucket", f"arn:aws:s3:::{bucket}")] if listing else None
    if any(
        p.split("=")[0] in ("acl", "tagging", "retention", "legal-hold") for p in query.split("&")
    ):
        return None
    obj = f"arn:aws:s3:::{bucket}/{key}"
    if method in ("GET", "HEAD"):
        return [("s3:GetObject", obj)]
    if method == "DELETE":
        return (
            [("s3:DeleteObject", obj)]
            if "uploadId" not in query
            else [("s3:AbortMultipartUpload", obj)]
        )
    if method in ("PUT", "POST"):
        pairs = [("s3:PutObject", obj)]
        source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:  # CopyObject also reads the source object
            pairs.append(
                ("s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/').split('?')[0]}")
            )
        return pairs
    return None


def _json_permissions(
    context: RequestContext, region: str, account: str
) -> list[tuple[str, str]] | None:
    """Firehose, CloudWatch Logs, Lambda and STS calls a function typically makes."""
    import json

    service, operation = context.service, context.operation
    try:
        body = json.loads(context.body or b"{}")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # "No permissions are required to perform this operation" (STS API reference)
    if service == "firehose" and operation in (
        "PutRecord", "PutRecordBatch", "DescribeDeliveryStream"
    ):  # fmt: skip
        stream = body.get("DeliveryStreamName", "")
        return [
            (
                f"firehose:{operation}",
                f"arn:aws:firehose:{region}:{account}:deliverystream/{stream}",
            )
        ]
    if service == "logs" and operation in ("CreateLogStream", "PutLogEvents", "DescribeLogStreams"):
        group = body.get("logGroupName", "")
        stream = body.get("logStreamName", "")
        return [
            (
                f"logs:{operation}",
                f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}",
            )
        ]
    if service == "lambda" and operation == "Invoke":
        name = context.path_params.get("FunctionName", "")
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:aws:lambda:{region}:{account}:function:{name}"
        )
        return [("lambda:InvokeFunction", arn)]
    return None


class ExecutionRoleGuard:
    """Gateway guard: a request signed with a worker's key is authorised with its role."""

    def __init__(self, emulator: Any, store: CredentialStore = STORE) -> None:
        self._emulator = emulator
        self._store = store

    def __call__(self, environ: dict[str, Any], context: RequestContext) -> AwsResponse | None:
        key = _access_key(environ)
        issued = self._store.lookup(key) if key else None
        if issued is None:
            return None
        if not getattr(self._emulator, "iam_enforced", True):
            return None
        service = context.service or "unknown"
        region = context.region or self._emulator.region
        account = context.account_id
        if service == "s3":
            pairs = _s3_permissions(environ)
        else:
            pairs = _json_permissions(context, region, account)
        iam = self._emulator.find("iam")
        if pairs is None or iam is None:
            what = f"{service}:{context.operation or environ.get('REQUEST_METHOD', '')}"
            message = (
                f"The emulator cannot tell which IAM permission {what} needs, so it refuses this "
                f"call made with the execution role {issued.role_arn} of function "
                f"{issued.function_name} (IAM is enforced; start with --no-iam to allow it)"
            )
            log.warning("%s", message)
            return error_for(
                service,
                "AccessDenied" if service == "s3" else "AccessDeniedException",
                message,
                403,
            )
        for action, resource in pairs:
            decision = iam.authorize(
                issued.role_arn, action, resource, session=issued.function_name
            )
            if not decision.allowed:
                log.warning("function %s: %s", issued.function_name, decision.message())
                code = "AccessDenied" if service == "s3" else "AccessDeniedException"
                return error_for(service, code, decision.message(), 403)
        return None
