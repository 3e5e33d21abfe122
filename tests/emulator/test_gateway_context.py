"""One identification per request: the gateway, the persistence middleware and the error shield
read the same `RequestContext` from the WSGI environ."""

from __future__ import annotations

import io

from werkzeug.test import EnvironBuilder

from emulator.gateway import CONTEXT_KEY, identify
from emulator.persistence.middleware import PersistenceMiddleware

SCOPE = "Credential=AKID/20261126/eu-west-1/{}/aws4_request, SignedHeaders=host, Signature=x"


def _environ(service: str, body: bytes, chunked: bool = False, **kwargs) -> dict:
    headers = {"Authorization": f"AWS4-HMAC-SHA256 {SCOPE.format(service)}"}
    headers.update(kwargs.pop("headers", {}))
    environ = EnvironBuilder(method="POST", headers=headers, data=body, **kwargs).get_environ()
    if chunked:  # what werkzeug's server hands over for Transfer-Encoding: chunked
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
    return environ


def test_context_is_built_once_and_the_body_is_put_back():
    environ = _environ(
        "iam",
        b"Action=ListRoles&Version=2010-05-08",
        content_type="application/x-www-form-urlencoded",
    )
    # when the request is identified twice
    first = identify(environ)
    second = identify(environ)
    # then it is the same context, kept in the environ, and the body is still there for moto
    assert first is second is environ[CONTEXT_KEY]
    assert (first.service, first.region, first.operation) == ("iam", "eu-west-1", "ListRoles")
    assert environ["wsgi.input"].read() == b"Action=ListRoles&Version=2010-05-08"


def test_chunked_read_only_query_call_saves_nothing():
    # given a read-only query-protocol call whose form body arrives chunked (no Content-Length)
    environ = _environ(
        "iam",
        b"Action=ListRoles&Version=2010-05-08",
        chunked=True,
        content_type="application/x-www-form-urlencoded",
    )
    # then the persistence middleware sees the operation the gateway sees: nothing to save
    assert PersistenceMiddleware(app=None, persistence=None).plan(environ) is None
    assert identify(environ).operation == "ListRoles"


def test_persistence_reads_an_encoded_path_label_like_the_gateway():
    # given iot-data Publish to a multi-level topic ("/" encoded as %2F in the one label)
    environ = _environ("iotdata", b"{}", path="/topics/a%2Fb")
    environ["RAW_URI"] = "/topics/a%2Fb"
    environ["PATH_INFO"] = "/topics/a/b"  # the server has decoded it
    # then it is Publish for both, which changes nothing moto keeps
    assert identify(environ).operation == "Publish"
    assert PersistenceMiddleware(app=None, persistence=None).plan(environ) is None
