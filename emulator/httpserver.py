"""The HTTP server of the AWS endpoint: werkzeug's threaded WSGI server with moto's request
handler (moto's environ, chunked request bodies, `Expect: 100-continue`, HEAD), hardened for
hostile clients:

- a connection must finish its request line and headers within `HEADER_TIMEOUT` seconds from
  being accepted, or it is closed (a slow or stalled client cannot hold a thread and a
  descriptor; 10 s, like common servers' header timeouts);
- connections are capped below the process's descriptor limit (a reserve is kept for MQTT
  clients, Lambda workers and files); beyond the cap a connection gets a 503 at once;
- `accept()` failing for lack of descriptors backs off instead of spinning;
- malformed framing (bad request line, negative or non-numeric or conflicting Content-Length,
  an unsupported Transfer-Encoding, oversized headers) is answered 400/431 at once, as JSON;
- a body over its service's cap (`emulator.limits`) is refused from its Content-Length, before
  the body is read, in the service's own error shape;
- an unexpected exception in the application becomes a 500 in the service's error shape
  (`ErrorShield`), never werkzeug's HTML error page.
"""

from __future__ import annotations

import errno
import http.client
import json
import logging
import re
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import ThreadedWSGIServer

from emulator.gateway import AwsResponse, answering_service, error_for
from emulator.limits import body_refusal

log = logging.getLogger(__name__)

# Seconds from accept until the request line and all headers have arrived.
HEADER_TIMEOUT = 10.0
# Seconds a read or write of an accepted request may stall (the body, the response).
IO_TIMEOUT = 60.0
# The whole header section, as Application Load Balancers bound it ("The total size of the
# request line and headers ... 64 KB").
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html
MAX_HEADER_BYTES = 64 * 1024
# Descriptors kept back from the HTTP server for the MQTT broker, Lambda workers and files.
DESCRIPTOR_RESERVE = 256
# More threads than this buy nothing on a local emulator and cost memory.
MAX_CONNECTIONS_CEILING = 1024
# After refusing a request whose body was not read: how long and how much of the unread body to
# discard before closing, so the client reads the answer instead of a connection reset
# (nginx's lingering close: lingering_time 30 s, lingering_timeout 5 s).
LINGER_SECONDS = 30.0
LINGER_IDLE = 5.0
LINGER_BYTES = 256 * 1024 * 1024

_DIGITS = re.compile(r"[0-9]+")


