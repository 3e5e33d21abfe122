"""Device Shadow through AWS's own device client: awsiotsdk's `iotshadow.IotShadowClient` on an
awscrt MQTT connection over mutual TLS (the connection code notebook 03 uses), for the document
shapes of the developer guide, each error code a request over MQTT can get, and named shadows.

Documents: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html
Errors: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-error-messages.html
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from awscrt import mqtt
from awsiot import iotshadow
from support.shadow_clients import Answers, sdk_device

QOS = mqtt.QoS.AT_LEAST_ONCE


@pytest.fixture
def sdk_shadow(iot_emulator, make_device):
    """Factory: a registered device connected with awsiotsdk, and its IotShadowClient."""
    devices = []

    def connect(policy: dict | None = None):
        registered = make_device(policy)
        device = sdk_device(iot_emulator.mqtt_port, registered)
        devices.append(device)
        return registered.client_id, iotshadow.IotShadowClient(device.connection)

    yield connect
    for device in devices:
        device.disconnect()


def subscribe_classic(client, thing: str, answers: Answers) -> None:
    """Subscribe to every answer topic of the thing's classic shadow, and wait for the SUBACKs."""
    named = {"thing_name": thing}
    update = iotshadow.UpdateShadowSubscriptionRequest(**named)
    get = iotshadow.GetShadowSubscriptionRequest(**named)
    delete = iotshadow.DeleteShadowSubscriptionRequest(**named)
    futures = [
        client.subscribe_to_update_shadow_accepted(update, QOS, answers.callback("update/ok")),
        client.subscribe_to_update_shadow_rejected(update, QOS, answers.callback("update/no")),
        client.subscribe_to_get_shadow_accepted(get, QOS, answers.callback("get/ok")),
        client.subscribe_to_get_shadow_rejected(get, QOS, answers.callback("get/no")),
        client.subscribe_to_delete_shadow_accepted(delete, QOS, answers.callback("delete/ok")),
        client.subscribe_to_delete_shadow_rejected(delete, QOS, answers.callback("delete/no")),
        client.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(**named), QOS, answers.callback("delta")
        ),
        client.subscribe_to_shadow_updated_events(
            iotshadow.ShadowUpdatedSubscriptionRequest(**named), QOS, answers.callback("documents")
        ),
    ]
    for future, _topic in futures:
        assert future.result(10) == QOS


def update(client, thing: str, token: str, version: int | None = None, **sections) -> None:
    request = iotshadow.UpdateShadowRequest(
        thing_name=thing,
        client_token=token,
        state=iotshadow.ShadowState(**sections) if sections else None,
        version=version,
    )
    client.publish_update_shadow(request, QOS).result(10)


def test_the_guides_update_flow_reaches_the_sdk_as_its_typed_documents(sdk_shadow):
    # given a device subscribed to its classic shadow's answers
    thing, client = sdk_shadow()
    answers = Answers()
    subscribe_classic(client, thing, answers)
    # when it reports a color with an array value, and then a different color is desired
    update(client, thing, "t-1", reported={"color": "red", "ColorRGB": [255, 0, 0]})
    update(client, thing, "t-2", desired={"color": "green"})
    # then each update/accepted holds only what its request changed, with per-element metadata
    first, second = answers.wait("update/ok", 2)
    assert (first.client_token, first.version) == ("t-1", 1)
    assert first.state.reported == {"color": "red", "ColorRGB": [255, 0, 0]}
    assert first.state.desired is None
    rgb_meta = first.metadata.reported["ColorRGB"]
    assert len(rgb_meta) == 3 and all(set(m) == {"timestamp"} for m in rgb_meta)
    assert isinstance(first.timestamp, datetime)
    assert (second.client_token, second.version) == ("t-2", 2)
    assert second.state.desired == {"color": "green"} and second.state.reported is None
    # and the delta names only the attribute desired and reported disagree on
    (delta,) = answers.wait("delta")
    assert delta.state == {"color": "green"} and delta.version == 2
    assert set(delta.metadata) == {"color"}
    # and /documents carries the shadow before and after each update
    created, changed = answers.wait("documents", 2)
    assert created.previous is None and created.current.version == 1
    assert changed.previous.state.reported == {"color": "red", "ColorRGB": [255, 0, 0]}
    assert changed.current.state.desired == {"color": "green"}
    assert changed.current.version == 2 and changed.previous.version == 1
    assert answers.seen.get("update/no") is None


