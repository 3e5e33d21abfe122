"""Fixtures for IoT Core tests: the `emulator.iot` component of the session emulator, and
helpers to make device certificates."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="session")
def iot_core(emulator):
    return emulator.iot


@pytest.fixture(scope="session")
def iot(iot_core, aws):
    """A boto3 IoT client."""
    return aws("iot")


@pytest.fixture(scope="session")
def self_signed():
    """Make a device's own self-signed certificate: `self_signed(cn) -> (cert_pem, key_pem)`."""
    return self_signed_certificate


def self_signed_certificate(common_name: str) -> tuple[str, str]:
    """A device's own self-signed certificate and key (PEM), as a user would make with openssl."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem
