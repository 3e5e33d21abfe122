"""Retained messages as AWS IoT documents them (mqtt.html#mqtt-retain): delivered on subscribe
only to a filter that is the topic itself, flagged RETAIN then and not afterwards, deleted by an
empty retained payload, bounded by the account's quota; and the iot-data API (Publish with
retain, ListRetainedMessages with paging, GetRetainedMessage) through boto3."""

from __future__ import annotations

import base64
import http.client
import json

import pytest
from botocore.config import Config
from support.mqtt import published, subscribed

from emulator.mqtt.limits import RC_QUOTA_EXCEEDED


def subscriber(paho_client, device, port: int, *filters: str, **kwargs):
    client = paho_client(device, port, **kwargs)
    for topic_filter in filters:
        subscribed(client, topic_filter)
    return client


def test_only_a_subscription_to_the_topic_itself_receives_the_retained_message(
    broker, make_device, paho_client, until
):
    # given a retained message on a topic
    publisher = paho_client(make_device(), broker.port)
    published(publisher, "plant/pump/state", b"on", retain=True)
    # when one client subscribes to the topic and another to wildcard filters covering it
    exact = subscriber(paho_client, make_device(), broker.port, "plant/pump/state")
    wild = subscriber(paho_client, make_device(), broker.port, "plant/#")
    subscribed(wild, "plant/+/state")
    # then only the exact subscription receives it, flagged RETAIN
    assert until(lambda: exact.seen.messages)
    assert [(m.topic, m.payload, m.retain) for m in exact.seen.messages] == [
        ("plant/pump/state", b"on", True)
    ]
    # and a later retained publish reaches both, without RETAIN (it is not sent on subscribe)
    published(publisher, "plant/pump/state", b"off", retain=True)
    assert until(lambda: len(exact.seen.messages) == 2 and len(wild.seen.messages) == 2)
    assert [(m.payload, m.retain) for m in wild.seen.messages] == [(b"off", False)] * 2
    assert (exact.seen.messages[1].payload, exact.seen.messages[1].retain) == (b"off", False)
    assert broker.retained.get("plant/pump/state").payload == b"off"


def test_an_empty_retained_payload_deletes_it_and_still_reaches_subscribers(
    broker, make_device, paho_client, until
):
    publisher = paho_client(make_device(), broker.port)
    published(publisher, "plant/valve", b"open", retain=True)
    listener = subscriber(paho_client, make_device(), broker.port, "plant/valve")
    assert until(lambda: listener.seen.messages)
    # when the retained message is deleted
    publisher.publish("plant/valve", b"", qos=1, retain=True)
    assert until(lambda: len(listener.seen.messages) == 2)
    # then subscribers got the 0-byte message, and a new subscriber gets nothing
    assert listener.seen.messages[1].payload == b""
    assert broker.retained.get("plant/valve") is None
    late = subscriber(paho_client, make_device(), broker.port, "plant/valve")
    publisher.publish("plant/valve", b"later", qos=1)
    assert until(lambda: late.seen.messages)
    assert [m.payload for m in late.seen.messages] == [b"later"]


def test_mqtt5_retained_message_keeps_its_properties_and_expires(
    broker, make_device, paho_client, until
):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    publisher = paho_client(make_device(), broker.port, version=5)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("site", "north")]
    published(publisher, "plant/cfg", b"{}", retain=True, properties=props)
    expiring = Properties(PacketTypes.PUBLISH)
    expiring.MessageExpiryInterval = 1
    published(publisher, "plant/old", b"x", retain=True, properties=expiring)
    # when an MQTT 5 client subscribes to the first topic
    reader = subscriber(paho_client, make_device(), broker.port, "plant/cfg", version=5)
    assert until(lambda: reader.seen.messages)
    (message,) = reader.seen.messages
    assert message.retain and message.properties.ContentType == "application/json"
    assert message.properties.UserProperty == [("site", "north")]
    # and a retained message past its Message Expiry Interval is gone
    stored = broker.retained.get("plant/old")
    assert stored is not None and stored.expires_at_ms - stored.last_modified_ms == 1000
    assert until(lambda: broker.retained.get("plant/old") is None, timeout=3)
    assert "plant/old" not in broker.retained.topics()


def test_retained_messages_past_the_account_quota_are_throttled(
    broker, make_device, paho_client, until
):
    # given an account at its retained-message quota (lowered for the test)
    broker.retained.limit = 1
    publisher = paho_client(make_device(), broker.port, version=5)
    published(publisher, "quota/a", b"1", retain=True)
    # when a retained message on a new topic is published
    publisher.publish("quota/b", b"2", qos=1, retain=True)
    # then it is refused with Quota exceeded, and not retained
    assert until(lambda: publisher.seen.disconnects)
    assert publisher.seen.disconnects[0].value == RC_QUOTA_EXCEEDED
    assert broker.retained.topics() == ["quota/a"]
    refused = [e for e in broker.activity.events() if e["event"] == "PUBLISH_REFUSED"]
    assert "Maximum number of retained messages per account" in refused[-1]["reason"]
    # while replacing or deleting a retained message is still taken
    again = paho_client(make_device(), broker.port, version=5)
    published(again, "quota/a", b"3", retain=True)
    assert broker.retained.get("quota/a").payload == b"3"


