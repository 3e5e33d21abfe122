"""The multivalued certificate keys (`iot:Certificate.<group>.<attribute>.List`) that
emulator/iot/core.py derives from a client certificate, evaluated by emulator/iot/policy.py.
https://docs.aws.amazon.com/iot/latest/developerguide/cert-policy-variables.html"""

from __future__ import annotations

import datetime
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from emulator.iot.core import certificate_variables
from emulator.iot.policy import CompiledPolicy, evaluate

TOPIC = "arn:aws:iot:us-east-1:123456789012:topic/t"
UNITS = "iot:Certificate.Subject.OrganizationalUnit.List"


def certificate(*units: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "sensor")]
        + [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units]
    )
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def publish_allowed(context: dict, topic: str = TOPIC, **statement: object) -> bool:
    """Whether one Allow of iot:Publish (Resource "*" unless `statement` says) allows."""
    allow = {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*", **statement}
    compiled = CompiledPolicy.parse(json.dumps({"Version": "2012-10-17", "Statement": [allow]}))
    return evaluate([("P", compiled)], "iot:Publish", topic, context).allowed


def allowed(operator: str, values: list[str], context: dict) -> bool:
    return publish_allowed(context, Condition={operator: {UNITS: values}})


def test_every_value_of_a_multivalued_attribute_is_listed():
    variables = certificate_variables(certificate("Plant-A", "Line-3"))
    # the plain variable is the first value; `.List` holds them all
    assert variables["iot:Certificate.Subject.OrganizationalUnit"] == "Plant-A"
    assert variables[UNITS] == ("Plant-A", "Line-3")
    assert variables["iot:Certificate.Subject.CommonName.List"] == ("sensor",)


def test_set_operators_see_every_value():
    context = dict(certificate_variables(certificate("Plant-A", "Line-3")))
    assert allowed("ForAnyValue:StringEquals", ["Line-3"], context)
    assert not allowed("ForAllValues:StringEquals", ["Line-3"], context)
    assert allowed("ForAllValues:StringLike", ["Plant-*", "Line-*"], context)


def test_a_list_never_substitutes_a_variable():
    # `${...List}` has several values, so it names no single resource: the Allow does not apply
    context = dict(certificate_variables(certificate("Plant-A")))
    resource = "arn:aws:iot:*:*:topic/${" + UNITS + "}"
    topic = "arn:aws:iot:us-east-1:123456789012:topic/('Plant-A',)"
    assert not publish_allowed(context, topic, Resource=resource)
