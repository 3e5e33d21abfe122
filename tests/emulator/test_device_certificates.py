"""pipeline.certificates against the emulator's IoT API: files, modes, ids and attachments."""

from __future__ import annotations

import json
import stat

from pipeline import certificates


def make_thing_and_policy(aws, unique):
    iot = aws("iot")
    thing, policy = f"dev-{unique}", f"policy-{unique}"
    iot.create_thing(thingName=thing)
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
    }
    iot.create_policy(policyName=policy, policyDocument=json.dumps(document))
    return iot, thing, policy


def test_csr_path_keeps_the_key_private_and_attaches_policy_and_thing(aws, unique, tmp_path):
    iot, thing, policy = make_thing_and_policy(aws, unique)
    # when a certificate is made from a local key and CSR
    device = certificates.create_from_csr(iot, thing, policy, secrets_dir=tmp_path)
    # then the key is readable by its owner only, and never by anyone else
    assert stat.S_IMODE(device.private_key_path.stat().st_mode) == 0o600
    # and IoT Core's id is the SHA-256 of the certificate's DER
    assert device.certificate_id == certificates.certificate_id_of(
        device.certificate_path.read_bytes()
    )
    # and the policy and the thing are attached, the certificate ACTIVE
    attached = iot.list_attached_policies(target=device.certificate_arn)["policies"]
    assert [p["policyName"] for p in attached] == [policy]
    assert iot.list_principal_things(principal=device.certificate_arn)["things"] == [thing]
    assert certificates.load_device(iot, thing, secrets_dir=tmp_path).status == "ACTIVE"


def test_teardown_helpers_detach_delete_and_forget(aws, unique, tmp_path):
    iot, thing, policy = make_thing_and_policy(aws, unique)
    kept = certificates.create_from_csr(iot, thing, policy, secrets_dir=tmp_path)
    other = certificates.create_keys_and_certificate(iot, thing, policy, secrets_dir=tmp_path)
    assert stat.S_IMODE(other.private_key_path.stat().st_mode) == 0o600
    # when one certificate is deleted with its files
    certificates.delete_certificate(iot, other)
    assert not other.private_key_path.exists()
    # and then every certificate of the thing
    deleted = certificates.delete_thing_certificates(iot, thing)
    # then the thing has no principal left and can be deleted, and the local files are gone
    assert deleted == [kept.certificate_id]
    iot.delete_thing(thingName=thing)
    assert certificates.forget_local(thing, secrets_dir=tmp_path) == 2
    assert not (tmp_path / thing).exists()
