"""One HTTP endpoint for every AWS service: a WSGI middleware in front of moto's server app.

Each request is identified as (service, operation) from the wire format alone: the SigV4
credential scope names the service, and the operation comes from `X-Amz-Target` (JSON
protocols), the `Action` form field (query protocol) or the HTTP method and path matched
against botocore's own service model (rest-json). A handler registered with `Gateway.on`
may answer the request itself; otherwise the request goes to moto unchanged. Handlers
registered with `Gateway.after` observe successful moto answers (for example to invalidate
a policy cache after AttachPolicy).

Identification happens once per request: `identify(environ)` builds a `RequestContext`
(service, region, account, operation, path parameters, the body read once) and keeps it in the
WSGI environ under `CONTEXT_KEY`, where the persistence middleware, the body caps and the error
shield read it too. Depending on the wire format rather than on moto's internal routing keeps
the coupling to moto at its stable edge.

An operation moto does not implement is answered 501 in the service's own protocol (see
`unimplemented`), never with moto's HTML page or a retryable 500.
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

from emulator.constants import ACCOUNT_ID, DEFAULT_REGION, EMULATOR_PATH_PREFIX

log = logging.getLogger(__name__)

# Where `identify` keeps a request's context in the WSGI environ.
CONTEXT_KEY = "emulator.context"

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


class ServiceError(Exception):
    """An error of a service's API in AWS's terms: its error code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


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
# Runs before any answer (moto's included): a non-None response refuses the request.
Guard = Callable[[dict[str, Any], "RequestContext"], AwsResponse | None]


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


def addressed_service(
    authorization: str, query_string: str, path: str, has_target: bool
) -> str | None:
    """The service whose protocol a request speaks, from its request line and headers alone."""
    scope = credential_scope(authorization, query_string)
    return _addressed(scope[1] if scope else None, path, has_target)


def _addressed(scope_service: str | None, path: str, has_target: bool) -> str | None:
    """The service the SigV4 scope names; for an unsigned request outside the emulator's own
    paths S3, which is how moto serves it (anonymous S3 access), unless it carries
    `X-Amz-Target` (then none: JSON error shapes apply)."""
    if scope_service is not None:
        return scope_service
    if has_target or path.startswith((EMULATOR_PATH_PREFIX, "/moto-api/")):
        return None
    return "s3"


@cache
def _botocore_knows(service: str) -> bool:
    return service in botocore.session.get_session().get_available_services()


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


@dataclass
class RequestContext:
    """What a request addresses, worked out once (`identify`) and kept in the WSGI environ."""

    # botocore's name of the service the SigV4 scope names; None for an unsigned request.
    service: str | None
    region: str | None
    account_id: str
    operation: str | None = None
    # Path parameters of a rest-json/rest-xml operation, e.g. {"certificateId": "..."}.
    path_params: dict[str, str] = field(default_factory=dict)
    # The body, read once and put back for the application; None when left unread (S3 streams
    # its bodies to moto, an unsigned request goes to moto as it is).
    body: bytes | None = None
    # The answer to a request that cannot be read (a chunked body over its cap, a form that is
    # not UTF-8); the gateway sends it, nothing else acts on the request.
    refusal: AwsResponse | None = None
    # The service whose error shape applies (see `addressed_service`).
    answering_service: str | None = None


def identify(environ: dict[str, Any]) -> RequestContext:
    """The request's context: built on the first call, then read back from the environ."""
    context = environ.get(CONTEXT_KEY)
    if context is not None:
        return context
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""), environ.get("QUERY_STRING", ""))
    service = scope[1] if scope else None
    context = RequestContext(
        service=service,
        region=scope[0] if scope else None,
        account_id=ACCOUNT_ID,
        answering_service=_addressed(
            service, environ.get("PATH_INFO", "/"), bool(environ.get("HTTP_X_AMZ_TARGET"))
        ),
    )
    environ[CONTEXT_KEY] = context
    if context.service is None or context.service in _PASS_THROUGH_SERVICES:
        return context
    try:
        context.body = _read_body(environ, context.service)
        environ["wsgi.input"] = io.BytesIO(context.body)
        environ["CONTENT_LENGTH"] = str(len(context.body))
        context.operation, context.path_params = _operation(environ, context)
    except MalformedRequest as exc:
        context.refusal = exc.response
    return context


def answering_service(environ: dict[str, Any]) -> str | None:
    """The service whose error shape answers this request, without reading its body (also for a
    request whose identification failed part-way)."""
    context = environ.get(CONTEXT_KEY)
    if context is not None:
        return context.answering_service
    return addressed_service(
        environ.get("HTTP_AUTHORIZATION", ""),
        environ.get("QUERY_STRING", ""),
        str(environ.get("PATH_INFO", "/")),
        bool(environ.get("HTTP_X_AMZ_TARGET")),
    )


