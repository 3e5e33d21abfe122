"""WSGI middleware in front of the gateway: save the state a request changed before answering it.

After a state-changing request has been answered, a `kill -9` must not lose its change, so the
save happens between moto's answer and the first byte sent to the client (the response's status
line is held back until the state is on disk). Read-only requests (Describe*, List*, Get*, Head*,
... and S3 GET/HEAD) pay nothing. S3 object writes save only that object's small record (the
body is already a file); every other change saves the snapshot of moto's backends.

The service and operation come from the request's context (`emulator.gateway.identify`, built
once per request and shared with the gateway). An S3 request's bucket and key are read exactly as
moto reads them (moto's own functions on the same raw URL), so the record saved is the one moto
changed; a CreateBucket whose name breaks AWS's naming rules is refused here (s3names.py), since
S3 requests go to moto without passing the gateway's handlers (their bodies are streamed).
"""

from __future__ import annotations

import io
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from emulator import s3names
from emulator.constants import EMULATOR_PATH_PREFIX
from emulator.gateway import identify, rest_operation
from emulator.persistence import memory
from emulator.persistence.store import Persistence

log = logging.getLogger(__name__)

READ_ONLY_PREFIXES = (
    "Describe",
    "List",
    "Get",
    "Head",
    "Search",
    "Test",
    "Filter",
    "Validate",
    "Estimate",
    "Query",
    "Check",
    "Lookup",
    "Select",
    "Scan",
    "BatchGet",
    "Preview",
    "Simulate",
)
# Calls that change nothing moto keeps: Invoke runs code; Publish goes to the MQTT broker;
# Firehose records go to the firehose component's own spool under data_dir/firehose.
NO_MOTO_STATE = {
    "PutRecord",
    "PutRecordBatch",
    "Invoke",
    "InvokeAsync",
    "InvokeWithResponseStream",
    "Publish",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "DecodeAuthorizationMessage",
}
STATS_PATH = "/_emulator/persistence"  # GET: where the state is kept and what saving cost


@dataclass
class Plan:
    """What to save after a request: the snapshot, object records, or a bucket's records."""

    snapshot: bool = False
    bucket: str | None = None
    keys: list[str] = field(default_factory=list)
    whole_bucket: bool = False


def _service(environ: dict[str, Any]) -> str | None:
    return identify(environ).service


def is_read_only(operation: str | None) -> bool:
    return bool(operation) and (
        operation.startswith(READ_ONLY_PREFIXES) or operation in NO_MOTO_STATE
    )


