"""A device's own shadow only: the developer guide's example shadow policy, written with
`${iot:Connection.Thing.ThingName}`, enforced for real clients (paho-mqtt 3.1.1 and 5,
awsiotsdk). Over MQTT the shadow is reached through iot:Publish / iot:Subscribe / iot:Receive
on the reserved topics; a request the policy denies never reaches the shadow.

Example policies: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
Thing policy variables: https://docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html
"""

from __future__ import annotations

import json

import pytest
from awscrt import mqtt
from awsiot import iotshadow
from iam_roles import policy, statement
from support.shadow_clients import sdk_device
from support.waiting import wait_until

THING = "${iot:Connection.Thing.ThingName}"
ANSWERS = ("update/accepted", "update/rejected", "update/delta", "get/accepted", "get/rejected")


def shadow_policy(emulator, subscribe_thing: str = THING) -> dict:
    """The guide's example: connect as the thing, get/update its own shadow, and subscribe to
    and receive the answers (`subscribe_thing` widens the Subscribe statement only)."""
    arn = f"arn:aws:iot:{emulator.region}:{emulator.account_id}"
    shadow = f"{arn}:topic/$aws/things/{THING}/shadow"
    answers = [f"{arn}:topicfilter/$aws/things/{subscribe_thing}/shadow/{a}" for a in ANSWERS]
    return policy(
        statement("Allow", "iot:Connect", f"{arn}:client/{THING}"),
        statement("Allow", "iot:Publish", [f"{shadow}/update", f"{shadow}/get"]),
        statement("Allow", "iot:Subscribe", answers),
        statement("Allow", "iot:Receive", [f"{shadow}/{a}" for a in ANSWERS]),
    )


def shadow_exists(aws, thing: str) -> bool:
    data = aws("iot-data")
    try:
        data.get_thing_shadow(thingName=thing)
    except data.exceptions.ResourceNotFoundException:
        return False
    return True


def update_body(value: int) -> str:
    return json.dumps({"state": {"reported": {"v": value}}})


def test_the_sdk_device_updates_and_reads_its_own_shadow(iot_emulator, make_device):
    # given a device whose only policy is the guide's example, connected with awsiotsdk
    registered = make_device(shadow_policy(iot_emulator))
    thing = registered.client_id
    device = sdk_device(iot_emulator.mqtt_port, registered)
    try:
        client = iotshadow.IotShadowClient(device.connection)
        qos = mqtt.QoS.AT_LEAST_ONCE
        got = []
        future, _ = client.subscribe_to_get_shadow_accepted(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing), qos, got.append
        )
        assert future.result(10) == qos
        # when it updates and then gets its shadow
        request = iotshadow.UpdateShadowRequest(
            thing_name=thing, state=iotshadow.ShadowState(reported={"v": 1})
        )
        client.publish_update_shadow(request, qos).result(10)
        client.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing), qos).result(10)
        # then the answer reached it through the policy's Receive statement
        assert wait_until(lambda: got)
        assert got[0].state.reported == {"v": 1}
        # and a subscription to another thing's shadow is refused (SUBACK failure)
        other = iotshadow.UpdateShadowSubscriptionRequest(thing_name=f"{thing}-other")
        future, _ = client.subscribe_to_update_shadow_accepted(other, qos, got.append)
        with pytest.raises(mqtt.SubscribeError):
            future.result(10)
    finally:
        device.disconnect()


def test_mqtt5_publish_to_another_things_shadow_is_not_authorized_and_changes_nothing(
    iot_emulator, make_device, paho_client, aws, until
):
    # given a device with the guide's policy, connected with MQTT 5
    device = make_device(shadow_policy(iot_emulator))
    other = make_device(name=f"{device.client_id}-other")
    client = paho_client(device, iot_emulator.mqtt_port, version=5)
    # when it publishes an update to its own shadow and one to another thing's shadow
    own = client.publish(f"$aws/things/{device.client_id}/shadow/update", update_body(1), qos=1)
    theirs = client.publish(f"$aws/things/{other.client_id}/shadow/update", update_body(2), qos=1)
    # then the own update is acknowledged and the other is answered "Not authorized" (0x87)
    assert until(lambda: theirs.mid in client.seen.pubacks and own.mid in client.seen.pubacks)
    assert client.seen.pubacks[own.mid] == 0
    assert client.seen.pubacks[theirs.mid] == 0x87
    # and only the own shadow exists
    assert shadow_exists(aws, device.client_id)
    assert not shadow_exists(aws, other.client_id)


