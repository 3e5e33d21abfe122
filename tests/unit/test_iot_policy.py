"""IoT policy evaluation (emulator/iot/policy.py), table-driven, with the AWS IoT developer
guide's own examples ("pub-sub-policy", "basic-policy-variables", "thing-policy-examples")."""

from __future__ import annotations

import json

import pytest

from emulator.iot.policy import CompiledPolicy, PolicyDocumentError, evaluate, explain

ARN = "arn:aws:iot:us-east-1:123456789012"


def doc(*statements: dict, version: str = "2012-10-17") -> str:
    return json.dumps({"Version": version, "Statement": list(statements)})


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(documents, action, resource, context=None):
    policies = [(f"P{i}", CompiledPolicy.parse(d)) for i, d in enumerate(documents)]
    return evaluate(policies, action, resource, context or {"iot:ClientId": "client1"})


CASES = [
    # (name, documents, action, resource, context, allowed)
    (
        "exact topic",
        [doc(allow("iot:Publish", f"{ARN}:topic/some_specific_topic"))],
        "iot:Publish",
        f"{ARN}:topic/some_specific_topic",
        None,
        True,
    ),
    (
        "other topic is not allowed",
        [doc(allow("iot:Publish", f"{ARN}:topic/some_specific_topic"))],
        "iot:Publish",
        f"{ARN}:topic/some_other_topic",
        None,
        False,
    ),
    (
        "* spans topic levels",
        [doc(allow("iot:Publish", f"{ARN}:topic/telemetry/*"))],
        "iot:Publish",
        f"{ARN}:topic/telemetry/dev1/temperature/c",
        None,
        True,
    ),
    (
        "* after a level does not match the parent level itself",
        [doc(allow("iot:Publish", f"{ARN}:topic/telemetry/*"))],
        "iot:Publish",
        f"{ARN}:topic/telemetry",
        None,
        False,
    ),
    (
        "? matches exactly one character",
        [doc(allow("iot:Publish", f"{ARN}:topic/dev?"))],
        "iot:Publish",
        f"{ARN}:topic/dev7",
        None,
        True,
    ),
    (
        "? does not match two characters",
        [doc(allow("iot:Publish", f"{ARN}:topic/dev?"))],
        "iot:Publish",
        f"{ARN}:topic/dev77",
        None,
        False,
    ),
    (
        "MQTT + in a policy is a literal character (topicfilter)",
        [doc(allow("iot:Subscribe", f"{ARN}:topicfilter/sensors/+/temp"))],
        "iot:Subscribe",
        f"{ARN}:topicfilter/sensors/+/temp",
        None,
        True,
    ),
    (
        "MQTT + in a policy does not match a concrete level",
        [doc(allow("iot:Subscribe", f"{ARN}:topicfilter/sensors/+/temp"))],
        "iot:Subscribe",
        f"{ARN}:topicfilter/sensors/dev1/temp",
        None,
        False,
    ),
    (
        "MQTT # in a policy does not match sub-topics",
        [doc(allow("iot:Publish", f"{ARN}:topic/sensors/#"))],
        "iot:Publish",
        f"{ARN}:topic/sensors/dev1",
        None,
        False,
    ),
    (
        "topic resource does not grant topicfilter",
        [doc(allow("iot:Subscribe", f"{ARN}:topic/sensors"))],
        "iot:Subscribe",
        f"{ARN}:topicfilter/sensors",
        None,
        False,
    ),
    (
        "iot:* action wildcard",
        [doc(allow("iot:*", "*"))],
        "iot:Receive",
        f"{ARN}:topic/x",
        None,
        True,
    ),
    (
        "iot:Pub* action prefix",
        [doc(allow("iot:Pub*", "*"))],
        "iot:Publish",
        f"{ARN}:topic/x",
        None,
        True,
    ),
    (
        "iot:Pub* does not grant Subscribe",
        [doc(allow("iot:Pub*", "*"))],
        "iot:Subscribe",
        f"{ARN}:topicfilter/x",
        None,
        False,
    ),
    (
        "action names are case insensitive",
        [doc(allow("IOT:publish", "*"))],
        "iot:Publish",
        f"{ARN}:topic/x",
        None,
        True,
    ),
    (
        "resources are case sensitive",
        [doc(allow("iot:Publish", f"{ARN}:topic/Sensors"))],
        "iot:Publish",
        f"{ARN}:topic/sensors",
        None,
        False,
    ),
    (
        "action and resource lists",
        [doc(allow(["iot:Connect", "iot:Publish"], [f"{ARN}:topic/a", f"{ARN}:topic/b"]))],
        "iot:Publish",
        f"{ARN}:topic/b",
        None,
        True,
    ),
    (
        "another account's ARN does not match",
        [doc(allow("iot:Publish", "arn:aws:iot:us-east-1:999999999999:topic/a"))],
        "iot:Publish",
        f"{ARN}:topic/a",
        None,
        False,
    ),
    (
        "explicit Deny beats Allow in the same policy",
        [doc(allow("iot:Publish", f"{ARN}:topic/*"), deny("iot:Publish", f"{ARN}:topic/admin/*"))],
        "iot:Publish",
        f"{ARN}:topic/admin/reboot",
        None,
        False,
    ),
    (
        "explicit Deny in another policy beats Allow",
        [doc(allow("iot:*", "*")), doc(deny("iot:Publish", f"{ARN}:topic/admin/*"))],
        "iot:Publish",
        f"{ARN}:topic/admin/reboot",
        None,
        False,
    ),
    (
        "Deny elsewhere leaves other resources allowed",
        [doc(allow("iot:*", "*")), doc(deny("iot:Publish", f"{ARN}:topic/admin/*"))],
        "iot:Publish",
        f"{ARN}:topic/data",
        None,
        True,
    ),
    (
        "NotAction allows every other action",
        [doc({"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"})],
        "iot:Subscribe",
        f"{ARN}:topicfilter/a",
        None,
        True,
    ),
    (
        "NotAction excludes its action",
        [doc({"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"})],
        "iot:Publish",
        f"{ARN}:topic/a",
        None,
        False,
    ),
    (
        "NotResource in a Deny protects all but one topic",
        [
            doc(
                allow("iot:Publish", "*"),
                {"Effect": "Deny", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/ok"},
            )
        ],
        "iot:Publish",
        f"{ARN}:topic/other",
        None,
        False,
    ),
    (
        "NotResource with an unresolved variable does not apply",
        [
            doc(
                {
                    "Effect": "Allow",
                    "Action": "iot:Publish",
                    "NotResource": f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}",
                }
            )
        ],
        "iot:Publish",
        f"{ARN}:topic/anything",
        {"iot:ClientId": "c"},
        False,
    ),
    # basic-policy-variables
    (
        "${iot:ClientId} in client ARN",
        [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"))],
        "iot:Connect",
        f"{ARN}:client/client1",
        {"iot:ClientId": "client1"},
        True,
    ),
    (
        "${iot:ClientId} is the connecting client's own id only",
        [doc(allow("iot:Publish", f"{ARN}:topic/my/topic/${{iot:ClientId}}"))],
        "iot:Publish",
        f"{ARN}:topic/my/topic/client2",
        {"iot:ClientId": "client1"},
        False,
    ),
    (
        "a client id of + is literal text: it grants the filter my/+/topic (the doc's warning)",
        [doc(allow("iot:Subscribe", f"{ARN}:topicfilter/my/${{iot:ClientId}}/topic"))],
        "iot:Subscribe",
        f"{ARN}:topicfilter/my/+/topic",
        {"iot:ClientId": "+"},
        True,
    ),
    (
        "a client id of * is not a wildcard",
        [doc(allow("iot:Publish", f"{ARN}:topic/d/${{iot:ClientId}}"))],
        "iot:Publish",
        f"{ARN}:topic/d/anything",
        {"iot:ClientId": "*"},
        False,
    ),
    (
        "Version 2008-10-17 does not substitute variables",
        [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"), version="2008-10-17")],
        "iot:Connect",
        f"{ARN}:client/client1",
        {"iot:ClientId": "client1"},
        False,
    ),
    (
        "${*} is a literal asterisk",
        [doc(allow("iot:Publish", f"{ARN}:topic/star${{*}}"))],
        "iot:Publish",
        f"{ARN}:topic/star*",
        None,
        True,
    ),
    (
        "${*} does not act as a wildcard",
        [doc(allow("iot:Publish", f"{ARN}:topic/star${{*}}"))],
        "iot:Publish",
        f"{ARN}:topic/starry",
        None,
        False,
    ),
    # thing-policy-variables
    (
        "thing name variable resolves when the thing is attached",
        [doc(allow("iot:Publish", f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*"))],
        "iot:Publish",
        f"{ARN}:topic/things/dev1/data",
        {"iot:ClientId": "dev1", "iot:Connection.Thing.ThingName": "dev1"},
        True,
    ),
    (
        "unresolved thing variable: the Allow does not apply",
        [doc(allow("iot:Publish", f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*"))],
        "iot:Publish",
        f"{ARN}:topic/things/dev1/data",
        {"iot:ClientId": "dev1"},
        False,
    ),
    (
        "unresolved variable in a Deny: the Deny does not apply either",
        [
            doc(allow("iot:Publish", "*")),
            doc(deny("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}")),
        ],
        "iot:Publish",
        f"{ARN}:topic/dev1",
        {"iot:ClientId": "dev1"},
        True,
    ),
    (
        "thing attribute variable (thing-policy-examples)",
        [doc(allow("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.Attributes[room]}}/*"))],
        "iot:Publish",
        f"{ARN}:topic/kitchen/temp",
        {"iot:Connection.Thing.Attributes[room]": "kitchen"},
        True,
    ),
    (
        "certificate subject variable",
        [doc(allow("iot:Publish", f"{ARN}:topic/${{iot:Certificate.Subject.CommonName}}"))],
        "iot:Publish",
        f"{ARN}:topic/bulb1",
        {"iot:Certificate.Subject.CommonName": "bulb1"},
        True,
    ),
    # Conditions (thing-policy-examples)
    (
        "Bool IsAttached true",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"Bool": {"iot:Connection.Thing.IsAttached": ["true"]}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/dev1",
        {"iot:Connection.Thing.IsAttached": "true"},
        True,
    ),
    (
        "Bool IsAttached false denies",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/dev1",
        {"iot:Connection.Thing.IsAttached": "false"},
        False,
    ),
    (
        "Bool with a JSON boolean",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"Bool": {"iot:Connection.Thing.IsAttached": True}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/dev1",
        {"iot:Connection.Thing.IsAttached": "true"},
        True,
    ),
    (
        "StringEquals on type and attribute, all keys must hold",
        [
            doc(
                allow(
                    "iot:Publish",
                    f"{ARN}:topic/device/stats",
                    Condition={
                        "StringEquals": {
                            "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
                            "iot:Connection.Thing.ThingTypeName": "Thing_Type_Name",
                        },
                        "Bool": {"iot:Connection.Thing.IsAttached": "true"},
                    },
                )
            )
        ],
        "iot:Publish",
        f"{ARN}:topic/device/stats",
        {
            "iot:Connection.Thing.Attributes[attributeName]": "attributeValue",
            "iot:Connection.Thing.ThingTypeName": "Other_Type",
            "iot:Connection.Thing.IsAttached": "true",
        },
        False,
    ),
    (
        "StringLike with a wildcard",
        [doc(allow("iot:Connect", "*", Condition={"StringLike": {"iot:ClientId": "sensor-*"}}))],
        "iot:Connect",
        f"{ARN}:client/sensor-12",
        {"iot:ClientId": "sensor-12"},
        True,
    ),
    (
        "StringNotEquals with a missing key holds (IAM)",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"StringNotEquals": {"iot:Connection.Thing.ThingTypeName": "x"}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/c",
        {"iot:ClientId": "c"},
        True,
    ),
    (
        "StringEquals with a missing key fails",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"StringEquals": {"iot:Connection.Thing.ThingTypeName": "x"}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/c",
        {"iot:ClientId": "c"},
        False,
    ),
    (
        "...IfExists with a missing key holds",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"StringEqualsIfExists": {"iot:Connection.Thing.ThingTypeName": "x"}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/c",
        {"iot:ClientId": "c"},
        True,
    ),
    (
        "Null true: key absent",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={"Null": {"iot:Connection.Thing.ThingName": "true"}},
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/c",
        {"iot:ClientId": "c"},
        True,
    ),
    (
        "IpAddress in range",
        [doc(allow("iot:Connect", "*", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))],
        "iot:Connect",
        f"{ARN}:client/c",
        {"aws:SourceIp": "127.0.0.1"},
        True,
    ),
    (
        "IpAddress out of range (basic-policy-variables example)",
        [
            doc(
                allow(
                    "iot:Publish", "*", Condition={"IpAddress": {"aws:SourceIp": "123.45.167.89"}}
                )
            )
        ],
        "iot:Publish",
        f"{ARN}:topic/my/topic/client1",
        {"aws:SourceIp": "127.0.0.1"},
        False,
    ),
    (
        "condition value with a variable",
        [
            doc(
                allow(
                    "iot:Connect",
                    "*",
                    Condition={
                        "StringEquals": {"iot:Connection.Thing.ThingName": "${iot:ClientId}"}
                    },
                )
            )
        ],
        "iot:Connect",
        f"{ARN}:client/dev1",
        {"iot:ClientId": "dev1", "iot:Connection.Thing.ThingName": "dev1"},
        True,
    ),
]


# The project's own device policy (template.yaml, IotPolicy): Allow topic/T/* minus Deny
# topic/T/*/* is exactly what the rule's FROM 'T/+' reads.
TEMPLATE_POLICY = doc(
    allow("iot:Connect", f"{ARN}:client/stack-device"),
    allow("iot:Publish", f"{ARN}:topic/telemetry/*"),
    deny("iot:Publish", f"{ARN}:topic/telemetry/*/*"),
    allow("iot:Subscribe", f"{ARN}:topicfilter/telemetry/*"),
    allow("iot:Receive", f"{ARN}:topic/telemetry/*"),
)
CASES += [
    (f"template policy: {action} {target}", [TEMPLATE_POLICY], action, f"{ARN}:{target}", None, ok)
    for action, target, ok in [
        ("iot:Connect", "client/stack-device", True),
        ("iot:Connect", "client/someone-else", False),
        ("iot:Publish", "topic/telemetry/dev1", True),
        ("iot:Publish", "topic/telemetry/", True),  # `T/+` matches an empty level too
        ("iot:Publish", "topic/telemetry", False),
        ("iot:Publish", "topic/telemetry/a/b", False),
        ("iot:Subscribe", "topicfilter/telemetry/+", True),
        ("iot:Subscribe", "topicfilter/#", False),
        ("iot:Receive", "topic/telemetry/dev1", True),
        ("iot:RetainPublish", "topic/telemetry/dev1", False),
    ]
]


@pytest.mark.parametrize(
    ("documents", "action", "resource", "context", "allowed"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision(documents, action, resource, context, allowed):
    # given the attached policies, when the action is evaluated on the resource
    result = decide(documents, action, resource, context)
    # then the decision is AWS's
    assert result.allowed is allowed, result.reason


def test_reasons_name_the_policy_and_statement():
    # given an Allow and a Deny statement
    documents = [
        doc(allow("iot:*", "*"), {**deny("iot:Publish", f"{ARN}:topic/x"), "Sid": "NoX"}),
    ]
    # when one is denied, one allowed, and one action has nothing allowing it
    denied = decide(documents, "iot:Publish", f"{ARN}:topic/x")
    allowed = decide(documents, "iot:Publish", f"{ARN}:topic/y")
    nothing = decide([doc(allow("iot:Connect", "*"))], "iot:Publish", f"{ARN}:topic/y")
    # then the reasons say which statement decided, or what was missing
    assert denied.reason == "explicit Deny in policy P0 (statement 1, Sid NoX)"
    assert (denied.policy_name, denied.statement) == ("P0", 1)
    assert allowed.reason == "allowed by policy P0 (statement 0)"
    assert nothing.reason == f"no attached policy allows iot:Publish on {ARN}:topic/y"
    assert nothing.policy_name is None


def test_an_allow_on_a_key_the_emulator_never_sets_does_not_apply_and_is_reported():
    # given an Allow whose condition reads a key the emulator cannot give a value to
    documents = [doc(allow("iot:Connect", "*", Condition={"DateLessThan": {"aws:X": "1"}}))]
    # when it is evaluated
    result = decide(documents, "iot:Connect", f"{ARN}:client/c")
    # then it does not allow, and the reason names the key
    assert not result.allowed
    assert "the emulator cannot evaluate aws:X" in result.reason


def test_a_statement_object_instead_of_a_list_is_accepted():
    # given a Statement given as one object (allowed by the policy grammar)
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": allow("iot:Connect", f"{ARN}:client/c")}
    )
    # then it compiles and applies
    assert evaluate([("P", CompiledPolicy.parse(document))], "iot:Connect", f"{ARN}:client/c", {})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"Version": "2012-10-17"}), "no Statement"),
        (json.dumps({"Version": "2001-01-01", "Statement": []}), "Version"),
        (doc({"Effect": "Maybe", "Action": "iot:*", "Resource": "*"}), "Effect"),
        (doc({"Effect": "Allow", "Resource": "*"}), "Action or NotAction"),
        (doc({"Effect": "Allow", "Action": "iot:*"}), "Resource or NotResource"),
        (doc({"Effect": "Allow", "Action": [], "Resource": "*"}), "Action must be"),
        (doc({"Effect": "Allow", "Action": "iot:*", "Resource": 3}), "Resource must be"),
    ],
)
def test_malformed_documents_are_rejected(document, message):
    # when a malformed document is compiled, then the error says what is wrong
    with pytest.raises(PolicyDocumentError, match=message):
        CompiledPolicy.parse(document)


def test_explain_reports_every_policys_verdict_and_missing_values():
    # given one allowing, one denying and one unrelated policy, and a thing variable
    policies = [
        ("A", CompiledPolicy.parse(doc(allow("iot:Publish", f"{ARN}:topic/*")))),
        ("D", CompiledPolicy.parse(doc(deny("iot:Publish", f"{ARN}:topic/admin")))),
        (
            "T",
            CompiledPolicy.parse(
                doc(allow("iot:Publish", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}"))
            ),
        ),
    ]
    # when a publish to the denied topic is explained
    verdict = explain(policies, "iot:Publish", f"{ARN}:topic/admin", {"iot:ClientId": "c"})
    # then each policy's part and the unresolved variable are reported
    assert verdict.allowing == ("A",)
    assert verdict.denying == ("D",)
    assert verdict.silent == ("T",)
    assert verdict.missing_context == ("iot:Connection.Thing.ThingName",)
    assert verdict.decision == "EXPLICIT_DENY"