class PersistenceMiddleware:
    """Wraps a WSGI app (the gateway); saves state after each successful state change."""

    def __init__(self, app: Callable, persistence: Persistence) -> None:
        self.app = app
        self.persistence = persistence

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATS_PATH:
            body = json.dumps(self.persistence.describe()).encode()
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        refused = _refuse_bucket_name(environ)
        if refused is not None:
            status, headers, body = refused
            start_response(status, headers)
            return [body]
        plan = self.plan(environ)
        if plan is None:
            if environ.get("REQUEST_METHOD") == "GET" and _service(environ) == "s3":
                return _TrimAfterLargeBody(
                    self.app(environ, _watch_size(environ, start_response)), environ
                )
            return self.app(environ, start_response)
        held: dict[str, Any] = {}

        def hold(status: str, headers: list, exc_info: Any = None) -> Callable:
            held.update(status=status, headers=headers, exc_info=exc_info)
            return lambda _data: None  # moto never uses write(); the body is returned

        body = self.app(environ, hold)
        status = held.get("status", "500 Error")
        if int(status.split()[0]) < 300:
            try:
                self.save(plan)
            except Exception as exc:
                log.exception("saving the emulator state failed")
                close = getattr(body, "close", None)
                if close:
                    close()
                message = (
                    f"the change was applied but could not be saved under "
                    f"{self.persistence.data_dir}: {exc}"
                ).encode()
                start_response(
                    "500 Internal Server Error",
                    [
                        ("Content-Type", "text/plain"),
                        ("Content-Length", str(len(message))),
                        ("x-amzn-ErrorType", "InternalFailure"),
                    ],
                )
                return [message]
        start_response(held["status"], held["headers"], held["exc_info"])
        if int(environ.get("CONTENT_LENGTH") or 0) > memory.LARGE_REQUEST or "uploadId" in (
            environ.get("QUERY_STRING") or ""
        ):
            memory.trim()  # the request's body buffers are free by now
        return body

    def save(self, plan: Plan) -> None:
        if plan.snapshot:
            self.persistence.save_snapshot()
        if plan.bucket and plan.whole_bucket:
            self.persistence.save_bucket(plan.bucket)
        elif plan.bucket and plan.keys:
            self.persistence.save_objects(plan.bucket, plan.keys)

    # Which requests change what -----------------------------------------------------------
    def plan(self, environ: dict[str, Any]) -> Plan | None:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if path.startswith((EMULATOR_PATH_PREFIX, "/moto-api/")):
            return None
        service = _service(environ)
        if service == "s3" or (service is None and method in ("PUT", "POST", "DELETE")):
            return self._s3_plan(environ, method) if service == "s3" else Plan(snapshot=True)
        if service is None:
            return None
        context = identify(environ)
        if context.refusal is not None:
            return None  # answered with an error: nothing changes
        operation = context.operation
        if operation is None:
            return None if method in ("GET", "HEAD") else Plan(snapshot=True)
        return None if is_read_only(operation) else Plan(snapshot=True)

    def _s3_plan(self, environ: dict[str, Any], method: str) -> Plan | None:
        if method in ("GET", "HEAD", "OPTIONS"):
            return None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        bucket, key = _s3_address(environ)
        if not bucket:
            return None
        if "uploadId" in query and method in ("PUT", "DELETE"):
            return None  # UploadPart / AbortMultipartUpload: uploads in progress are not kept
        if "uploads" in query or "select" in query:
            return None  # CreateMultipartUpload, SelectObjectContent
        if not key:
            if method == "POST" and "delete" in query:
                keys = _deleted_keys(_peek_body(environ))
                return (
                    Plan(bucket=bucket, keys=keys)
                    if keys is not None
                    else Plan(bucket=bucket, whole_bucket=True)
                )
            # Bucket configuration, CreateBucket, DeleteBucket.
            deleted = method == "DELETE" and not query  # DeleteBucket, not a sub-resource
            return Plan(snapshot=True, bucket=bucket, whole_bucket=deleted)
        return Plan(bucket=bucket, keys=[key])


def _s3_address(environ: dict[str, Any]) -> tuple[str | None, str]:
    """Bucket and key exactly as moto reads them: moto's functions on moto's raw URL.

    moto takes a path-style bucket name from the still-encoded path (`/%2e%2e` is the bucket
    `%2e%2e`) but the key from the decoded one; a virtual-hosted bucket from the Host header."""
    from moto.core.request import Request
    from moto.s3 import utils as vhost
    from moto.s3.responses import S3Response
    from moto.s3bucket_path import utils as path_style

    request = Request(environ, populate_request=False)
    path = unquote(request.raw_path)
    if S3Response.subdomain_based_buckets(request):
        return vhost.bucket_name_from_url(request.raw_url) or None, path[1:]
    return path_style.bucket_name_from_url(request.raw_url), path_style.parse_key_name(path)


def _refuse_bucket_name(environ: dict[str, Any]) -> tuple[str, list, bytes] | None:
    """S3's InvalidBucketName answer to a CreateBucket whose name AWS would refuse."""
    if environ.get("REQUEST_METHOD") != "PUT" or _service(environ) != "s3":
        return None
    bucket, key = _s3_address(environ)
    if bucket is None or key:
        return None
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    operation, _ = rest_operation("s3", "PUT", "/bucket", query)
    if operation != "CreateBucket":  # PutBucketVersioning, PutBucketTagging, ...
        return None
    problem = s3names.bucket_name_problem(bucket)
    return None if problem is None else s3names.invalid_bucket_name(bucket, problem)


def _peek_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for the application."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _deleted_keys(body: bytes) -> list[str] | None:
    """The keys of a DeleteObjects request; None if the body cannot be read."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    return [el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key"]


def _watch_size(environ: dict[str, Any], start_response: Callable) -> Callable:
    """Note whether a response is large (a GetObject of a big body), to trim after sending it."""

    def watching(status: str, headers: list, exc_info: Any = None) -> Callable:
        for name, value in headers:
            if name.lower() == "content-length" and value.isdigit():
                environ["emulator.large_response"] = int(value) > memory.LARGE_REQUEST
        return start_response(status, headers, exc_info)

    return watching


class _TrimAfterLargeBody:
    """The application's response, with a memory trim once a large body has been sent."""

    def __init__(self, body: Iterable[bytes], environ: dict[str, Any]) -> None:
        self._body = body
        self._environ = environ

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close:
            close()
        if self._environ.get("emulator.large_response"):
            self._body = ()
            memory.trim()
