"""The local certificate authority on disk: created once, reused after a restart, keys private,
and a server certificate that devices verifying "localhost" or 127.0.0.1 accept."""

from __future__ import annotations

import ipaddress
import stat

import pytest
from cryptography import x509

from emulator.iot.ca import CertificateAuthority, new_rsa_key, private_key_pem, write_private


def test_root_ca_is_reused_across_restarts(tmp_path):
    # given a CA created in a data directory
    first = CertificateAuthority(tmp_path / "iot")
    # when the emulator starts again on the same directory
    second = CertificateAuthority(tmp_path / "iot")
    # then devices' root-ca.pem stays valid: same root, same server certificate
    assert second.root_pem == first.root_pem
    assert second.server_cert_path.read_bytes() == first.server_cert_path.read_bytes()


def test_private_keys_are_owner_only(tmp_path):
    ca = CertificateAuthority(tmp_path / "iot")
    keys = sorted(p.name for p in ca.directory.glob("*.key"))
    assert keys == ["root-ca.key", "server.key"]
    for name in keys:
        assert stat.S_IMODE((ca.directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(ca.directory.stat().st_mode) == 0o700


def test_server_certificate_names_localhost_and_chains_to_the_root(tmp_path):
    ca = CertificateAuthority(tmp_path / "iot")
    cert = x509.load_pem_x509_certificate(ca.server_cert_path.read_bytes())
    cert.verify_directly_issued_by(ca.root_certificate)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)


def test_a_root_ca_that_does_not_match_its_key_is_a_clear_error(tmp_path):
    # given a root CA whose key file was replaced
    ca = CertificateAuthority(tmp_path / "iot")
    other = new_rsa_key()

    write_private(ca.directory / "root-ca.key", private_key_pem(other).encode())
    # when the emulator starts, then it says what to do instead of issuing unusable certs
    with pytest.raises(RuntimeError, match="remove both"):
        CertificateAuthority(tmp_path / "iot")


def test_only_the_roots_own_certificates_count_as_issued_by_it(tmp_path):
    ca = CertificateAuthority(tmp_path / "iot")
    stranger = CertificateAuthority(tmp_path / "other")
    key = new_rsa_key()
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "d")])
    ours = ca.issue_device_certificate(key.public_key(), subject)
    theirs = stranger.issue_device_certificate(key.public_key(), subject)
    # the other CA has the same name but another key: its certificate is not ours
    assert ca.issued_by_root(ours)
    assert not ca.issued_by_root(theirs)
