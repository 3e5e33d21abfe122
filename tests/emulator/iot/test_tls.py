"""Mutual TLS with `server_ssl_context()`: a real `ssl` client against a tiny server on
127.0.0.1, as the broker will use it."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from awscrt import http, io
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulator.iot.core import AuthenticationError


class OneShotTlsServer:
    """Accepts one connection with the given context and records what happened."""

    def __init__(self, context: ssl.SSLContext, iot_core) -> None:
        self._context = context
        self._iot = iot_core
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.error: Exception | None = None
        self.certificate_id: str | None = None
        self.version: str | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raw, _ = self._listener.accept()
        raw.settimeout(5)
        try:
            with self._context.wrap_socket(raw, server_side=True) as tls:
                self.version = tls.version()
                principal = self._iot.authenticate(tls.getpeercert(binary_form=True))
                self.certificate_id = principal.certificate_id
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError, AuthenticationError) as exc:
            self.error = exc
        finally:
            self._listener.close()

    def join(self) -> None:
        self._thread.join(timeout=10)


def client_context(iot_core, tmp_path: Path, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    (tmp_path / "device.pem").write_text(cert_pem)
    (tmp_path / "device.key").write_text(key_pem)
    (tmp_path / "device.key").chmod(0o600)
    context = ssl.create_default_context(cafile=str(iot_core.root_ca_path))
    context.load_cert_chain(tmp_path / "device.pem", tmp_path / "device.key")
    return context


def connect(context: ssl.SSLContext, port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        # The device checks the server's name as awsiotsdk does: "localhost" from DescribeEndpoint.
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.recv(2)


def cert_id(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_certificate_from_create_keys_and_certificate_completes_mutual_tls(iot, iot_core, tmp_path):
    # given a certificate and key from CreateKeysAndCertificate
    response = iot.create_keys_and_certificate(setAsActive=True)
    client = client_context(
        iot_core, tmp_path, response["certificatePem"], response["keyPair"]["PrivateKey"]
    )
    server = OneShotTlsServer(iot_core.server_ssl_context(), iot_core)
    # when the device connects (verifying the server against the root CA, as "localhost")
    answer = connect(client, server.port)
    server.join()
    # then the handshake completed with TLS >= 1.2 and the server knows the certificate
    assert answer == b"ok", server.error
    assert server.version in ("TLSv1.2", "TLSv1.3")
    assert server.certificate_id == response["certificateId"]


def test_self_signed_certificate_registered_without_ca_completes_mutual_tls(
    iot, iot_core, tmp_path, self_signed, unique
):
    # given a device's own self-signed certificate, registered without a CA
    pem, key = self_signed(f"own-{unique}")
    iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    client = client_context(iot_core, tmp_path, pem, key)
    # when it connects to a server whose context was taken after the registration
    server = OneShotTlsServer(iot_core.server_ssl_context(), iot_core)
    answer = connect(client, server.port)
    server.join()
    # then the handshake completed: the registered certificate is its own trust anchor
    assert answer == b"ok", server.error
    assert server.certificate_id == cert_id(pem)


def test_unregistered_self_signed_certificate_fails_the_handshake(
    iot_core, tmp_path, self_signed, unique
):
    # given a self-signed certificate the registry does not know
    pem, key = self_signed(f"unknown-{unique}")
    client = client_context(iot_core, tmp_path, pem, key)
    server = OneShotTlsServer(iot_core.server_ssl_context(), iot_core)
    # when it connects, then the server refuses it during the handshake
    with pytest.raises((ssl.SSLError, ConnectionError)):
        connect(client, server.port)
    server.join()
    assert isinstance(server.error, ssl.SSLError)
    assert "certificate verify failed" in str(server.error)


def test_server_context_is_cached_until_the_registry_changes(iot, iot_core, self_signed, unique):
    # given the context the broker would take now
    first = iot_core.server_ssl_context()
    # when nothing changed, then the same context comes back (cheap per connection)
    assert iot_core.server_ssl_context() is first
    # when a certificate signed by the root CA is created, the root covers it: no rebuild
    iot.create_keys_and_certificate(setAsActive=True)
    assert iot_core.server_ssl_context() is first
    # when a certificate is registered, then a new context trusts it
    pem, _key = self_signed(f"new-{unique}")
    iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert iot_core.server_ssl_context() is not first


def test_server_context_settings(iot_core):
    # then the server requires client certificates, TLS 1.2 or later, and no session tickets
    context = iot_core.server_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert context.num_tickets == 0


def test_awscrt_client_completes_mutual_tls(iot, iot_core, tmp_path):
    # given a certificate from CreateKeysAndCertificate, used by awscrt (awsiotsdk's TLS stack,
    # s2n on Linux) trusting only the emulator's root CA
    response = iot.create_keys_and_certificate(setAsActive=True)
    (tmp_path / "device.pem").write_text(response["certificatePem"])
    (tmp_path / "device.key").write_text(response["keyPair"]["PrivateKey"])
    options = io.TlsContextOptions.create_client_with_mtls_from_path(
        str(tmp_path / "device.pem"), str(tmp_path / "device.key")
    )
    options.override_default_trust_store_from_path(None, str(iot_core.root_ca_path))
    connection_options = io.ClientTlsContext(options).new_connection_options()
    connection_options.set_server_name(iot_core.endpoint_address)
    loops = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(loops, io.DefaultHostResolver(loops))
    server = OneShotTlsServer(iot_core.server_ssl_context(), iot_core)
    # when it connects to 127.0.0.1 with SNI "localhost" (what describe_endpoint returns)
    connection = http.HttpClientConnection.new(
        host_name="127.0.0.1",
        port=server.port,
        bootstrap=bootstrap,
        tls_connection_options=connection_options,
    ).result(10)
    server.join()
    connection.close()
    # then the handshake completed on both sides and the server knows the certificate
    assert server.error is None, server.error
    assert server.certificate_id == response["certificateId"]
