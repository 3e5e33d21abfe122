"""Broker.ingest: the way in for messages that no client PUBLISH carried (iot-data Publish, wills,
lifecycle events, a service such as Device Shadow): the consumer first, then MQTT subscribers,
as the hand-off contract of emulator/iot/messages.py says."""

from __future__ import annotations

import threading
import time

import pytest
from support.mqtt import emulator_view

from emulator.iot.messages import NO_CLIENT_ID, InboundMessage
from emulator.mqtt import codec


def _message(broker, topic: str, payload: bytes) -> InboundMessage:
    return InboundMessage(
        topic,
        payload,
        1,
        NO_CLIENT_ID,
        None,
        int(time.time() * 1000),
        broker.account_id,
        broker.region,
        user_properties=(("origin", "service"),),
    )


def _ingest_from_another_thread(broker, *args) -> list[BaseException]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            broker.ingest(*args)
        except BaseException as exc:  # reported to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return errors


def test_ingest_hands_the_message_to_the_consumer_then_to_subscribers(
    broker, consumer, make_device, paho_client, until, unique
):
    # given an MQTT 5 subscriber
    sub = paho_client(make_device(), broker.port, version=5)
    _, mid = sub.subscribe(f"svc/{unique}/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    # when a service ingests a message from its own thread, with an MQTT 5 user property
    message = _message(broker, f"svc/{unique}/accepted", b'{"state": {}}')
    properties = {codec.USER_PROPERTY: [("origin", "service")]}
    assert _ingest_from_another_thread(broker, message, properties) == []
    # then the consumer accepted it before ingest returned, and the subscriber receives it
    assert consumer.on_topic(f"svc/{unique}/") == [message]
    assert until(lambda: sub.seen.messages)
    (received,) = sub.seen.messages
    assert (received.topic, received.payload) == (f"svc/{unique}/accepted", b'{"state": {}}')
    assert received.properties.UserProperty == [("origin", "service")]


def test_a_message_the_consumer_refuses_is_delivered_to_nobody(
    broker, consumer, make_device, paho_client, until, unique
):
    # given a subscriber and a consumer that cannot accept (its spool is full)
    sub = paho_client(make_device(), broker.port)
    _, mid = sub.subscribe(f"svc/{unique}/#", qos=1)
    assert until(lambda: mid in sub.seen.subacks)
    consumer.refuse = True
    # when a service ingests a message
    errors = _ingest_from_another_thread(broker, _message(broker, f"svc/{unique}/x", b"{}"))
    # then ingest raised the consumer's refusal, and no subscriber got the message
    assert [str(e) for e in errors] == ["consumer refuses (test)"]
    time.sleep(0.5)
    assert sub.seen.messages == []


def test_ingest_before_start_reaches_the_consumer_and_no_subscriber(iot_emulator, consumer):
    # given a broker that is not listening (nobody can be subscribed)
    from emulator.mqtt.broker import Broker

    broker = Broker(emulator_view(iot_emulator), consumer=consumer, port=0)
    # when a message is ingested, then the consumer has it and nothing fails
    message = _message(broker, "svc/idle", b"{}")
    broker.ingest(message)
    assert consumer.on_topic("svc/idle") == [message]


@pytest.mark.parametrize("qos", [0, 1])
def test_iot_data_publish_goes_through_ingest(emulator, aws, unique, qos):
    # given the emulator's own broker and rules engine (iot-data Publish lives with the broker)
    seen: list[InboundMessage] = []
    broker = emulator.broker
    real = broker.ingest

    def spy(message, *args):
        seen.append(message)
        return real(message, *args)

    broker.ingest = spy
    try:
        # when an application publishes over HTTP
        aws("iot-data").publish(topic=f"http/{unique}", qos=qos, payload=b'{"n": 1}')
    finally:
        del broker.ingest
    # then the message entered through ingest, as AWS's data plane would see it
    (message,) = seen
    assert (message.topic, message.payload, message.qos) == (f"http/{unique}", b'{"n": 1}', qos)
    assert message.client_id == NO_CLIENT_ID
