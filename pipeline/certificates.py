"""Device identities: a private key and CSR made locally, a certificate issued by IoT Core.

The private key never leaves this machine on the CSR path (`create_certificate_from_csr`); the
other path (`create_keys_and_certificate`) gets the key from AWS once, in the response. Files
go under the git-ignored `secrets/<thing>/` with mode 0600 for keys.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from pipeline.paths import SECRETS


@dataclass(frozen=True)
class DeviceCertificate:
    """What a device needs to connect, and how IoT Core knows the certificate."""

    thing_name: str
    certificate_id: str
    certificate_arn: str
    certificate_path: Path
    private_key_path: Path
    status: str

    def describe(self) -> dict[str, Any]:
        cert = x509.load_pem_x509_certificate(self.certificate_path.read_bytes())
        return {
            "thing": self.thing_name,
            "certificate id": self.certificate_id,
            "status": self.status,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not after": cert.not_valid_after_utc.isoformat(),
            "certificate file": str(self.certificate_path),
            "private key file": str(self.private_key_path),
        }


def write_private(path: Path, data: bytes) -> None:
    """Write a secret readable by its owner only (created 0600: never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def new_key_and_csr(common_name: str) -> tuple[bytes, bytes]:
    """An RSA-2048 private key (PEM) and a CSR (PEM) for `common_name`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def certificate_id_of(certificate_pem: str | bytes) -> str:
    """IoT Core's certificate id: the SHA-256 of the certificate's DER encoding."""
    pem = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _attach(iot: Any, thing_name: str, policy_name: str, certificate_arn: str) -> None:
    iot.attach_policy(policyName=policy_name, target=certificate_arn)
    iot.attach_thing_principal(thingName=thing_name, principal=certificate_arn)


def _registered(
    iot: Any,
    response: dict[str, Any],
    thing_name: str,
    policy_name: str | None,
    cert_path: Path,
    key_path: Path,
    active: bool,
) -> DeviceCertificate:
    """Save the issued certificate, attach the policy and the thing (when a policy is given)."""
    cert_path.write_text(response["certificatePem"])
    if policy_name:
        _attach(iot, thing_name, policy_name, response["certificateArn"])
    return DeviceCertificate(
        thing_name,
        response["certificateId"],
        response["certificateArn"],
        cert_path,
        key_path,
        "ACTIVE" if active else "INACTIVE",
    )


def _paths(secrets_dir: Path, thing_name: str, name: str) -> tuple[Path, Path]:
    folder = secrets_dir / thing_name
    return folder / f"{name}.cert.pem", folder / f"{name}.private.key"


def create_from_csr(
    iot: Any,
    thing_name: str,
    policy_name: str | None,
    secrets_dir: Path = SECRETS,
    active: bool = True,
    name: str = "device",
) -> DeviceCertificate:
    """Key and CSR made here; IoT Core signs the CSR; the policy and the thing are attached
    when a policy is given. Files: `<secrets>/<thing>/<name>.cert.pem` and `.private.key`."""
    cert_path, key_path = _paths(secrets_dir, thing_name, name)
    key_pem, csr_pem = new_key_and_csr(thing_name)
    write_private(key_path, key_pem)
    response = iot.create_certificate_from_csr(
        certificateSigningRequest=csr_pem.decode(), setAsActive=active
    )
    return _registered(iot, response, thing_name, policy_name, cert_path, key_path, active)


def create_keys_and_certificate(
    iot: Any,
    thing_name: str,
    policy_name: str | None,
    secrets_dir: Path = SECRETS,
    name: str = "aws-key",
) -> DeviceCertificate:
    """The other path: IoT Core makes the key pair too and returns the private key once."""
    cert_path, key_path = _paths(secrets_dir, thing_name, name)
    response = iot.create_keys_and_certificate(setAsActive=True)
    write_private(key_path, response["keyPair"]["PrivateKey"].encode())
    return _registered(iot, response, thing_name, policy_name, cert_path, key_path, True)


def load_device(
    iot: Any, thing_name: str, secrets_dir: Path = SECRETS, name: str = "device"
) -> DeviceCertificate:
    """The certificate a previous notebook created, from its files and IoT Core's registry."""
    cert_path, key_path = _paths(secrets_dir, thing_name, name)
    if not cert_path.exists():
        raise FileNotFoundError(f"{cert_path} does not exist: run notebook 02 (certificates) first")
    certificate_id = certificate_id_of(cert_path.read_bytes())
    described = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"]
    return DeviceCertificate(
        thing_name,
        certificate_id,
        described["certificateArn"],
        cert_path,
        key_path,
        described["status"],
    )


def delete_certificate(iot: Any, device: DeviceCertificate) -> None:
    """Detach a certificate from its things and policies, deactivate and delete it and its files."""
    for thing in iot.list_principal_things(principal=device.certificate_arn)["things"]:
        iot.detach_thing_principal(thingName=thing, principal=device.certificate_arn)
    for policy in iot.list_attached_policies(target=device.certificate_arn)["policies"]:
        iot.detach_policy(policyName=policy["policyName"], target=device.certificate_arn)
    iot.update_certificate(certificateId=device.certificate_id, newStatus="INACTIVE")
    wait_detached(iot, device.certificate_arn)
    delete_with_retry(iot, device.certificate_id)
    device.certificate_path.unlink(missing_ok=True)
    device.private_key_path.unlink(missing_ok=True)


def forget_local(thing_name: str, secrets_dir: Path = SECRETS) -> int:
    """Remove the thing's local key and certificate files; returns how many were removed."""
    folder = secrets_dir / thing_name
    removed = 0
    for path in folder.glob("*") if folder.exists() else []:
        path.unlink()
        removed += 1
    if folder.exists():
        folder.rmdir()
    return removed


def set_status(iot: Any, device: DeviceCertificate, status: str) -> DeviceCertificate:
    iot.update_certificate(certificateId=device.certificate_id, newStatus=status)
    return DeviceCertificate(**{**device.__dict__, "status": status})


def wait_detached(iot: Any, certificate_arn: str, timeout: float = 60.0) -> None:
    """Wait until no thing is attached to the certificate. DetachThingPrincipal is
    asynchronous: "This call is asynchronous. It might take several seconds for the detachment
    to propagate" (https://docs.aws.amazon.com/iot/latest/apireference/API_DetachThingPrincipal.html)."""
    delay, deadline = 0.5, time.monotonic() + timeout
    while iot.list_principal_things(principal=certificate_arn)["things"]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{certificate_arn} still has things attached after {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def delete_with_retry(iot: Any, certificate_id: str, attempts: int = 6) -> None:
    """DeleteCertificate, retrying DeleteConflictException (a detachment still propagating)
    with exponential backoff
    (https://docs.aws.amazon.com/iot/latest/apireference/API_DeleteCertificate.html)."""
    from botocore.exceptions import ClientError

    delay = 1.0
    for attempt in range(attempts):
        try:
            iot.delete_certificate(certificateId=certificate_id)
            return
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code != "DeleteConflictException" or attempt == attempts - 1:
                raise
            time.sleep(delay)
            delay *= 2


def delete_thing_certificates(iot: Any, thing_name: str) -> list[str]:
    """Detach every certificate from the thing and its policies, deactivate and delete it.

    A thing cannot be deleted while a principal is attached (DeleteThing fails with
    InvalidRequestException), so teardown must run this first, and wait for each detachment
    to take effect before deleting. Returns the deleted ids.
    """
    deleted = []
    for arn in iot.list_thing_principals(thingName=thing_name)["principals"]:
        iot.detach_thing_principal(thingName=thing_name, principal=arn)
        for policy in iot.list_attached_policies(target=arn)["policies"]:
            iot.detach_policy(policyName=policy["policyName"], target=arn)
        certificate_id = arn.rsplit("/", 1)[-1]
        iot.update_certificate(certificateId=certificate_id, newStatus="INACTIVE")
        wait_detached(iot, arn)
        delete_with_retry(iot, certificate_id)
        deleted.append(certificate_id)
    return deleted
