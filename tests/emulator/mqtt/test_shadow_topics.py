"""Device Shadow over MQTT, through the emulator's own broker: a device publishes on the shadow's
request topics and IoT Core answers on /accepted, /delta and /documents; an HTTP update reaches
MQTT subscribers too. Topics: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
"""

from __future__ import annotations

import json


def _payloads(client, topic: str) -> list[dict]:
    return [json.loads(m.payload) for m in client.seen.messages if m.topic == topic]


def test_update_over_mqtt_is_answered_on_accepted_delta_and_documents(
    iot_emulator, make_device, paho_client, until
):
    # given a device subscribed to its shadow's answer topics
    device = make_device()
    base = f"$aws/things/{device.client_id}/shadow"
    client = paho_client(device, iot_emulator.mqtt_port)
    client.subscribe([(f"{base}/update/accepted", 1), (f"{base}/update/delta", 1)])
    client.subscribe(f"{base}/update/documents", 1)
    assert until(lambda: len(client.seen.subacks) == 2)
    # when it asks for a desired state that differs from what it reported
    client.publish(
        f"{base}/update",
        json.dumps({"state": {"reported": {"color": "red"}}, "clientToken": "t-1"}),
        qos=1,
    )
    client.publish(
        f"{base}/update",
        json.dumps({"state": {"desired": {"color": "green"}}, "clientToken": "t-2"}),
        qos=1,
    )
    # then each update is accepted with its client token echoed and the version counted
    assert until(lambda: len(_payloads(client, f"{base}/update/accepted")) == 2)
    accepted = _payloads(client, f"{base}/update/accepted")
    assert [(a["clientToken"], a["version"]) for a in accepted] == [("t-1", 1), ("t-2", 2)]
    # and the delta holds only what desired and reported disagree on
    assert until(lambda: _payloads(client, f"{base}/update/delta"))
    (delta,) = _payloads(client, f"{base}/update/delta")
    assert delta["state"] == {"color": "green"} and delta["version"] == 2
    # and documents shows the shadow before and after
    assert until(lambda: len(_payloads(client, f"{base}/update/documents")) == 2)
    last = _payloads(client, f"{base}/update/documents")[-1]
    assert last["previous"]["state"] == {"reported": {"color": "red"}}
    assert last["current"]["state"] == {
        "desired": {"color": "green"},
        "reported": {"color": "red"},
    }


def test_malformed_update_is_rejected_over_mqtt(iot_emulator, make_device, paho_client, until):
    # given a device subscribed to its shadow's rejected topic
    device = make_device()
    base = f"$aws/things/{device.client_id}/shadow"
    client = paho_client(device, iot_emulator.mqtt_port)
    client.subscribe(f"{base}/update/rejected", 1)
    assert until(lambda: client.seen.subacks)
    # when it publishes an update that is not JSON
    client.publish(f"{base}/update", b"{not json", qos=1)
    # then IoT Core answers 400 on /rejected
    assert until(lambda: _payloads(client, f"{base}/update/rejected"))
    (rejected,) = _payloads(client, f"{base}/update/rejected")
    assert rejected["code"] == 400


def test_http_update_reaches_mqtt_subscribers(aws, iot_emulator, make_device, paho_client, until):
    # given a device subscribed to its shadow's delta topic
    device = make_device()
    base = f"$aws/things/{device.client_id}/shadow"
    client = paho_client(device, iot_emulator.mqtt_port)
    client.subscribe(f"{base}/update/delta", 1)
    assert until(lambda: client.seen.subacks)
    # when an application sets a desired state over HTTP
    aws("iot-data").update_thing_shadow(
        thingName=device.client_id, payload=json.dumps({"state": {"desired": {"fan": "on"}}})
    )
    # then the device gets the delta over MQTT
    assert until(lambda: _payloads(client, f"{base}/update/delta"))
    assert _payloads(client, f"{base}/update/delta")[0]["state"] == {"fan": "on"}
