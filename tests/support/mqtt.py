"""Steps of the MQTT tests with the paho clients of tests/emulator/mqtt/conftest.py (`paho_client`
records what a client sees in `client.seen`), the SDK's clients, and a view of the session
emulator for a Broker of a test's own."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from support.waiting import wait_until


def subscribed(client: Any, topic_filter: str, qos: int = 1) -> Any:
    """SUBSCRIBE and wait for the SUBACK; its reason codes."""
    _, mid = client.subscribe(topic_filter, qos=qos)
    assert wait_until(lambda: mid in client.seen.subacks), f"no SUBACK for {topic_filter}"
    return client.seen.subacks[mid]


def published(client: Any, topic: str, payload: bytes, **kwargs: Any) -> None:
    """A QoS 1 PUBLISH, waiting for its PUBACK."""
    info = client.publish(topic, payload, qos=1, **kwargs)
    assert wait_until(lambda: info.mid in client.seen.pubacks), f"no PUBACK on {topic}"


def payloads(client: Any) -> list[bytes]:
    return [m.payload for m in client.seen.messages]


def left_offline(broker: Any, client: Any, client_id: str) -> None:
    """Disconnect a client with a persistent session and wait until the broker keeps it
    offline."""
    client.disconnect()
    assert wait_until(lambda: broker.sessions[client_id].connection is None)


def sdk_mtls(device: Any, port: int) -> dict[str, Any]:
    """The arguments of the AWS IoT Device SDK's `mtls_from_path` builders for `device`."""
    return {
        "endpoint": "localhost",
        "port": port,
        "cert_filepath": str(device.cert_path),
        "pri_key_filepath": str(device.key_path),
        "ca_filepath": str(device.ca_path),
        "client_id": device.client_id,
    }


def sdk_mqtt5_client(device: Any, port: int, **callbacks: Any) -> Any:
    """The AWS IoT Device SDK's MQTT 5 client for `device` over mutual TLS (not started)."""
    from awsiot import mqtt5_client_builder

    return mqtt5_client_builder.mtls_from_path(**sdk_mtls(device, port), **callbacks)


def emulator_view(emulator: Any, **extra: Any) -> SimpleNamespace:
    """The emulator's IoT registry, account and region, with no shadow service and no gateway:
    a Broker of a test's own sets itself as `broker` and `activity` on this view, not on the
    session's emulator."""
    return SimpleNamespace(
        shadow=None,
        iot=emulator.iot,
        account_id=emulator.account_id,
        region=emulator.region,
        gateway=None,
        **extra,
    )
