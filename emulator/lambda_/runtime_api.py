"""The Lambda Runtime API that one worker process polls (AWS docs: "Using the Lambda runtime API
for custom runtimes"), served on 127.0.0.1 for exactly one execution environment.

awslambdaric inside the worker calls `GET /2018-06-01/runtime/invocation/next` and blocks until
we hand it an `Invocation`; it answers with `POST .../invocation/{id}/response` or `.../error`,
or, when the handler cannot even be loaded, `POST /2018-06-01/runtime/init/error`.
One server per worker keeps the routing trivial: whoever polls this port is that worker.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_PREFIX = "/2018-06-01/runtime"
_RESULT_PATH = re.compile(rf"^{API_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")


@dataclass
class Invocation:
    """One event handed to the worker, and what became of it."""

    request_id: str
    payload: bytes
    function_arn: str
    timeout_s: float
    client_context: str | None = None
    trace_id: str = ""
    # Filled in by the Runtime API (or by the worker when it times out or dies).
    picked_up_at: float | None = None
    deadline_ms: int | None = None
    # "response" | "error" | "init_error" | "timeout" | "exit" | "out_of_memory"
    outcome: str | None = None
    body: bytes = b""
    error_type: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    picked_up: threading.Event = field(default_factory=threading.Event)
    # Set on pick-up and on finish, so that one wait covers both.
    changed: threading.Event = field(default_factory=threading.Event)

    def finish(self, outcome: str, body: bytes = b"", error_type: str | None = None) -> bool:
        """Record the first outcome only: a late response after a timeout must not win."""
        if self.done.is_set():
            return False
        self.outcome, self.body, self.error_type = outcome, body, error_type
        self.done.set()
        self.changed.set()
        return True


_SHUTDOWN = object()


class RuntimeApiServer:
    """A threaded HTTP/1.1 server bound to 127.0.0.1 on an ephemeral port."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Invocation | object] = queue.Queue()
        self.current: Invocation | None = None
        self.init_error: tuple[bytes, str | None] | None = None
        # The end of the init phase: the first poll for work, an init error, or the exit.
        self.polling_since: float | None = None
        self.init_ended = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="lambda-runtime-api", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{host}:{port}"

    def submit(self, invocation: Invocation) -> None:
        self.current = invocation
        self._queue.put(invocation)

    def close(self) -> None:
        self._queue.put(_SHUTDOWN)
        self._httpd.shutdown()
        self._httpd.server_close()

    # Called from request threads ---------------------------------------------------------
    def next_invocation(self) -> Invocation | None:
        if self.polling_since is None:
            self.polling_since = time.monotonic()
            self.init_ended.set()
        item = self._queue.get()
        if item is _SHUTDOWN:
            self._queue.put(_SHUTDOWN)  # wake any other poller too
            return None
        assert isinstance(item, Invocation)
        item.picked_up_at = time.monotonic()
        item.deadline_ms = int(time.time() * 1000 + item.timeout_s * 1000)
        item.picked_up.set()
        item.changed.set()
        return item

    def post_result(self, request_id: str, kind: str, body: bytes, error_type: str | None) -> bool:
        invocation = self.current
        if invocation is None or invocation.request_id != request_id:
            return False
        invocation.finish(kind, body, error_type)
        return True

    def post_init_error(self, body: bytes, error_type: str | None) -> None:
        self.init_error = (body, error_type)
        self.init_ended.set()
        if self.current is not None:
            self.current.finish("init_error", body, error_type)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    api: RuntimeApiServer

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        # A killed worker drops its connections mid-request: expected, not worth a traceback.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)

    def get_request(self):  # type: ignore[no-untyped-def]
        conn, addr = super().get_request()
        # Without TCP_NODELAY a warm call took 88 ms instead of 0.4 ms (docs/architecture.md).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the worker's own log is what users read

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def do_GET(self) -> None:  # noqa: N802
        if self.path != f"{API_PREFIX}/invocation/next":
            self._error(404, "InvalidRequest", f"unknown Runtime API path {self.path}")
            return
        invocation = self.server.api.next_invocation()
        if invocation is None:
            self._error(410, "ShuttingDown", "the execution environment is shutting down")
            return
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        }
        if invocation.client_context:
            headers["Lambda-Runtime-Client-Context"] = invocation.client_context
        self._send(200, invocation.payload, headers)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
        api = self.server.api
        if self.path == f"{API_PREFIX}/init/error":
            api.post_init_error(body, error_type)
            self._send(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
            return
        match = _RESULT_PATH.match(self.path)
        if not match:
            self._error(404, "InvalidRequest", f"unknown Runtime API path {self.path}")
            return
        if not api.post_result(match["id"], match["kind"], body, error_type):
            self._error(400, "InvalidRequestID", f"unknown request id {match['id']}")
            return
        self._send(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
