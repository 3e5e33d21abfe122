"""A real HTTPS server on 127.0.0.1 for the http rule action and its topic rule destinations:
it records each POST and answers 200; the emulator's CA certifies it, so the emulator trusts it."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.waiting import wait_until


@contextmanager
def https_receiver(cert_path: Path, key_path: Path) -> Iterator[ThreadingHTTPServer]:
    """The server, serving until the block ends: `requests` holds (path, headers, body) of each
    POST, `base` is `https://localhost:<port>` (the name in the emulator's server certificate)."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.requests = received
    server.base = f"https://localhost:{server.server_address[1]}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def confirmation(server: Any, prefix: str = "/") -> tuple[str, dict[str, str], dict[str, Any]]:
    """The last confirmation request a destination under `prefix` got: (path, headers, JSON)."""
    found = wait_until(
        lambda: [
            r for r in server.requests if "confirmationToken=" in r[0] and r[0].startswith(prefix)
        ],
        timeout=10,
    )
    assert found, f"no confirmation request under {prefix} arrived"
    path, headers, body = found[-1]
    return path, headers, json.loads(body)


def confirmation_token(path: str) -> str:
    """The token of a confirmation request's path (`...?confirmationToken=<token>`)."""
    return parse_qs(urlsplit(path).query)["confirmationToken"][0]
