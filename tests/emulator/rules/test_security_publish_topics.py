"""Topic rules for iot-data Publish and the republish action: the same as for an MQTT PUBLISH.

boto3 iot-data Publish against the emulator's endpoint, topic rules created with boto3, and a
paho-mqtt subscriber over mutual TLS that must see none of the refused messages.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError
from support.rules import create_rule
from support.waiting import wait_until


@pytest.mark.parametrize(
    "topic, why",
    [
        ("a/#", "wildcard"),
        ("a/+/b", "wildcard"),
        ("a/\x00/b", "null character"),
        ("a/" + "x" * 255, "257 bytes"),
        ("/".join("abcdefghi"), "8 forward slashes"),
        ("$aws/events/presence/connected/victim", "reserved"),
        ("$aws/things/t1/shadow/update/accepted", "reserved"),
    ],
    ids=["hash", "plus", "nul", "257-bytes", "8-slashes", "presence", "shadow-accepted"],
)
def test_iot_data_publish_refuses_what_mqtt_refuses(rules, aws, device_client, unique, topic, why):
    # given a subscriber to everything (only non-$ topics match '#'; '$aws/#' for the rest)
    sub = device_client(f"watch-{unique}")
    sub.subscribe([("#", 0), ("$aws/#", 0)])
    time.sleep(0.3)
    # when the topic is published to with iot-data Publish
    with pytest.raises(ClientError) as caught:
        aws("iot-data").publish(
            topic=topic, qos=0, payload=json.dumps({"marker": f"m-{unique}"}).encode()
        )
    # then IoT answers InvalidRequestException (HTTP 400) naming the problem
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert why in error["Error"]["Message"]
    # and nothing was delivered
    time.sleep(0.3)
    assert [m.topic for m in sub.messages if f"m-{unique}".encode() in m.payload] == []


def test_iot_data_publish_to_a_shadow_update_topic_is_accepted(rules, aws, device_client, unique):
    # given a subscriber to a thing's shadow update topic
    sub = device_client(f"shadow-{unique}")
    topic = f"$aws/things/t-{unique}/shadow/update"
    sub.subscribe(topic, 1)
    time.sleep(0.3)
    # when an application publishes to it over HTTP
    aws("iot-data").publish(topic=topic, qos=1, payload=b'{"state": {}}')
    # then the subscriber gets it
    assert wait_until(lambda: [m.topic for m in sub.messages] == [topic])


def test_republish_to_a_payload_chosen_invalid_topic_goes_to_the_error_action(
    rules, aws, device_client, unique, role_arn
):
    # given a rule that republishes to a topic taken from the payload, with an errorAction
    # republishing to 'errors/<u>', and a subscriber to both the errors and everything else
    name = f"repub_target_{unique}"
    create_rule(
        aws("iot"),
        name,
        f"SELECT * FROM 'cmd/{unique}'",
        [{"republish": {"topic": "${target}", "qos": 1, "roleArn": role_arn}}],
        {"republish": {"topic": f"errors/{unique}", "qos": 1, "roleArn": role_arn}},
    )
    sub = device_client(f"repub-{unique}")
    sub.subscribe([("#", 1), ("$aws/#", 1)])
    time.sleep(0.3)
    targets = ["#", "/".join(["deep"] * 9), "$aws/events/presence/connected/victim", f"ok/{unique}"]
    # when messages choose those targets
    for target in targets:
        aws("iot-data").publish(
            topic=f"cmd/{unique}", qos=1, payload=json.dumps({"target": target}).encode()
        )
    assert rules.drain(10)
    # then the valid target got its message, and each invalid one a document on the errors topic
    assert wait_until(lambda: len([m for m in sub.messages if m.topic == f"errors/{unique}"]) == 3)
    assert wait_until(lambda: f"ok/{unique}" in [m.topic for m in sub.messages])
    delivered = [m.topic for m in sub.messages if b"target" in m.payload]
    assert [t for t in delivered if t not in (f"cmd/{unique}", f"errors/{unique}")] == [
        f"ok/{unique}"
    ]
    documents = [json.loads(m.payload) for m in sub.messages if m.topic == f"errors/{unique}"]
    refused = sorted(
        json.loads(base64.b64decode(d["base64OriginalPayload"]))["target"] for d in documents
    )
    assert refused == sorted(targets[:3])
    for document in documents:
        (failure,) = document["failures"]
        assert failure["failedAction"] == "RepublishAction"
        assert "Failed to republish" in failure["errorMessage"]