def _read_body(environ: dict[str, Any], service: str | None) -> bytes:
    """The body; a chunked one (no Content-Length) is read up to the service's cap only."""
    from emulator.limits import cap_for

    length = environ.get("CONTENT_LENGTH")
    if length:
        return environ["wsgi.input"].read(int(length))
    if not environ.get("wsgi.input_terminated"):
        return b""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k[:5] == "HTTP_"}
    limit, refuse = cap_for(
        service, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/"), headers
    )
    body = environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        response = refuse(limit)
        response.headers["Connection"] = "close"
        raise MalformedRequest(response)
    return body


def _operation(
    environ: dict[str, Any], context: RequestContext
) -> tuple[str | None, dict[str, str]]:
    """The operation from the wire format: X-Amz-Target, the query protocol's Action, or the
    REST method and path matched against botocore's model."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], {}
    service = context.service or ""
    try:
        protocol = _protocol(service)
    except Exception:  # a service botocore does not know: let moto decide
        return None, {}
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if protocol == "query":
        try:
            form = parse_qs((context.body or b"").decode(), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            # Query APIs answer an unreadable form with MalformedQueryString.
            raise MalformedRequest(
                query_error(
                    "MalformedQueryString",
                    f"The form body is not UTF-8 (byte {exc.start}); percent-encode it "
                    "as application/x-www-form-urlencoded UTF-8.",
                )
            ) from exc
        action = form.get("Action") or query.get("Action")
        return (action[0] if action else None), {}
    if protocol in ("rest-json", "rest-xml"):
        # Match the still-encoded path: a label such as iot-data's {topic} may hold "%2F",
        # which PATH_INFO has already decoded into extra path segments.
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        method = environ.get("REQUEST_METHOD", "GET")
        return rest_operation(service, method, uri.split("?")[0], query)
    return None, {}


class Gateway:
    """WSGI middleware: identify, then answer ourselves or pass to moto."""

    def __init__(self, moto_app: Callable, account_id: str = ACCOUNT_ID) -> None:
        self._moto_app = moto_app
        self.account_id = account_id
        self._handlers: dict[tuple[str, str], list[Handler]] = {}
        self._after: dict[tuple[str, str], list[AfterHook]] = {}
        self._routes: dict[str, Route] = {}
        self._guards: list[Guard] = []
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._unimplemented_logged: set[tuple[str, str]] = set()

    # Registration -----------------------------------------------------------------------
    def on(self, service: str, operation: str, handler: Handler) -> None:
        """Run `handler` before moto; a non-None answer is the response."""
        with self._lock:
            self._handlers.setdefault((service, operation), []).append(handler)

    def after(self, service: str, operation: str, hook: AfterHook) -> None:
        """Call `hook(request, status, body)` after moto answered with a 2xx status."""
        with self._lock:
            self._after.setdefault((service, operation), []).append(hook)

    def guard(self, check: Guard) -> None:
        """Run `check(environ, context)` on every AWS request before anything answers it
        (moto included); a non-None answer is the response (e.g. an authorisation refusal)."""
        self._guards.append(check)

    def route(self, path: str, handler: Route) -> None:
        """Serve an emulator-only path such as `/_emulator/health` (GET)."""
        self._routes[path] = handler

    # WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in self._routes:
            body = _read_body(environ, "emulator")
            request = self._request(environ, "emulator", None, DEFAULT_REGION, body)
            return self._respond(self._routes[path](request), start_response)

        context = identify(environ)
        for check in self._guards:
            refusal = check(environ, context)
            if refusal is not None:
                return self._respond(refusal, start_response)
        if context.service == "s3" and _s3_bucket_read_moto_lacks(environ):
            return self._respond(self.unimplemented(environ, context, None), start_response)
        if context.service is None or context.service in _PASS_THROUGH_SERVICES:
            return self._call_moto(environ, start_response, context)
        service = context.service
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
        if context.refusal is not None:
            return self._respond(context.refusal, start_response)
        request = self._request(
            environ, service, context.operation, context.region or "", context.body or b""
        )
        request.path_params = dict(context.path_params)
        try:
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
            return self._call_moto(environ, start_response, context)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None):
            captured["status"] = int(status.split()[0])
            return (
                start_response(status, headers, exc_info)
                if exc_info
                else start_response(status, headers)
            )

        body = b"".join(self._call_moto(environ, capture, context))
        if 200 <= captured.get("status", 500) < 300:
            for hook in hooks:
                try:
                    hook(request, captured["status"], body)
                except Exception:
                    log.exception("after-hook for %s.%s failed", service, request.operation)
        return [body]

    # moto, and what it does not implement --------------------------------------------------
    def _call_moto(
        self, environ: dict[str, Any], start_response: Callable, context: RequestContext
    ) -> Iterable[bytes]:
        """moto's answer; an operation moto lacks becomes a 501 in the service's protocol.

        moto signals a missing operation in two ways: `NotImplementedError` (from
        `BaseResponse.call_action` for a method its response class lacks, and from backends for
        a parameter or variant they do not handle), and werkzeug's HTML 404 / 405 page when no
        URL rule of the service matches the path or method (rest-json/rest-xml APIs)."""
        held: dict[str, Any] = {}

        def hold(status: str, headers: list, exc_info: Any = None) -> Callable:
            held.update(status=status, headers=headers, exc_info=exc_info)
            return lambda _data: None  # moto never uses write(); the body is returned

        try:
            body = self._moto_app(environ, hold)
        except NotImplementedError as exc:
            return self._respond(self.unimplemented(environ, context, str(exc)), start_response)
        if "status" not in held:  # a lazy application: it answers as it is iterated
            return _answer_lazily(body, held, start_response)
        status = int(held["status"].split()[0])
        # S3's URL rules match every path, so its 404 is an answer (HeadObject of a missing key
        # carries moto's default text/html content type and no body), never a missing route.
        s3_answer = (context.service or context.answering_service) == "s3"
        if status in (404, 405) and _is_html(held.get("headers", ())) and not s3_answer:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return self._respond(self.unimplemented(environ, context, None), start_response)
        if held.get("exc_info"):
            start_response(held["status"], held["headers"], held["exc_info"])
        else:
            start_response(held["status"], held["headers"])
        return body

    def unimplemented(
        self, environ: dict[str, Any], context: RequestContext, detail: str | None
    ) -> AwsResponse:
        """A 501 naming the service and operation, in the service's own error shape.

        501 is not among the statuses AWS SDKs retry (500, 502, 503, 504), so a client gets the
        error at once instead of after a retry storm:
        https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
        https://docs.aws.amazon.com/sdk-for-python/v1/guide/config-retries.html"""
        service = context.service or context.answering_service
        operation = context.operation
        if operation is None and service == "s3":
            # S3 requests are not identified up front (their bodies are streamed); name the
            # operation for the message, from the path-style address.
            operation, _ = rest_operation(
                "s3",
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "/"),
                parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            )
        what = f"{service or 'this service'} {operation or 'request'}"
        if operation is None:
            what += f" ({environ.get('REQUEST_METHOD', 'GET')} {environ.get('PATH_INFO', '/')})"
        message = (
            f"The local emulator does not implement {what}; it answers only the operations "
            "its moto version and its own components provide."
        )
        if detail:
            message += f" ({detail})"
        key = (service or "", operation or "")
        with self._lock:
            first = key not in self._unimplemented_logged
            if first and len(self._unimplemented_logged) < 1000:  # bounded: names from requests
                self._unimplemented_logged.add(key)
        if first:
            log.warning("not implemented: %s", what)
        # S3's own code for a 501; the other protocols parse any code, and this one says what
        # happened.
        return error_for(service, "NotImplemented", message, 501)

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

    def _request(self, environ, service, operation, region, body: bytes) -> AwsRequest:
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

    @staticmethod
    def _respond(response: AwsResponse, start_response: Callable) -> list[bytes]:
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        reason = {200: "OK", 202: "Accepted", 204: "No Content", 501: "Not Implemented"}.get(
            response.status, "Error"
        )
        start_response(f"{response.status} {reason}", list(headers.items()))
        return [response.body]


