"""Fixtures for the rules engine's integration tests: the session emulator with a RulesEngine."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def rules(emulator):
    """The emulator's rules engine (constructed here until the lead wires it in app.py)."""
    engine = emulator.find("rules")
    if engine is None:
        from emulator.rules.engine import RulesEngine

        engine = RulesEngine(emulator)
        emulator.add(engine)
        engine.start()
    return engine


@pytest.fixture
def role_arn():
    return "arn:aws:iam::123456789012:role/iot-rules"


@pytest.fixture
def recording_firehose(emulator):
    """A stand-in with the Firehose component's put_records signature, installed for one test.

    It replaces `emulator.firehose` only when the real component is absent."""

    class RecordingFirehose:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str, list[bytes]]] = []
            self.fail_with: Exception | None = None

        def put_records(self, account_id, region, delivery_stream_name, records):
            if self.fail_with is not None:
                raise self.fail_with
            self.calls.append((account_id, region, delivery_stream_name, list(records)))
            return [f"record-{len(self.calls)}-{i}" for i in range(len(records))]

    previous = getattr(emulator, "firehose", None)
    fake = RecordingFirehose()
    emulator.firehose = fake
    yield fake
    if previous is None:
        del emulator.firehose
    else:
        emulator.firehose = previous


@pytest.fixture
def device_client(emulator, aws, tmp_path, unique):
    """Factory: register a thing with an ACTIVE certificate and an allow-all IoT policy, and
    connect a paho-mqtt client to the emulator's broker over mutual TLS."""
    import json
    import os
    import threading

    import paho.mqtt.client as mqtt

    if emulator.find("broker") is None or emulator.find("iot") is None:
        pytest.skip("this emulator build has no MQTT broker")
    iot = aws("iot")
    clients = []

    def connect(name: str):
        keys = iot.create_keys_and_certificate(setAsActive=True)
        policy = f"rules-{name}"
        iot.create_policy(
            policyName=policy,
            policyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
                }
            ),
        )
        iot.attach_policy(policyName=policy, target=keys["certificateArn"])
        iot.create_thing(thingName=name)
        iot.attach_thing_principal(thingName=name, principal=keys["certificateArn"])
        cert = tmp_path / f"{name}.cert.pem"
        key = tmp_path / f"{name}.private.key"
        cert.write_text(keys["certificatePem"])
        key.touch(mode=0o600)
        os.chmod(key, 0o600)
        key.write_text(keys["keyPair"]["PrivateKey"])
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
        client.tls_set(str(emulator.iot.root_ca_path), str(cert), str(key))
        client.messages = []
        connected = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: connected.set()
        client.on_message = lambda c, u, m: c.messages.append(m)
        client.connect("localhost", emulator.mqtt_port)
        client.loop_start()
        assert connected.wait(10), "CONNACK not received"
        client.certificate_id = keys["certificateId"]
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.disconnect()
        client.loop_stop()
