"""A device set up as a user sets one up with boto3: a thing, an ACTIVE certificate with its
keys from CreateKeysAndCertificate, an IoT policy attached to the certificate, the certificate
attached to the thing, and the PEM files written (the key readable by its owner only)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.certs import write_pair

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


@dataclass
class Device:
    client_id: str
    certificate_id: str
    certificate_arn: str
    cert_path: Path
    key_path: Path
    ca_path: Path


def register_device(
    iot: Any,
    thing: str,
    policy_name: str,
    folder: Path,
    ca_path: Path,
    policy: dict[str, Any] | None = None,
) -> Device:
    """Register `thing` with a new certificate under policy `policy_name` (allow-all when no
    `policy` document is given); its files go to `folder`."""
    keys = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName=policy_name, policyDocument=json.dumps(policy or ALLOW_ALL))
    iot.attach_policy(policyName=policy_name, target=keys["certificateArn"])
    iot.create_thing(thingName=thing)
    iot.attach_thing_principal(thingName=thing, principal=keys["certificateArn"])
    cert_path, key_path = write_pair(
        folder, thing, keys["certificatePem"], keys["keyPair"]["PrivateKey"]
    )
    return Device(
        thing, keys["certificateId"], keys["certificateArn"], cert_path, key_path, Path(ca_path)
    )
