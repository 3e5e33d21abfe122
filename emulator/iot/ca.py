"""The emulator's local certificate authority: a root CA kept under the data directory, device
certificates signed by it (what AWS IoT's CreateKeysAndCertificate and CreateCertificateFromCsr
return) and the MQTT endpoint's TLS server certificate for `localhost` / `127.0.0.1`.

Devices trust the root CA (`root_ca_path`) the way they trust Amazon Root CA 1 on AWS. Private
keys are written with mode 0600 and never logged.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

ROOT_CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "iot-core-pipeline local emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, "IoT Core Pipeline Emulator Root CA"),
    ]
)
# AWS IoT names the certificates it creates this way (CreateKeysAndCertificate).
AWS_IOT_CERTIFICATE_SUBJECT = x509.Name(
    [x509.NameAttribute(NameOID.COMMON_NAME, "AWS IoT Certificate")]
)
# Certificates AWS IoT issues are valid until the end of 2049 (seen in DescribeCertificate).
DEVICE_NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
ROOT_CA_LIFETIME = dt.timedelta(days=3650)
SERVER_CERT_LIFETIME = dt.timedelta(days=397)
SERVER_CERT_RENEW_BEFORE = dt.timedelta(days=30)
SERVER_HOSTS = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


def new_rsa_key() -> rsa.RSAPrivateKey:
    """An RSA 2048 key, what AWS IoT generates for CreateKeysAndCertificate."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# "x509-client-certs": device keys are RSA of 2048 bits or more, or ECC on NIST P-256, P-384 or
# P-521; certificates are signed with SHA-256, SHA-384 or SHA-512 (RSA, RSASSA-PSS, ECDSA, DSA).
_DEVICE_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_SIGNATURE_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


def device_key_problem(public_key: object) -> str | None:
    """Why AWS IoT would refuse this device public key, or None if it is acceptable."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            return f"RSA keys must have at least 2048 bits (this one has {public_key.key_size})"
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, _DEVICE_CURVES):
            return f"EC keys must use NIST P-256, P-384 or P-521 (not {public_key.curve.name})"
        return None
    return (
        f"{type(public_key).__name__} keys are not supported: use RSA (2048+) or NIST P-256/384/521"
    )


def signature_problem(cert: x509.Certificate) -> str | None:
    """Why AWS IoT would refuse this certificate's signature algorithm, or None."""
    algorithm = cert.signature_hash_algorithm
    if not isinstance(algorithm, _SIGNATURE_HASHES):
        name = (
            algorithm.name if algorithm is not None else cert.signature_algorithm_oid.dotted_string
        )
        return f"signature algorithm with {name} is not supported: use SHA-256, SHA-384 or SHA-512"
    return None


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    # AWS returns the key as PKCS#1 ("BEGIN RSA PRIVATE KEY"), so do we.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: CertificatePublicKeyTypes) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def write_private(path: Path, data: bytes) -> None:
    """Write a secret atomically, readable by its owner only (0600 from the first byte)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class _KeyPair:
    certificate: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


class CertificateAuthority:
    """The root CA under `directory` (created on first use, reused afterwards)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self.root_ca_path = self.directory / "root-ca.pem"
        self._root_key_path = self.directory / "root-ca.key"
        self.server_cert_path = self.directory / "server.pem"
        self.server_key_path = self.directory / "server.key"
        self._root = self._load_or_create_root()
        self._ensure_server_certificate()

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._root.certificate

    @property
    def root_pem(self) -> str:
        return certificate_pem(self._root.certificate)

    # Issuing --------------------------------------------------------------------------------
    def issue_device_certificate(
        self, public_key: CertificatePublicKeyTypes, subject: x509.Name
    ) -> x509.Certificate:
        """A client certificate for `public_key`, signed by the root CA, shaped like AWS's."""
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._root.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now())
            .not_valid_after(DEVICE_NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage("digital_signature"), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
            .sign(self._root.key, hashes.SHA256())
        )

    def issued_by_root(self, cert: x509.Certificate) -> bool:
        """Whether `cert` carries a valid signature of this root CA."""
        if cert.issuer != self._root.certificate.subject:
            return False
        try:
            cert.verify_directly_issued_by(self._root.certificate)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    # Files ----------------------------------------------------------------------------------
    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            self._root.certificate.public_key()  # type: ignore[arg-type]
        )

    def _load_or_create_root(self) -> _KeyPair:
        if self.root_ca_path.exists() and self._root_key_path.exists():
            cert = x509.load_pem_x509_certificate(self.root_ca_path.read_bytes())
            key = serialization.load_pem_private_key(self._root_key_path.read_bytes(), None)
            if cert.public_key() != key.public_key():  # type: ignore[union-attr]
                raise RuntimeError(
                    f"{self.root_ca_path} does not match {self._root_key_path}: remove both to "
                    "create a new root CA (devices must then fetch the new root-ca.pem)"
                )
            if cert.not_valid_after_utc > _now():
                return _KeyPair(cert, key)  # type: ignore[arg-type]
            log.warning("root CA %s has expired; creating a new one", self.root_ca_path)
        key = new_rsa_key()
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(ROOT_CA_NAME)
            .issuer_name(ROOT_CA_NAME)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + ROOT_CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                _key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        write_private(self._root_key_path, private_key_pem(key).encode())
        _write_public(self.root_ca_path, certificate_pem(cert).encode())
        # A new root invalidates any server certificate signed by an older one.
        self.server_cert_path.unlink(missing_ok=True)
        log.info("created the emulator's root CA at %s", self.root_ca_path)
        return _KeyPair(cert, key)

    def _ensure_server_certificate(self) -> None:
        if self.server_cert_path.exists() and self.server_key_path.exists():
            cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
            fresh = cert.not_valid_after_utc - SERVER_CERT_RENEW_BEFORE > _now()
            if fresh and self.issued_by_root(cert):
                return
        key = new_rsa_key()
        now = _now()
        names: list[x509.GeneralName] = [x509.DNSName(h) for h in SERVER_HOSTS]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self._root.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + SERVER_CERT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(self._authority_key_identifier(), critical=False)
            .sign(self._root.key, hashes.SHA256())
        )
        write_private(self.server_key_path, private_key_pem(key).encode())
        _write_public(self.server_cert_path, certificate_pem(cert).encode())


# The nine flags of the X.509 key usage extension (RFC 5280 4.2.1.3), in x509.KeyUsage's order.
_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _key_usage(*allowed: str) -> x509.KeyUsage:
    """The key usage extension with the `allowed` flags set and every other one clear."""
    return x509.KeyUsage(**{usage: usage in allowed for usage in _KEY_USAGES})
