"""The hand-off between the MQTT broker (IoT Core's data plane) and the rules engine.

The broker acknowledges a QoS 1 PUBLISH only after `MessageConsumer.accept` has returned, so
whatever `accept` returns for is the rules engine's to account for (spooled, delivered or sent
to the rule's errorAction). `accept` raising means "not accepted": the broker must not PUBACK
as success (MQTT 5: reason code 0x80 Unspecified error; MQTT 3.1.1: no PUBACK, connection closed).

A consumer may also offer `accept_many(messages)` (optional): the broker then hands it the
PUBLISH packets of one socket read at once, so their durable hand-off costs one write. It is all
or nothing for the acknowledgement: returning means every message is accepted; raising means
none of them is acknowledged as success.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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


class MessageConsumer(Protocol):
    """The rules engine's entry point, called by the broker from its event loop thread."""

    def accept(self, message: InboundMessage) -> None:
        """Return once the message is durably accepted; raise to refuse it."""
        ...

    # Optional (the broker looks it up with getattr and falls back to `accept` per message):
    #
    # def accept_many(self, messages: Sequence[InboundMessage]) -> None:
    #     """Return once every message is durably accepted; raise to refuse all of them.
    #     Messages are given in arrival order, and are processed in that order."""