def test_mqtt311_delete_outside_the_policy_disconnects_and_keeps_the_shadow(
    iot_emulator, make_device, paho_client, aws, until
):
    # given a device with the guide's policy (get and update, no delete) and a shadow
    device = make_device(shadow_policy(iot_emulator))
    aws("iot-data").update_thing_shadow(thingName=device.client_id, payload=update_body(1))
    client = paho_client(device, iot_emulator.mqtt_port)
    # when it publishes to its shadow's delete topic
    client.publish(f"$aws/things/{device.client_id}/shadow/delete", b"", qos=1)
    # then IoT Core closes the connection (MQTT 3.1.1 has no negative PUBACK)
    assert until(lambda: client.seen.disconnects)
    # and the shadow is still there
    assert shadow_exists(aws, device.client_id)


def test_receive_is_checked_for_the_answers_iot_core_publishes(
    iot_emulator, make_device, paho_client, aws, until
):
    # given a device that may subscribe to every thing's update/accepted but receive only its own
    device = make_device(shadow_policy(iot_emulator, subscribe_thing="*"))
    other = f"{device.client_id}-other"
    client = paho_client(device, iot_emulator.mqtt_port)
    client.subscribe("$aws/things/+/shadow/update/accepted", 1)
    assert until(lambda: client.seen.subacks)
    assert list(client.seen.subacks.values())[0][0].value == 1
    # when applications update the other thing's shadow and then the device's own over HTTP
    data = aws("iot-data")
    data.update_thing_shadow(thingName=other, payload=update_body(1))
    data.update_thing_shadow(thingName=device.client_id, payload=update_body(2))
    # then only its own shadow's answer is delivered
    assert until(lambda: client.seen.messages)
    topics = [m.topic for m in client.seen.messages]
    assert topics == [f"$aws/things/{device.client_id}/shadow/update/accepted"]


def test_a_client_id_that_is_not_the_thing_name_gives_the_variable_no_value(
    iot_emulator, make_device, paho_client
):
    # given a certificate attached to its thing, with the guide's policy
    device = make_device(shadow_policy(iot_emulator))
    # when it connects with another client id, ${iot:Connection.Thing.ThingName} has no value
    client = paho_client(
        device, iot_emulator.mqtt_port, version=5, client_id=f"{device.client_id}-x"
    )
    # then the connection is refused: Not authorized (0x87)
    assert client.seen.connack is not None and client.seen.connack.value == 0x87


def test_the_shadow_policy_actions_do_not_authorise_mqtt_requests(
    iot_emulator, make_device, paho_client, aws, until
):
    # given a device allowed to connect and every shadow action on its thing, but no iot:Publish
    # ("iot:UpdateThingShadow" etc. are the HTTP API's: device-shadow-rest-api.html)
    arn = f"arn:aws:iot:{iot_emulator.region}:{iot_emulator.account_id}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/{THING}"},
            {
                "Effect": "Allow",
                "Action": [
                    "iot:UpdateThingShadow",
                    "iot:GetThingShadow",
                    "iot:DeleteThingShadow",
                    "iot:ListNamedShadowsForThing",
                ],
                "Resource": f"{arn}:thing/{THING}",
            },
        ],
    }
    device = make_device(policy)
    client = paho_client(device, iot_emulator.mqtt_port, version=5)
    # when it publishes an update to its own shadow over MQTT
    sent = client.publish(f"$aws/things/{device.client_id}/shadow/update", update_body(1), qos=1)
    # then the publish is not authorized (only iot:Publish is checked) and no shadow is made
    assert until(lambda: sent.mid in client.seen.pubacks)
    assert client.seen.pubacks[sent.mid] == 0x87
    assert not shadow_exists(aws, device.client_id)
