"""One HTTP endpoint for every AWS service: a WSGI middleware in front of moto's server app.

Each request is identified as (service, operation) from the wire format alone: the SigV4
credential scope names the service, and the operation comes from `X-Amz-Target` (JSON
protocols), the `Action` form field (query protocol) or the HTTP method and path matched
against botocore's own service model (rest-json). A handler registered with `Gateway.on`
may answer the request itself; otherwise the request goes to moto unchanged. Handlers
registered with `Gateway.after` observe successful moto answers (for example to invalidate
a policy cache after AttachPolicy).

Depending on the wire format rather than on moto's internal routing keeps the coupling to moto
at its stable edge (ARCHITECTURE.md, "One endpoint in front of moto").
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT_ID = "123456789012"

# SigV4 signing names that differ from botocore's service names.
SIGNING_NAME_TO_SERVICE = {"iotdata": "iot-data", "monitoring": "cloudwatch"}

# Services whose bodies must never be read here (S3 streams large bodies; moto reads them).
_PASS_THROUGH_SERVICES = {"s3"}


@dataclass
class AwsRequest:
    """An identified AWS API request, as handlers see it."""

    service: str
    operation: str | None
    region: str
    account_id: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    # Path parameters of a rest-json operation, e.g. {"certificateId": "..."}.
    path_params: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        """The body as JSON (JSON and rest-json protocols); {} when empty."""
        return json.loads(self.body) if self.body else {}

    def form(self) -> dict[str, str]:
        """The body as a form (query protocol), single values."""
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class AwsResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    payload: Any, status: int = 200, content_type: str = "application/json"
) -> AwsResponse:
    return AwsResponse(status, json.dumps(payload).encode(), {"Content-Type": content_type})


def json_error(code: str, message: str, status: int = 400) -> AwsResponse:
    """An error in the shape botocore parses for the JSON and rest-json protocols."""
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return AwsResponse(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": code})


def query_error(code: str, message: str, status: int = 400, sender: bool = True) -> AwsResponse:
    """An error in the shape botocore parses for the query protocol (CloudFormation, IAM)."""
    kind = "Sender" if sender else "Receiver"
    body = (
        '<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
        f"<Error><Type>{kind}</Type><Code>{_xml_escape(code)}</Code>"
        f"<Message>{_xml_escape(message)}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode()
    return AwsResponse(status, body, {"Content-Type": "text/xml"})


def s3_error(code: str, message: str, status: int = 400) -> AwsResponse:
    """An error in S3's REST-XML shape."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{_xml_escape(code)}</Code><Message>{_xml_escape(message)}</Message>"
        "<RequestId>0000000000000000</RequestId></Error>"
    ).encode()
    return AwsResponse(status, body, {"Content-Type": "application/xml"})


def error_for(service: str | None, code: str, message: str, status: int = 400) -> AwsResponse:
    """An error in the shape of `service`'s protocol (JSON when the service is unknown)."""
    try:
        protocol = _protocol(service) if service else "json"
    except Exception:  # a name botocore does not know
        protocol = "json"
    if protocol == "rest-xml":
        return s3_error(code, message, status)
    if protocol in ("query", "ec2"):
        return query_error(code, message, status, sender=status < 500)
    return json_error(code, message, status)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


Handler = Callable[[AwsRequest], AwsResponse | None]
AfterHook = Callable[[AwsRequest, int, bytes], None]
Route = Callable[[AwsRequest], AwsResponse]


@dataclass(frozen=True)
class _RestOperation:
    name: str
    method: str
    pattern: re.Pattern[str]
    query_literals: tuple[str, ...]
    specificity: tuple[int, int]


@cache
def _rest_operations(service: str) -> tuple[_RestOperation, ...]:
    model = botocore.session.get_session().get_service_model(service)
    ops = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = http["requestUri"].partition("?")
        regex = ""
        literal_chars = 0
        for piece in re.split(r"(\{[^}]+\})", path):
            if piece.startswith("{"):
                greedy = piece.endswith("+}")
                label = piece.strip("{}+")
                regex += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
            else:
                regex += re.escape(piece)
                literal_chars += len(piece)
        literals = tuple(q.split("=")[0] for q in query.split("&") if q)
        ops.append(
            _RestOperation(
                name,
                http["method"],
                re.compile(f"^{regex}/?$"),
                literals,
                (literal_chars, len(literals)),
            )
        )
    return tuple(ops)


