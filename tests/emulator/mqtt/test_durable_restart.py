"""An emulator process stopped cleanly or killed with `kill -9`: retained messages and persistent
sessions (subscriptions, queued QoS 1 messages) are there after the restart, as AWS keeps them
up to the session's expiry (mqtt.html#mqtt-persistent-sessions, #mqtt-retain)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.mqtt import payloads, subscribed

from emulator import process
from emulator.persistence.records import record_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persistence"))

from persistence_helpers import started_emulators  # noqa: E402

ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
}


@pytest.fixture
def mqtt_emulators(tmp_path: Path):
    yield from started_emulators(tmp_path / "state")


def register(emu, directory: Path, name: str) -> SimpleNamespace:
    """A thing's certificate with an allow-all policy, registered in that emulator process."""
    iot = emu.client("iot")
    keys = iot.create_keys_and_certificate(setAsActive=True)
    iot.create_policy(policyName=f"{name}-policy", policyDocument=json.dumps(ALLOW_ALL))
    iot.attach_policy(policyName=f"{name}-policy", target=keys["certificateArn"])
    cert_path, key_path = directory / f"{name}.cert.pem", directory / f"{name}.key"
    cert_path.write_text(keys["certificatePem"])
    key_path.touch(mode=0o600)
    key_path.write_text(keys["keyPair"]["PrivateKey"])
    return SimpleNamespace(
        client_id=name, cert_path=cert_path, key_path=key_path, ca_path=root_ca(emu)
    )


def root_ca(emu) -> Path:
    return Path(process.fetch_info(emu.endpoint_url).root_ca_path)


def mqtt_port(emu) -> int:
    return process.fetch_info(emu.endpoint_url).mqtt_port


def queued_on_disk(emu, client_id: str) -> int:
    path = emu.data_dir / "mqtt" / "sessions" / record_name(client_id)
    if not path.exists():
        return -1
    return len(json.loads(path.read_bytes().split(b"\n", 1)[1])["messages"])


@pytest.mark.parametrize("ending", ["stop", "kill9"])
def test_retained_messages_and_persistent_sessions_survive_the_process(
    mqtt_emulators, paho_client, tmp_path, until, ending
):
    # given a persistent session subscribed at QoS 1, then offline
    first = mqtt_emulators()
    device = register(first, tmp_path, "meter-7")
    client = paho_client(device, mqtt_port(first), client_kw={"clean_session": False})
    subscribed(client, "alarms/#")
    client.disconnect()
    # and, while it is offline, QoS 1 messages for it and a retained message, over iot-data
    data = first.client("iot-data")
    for i in range(3):
        data.publish(topic=f"alarms/{i}", qos=1, payload=f"alarm {i}".encode())
    data.publish(topic="status/meter-7", qos=1, retain=True, payload=b'{"on":true}')
    # (queued messages reach the disk within half a second; the retained one before the answer)
    assert until(lambda: queued_on_disk(first, device.client_id) == 3)
    # when the emulator ends
    if ending == "kill9":
        first.kill9()
    else:
        assert first.stop() == 0
    second = mqtt_emulators()
    # then the retained message is there for iot-data and for MQTT subscribers
    got = second.client("iot-data").get_retained_message(topic="status/meter-7")
    assert (got["payload"], got["qos"]) == (b'{"on":true}', 1)
    port = mqtt_port(second)
    reader = paho_client(register(second, tmp_path, "reader"), port)
    subscribed(reader, "status/meter-7")
    assert until(lambda: reader.seen.messages)
    assert (reader.seen.messages[0].payload, reader.seen.messages[0].retain) == (
        b'{"on":true}',
        True,
    )
    # and the device resumes its session: the queued messages, then new ones, arrive
    back = paho_client(device, port, client_kw={"clean_session": False})
    assert until(lambda: len(back.seen.messages) == 3)
    assert payloads(back) == [b"alarm 0", b"alarm 1", b"alarm 2"]
    second.client("iot-data").publish(topic="alarms/new", qos=1, payload=b"fresh")
    assert until(lambda: len(back.seen.messages) == 4)
    # and the state files are private
    for path in (second.data_dir / "mqtt").rglob("*"):
        mode = stat_mode(path)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