def test_get_shows_the_delta_null_deletes_and_delete_answers_the_version(sdk_shadow):
    # given a shadow with a nested reported object and a desired value it lacks
    thing, client = sdk_shadow()
    answers = Answers()
    subscribe_classic(client, thing, answers)
    update(client, thing, "r", reported={"light": {"on": True, "level": 40}, "fan": "low"})
    update(client, thing, "d", desired={"light": {"level": 80}})
    # when one reported attribute is deleted with null and the shadow is read
    update(client, thing, "n", reported={"fan": None})
    answers.wait("update/ok", 3)
    client.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing, client_token="g"), QOS)
    # then get/accepted holds desired, reported without the deleted key, and the nested delta
    (got,) = answers.wait("get/ok")
    assert got.client_token == "g" and got.version == 3
    assert got.state.reported == {"light": {"on": True, "level": 40}}
    assert got.state.desired == {"light": {"level": 80}}
    assert got.state.delta == {"light": {"level": 80}}
    assert set(got.metadata.reported) == {"light"}
    # when the shadow is deleted
    client.publish_delete_shadow(
        iotshadow.DeleteShadowRequest(thing_name=thing, client_token="x"), QOS
    ).result(10)
    # then delete/accepted gives the deleted version, and a later get is 404 with AWS's message
    (deleted,) = answers.wait("delete/ok")
    assert deleted.version == 3 and deleted.client_token == "x"
    client.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing, client_token="g2"), QOS)
    (missing,) = answers.wait("get/no")
    assert (missing.code, missing.client_token) == (404, "g2")
    assert missing.message == f"No shadow exists with name: '{thing}'"


# The rejections an update over MQTT can get (device-shadow-error-messages.html), each with the
# request that causes it; the SDK only sends JSON, so 400 "Invalid JSON" and 415 are tested with
# raw bytes below.
REJECTIONS = {
    "missing-state": ({}, None, 400, "Missing required node: state"),
    "version-conflict": ({"reported": {"a": 1}}, 99, 409, "Version conflict"),
    "too-large": (
        {"reported": {"blob": "x" * 8200}},
        None,
        413,
        "The payload exceeds the maximum size allowed",
    ),
    "too-deep": (
        {"reported": {"1": {"2": {"3": {"4": {"5": {"6": {"7": 0}}}}}}}},
        None,
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    ),
}


@pytest.mark.parametrize("case", REJECTIONS, ids=list(REJECTIONS))
def test_each_rejected_update_reaches_the_sdk_as_an_error_response(sdk_shadow, case):
    # given a device subscribed to its shadow's answers, with a shadow at version 1
    thing, client = sdk_shadow()
    answers = Answers()
    subscribe_classic(client, thing, answers)
    update(client, thing, "setup", reported={"a": 0})
    answers.wait("update/ok")
    sections, version, code, message = REJECTIONS[case]
    # when it sends the faulty update
    update(client, thing, f"bad-{case}", version, **sections)
    # then update/rejected has the documented code and message, with its client token
    (rejected,) = answers.wait("update/no")
    assert (rejected.code, rejected.message) == (code, message)
    assert rejected.client_token == f"bad-{case}"
    assert isinstance(rejected.timestamp, datetime)
    # and the shadow did not change
    assert len(answers.seen["update/ok"]) == 1 and "delta" not in answers.seen


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b'{"state": {"reported": ', 400, "Invalid JSON"),
        (b'{"state": {"reported": {"a": "\xff"}}}', 415, "Unsupported documented encoding"),
    ],
    ids=["not-json", "not-utf8"],
)
def test_bytes_the_sdk_never_sends_are_rejected_to_its_subscription(
    sdk_shadow, iot_emulator, make_device, paho_client, until, payload, code, message
):
    # given an SDK client subscribed to a thing's update/rejected, and a raw MQTT client
    thing, client = sdk_shadow()
    answers = Answers()
    subscribe_classic(client, thing, answers)
    raw = paho_client(make_device(), iot_emulator.mqtt_port)
    # when the raw client publishes bytes that are not a UTF-8 JSON request
    raw.publish(f"$aws/things/{thing}/shadow/update", payload, qos=1).wait_for_publish(10)
    # then the SDK gets the error response with the documented code
    (rejected,) = answers.wait("update/no")
    assert rejected.code == code and rejected.message.startswith(message)


