"""Fixtures for the rules engine's integration tests: the session emulator with a RulesEngine."""

from __future__ import annotations

import pytest
from support.devices import register_device
from support.rules import create_rule, new_bucket


@pytest.fixture(scope="session")
def rules(emulator):
    """The emulator's rules engine (app.py builds it)."""
    return emulator.rules


@pytest.fixture
def role_arn():
    return "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture
def topic_rule(aws, unique):
    """Factory: `support.rules.create_rule` for rule `<name>_<unique>` with the test's IoT client
    (same options); the rule's name."""

    def create(name: str, sql: str, actions: list, **options) -> str:
        rule = f"{name}_{unique}"
        create_rule(aws("iot"), rule, sql, actions, **options)
        return rule

    return create


@pytest.fixture
def rule_bucket(aws, unique):
    """Factory: create bucket `rules-<name>-<unique>`; its name and the S3 client."""

    def create(name: str):
        bucket = f"rules-{name}-{unique}"
        return bucket, new_bucket(aws, bucket)

    return create


@pytest.fixture
def publish_drained(aws, rules):
    """Factory: iot-data Publish, then wait until the rules engine has run what it started; the
    Publish answer."""

    def publish(topic: str, payload: bytes | str, **options):
        response = aws("iot-data").publish(topic=topic, payload=payload, **options)
        assert rules.drain(10)
        return response

    return publish


@pytest.fixture
def s3_rule(aws, unique, role_arn):
    """Factory: create rule `<name>_<unique>` running `sql` with an S3 action that stores each
    output under the key template `key` (default `${topic(3)}`); returns a function reading the
    output stored under a key as JSON."""
    import json

    def create(name: str, sql: str, version: str | None = None, key: str = "${topic(3)}"):
        s3 = aws("s3")
        bucket = f"rules-{name}-{unique}"
        s3.create_bucket(Bucket=bucket)
        payload = {
            "sql": sql,
            "actions": [{"s3": {"bucketName": bucket, "key": key, "roleArn": role_arn}}],
        }
        if version is not None:
            payload["awsIotSqlVersion"] = version
        aws("iot").create_topic_rule(ruleName=f"{name}_{unique}", topicRulePayload=payload)
        return lambda key: json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    return create


@pytest.fixture
def recording_firehose(emulator):
    """A stand-in with the Firehose component's interface, installed for one test: `calls`
    holds each put request the rule actions made, `spooled` each grouped spool write."""

    class RecordingFirehose:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str, list[bytes]]] = []
            self.spooled: list[tuple[str, str, str, list[bytes]]] = []
            self.fail_with: Exception | None = None

        def check_put(self, account_id, region, delivery_stream_name, records) -> None:
            if self.fail_with is not None:
                raise self.fail_with
            self.calls.append((account_id, region, delivery_stream_name, list(records)))

        def put_checked(self, account_id, region, delivery_stream_name, records):
            self.spooled.append((account_id, region, delivery_stream_name, list(records)))
            return [f"record-{len(self.spooled)}-{i}" for i in range(len(records))]

        def put_records(self, account_id, region, delivery_stream_name, records):
            self.check_put(account_id, region, delivery_stream_name, records)
            return self.put_checked(account_id, region, delivery_stream_name, records)

    previous = emulator.firehose
    fake = RecordingFirehose()
    emulator.firehose = fake
    yield fake
    emulator.firehose = previous


@pytest.fixture
def device_client(emulator, aws, tmp_path, unique):
    """Factory: register a thing with an ACTIVE certificate and an allow-all IoT policy, and
    connect a paho-mqtt client to the emulator's broker over mutual TLS."""
    import threading

    import paho.mqtt.client as mqtt

    iot = aws("iot")
    clients = []

    def connect(name: str, protocol: int = mqtt.MQTTv311):
        device = register_device(iot, name, f"rules-{name}", tmp_path, emulator.iot.root_ca_path)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=protocol)
        client.tls_set(str(device.ca_path), str(device.cert_path), str(device.key_path))
        client.messages = []
        connected = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: connected.set()
        client.on_message = lambda c, u, m: c.messages.append(m)
        client.connect("localhost", emulator.mqtt_port)
        client.loop_start()
        assert connected.wait(10), "CONNACK not received"
        client.certificate_id = device.certificate_id
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.disconnect()
        client.loop_stop()