def rest_operation(service: str, method: str, path: str, query: dict[str, list[str]]):
    """The rest-json operation name and path parameters that a request addresses."""
    best = None
    for op in _rest_operations(service):
        if op.method != method or any(q not in query for q in op.query_literals):
            continue
        match = op.pattern.match(path)
        if match and (best is None or op.specificity > best[0].specificity):
            best = (op, match)
    if best is None:
        return None, {}
    op, match = best
    return op.name, {k: unquote(v) for k, v in match.groupdict().items()}


@cache
def _protocol(service: str) -> str:
    return botocore.session.get_session().get_service_model(service).protocol


def credential_scope(authorization: str, query_string: str) -> tuple[str, str] | None:
    """(region, service) of a SigV4 request, from its Authorization header or presigned query."""
    match = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", authorization)
    if not match:
        # Presigned SigV4 URLs carry the scope in the query string.
        match = re.search(
            r"X-Amz-Credential=[^&/]+(?:/|%2F)\d{8}(?:/|%2F)([^/&%]+)(?:/|%2F)([^/&%]+)",
            query_string,
        )
    if not match:
        return None
    region, signing_name = match.group(1), match.group(2)
    return region, SIGNING_NAME_TO_SERVICE.get(signing_name, signing_name)


def _credential_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    return credential_scope(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))


@cache
def _botocore_knows(service: str) -> bool:
    try:
        _protocol(service)
    except Exception:
        return False
    return True


@cache
def _json_body_operation(service: str, operation: str | None) -> bool:
    """Whether the operation's body is its JSON input structure (not a raw payload member)."""
    model = botocore.session.get_session().get_service_model(service)
    if model.protocol == "json":
        return True
    if model.protocol != "rest-json" or operation not in model.operation_names:
        return False
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return False
    payload = shape.serialization.get("payload")
    # A structure payload (IoT's CreateTopicRule) is JSON too; a blob one (Publish) is raw.
    return not payload or shape.members[payload].type_name == "structure"


@cache
def _bad_body_code(service: str) -> str:
    """The code a service answers a body it cannot parse with (its own modelled error)."""
    model = botocore.session.get_session().get_service_model(service)
    if model.protocol == "json":
        # JSON protocol services answer SerializationException (botocore's own error docs).
        return "SerializationException"
    names = {shape.name for shape in model.error_shapes}
    for code in ("InvalidRequestContentException", "InvalidRequestException"):
        if code in names:
            return code
    return "SerializationException"


class MalformedRequest(Exception):
    """The request cannot be read; answered with a 4xx in the service's shape."""

    def __init__(self, response: AwsResponse) -> None:
        super().__init__(response.body.decode("utf-8", "replace"))
        self.response = response