# iot-data, through the session emulator's gateway ---------------------------------------------
@pytest.fixture
def data(aws):
    # One attempt: a ThrottlingException must reach the test, not botocore's retries.
    return aws("iot-data", config=Config(retries={"total_max_attempts": 1}))


def test_iot_data_publish_retain_then_get_and_list_with_paging(
    data, iot_emulator, make_device, paho_client, unique, until
):
    topics = [f"fleet/{unique}/dev{i}/config" for i in range(5)]
    # given retained messages published over HTTP, one with user properties
    for i, topic in enumerate(topics):
        data.publish(topic=topic, qos=1, retain=True, payload=f'{{"n":{i}}}'.encode())
    data.publish(
        topic=topics[0],
        qos=0,
        retain=True,
        payload=b'{"n":"first"}',
        userProperties=json.dumps([{"site": "north"}]),
    )
    # then GetRetainedMessage answers with the message
    got = data.get_retained_message(topic=topics[0])
    assert (got["topic"], got["payload"], got["qos"]) == (topics[0], b'{"n":"first"}', 0)
    assert got["lastModifiedTime"] > 0
    assert json.loads(got["userProperties"]) == [{"site": "north"}]
    # and ListRetainedMessages pages through all of them, maxResults at a time
    seen, pages, token = [], 0, None
    while True:
        page = data.list_retained_messages(maxResults=2, **({"nextToken": token} if token else {}))
        assert len(page["retainedTopics"]) <= 2
        seen += [s for s in page["retainedTopics"] if s["topic"].startswith(f"fleet/{unique}/")]
        pages += 1
        token = page.get("nextToken")
        if not token:
            break
    assert sorted(s["topic"] for s in seen) == sorted(topics)
    summary = next(s for s in seen if s["topic"] == topics[3])
    assert (summary["payloadSize"], summary["qos"]) == (len(b'{"n":3}'), 1)
    assert pages >= 3
    # and an MQTT client subscribing to one of the topics receives it
    reader = paho_client(make_device(), iot_emulator.mqtt_port)
    subscribed(reader, topics[2])
    assert until(lambda: reader.seen.messages)
    assert (reader.seen.messages[0].payload, reader.seen.messages[0].retain) == (b'{"n":2}', True)


def test_iot_data_retained_errors_are_in_the_service_shape(data, iot_emulator, unique):
    # a topic with no retained message
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.get_retained_message(topic=f"none/{unique}")
    # maxResults outside 1..200, sent raw (botocore would check the minimum itself)
    connection = http.client.HTTPConnection("127.0.0.1", iot_emulator.port, timeout=10)
    connection.request(
        "GET",
        "/retainedMessage?maxResults=201",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/iotdata/aws4_request"
        },
    )
    response = connection.getresponse()
    body = json.loads(response.read())
    assert response.status == 400 and body["__type"] == "InvalidRequestException"
    assert "maxResults" in body["message"]
    # a token that is not one of ours
    with pytest.raises(data.exceptions.InvalidRequestException):
        data.list_retained_messages(nextToken=base64.b64encode(b"\xff\xfe").decode())


def test_iot_data_retained_publish_past_the_quota_is_throttled(data, iot_emulator, unique):
    store = iot_emulator.broker.retained
    data.publish(topic=f"q/{unique}/kept", retain=True, payload=b"1")
    limit = store.limit
    store.limit = len(store)
    try:
        with pytest.raises(data.exceptions.ThrottlingException):
            data.publish(topic=f"q/{unique}/new", retain=True, payload=b"2")
        # deleting and replacing stay possible at the quota
        data.publish(topic=f"q/{unique}/kept", retain=True, payload=b"3")
        data.publish(topic=f"q/{unique}/new", retain=True, payload=b"")
    finally:
        store.limit = limit
    assert store.get(f"q/{unique}/new") is None
    assert store.get(f"q/{unique}/kept").payload == b"3"


def test_expired_retained_messages_do_not_count_against_the_quota(until):
    from emulator.mqtt import codec
    from emulator.mqtt.retained import RetainedStore

    store = RetainedStore(None, None, limit=1)
    assert store.put("q/old", b"x", 1, {codec.MESSAGE_EXPIRY_INTERVAL: 1})
    assert store.refusal("q/new", 1) is not None  # at the quota while it lives
    assert until(lambda: store.get("q/old") is None, timeout=3)
    assert store.refusal("q/new", 1) is None
    assert store.put("q/new", b"y", 0, {}) and store.topics() == ["q/new"]
