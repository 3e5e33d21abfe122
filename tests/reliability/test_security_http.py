"""The AWS endpoint against hostile or broken HTTP clients, over real sockets: malformed framing,
oversized bodies and headers, slow clients holding connections, unreadable bodies, unknown
services, and unexpected errors. Every answer is a prompt 4xx/5xx in the service's own shape
(never a hang, never werkzeug's HTML page), and other clients keep being served."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from reliability_harness import fleet_policy, new_device

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30)


def scope(service: str) -> str:
    """A SigV4 Authorization header naming `service` (moto does not verify signatures)."""
    return (
        f"AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=00"
    )


def exchange(emulator, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; (status, headers, body) of the answer, which must come within timeout."""
    with socket.create_connection((emulator.host, emulator.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def post(emulator, path: str, headers: dict[str, str], body: bytes = b"") -> tuple:
    """`exchange` of a POST of `body` to `path` with `headers`."""
    return exchange(emulator, request_bytes("POST", path, headers, body))


def firehose_headers(action: str, content_length: str) -> dict[str, str]:
    """The headers of a signed Firehose JSON call announcing `content_length` body bytes."""
    return {
        "Authorization": scope("firehose"),
        "X-Amz-Target": f"Firehose_20150804.{action}",
        "Content-Type": "application/x-amz-json-1.1",
        "Content-Length": content_length,
    }


# ----------------------------------------------------------------------------- framing
@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5", "5, 6"])
def test_bad_content_length_is_answered_400_at_once(emulator, length):
    started = time.monotonic()
    status, headers, body = post(emulator, "/", firehose_headers("ListDeliveryStreams", length))
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert "Content-Length" in json.loads(body)["message"]
    assert time.monotonic() - started < 3


def test_bad_request_line_is_answered_400_as_json(emulator):
    status, headers, body = exchange(emulator, b"THIS IS NOT HTTP AT ALL\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["__type"] == "BadRequest"


def test_oversized_header_section_is_answered_431(emulator):
    filler = {f"X-Filler-{i}": "x" * 1000 for i in range(80)}  # 80 KB of headers, 80 lines
    status, headers, body = exchange(emulator, request_bytes("GET", "/_emulator/health", filler))
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert "header section" in json.loads(body)["message"]


def test_unsupported_transfer_encoding_is_answered_400(emulator):
    status, _headers, body = post(
        emulator, "/", {"Authorization": scope("firehose"), "Transfer-Encoding": "gzip, chunked"}
    )
    assert status == 400
    assert "Transfer-Encoding" in json.loads(body)["message"]


# --------------------------------------------------------------------------- body caps
def test_firehose_body_over_its_cap_is_refused_from_content_length(emulator):
    # 200 MB announced, nothing sent: the answer must not wait for the body.
    started = time.monotonic()
    status, headers, body = post(
        emulator, "/", firehose_headers("PutRecordBatch", str(200 * 1024 * 1024))
    )
    assert status == 413
    assert json.loads(body)["__type"] == "RequestEntityTooLargeException"
    assert headers["connection"] == "close"
    assert time.monotonic() - started < 3


def test_expect_100_continue_is_refused_before_the_body_is_invited(emulator):
    status, _headers, body = post(
        emulator,
        "/2015-03-31/functions/f/invocations",
        {
            "Authorization": scope("lambda"),
            "Expect": "100-continue",
            "Content-Length": str(7 * 1024 * 1024),
        },
    )
    assert status == 413  # the first status line is the refusal, not "100 Continue"
    assert json.loads(body)["__type"] == "RequestTooLargeException"


def test_unsigned_body_to_an_emulator_path_is_capped(emulator):
    status, _headers, body = post(
        emulator, "/_emulator/health", {"Content-Length": str(50 * 1024 * 1024)}
    )
    assert status == 413
    assert json.loads(body)["__type"] == "RequestEntityTooLargeException"


def test_s3_body_over_5_gib_is_refused_with_entity_too_large(emulator):
    status, headers, body = exchange(
        emulator,
        request_bytes(
            "PUT",
            "/some-bucket/key",
            {"Authorization": scope("s3"), "Content-Length": str(5 * 1024**3 + 1)},
        ),
    )
    assert status == 400
    assert b"<Code>EntityTooLarge</Code>" in body
    assert headers["content-type"] == "application/xml"


def test_lambda_invoke_over_6_mb_gets_request_too_large(aws):
    client = aws("lambda", config=NO_RETRIES)
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="any-function", Payload=b'"' + b"x" * 6_300_000 + b'"')
    error = caught.value.response
    assert error["Error"]["Code"] == "RequestTooLargeException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "6291456" in error["Error"]["Message"]


def test_iot_data_publish_over_128_kib_gets_request_entity_too_large(aws):
    client = aws("iot-data", config=NO_RETRIES)
    with pytest.raises(ClientError) as caught:
        client.publish(topic="too/large", qos=0, payload=b"x" * (128 * 1024 + 1))
    assert caught.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_chunked_body_over_the_cap_stops_being_read_at_the_cap(emulator):
    # A chunked body (no Content-Length) to iot-data: read up to 128 KiB, then refused.
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    status, _headers, answer = post(
        emulator,
        "/topics/chunked?qos=0",
        {"Authorization": scope("iotdata"), "Transfer-Encoding": "chunked"},
        body,
    )
    assert status == 413
    assert json.loads(answer)["__type"] == "RequestEntityTooLargeException"


def test_s3_round_trip_still_streams_large_and_chunked_bodies(aws, unique, tmp_path):
    s3 = aws("s3")
    bucket = f"http-round-trip-{unique}"
    s3.create_bucket(Bucket=bucket)
    big = bytes(range(256)) * (12 * 4096)  # 12 MiB: a multipart upload from upload_file
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    s3.upload_file(str(source), bucket, "big.bin")
    assert s3.head_object(Bucket=bucket, Key="big.bin")["ContentLength"] == len(big)
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == big
    # botocore sends a body of unknown length with Transfer-Encoding: chunked
    s3.put_object(Bucket=bucket, Key="small", Body=b"hello" * 1000)
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"hello" * 1000


# ------------------------------------------------------------------ malformed bodies
@pytest.mark.parametrize(
    ("service", "target"),
    [
        ("firehose", "Firehose_20150804.PutRecord"),
        ("logs", "Logs_20140328.PutLogEvents"),
    ],
)
def test_malformed_json_gets_400_serialization_exception(emulator, service, target):
    body = b'{"DeliveryStreamName": "x", '
    status, _headers, answer = post(
        emulator,
        "/",
        {
            "Authorization": scope(service),
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.1",
            "Content-Length": str(len(body)),
        },
        body,
    )
    assert status == 400
    assert json.loads(answer)["__type"] == "SerializationException"


def test_malformed_json_to_iot_gets_400_invalid_request(emulator):
    body = b"{not json"
    status, _headers, answer = post(
        emulator,
        "/policies/bad-json-policy",
        {
            "Authorization": scope("iot"),
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        },
        body,
    )
    assert status == 400
    assert json.loads(answer)["__type"] == "InvalidRequestException"


@pytest.mark.parametrize("service", ["iam", "cloudformation"])
def test_non_utf8_form_gets_400_malformed_query_string(emulator, service):
    body = b"Action=ListRoles&Version=2010-05-08&Marker=\xff\xfe"
    status, headers, answer = post(
        emulator,
        "/",
        {
            "Authorization": scope(service),
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Content-Length": str(len(body)),
        },
        body,
    )
    assert status == 400
    assert headers["content-type"] == "text/xml"
    assert b"<Code>MalformedQueryString</Code>" in answer


def test_unknown_service_scope_gets_400_naming_it(emulator):
    status, _headers, answer = post(
        emulator, "/", {"Authorization": scope("no-such-service"), "Content-Length": "2"}, b"{}"
    )
    assert status == 400
    assert "no-such-service" in json.loads(answer)["message"]


def test_an_unexpected_error_is_a_500_in_the_service_shape_not_html(emulator):
    def broken(_request):
        raise RuntimeError("boom")

    emulator.gateway.route("/_emulator/test-broken-route", broken)
    status, headers, answer = exchange(
        emulator, request_bytes("GET", "/_emulator/test-broken-route", {})
    )
    assert status == 500
    assert headers["content-type"] == "application/json"
    assert json.loads(answer)["__type"] == "InternalFailure"
    assert "boom" in json.loads(answer)["message"]


# -------------------------------------------------------------- held connections
def _held_sockets(emulator, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.create_connection((emulator.host, emulator.port), timeout=30)
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Incomplete: ")
        held.append(sock)
    return held


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError, OSError):
        return True


def test_300_incomplete_requests_do_not_stop_the_api_or_mqtt_and_are_closed_after_10s(
    emulator, aws, unique, connect, tmp_path: Path
):
    iot = aws("iot")
    policy = f"http-held-{unique}"
    iot.create_policy(policyName=policy, policyDocument=json.dumps(fleet_policy(f"held/{unique}")))
    device = new_device(iot, f"held-{unique}", policy, tmp_path)

    held = _held_sockets(emulator, 300)
    started = time.monotonic()
    try:
        # Then the API keeps answering and a device connects over MQTT
        calls = time.monotonic()
        for _ in range(20):
            iot.list_things(maxResults=1)
        assert time.monotonic() - calls < 10
        publisher = connect(device)
        assert publisher.connected.is_set() and not publisher.connack.is_failure
        # And the held connections are closed once their 10 s to send headers are over
        for sock in held:
            sock.settimeout(max(1.0, 20 - (time.monotonic() - started)))
        closed = [_closed_by_server(sock) for sock in held]
        elapsed = time.monotonic() - started
        assert all(closed)
        assert 9 <= elapsed < 20
    finally:
        for sock in held:
            sock.close()


def test_a_slow_trickle_of_header_bytes_is_cut_at_the_deadline(emulator):
    sock = socket.create_connection((emulator.host, emulator.port), timeout=20)
    started = time.monotonic()
    try:
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\n")
        closed_at = None
        for i in range(30):  # one header line every 0.5 s, never finishing
            try:
                sock.sendall(f"X-Slow-{i}: y\r\n".encode())
            except OSError:
                closed_at = time.monotonic()
                break
            time.sleep(0.5)
        if closed_at is None and _closed_by_server(sock):
            closed_at = time.monotonic()
        assert closed_at is not None and closed_at - started < 13
    finally:
        sock.close()


def test_connections_beyond_the_cap_get_503_and_others_are_served_after(emulator, aws):
    server = emulator._server
    saved = server.max_connections
    held: list[socket.socket] = []
    try:
        server.max_connections = 5  # the 5 held below (or others) fill it
        held = _held_sockets(emulator, 5)
        time.sleep(0.5)
        status, _headers, body = exchange(emulator, request_bytes("GET", "/_emulator/health", {}))
        assert status == 503
        assert json.loads(body)["__type"] == "ServiceUnavailable"
    finally:
        for sock in held:
            sock.close()
        server.max_connections = saved
    deadline = time.monotonic() + 10
    while server.active_connections > 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert aws("iot").list_things(maxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200