def _answer_lazily(body: Iterable[bytes], held: dict[str, Any], start_response: Callable):
    """Pass on an application's answer whose status is known only once iteration starts."""
    chunks = iter(body)
    first = next(chunks, None)
    start_response(held["status"], held["headers"], held.get("exc_info"))
    if first is not None:
        yield first
    yield from chunks


# The sub-resources moto's S3 answers on a bucket GET (`S3Response._bucket_response_get`, moto
# 5.2.5). Any other sub-resource falls through to ListObjects there, a wrong answer that looks
# right; those are refused as not implemented instead.
_MOTO_S3_BUCKET_GET = frozenset(
    {
        "acl", "accelerate", "cors", "encryption", "inventory", "lifecycle", "list-type",
        "location", "logging", "notification", "object-lock", "ownershipControls", "policy",
        "policyStatus", "publicAccessBlock", "replication", "tagging", "uploads", "versioning",
        "versions", "website",
    }
)  # fmt: skip


def _s3_bucket_read_moto_lacks(environ: dict[str, Any]) -> bool:
    """A path-style bucket GET for a sub-resource moto does not serve (e.g. `?analytics`)."""
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if not query:
        return False
    raw = (environ.get("RAW_URI") or environ.get("PATH_INFO") or "/").split("?")[0]
    operation, params = rest_operation("s3", "GET", raw, query)
    if operation is None or set(params) != {"Bucket"}:
        return False
    op = next(o for o in _rest_operations("s3") if o.name == operation)
    return bool(op.query_literals) and not set(op.query_literals) & _MOTO_S3_BUCKET_GET


def _is_html(headers: Iterable[tuple[str, str]]) -> bool:
    """werkzeug's own error pages are HTML; no AWS protocol answers in HTML."""
    return any(
        name.lower() == "content-type" and value.lower().startswith("text/html")
        for name, value in headers
    )
