"""The AWS IoT Device SDK v2 (awsiotsdk) against the broker: MQTT 3.1.1 and MQTT 5 over mTLS."""

from __future__ import annotations

import threading

from awscrt import mqtt, mqtt5
from awsiot import mqtt_connection_builder
from support.mqtt import sdk_mqtt5_client, sdk_mtls

# A device may connect, and publish on "allowed" only.
PUBLISH_ONLY_ON_ALLOWED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:*:*:topic/allowed"},
    ],
}


def connect_311(device, port, clean_session=True):
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_mtls(device, port), clean_session=clean_session, keep_alive_secs=30
    )
    connection.connect().result(10)
    return connection


def test_sdk_311_publishes_qos1_and_the_consumer_has_every_message(broker, consumer, make_device):
    # given a registered device connected with mtls_from_path
    device = make_device()
    connection = connect_311(device, broker.port)
    try:
        # when it publishes 50 QoS 1 messages and waits for each PUBACK
        futures = [
            connection.publish(
                f"sensors/{device.client_id}", b'{"n": %d}' % i, mqtt.QoS.AT_LEAST_ONCE
            )[0]
            for i in range(50)
        ]
        for future in futures:
            future.result(10)
    finally:
        connection.disconnect().result(10)
    # then the consumer had accepted all 50 before they were acknowledged, with the principal
    got = consumer.on_topic("sensors/")
    assert [m.payload for m in got] == [b'{"n": %d}' % i for i in range(50)]
    assert {m.client_id for m in got} == {device.client_id}
    assert {m.principal for m in got} == {device.certificate_id}
    assert all(m.qos == 1 for m in got)


def test_sdk_311_subscriber_receives_what_another_device_publishes(broker, make_device):
    # given a subscriber and a publisher
    subscriber, publisher = make_device(), make_device()
    received, done = [], threading.Event()

    def on_message(topic, payload, **kwargs):
        received.append((topic, payload))
        done.set()

    sub = connect_311(subscriber, broker.port)
    pub = connect_311(publisher, broker.port)
    try:
        future, _ = sub.subscribe("alerts/#", mqtt.QoS.AT_LEAST_ONCE, on_message)
        assert future.result(10)["qos"] == mqtt.QoS.AT_LEAST_ONCE
        # when the publisher publishes
        pub.publish("alerts/fire", b"hot", mqtt.QoS.AT_LEAST_ONCE)[0].result(10)
        # then the subscriber gets it
        assert done.wait(10)
        assert received == [("alerts/fire", b"hot")]
    finally:
        sub.disconnect().result(10)
        pub.disconnect().result(10)


def test_sdk_mqtt5_publish_with_user_properties_reaches_the_consumer(broker, consumer, make_device):
    # given a device using the SDK's MQTT 5 client
    device = make_device()
    connected, stopped = threading.Event(), threading.Event()
    client = sdk_mqtt5_client(
        device,
        broker.port,
        on_lifecycle_connection_success=lambda data: connected.set(),
        on_lifecycle_stopped=lambda data: stopped.set(),
    )
    client.start()
    try:
        assert connected.wait(10)
        # when it publishes at QoS 1 with a user property
        packet = mqtt5.PublishPacket(
            topic="telemetry/mqtt5",
            payload=b"{}",
            qos=mqtt5.QoS.AT_LEAST_ONCE,
            user_properties=[mqtt5.UserProperty("site", "north")],
        )
        result = client.publish(packet).result(10)
        # then the PUBACK is a success and the consumer has the message with its property
        assert result.puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        (message,) = consumer.on_topic("telemetry/mqtt5")
        assert message.user_properties == (("site", "north"),)
    finally:
        client.stop()
        stopped.wait(10)


def test_sdk_311_denied_publish_is_an_unexpected_hangup(broker, consumer, make_device):
    # given a device that may connect but publish only on "allowed"
    device = make_device(PUBLISH_ONLY_ON_ALLOWED)
    interrupted = []
    done = threading.Event()
    connection = mqtt_connection_builder.mtls_from_path(
        **sdk_mtls(device, broker.port),
        on_connection_interrupted=lambda connection, error, **kw: (
            interrupted.append(error),
            done.set(),
        ),
    )
    connection.connect().result(10)
    # when it publishes elsewhere at QoS 1
    connection.publish("forbidden", b"x", mqtt.QoS.AT_LEAST_ONCE)
    # then the SDK reports the broker hung up, as it does against AWS IoT (sdk issue #260)
    assert done.wait(10)
    assert interrupted[0].name == "AWS_ERROR_MQTT_UNEXPECTED_HANGUP"
    assert consumer.on_topic("forbidden") == []
    connection.disconnect().result(10)


def test_sdk_mqtt5_denied_publish_gets_not_authorized_and_stays_connected(broker, make_device):
    # given an MQTT 5 SDK client allowed to publish on "allowed" only
    device = make_device(PUBLISH_ONLY_ON_ALLOWED)
    connected, stopped, interrupted = threading.Event(), threading.Event(), threading.Event()
    client = sdk_mqtt5_client(
        device,
        broker.port,
        on_lifecycle_connection_success=lambda data: connected.set(),
        on_lifecycle_disconnection=lambda data: interrupted.set(),
        on_lifecycle_stopped=lambda data: stopped.set(),
    )
    client.start()
    try:
        assert connected.wait(10)
        # when it publishes on "forbidden" and then on "allowed"
        qos1 = mqtt5.QoS.AT_LEAST_ONCE
        denied = client.publish(mqtt5.PublishPacket(topic="forbidden", payload=b"x", qos=qos1))
        allowed = client.publish(mqtt5.PublishPacket(topic="allowed", payload=b"y", qos=qos1))
        # then the first PUBACK says NOT_AUTHORIZED, the second succeeds, and no disconnect
        assert denied.result(10).puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
        assert allowed.result(10).puback.reason_code == mqtt5.PubackReasonCode.SUCCESS
        assert not interrupted.is_set()
    finally:
        client.stop()
        stopped.wait(10)
