"""The hand-off between the MQTT broker (IoT Core's data plane) and the rules engine.

The broker acknowledges a QoS 1 PUBLISH only after `MessageConsumer.accept` has returned, so
whatever `accept` returns for is the rules engine's to account for (spooled, delivered or sent
to the rule's errorAction). `accept` raising means "not accepted": the broker must not PUBACK
as success (MQTT 5: reason code 0x80 Unspecified error; MQTT 3.1.1: no PUBACK, connection closed).

The broker calls `accept_many(messages)`: the PUBLISH packets of one socket read at once, so
their durable hand-off costs one write. It is all or nothing for the acknowledgement: returning
means every message is accepted; raising means none of them is acknowledged as success.

The other way in is `MessageIngress.ingest(message)` (the broker): whatever injects a message
that no client PUBLISH carried (iot-data Publish, a last will, a lifecycle event, a service such
as Device Shadow) hands it to the consumer first and, once accepted, to MQTT subscribers.
Raising means not accepted, and then nobody receives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# What AWS IoT reports as the client id when a message did not come over MQTT (iot-data Publish).
NO_CLIENT_ID = "n/a"


@dataclass(frozen=True)
class InboundMessage:
    """One message as IoT Core's rules engine sees it."""

    topic: str
    payload: bytes
    qos: int
    client_id: str
    # The certificate id (SHA-256 of the DER, hex) for X.509 clients; None for HTTP publishes.
    principal: str | None
    # Arrival at IoT Core, epoch milliseconds (what `timestamp()` returns in IoT SQL).
    timestamp_ms: int
    account_id: str
    region: str
    retain: bool = False
    # MQTT 5 user properties, in order (IoT SQL `get_user_properties`).
    user_properties: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # The publishing client's IP address (IoT SQL `sourceip()`); None when unknown.
    source_ip: str | None = None
    # The PUBLISH's other MQTT 5 properties that IoT SQL `get_mqtt_property` reads, by its
    # names: content_type, format_indicator (0 or 1), response_topic, correlation_data (bytes).
    mqtt_properties: tuple[tuple[str, Any], ...] = field(default_factory=tuple)


class MessageConsumer(Protocol):
    """The rules engine's entry point, called by the broker from its event loop thread (and by
    `ingest` from any thread)."""

    def accept_many(self, messages: Sequence[InboundMessage]) -> None:
        """Return once every message is durably accepted; raise to refuse all of them.
        Messages are given in arrival order, and are processed in that order."""
        ...


class MessageIngress(Protocol):
    """The broker's way in for messages that did not arrive as a client's PUBLISH."""

    def ingest(
        self,
        message: InboundMessage,
        properties: dict[int, Any] | None = None,
        sender: str | None = None,
    ) -> None:
        """Hand `message` to the consumer, then deliver it to matching MQTT subscribers.

        `properties` are MQTT 5 properties to forward (user properties, content type...);
        `sender` is the client id that MQTT 5 No Local subscriptions skip. Thread-safe.
        Raises what the consumer raises: a message not accepted is delivered to nobody."""
        ...