class Gateway:
    """WSGI middleware: identify, then answer ourselves or pass to moto."""

    def __init__(self, moto_app: Callable, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self._moto_app = moto_app
        self.account_id = account_id
        self._handlers: dict[tuple[str, str], list[Handler]] = {}
        self._after: dict[tuple[str, str], list[AfterHook]] = {}
        self._routes: dict[str, Route] = {}
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()

    # Registration -----------------------------------------------------------------------
    def on(self, service: str, operation: str, handler: Handler) -> None:
        """Run `handler` before moto; a non-None answer is the response."""
        with self._lock:
            self._handlers.setdefault((service, operation), []).append(handler)

    def after(self, service: str, operation: str, hook: AfterHook) -> None:
        """Call `hook(request, status, body)` after moto answered with a 2xx status."""
        with self._lock:
            self._after.setdefault((service, operation), []).append(hook)

    def route(self, path: str, handler: Route) -> None:
        """Serve an emulator-only path such as `/_emulator/health` (GET)."""
        self._routes[path] = handler

    # WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in self._routes:
            request = self._request(environ, "emulator", None, "us-east-1", read_body=True)
            return self._respond(self._routes[path](request), start_response)

        scope = _credential_scope(environ)
        if scope is None or scope[1] in _PASS_THROUGH_SERVICES:
            return self._moto_app(environ, start_response)
        region, service = scope
        if not self._known_service(service, environ):
            return self._respond(
                json_error(
                    "UnknownServiceException",
                    f"The credential scope names service '{service}', which is not an AWS "
                    "service this endpoint knows; sign the request for the service it calls "
                    "(e.g. 'iot', 'firehose', 'lambda', 's3').",
                ),
                start_response,
            )
        try:
            request = self._request(environ, service, None, region, read_body=True)
            request.operation, request.path_params = self._operation(request, environ)
            self._check_body(request)
        except MalformedRequest as exc:
            return self._respond(exc.response, start_response)
        key = (service, request.operation or "")

        for handler in self._handlers.get(key, ()):
            try:
                response = handler(request)
            except Exception as exc:  # a bug of ours must not look like an AWS retryable 500
                log.exception("handler for %s.%s failed", service, request.operation)
                response = json_error("InternalFailure", f"emulator error: {exc}", 500)
            if response is not None:
                return self._respond(response, start_response)

        # Hand the (possibly rewritten) body to moto.
        environ["wsgi.input"] = io.BytesIO(request.body)
        environ["CONTENT_LENGTH"] = str(len(request.body))
        hooks = self._after.get(key)
        if not hooks:
            return self._moto_app(environ, start_response)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"] = int(status.split()[0])
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        body = b"".join(self._moto_app(environ, capture))
        if 200 <= captured.get("status", 500) < 300:
            for hook in hooks:
                try:
                    hook(request, captured["status"], body)
                except Exception:
                    log.exception("after-hook for %s.%s failed", service, request.operation)
        return [body]

    # Helpers ------------------------------------------------------------------------------
    def _known_service(self, service: str, environ: dict[str, Any]) -> bool:
        """botocore models the service, or moto serves the signing name (e.g. `states`)."""
        if service in self._known:
            return self._known[service]
        known = _botocore_knows(service)
        if not known:
            try:
                host = self._moto_app.infer_service_region_host(environ, environ.get("PATH_INFO"))
                known = self._moto_app.get_backend_for_host(host) is not None
            except Exception:
                known = False
        if len(self._known) < 1000:  # names come from requests: keep the memo bounded
            self._known[service] = known
        return known

    def _request(self, environ, service, operation, region, read_body: bool) -> AwsRequest:
        body = b""
        if read_body:
            body = self._read_body(environ, service)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        return AwsRequest(
            service=service,
            operation=operation,
            region=region,
            account_id=self.account_id,
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/"),
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            headers=headers,
            body=body,
        )

    @staticmethod
    def _read_body(environ: dict[str, Any], service: str | None) -> bytes:
        """The body; a chunked one (no Content-Length) is read up to the service's cap only."""
        from emulator.limits import cap_for

        length = environ.get("CONTENT_LENGTH")
        if length:
            return environ["wsgi.input"].read(int(length))
        if not environ.get("wsgi.input_terminated"):
            return b""
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"
        }
        limit, refuse = cap_for(
            service, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), headers
        )
        body = environ["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            response = refuse(limit)
            response.headers["Connection"] = "close"
            raise MalformedRequest(response)
        return body

    def _check_body(self, request: AwsRequest) -> None:
        """Refuse a body the service could not parse, as the service does, before moto sees it."""
        if not request.body:
            return
        try:
            wants_json = _json_body_operation(request.service, request.operation)
        except Exception:
            wants_json = False
        if not wants_json:
            return
        try:
            parsed = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            problem = f"the request body is not valid JSON: {type(exc).__name__}"
        else:
            if isinstance(parsed, dict):
                return
            problem = "the request body must be a JSON object"
        code = _bad_body_code(request.service)
        raise MalformedRequest(json_error(code, f"{request.operation or 'request'}: {problem}"))

    def _operation(self, request: AwsRequest, environ) -> tuple[str | None, dict[str, str]]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target.rsplit(".", 1)[-1], {}
        try:
            protocol = _protocol(request.service)
        except Exception:  # a service botocore does not know: let moto decide
            return None, {}
        if protocol == "query":
            try:
                form = request.form()
            except UnicodeDecodeError as exc:
                # Query APIs answer an unreadable form with MalformedQueryString.
                raise MalformedRequest(
                    query_error(
                        "MalformedQueryString",
                        f"The form body is not UTF-8 (byte {exc.start}); percent-encode it "
                        "as application/x-www-form-urlencoded UTF-8.",
                    )
                ) from exc
            return form.get("Action") or request.query_value("Action"), {}
        if protocol in ("rest-json", "rest-xml"):
            # Match the still-encoded path: a label such as iot-data's {topic} may hold "%2F",
            # which PATH_INFO has already decoded into extra path segments.
            uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path
            raw = uri.split("?")[0]
            return rest_operation(request.service, request.method, raw, request.query)
        return None, {}

    @staticmethod
    def _respond(response: AwsResponse, start_response: Callable) -> list[bytes]:
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        reason = {200: "OK", 202: "Accepted", 204: "No Content"}.get(response.status, "Error")
        start_response(f"{response.status} {reason}", list(headers.items()))
        return [response.body]
