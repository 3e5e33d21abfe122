"""Certificates over the real endpoint with boto3: issued by the emulator's root CA, registered
in the registry with AWS's ids, and the device's own certificates accepted as they are."""

from __future__ import annotations

import datetime as dt
import hashlib
import stat
import urllib.request

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from support import certs
from support.certs import certificate, csr_pem, ec_key


def der_sha256(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def root_ca(iot_core) -> x509.Certificate:
    return x509.load_pem_x509_certificate(iot_core.root_ca_path.read_bytes())


def test_create_keys_and_certificate_chains_to_the_root_ca(iot, iot_core):
    # when a certificate is created with its keys
    response = iot.create_keys_and_certificate(setAsActive=True)
    cert = x509.load_pem_x509_certificate(response["certificatePem"].encode())
    # then the root CA that devices are given has signed it
    cert.verify_directly_issued_by(root_ca(iot_core))
    # and its id is the SHA-256 of its DER form, as on AWS, in an ARN of this account
    assert response["certificateId"] == der_sha256(response["certificatePem"])
    assert response["certificateArn"] == (
        f"arn:aws:iot:us-east-1:123456789012:cert/{response['certificateId']}"
    )
    # and the returned private key belongs to the certificate (PKCS#1, as AWS returns it)
    private = response["keyPair"]["PrivateKey"]
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    key = serialization.load_pem_private_key(private.encode(), None)
    assert key.public_key() == cert.public_key()
    public = serialization.load_pem_public_key(response["keyPair"]["PublicKey"].encode())
    assert public == cert.public_key()
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    # and it is named and dated like AWS's
    assert cert.subject.rfc4514_string() == "CN=AWS IoT Certificate"
    assert cert.not_valid_after_utc == dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@pytest.mark.parametrize(("set_as_active", "status"), [(True, "ACTIVE"), (False, "INACTIVE")])
def test_created_certificate_is_in_the_registry_with_its_status(iot, set_as_active, status):
    # when a certificate is created
    response = iot.create_keys_and_certificate(setAsActive=set_as_active)
    # then the registry describes it with the same PEM and the status asked for
    described = iot.describe_certificate(certificateId=response["certificateId"])
    assert described["certificateDescription"]["certificatePem"] == response["certificatePem"]
    assert described["certificateDescription"]["status"] == status


def test_create_certificate_from_csr_keeps_the_csr_key_and_subject(iot, iot_core):
    # given a device's own key and a CSR for it
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp"),
            x509.NameAttribute(NameOID.COMMON_NAME, "sensor-0001"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    # when IoT signs it
    response = iot.create_certificate_from_csr(certificateSigningRequest=csr_pem, setAsActive=True)
    cert = x509.load_pem_x509_certificate(response["certificatePem"].encode())
    # then the certificate carries the CSR's own public key and subject, signed by the root CA
    assert cert.public_key() == key.public_key()
    assert cert.subject == subject
    cert.verify_directly_issued_by(root_ca(iot_core))
    assert response["certificateId"] == der_sha256(response["certificatePem"])
    described = iot.describe_certificate(certificateId=response["certificateId"])
    assert described["certificateDescription"]["status"] == "ACTIVE"


def test_create_certificate_from_a_malformed_csr_is_an_invalid_request(iot):
    # when the CSR is not a CSR, then AWS's error code comes back with what is wrong
    with pytest.raises(ClientError) as raised:
        iot.create_certificate_from_csr(certificateSigningRequest="-----BEGIN nonsense")
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "certificateSigningRequest" in raised.value.response["Error"]["Message"]


def test_register_certificate_without_ca_accepts_a_self_signed_device_certificate(
    iot, unique, self_signed
):
    # given a device's own self-signed certificate
    pem, _key = self_signed(f"device-{unique}")
    # when it is registered without a CA
    response = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    # then its id is the SHA-256 of its DER and the registry holds it as given
    assert response["certificateId"] == der_sha256(pem)
    described = iot.describe_certificate(certificateId=response["certificateId"])
    assert described["certificateDescription"]["certificatePem"] == pem
    assert described["certificateDescription"]["status"] == "ACTIVE"


def test_registering_the_same_certificate_twice_conflicts(iot, unique, self_signed):
    # given a registered certificate
    pem, _key = self_signed(f"twice-{unique}")
    iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    # when it is registered again, then AWS's conflict error comes back
    with pytest.raises(ClientError) as raised:
        iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert raised.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"


def test_register_certificate_without_ca_rejects_what_is_not_a_certificate(iot):
    with pytest.raises(ClientError) as raised:
        iot.register_certificate_without_ca(certificatePem="hello", status="ACTIVE")
    assert raised.value.response["Error"]["Code"] == "CertificateValidationException"


def _ca_and_device(common_name: str) -> tuple[str, str]:
    ca_key = ec_key()
    ca = certificate(f"{common_name} CA", ca_key, ca=True)
    device = certificate(common_name, ec_key(), issuer=(ca.subject, ca_key))
    return certs.cert_pem(ca), certs.cert_pem(device)


def test_register_certificate_signed_by_a_registered_ca(iot, unique):
    # given a CA registered with IoT and a device certificate it signed
    ca_pem, device_pem = _ca_and_device(f"dev-{unique}")
    ca = iot.register_ca_certificate(caCertificate=ca_pem, setAsActive=True)
    # when the device certificate is registered with that CA
    response = iot.register_certificate(
        certificatePem=device_pem, caCertificatePem=ca_pem, status="ACTIVE"
    )
    # then the registry links it to the CA
    described = iot.describe_certificate(certificateId=response["certificateId"])
    assert described["certificateDescription"]["status"] == "ACTIVE"
    by_ca = iot.list_certificates_by_ca(caCertificateId=ca["certificateId"])["certificates"]
    assert [c["certificateId"] for c in by_ca] == [response["certificateId"]]


def test_register_certificate_needs_its_ca_registered(iot, unique):
    # given a device certificate whose CA was never registered
    _ca_pem, device_pem = _ca_and_device(f"orphan-{unique}")
    # when it is registered with RegisterCertificate, then AWS's validation error names the fix
    with pytest.raises(ClientError) as raised:
        iot.register_certificate(certificatePem=device_pem, status="ACTIVE")
    error = raised.value.response["Error"]
    assert error["Code"] == "CertificateValidationException"
    assert "RegisterCACertificate" in error["Message"]


def test_root_ca_is_served_and_its_key_is_private(emulator, iot_core):
    # when the root CA is fetched from the endpoint
    with urllib.request.urlopen(f"{emulator.endpoint_url}/_emulator/root-ca.pem") as response:
        served = response.read()
    # then it is the file devices are pointed at, and the CA's keys are owner-only
    assert served == iot_core.root_ca_path.read_bytes()
    for key_file in iot_core.root_ca_path.parent.glob("*.key"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file


@pytest.mark.parametrize("endpoint_type", ["iot:Data-ATS", "iot:Data"])
def test_describe_endpoint_is_stable_and_names_the_broker(iot, iot_core, endpoint_type):
    # when the data endpoint is asked for twice
    first = iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"]
    second = iot.describe_endpoint(endpointType=endpoint_type)["endpointAddress"]
    # then it is the same address, the one the broker's certificate names
    assert first == second == iot_core.endpoint_address == "localhost"


@pytest.mark.parametrize("status", ["PAUSED", "PENDING_TRANSFER", "PENDING_ACTIVATION"])
def test_update_certificate_rejects_statuses_it_cannot_set(iot, status):
    # given a certificate
    response = iot.create_keys_and_certificate(setAsActive=True)
    # when it is set to an unknown or AWS-internal status, then the request is invalid
    with pytest.raises(ClientError) as raised:
        iot.update_certificate(certificateId=response["certificateId"], newStatus=status)
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    described = iot.describe_certificate(certificateId=response["certificateId"])
    assert described["certificateDescription"]["status"] == "ACTIVE"


def test_described_validity_is_the_certificates_own(iot, unique, self_signed):
    # given a created certificate and a registered one
    created = iot.create_keys_and_certificate(setAsActive=True)
    pem, _key = self_signed(f"validity-{unique}")
    registered = iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    for certificate_id, cert_pem in [
        (created["certificateId"], created["certificatePem"]),
        (registered["certificateId"], pem),
    ]:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        # when it is described, then its validity is read from the certificate itself
        validity = iot.describe_certificate(certificateId=certificate_id)["certificateDescription"][
            "validity"
        ]
        assert validity["notBefore"] == cert.not_valid_before_utc
        assert validity["notAfter"] == cert.not_valid_after_utc


def _inactive_with_policy(iot, name: str) -> dict:
    """An INACTIVE certificate (CreateKeysAndCertificate's answer) with policy `name` attached."""
    response = iot.create_keys_and_certificate(setAsActive=False)
    iot.create_policy(
        policyName=name,
        policyDocument='{"Version":"2012-10-17","Statement":'
        '[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}',
    )
    iot.attach_policy(policyName=name, target=response["certificateArn"])
    return response


def test_force_deleted_certificate_leaves_no_policy_attachment_behind(iot, unique):
    # given an INACTIVE certificate with a policy attached
    name = f"left-{unique}"
    response = _inactive_with_policy(iot, name)
    # when it is deleted with forceDelete
    iot.delete_certificate(certificateId=response["certificateId"], forceDelete=True)
    # then the policy has no target left and can be deleted (a stack teardown does this)
    assert iot.list_targets_for_policy(policyName=name)["targets"] == []
    iot.delete_policy(policyName=name)
    assert name not in [p["policyName"] for p in iot.list_policies()["policies"]]


def test_delete_without_force_still_refuses_attached_policies(iot, unique):
    # given an INACTIVE certificate with a policy attached
    name = f"kept-{unique}"
    response = _inactive_with_policy(iot, name)
    # when it is deleted without forceDelete, then AWS's conflict error comes back
    with pytest.raises(ClientError) as raised:
        iot.delete_certificate(certificateId=response["certificateId"])
    assert raised.value.response["Error"]["Code"] == "DeleteConflictException"
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [response["certificateArn"]]


def test_delete_certificate_refusals(iot, unique):
    # given an ACTIVE certificate attached to a thing
    response = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_thing(thingName=f"holder-{unique}")
    iot.attach_thing_principal(thingName=f"holder-{unique}", principal=response["certificateArn"])
    # when it is deleted while ACTIVE, then the certificate's state is the problem
    with pytest.raises(ClientError) as raised:
        iot.delete_certificate(certificateId=response["certificateId"], forceDelete=True)
    assert raised.value.response["Error"]["Code"] == "CertificateStateException"
    # when it is deleted while INACTIVE but still attached to a thing, even with forceDelete
    iot.update_certificate(certificateId=response["certificateId"], newStatus="INACTIVE")
    with pytest.raises(ClientError) as raised:
        iot.delete_certificate(certificateId=response["certificateId"], forceDelete=True)
    # then the thing attachment is the conflict
    assert raised.value.response["Error"]["Code"] == "DeleteConflictException"
    assert f"holder-{unique}" in raised.value.response["Error"]["Message"]
    # and once detached it can be deleted, after which it is gone
    iot.detach_thing_principal(thingName=f"holder-{unique}", principal=response["certificateArn"])
    iot.delete_certificate(certificateId=response["certificateId"])
    with pytest.raises(ClientError) as raised:
        iot.describe_certificate(certificateId=response["certificateId"])
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_delete_certificate_works_while_a_thing_group_has_a_policy(iot, unique):
    # given a policy attached to a thing group (moto's own check fails on this with a 500)
    group = iot.create_thing_group(thingGroupName=f"fleet-{unique}")
    name = f"fleet-policy-{unique}"
    iot.create_policy(
        policyName=name,
        policyDocument='{"Version":"2012-10-17","Statement":'
        '[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}',
    )
    iot.attach_policy(policyName=name, target=group["thingGroupArn"])
    response = iot.create_keys_and_certificate(setAsActive=False)
    # when an unrelated INACTIVE certificate is deleted, then it is
    iot.delete_certificate(certificateId=response["certificateId"])
    ids = [c["certificateId"] for c in iot.list_certificates()["certificates"]]
    assert response["certificateId"] not in ids


def _self_signed_with(key, algorithm) -> str:
    return certs.cert_pem(certificate("weak", key, days=1, algorithm=algorithm))


@pytest.mark.parametrize(
    ("key", "algorithm", "message"),
    [
        (rsa.generate_private_key(65537, 1024), hashes.SHA256(), "at least 2048 bits"),
        (ec.generate_private_key(ec.SECP256K1()), hashes.SHA256(), "NIST P-256"),
        (ec.generate_private_key(ec.SECP256R1()), hashes.SHA224(), "sha224"),
    ],
    ids=["rsa-1024", "secp256k1", "sha224-signature"],
)
def test_registering_a_certificate_aws_would_refuse(iot, key, algorithm, message):
    # given a certificate with a key or signature AWS IoT does not accept ("x509-client-certs")
    pem = _self_signed_with(key, algorithm)
    # when it is registered, then AWS's validation error says what is wrong
    with pytest.raises(ClientError) as raised:
        iot.register_certificate_without_ca(certificatePem=pem, status="ACTIVE")
    assert raised.value.response["Error"]["Code"] == "CertificateValidationException"
    assert message in raised.value.response["Error"]["Message"]


def test_csr_with_a_short_rsa_key_is_refused(iot):
    # given a CSR for a 1024-bit RSA key
    key = rsa.generate_private_key(65537, 1024)
    # when IoT is asked to sign it, then the request is invalid, naming the key
    with pytest.raises(ClientError) as raised:
        iot.create_certificate_from_csr(certificateSigningRequest=csr_pem("weak", key))
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "2048" in raised.value.response["Error"]["Message"]


def test_register_ca_certificate_refuses_what_is_not_a_certificate(iot):
    # when the CA certificate is not PEM, then AWS's validation error (not a server error)
    with pytest.raises(ClientError) as raised:
        iot.register_ca_certificate(caCertificate="not a certificate", setAsActive=True)
    assert raised.value.response["Error"]["Code"] == "CertificateValidationException"