def test_named_shadows_through_the_sdk_are_separate_and_listed(sdk_shadow, aws):
    # given a device subscribed to its named shadow "config" and to its classic delta
    thing, client = sdk_shadow()
    answers = Answers()
    subscribe_classic(client, thing, answers)
    named = {"thing_name": thing, "shadow_name": "config"}
    for subscribe, request, kind in (
        (
            client.subscribe_to_update_named_shadow_accepted,
            iotshadow.UpdateNamedShadowSubscriptionRequest,
            "update/ok",
        ),
        (
            client.subscribe_to_named_shadow_delta_updated_events,
            iotshadow.NamedShadowDeltaUpdatedSubscriptionRequest,
            "delta",
        ),
        (
            client.subscribe_to_get_named_shadow_accepted,
            iotshadow.GetNamedShadowSubscriptionRequest,
            "get/ok",
        ),
        (
            client.subscribe_to_delete_named_shadow_accepted,
            iotshadow.DeleteNamedShadowSubscriptionRequest,
            "delete/ok",
        ),
    ):
        future, _topic = subscribe(request(**named), QOS, answers.callback(f"named/{kind}"))
        assert future.result(10) == QOS
    # when an application sets a desired value on the named shadow over HTTP
    data = aws("iot-data")
    data.update_thing_shadow(
        thingName=thing,
        shadowName="config",
        payload=json.dumps({"state": {"desired": {"interval": 10}}}),
    )
    # then the device gets the named shadow's accepted and delta, and nothing classic
    (accepted,) = answers.wait("named/update/ok")
    (delta,) = answers.wait("named/delta")
    assert accepted.state.desired == {"interval": 10} and accepted.version == 1
    assert delta.state == {"interval": 10}
    assert "delta" not in answers.seen and "update/ok" not in answers.seen
    # when the device reports back and reads the named shadow
    client.publish_update_named_shadow(
        iotshadow.UpdateNamedShadowRequest(
            client_token="n1", state=iotshadow.ShadowState(reported={"interval": 10}), **named
        ),
        QOS,
    ).result(10)
    answers.wait("named/update/ok", 2)
    client.publish_get_named_shadow(
        iotshadow.GetNamedShadowRequest(client_token="n2", **named), QOS
    ).result(10)
    # then it is in sync, and ListNamedShadowsForThing names it while the classic one is absent
    (got,) = answers.wait("named/get/ok")
    assert got.version == 2 and got.state.delta is None
    assert data.list_named_shadows_for_thing(thingName=thing)["results"] == ["config"]
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.get_thing_shadow(thingName=thing)
    # and deleting it over MQTT removes it from the list
    client.publish_delete_named_shadow(
        iotshadow.DeleteNamedShadowRequest(client_token="n3", **named), QOS
    ).result(10)
    (deleted,) = answers.wait("named/delete/ok")
    assert deleted.version == 2
    assert data.list_named_shadows_for_thing(thingName=thing)["results"] == []
