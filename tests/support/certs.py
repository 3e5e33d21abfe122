"""Keys and certificates a device makes for itself (as a user would with openssl), for the
tests that register, refuse or present certificates of their own."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def ec_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key: fast to make, and one AWS IoT accepts."""
    return ec.generate_private_key(ec.SECP256R1())


def name_of(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(
    common_name: str,
    key: Any,
    issuer: tuple[x509.Name, Any] | None = None,
    days: int = 30,
    algorithm: Any = None,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer` (its name and key) or self-signed."""
    issuer_name, issuer_key = issuer or (name_of(common_name), key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name_of(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(issuer_key, algorithm or hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def self_signed_certificate(common_name: str) -> tuple[str, str]:
    """A device's own self-signed certificate and key (PEM)."""
    key = ec_key()
    return cert_pem(certificate(common_name, key)), key_pem(key)


def csr_pem(common_name: str, key: Any) -> str:
    """A certificate signing request for `key` (what CreateCertificateFromCsr takes)."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(name_of(common_name))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def write_pair(
    folder: Path, stem: str, certificate_pem: str, private_key_pem: str
) -> tuple[Path, Path]:
    """`<stem>.cert.pem` and `<stem>.private.key` in `folder`; only the owner reads the key."""
    cert_path, key_path = folder / f"{stem}.cert.pem", folder / f"{stem}.private.key"
    cert_path.write_text(certificate_pem)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(private_key_pem)
    return cert_path, key_path
