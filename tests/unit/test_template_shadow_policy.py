"""The device policy's shadow statements (template.yaml), decided by the emulator's IoT policy
evaluator: the device gets and updates its own classic shadow and hears the answers, and
nothing else of any shadow (no delete, no other thing, no named shadow)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_template import SAMPLE, load_template, parameter_defaults, resolve_sub

from emulator.iot.policy import CompiledPolicy, evaluate

THING = f"{SAMPLE['AWS::StackName']}-device"
ARN = f"arn:aws:iot:{SAMPLE['AWS::Region']}:{SAMPLE['AWS::AccountId']}"


@pytest.fixture(scope="module")
def device_policy() -> CompiledPolicy:
    template = load_template()
    names = dict(SAMPLE) | parameter_defaults(template) | {"IotThing": THING}
    document = template["Resources"]["IotPolicy"]["Properties"]["PolicyDocument"]
    return CompiledPolicy.parse(_resolved(document, names))


def _resolved(document: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The policy document as CloudFormation hands it to IoT: every Fn::Sub resolved."""
    statements = []
    for statement in document["Statement"]:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        statements.append(statement | {"Resource": [resolve_sub(r, names) for r in resources]})
    return document | {"Statement": statements}


def allowed(policy: CompiledPolicy, action: str, kind: str, topic: str) -> bool:
    context = {"iot:ClientId": THING, "iot:Connection.Thing.ThingName": THING}
    return evaluate([("device", policy)], action, f"{ARN}:{kind}/{topic}", context).allowed


OWN = f"$aws/things/{THING}/shadow"


@pytest.mark.parametrize(
    ("action", "kind", "topic", "expected"),
    [
        ("iot:Publish", "topic", f"{OWN}/update", True),
        ("iot:Publish", "topic", f"{OWN}/get", True),
        ("iot:Publish", "topic", f"{OWN}/delete", False),  # the notebook deletes over HTTPS
        ("iot:Publish", "topic", f"{OWN}/update/accepted", False),  # IoT Core's to publish
        ("iot:Publish", "topic", f"$aws/things/{THING}-2/shadow/update", False),
        ("iot:Publish", "topic", f"{OWN}/name/config/update", False),
        ("iot:Subscribe", "topicfilter", f"{OWN}/update/delta", True),
        ("iot:Subscribe", "topicfilter", f"{OWN}/update/accepted", True),
        ("iot:Subscribe", "topicfilter", f"{OWN}/get/rejected", True),
        ("iot:Subscribe", "topicfilter", f"{OWN}/delete/accepted", False),
        ("iot:Subscribe", "topicfilter", "$aws/things/+/shadow/update/delta", False),
        ("iot:Receive", "topic", f"{OWN}/update/delta", True),
        ("iot:Receive", "topic", f"{OWN}/get/accepted", True),
        ("iot:Receive", "topic", f"$aws/things/{THING}-2/shadow/update/delta", False),
    ],
)
def test_the_device_reaches_its_own_classic_shadow_only(
    device_policy, action, kind, topic, expected
):
    assert allowed(device_policy, action, kind, topic) is expected


def test_the_device_policy_fits_iot_cores_size_limit():
    # "policyDocument ... Maximum length of 2048, excluding whitespace" (API_CreatePolicy.html),
    # with a 40-character stack name in the longest region name of the partition
    template = load_template()
    stack = "s" * 40
    names = dict(SAMPLE) | parameter_defaults(template)
    names |= {
        "AWS::StackName": stack,
        "AWS::Region": "ap-southeast-5",
        "IotThing": f"{stack}-device",
    }
    document = template["Resources"]["IotPolicy"]["Properties"]["PolicyDocument"]
    text = json.dumps(_resolved(document, names))
    assert len("".join(text.split())) <= 2048