def connection_cap() -> int:
    """Connections the API may hold: the descriptor limit less the reserve, within bounds."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    reserve = max(DESCRIPTOR_RESERVE, soft // 4)
    return max(16, min(MAX_CONNECTIONS_CEILING, soft - reserve))


def _json_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message, "Message": message}).encode()


class _HeaderBudget:
    """The request's input during header parsing: refuses more than `budget` bytes in all."""

    def __init__(self, rfile: Any, budget: int) -> None:
        self._rfile = rfile
        self._left = budget

    def readline(self, limit: int = -1) -> bytes:
        want = self._left + 1 if limit is None or limit < 0 else min(limit, self._left + 1)
        line = self._rfile.readline(want)
        self._left -= len(line)
        if self._left < 0:
            raise http.client.LineTooLong(f"header section over {MAX_HEADER_BYTES} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


class ApiRequestHandler(MotoRequestHandler):
    """moto's handler with the header deadline, framing checks and body caps."""

    server: ApiServer
    timeout = IO_TIMEOUT  # applied to the socket by StreamRequestHandler.setup

    def setup(self) -> None:
        super().setup()
        self._checked = False
        self.server.await_headers(self)

    def parse_request(self) -> bool:
        self._checked = False
        rfile = self.rfile
        self.rfile = _HeaderBudget(rfile, MAX_HEADER_BYTES)
        try:
            ok = super().parse_request()
        finally:
            self.rfile = rfile
        if not self.server.headers_done(self):
            # The deadline passed: what was read is a truncated request; never serve it.
            self.close_connection = True
            return False
        if ok and not self._checked:
            ok = self._check_request()
        return ok

    def handle_expect_100(self) -> bool:
        # Check before "100 Continue" invites the body.
        self._checked = True
        if not self._check_request():
            return False
        return super().handle_expect_100()

    def _check_request(self) -> bool:
        """Framing (RFC 9112 section 6) and the body cap; answers and returns False if refused."""
        codings = [
            part.strip().lower()
            for value in self.headers.get_all("Transfer-Encoding") or []
            for part in value.split(",")
            if part.strip()
        ]
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if codings:
            if codings != ["chunked"]:
                return self._refuse_framing(
                    f"Transfer-Encoding {', '.join(codings)} is not supported (only chunked)"
                )
            if lengths:
                return self._refuse_framing(
                    "a request must not carry both Content-Length and Transfer-Encoding"
                )
            return True  # chunked bodies are capped while they are read (gateway)
        if not lengths:
            return True
        value = next(iter(lengths))
        if len(lengths) != 1 or not _DIGITS.fullmatch(value):
            shown = ", ".join(sorted(lengths))[:64]
            return self._refuse_framing(
                f"Content-Length '{shown}' is not a non-negative decimal number of bytes"
            )
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        refusal = body_refusal(self.command, url.path, url.query, headers, int(value))
        if refusal is None:
            return True
        self.send_aws_response(refusal)
        if not self._checked:  # with Expect: 100-continue the client holds its body back
            self._linger(int(value))
        return False

    def _refuse_framing(self, message: str) -> bool:
        self.send_aws_response(
            AwsResponse(
                400,
                _json_body("BadRequest", f"Malformed HTTP request: {message}"),
                {"Content-Type": "application/json"},
            )
        )
        return False

    def send_aws_response(self, response: AwsResponse) -> None:
        """Send a complete response and close the connection after it."""
        self.close_connection = True
        self.send_response(response.status)
        headers = {**response.headers, "Content-Length": str(len(response.body))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
        self.wfile.flush()

    def _linger(self, declared: int) -> None:
        """Discard (never keep) the unread body for a while, so the client sees the answer."""
        left = min(declared, LINGER_BYTES)
        end = time.monotonic() + LINGER_SECONDS
        try:
            self.connection.settimeout(LINGER_IDLE)
            while left > 0 and time.monotonic() < end:
                data = self.rfile.read1(min(left, 64 * 1024))
                if not data:
                    break
                left -= len(data)
        except OSError:
            pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """http.server's framing errors (bad request line, 414, 431, ...), as JSON, not HTML."""
        short, long = self.responses.get(code, ("Error", "Error"))
        text = f"Malformed HTTP request: {message or short}" + (f" ({explain})" if explain else "")
        self.log_error("code %d, message %s", code, message or short)
        body = _json_body("BadRequest", text)
        self.close_connection = True
        if not str(getattr(self, "request_version", "")).startswith("HTTP/1."):
            # An unparsable request line leaves HTTP/0.9, which would send no status line.
            self.request_version = "HTTP/1.1"
        self.send_response(code, message or short)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class ApiServer(ThreadedWSGIServer):
    """Thread per connection, with a connection cap and a header deadline."""

    def __init__(
        self,
        host: str,
        port: int,
        app: Callable,
        max_connections: int | None = None,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        super().__init__(host, port, app, handler=ApiRequestHandler)
        self.max_connections = max_connections or connection_cap()
        self.header_timeout = header_timeout
        self._lock = threading.Lock()
        self._active = 0
        self._awaiting: dict[ApiRequestHandler, float] = {}
        self._expired: set[ApiRequestHandler] = set()
        self._closed = threading.Event()
        self._last_emfile_log = 0.0
        self._reaper = threading.Thread(target=self._reap, name="aws-endpoint-reaper", daemon=True)
        self._reaper.start()

    # Connections ---------------------------------------------------------------------------
    @property
    def active_connections(self) -> int:
        return self._active

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of descriptors: the listening socket stays readable, so back off
                # instead of spinning; pending connections wait in the backlog.
                now = time.monotonic()
                if now - self._last_emfile_log > 10:
                    self._last_emfile_log = now
                    log.warning("accept failed (%s); backing off", exc)
                time.sleep(0.05)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            self._refuse_connection(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._lock:
                self._active -= 1
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._active -= 1

    def _refuse_connection(self, request: socket.socket) -> None:
        body = _json_body(
            "ServiceUnavailable",
            f"The endpoint holds its maximum of {self.max_connections} connections; retry later",
        )
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            request.setblocking(False)
            request.send(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    # Header deadline -----------------------------------------------------------------------
    def await_headers(self, handler: ApiRequestHandler) -> None:
        with self._lock:
            self._awaiting[handler] = time.monotonic() + self.header_timeout

    def headers_done(self, handler: ApiRequestHandler) -> bool:
        """Stop the handler's clock; False if its deadline had already passed."""
        with self._lock:
            self._awaiting.pop(handler, None)
            if handler in self._expired:
                self._expired.discard(handler)
                return False
            return True

    def _reap(self) -> None:
        while not self._closed.wait(0.25):
            now = time.monotonic()
            with self._lock:
                late = [h for h, deadline in self._awaiting.items() if deadline <= now]
                for handler in late:
                    del self._awaiting[handler]
                    self._expired.add(handler)
            for handler in late:
                _hang_up(handler.connection)

    def server_close(self) -> None:
        self._closed.set()
        with self._lock:
            waiting = list(self._awaiting)
            self._awaiting.clear()
        for handler in waiting:
            _hang_up(handler.connection)
        super().server_close()


def _hang_up(connection: socket.socket) -> None:
    """Wake a thread blocked reading `connection` (its read returns end of stream)."""
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class ErrorShield:
    """Outermost WSGI wrapper: an unexpected exception becomes a 500 in the service's shape."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        result: Iterable[bytes] | None = None
        try:
            result = self.app(environ, start_response)
            # Nothing is sent before the first chunk: an error up to there can still be
            # answered properly (werkzeug would send its HTML 500 page instead).
            chunks = iter(result)
            first = next(chunks, None)
            return _Prefetched(first, chunks, result)
        except Exception as exc:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing a failed response failed")
            log.exception(
                "unexpected error serving %s %s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
            )
            service = answering_service(environ)
            code = "InternalError" if service == "s3" else "InternalFailure"
            response = error_for(service, code, f"emulator error: {type(exc).__name__}: {exc}", 500)
            headers = {**response.headers, "Content-Length": str(len(response.body))}
            start_response("500 Internal Server Error", list(headers.items()), sys.exc_info())
            return [response.body]


class _Prefetched:
    """A WSGI response whose first chunk was already taken; `close()` reaches the original."""

    def __init__(self, first: bytes | None, rest: Any, source: Iterable[bytes]) -> None:
        self._first = first
        self._rest = rest
        self._source = source

    def __iter__(self):
        if self._first is not None:
            yield self._first
        yield from self._rest

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
