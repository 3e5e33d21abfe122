"""The hand-off between the MQTT broker and the Device Shadow service.

Broker -> shadow: for a PUBLISH whose topic `is_shadow_request(topic)` (a cheap prefix test, so
ordinary telemetry pays nothing), after the client's `iot:Publish` on that topic was authorised,
the broker calls `emulator.shadow.handle(topic, payload, client_id)`. It returns the
`OutboundMessage`s to deliver to subscribers (`/accepted`, `/rejected`, `/delta`, `/documents`),
or None when the topic is not a shadow request (for example `.../update/accepted` published by a
client): the broker then treats the message as an ordinary one. The broker delivers the returned
messages as if IoT Core had published them: `iot:Receive` is checked per subscriber, and the rules
engine sees them too (rules on `$aws/things/+/shadow/update/accepted` work as on AWS).

Shadow -> broker: changes that do not arrive over MQTT (iot-data UpdateThingShadow and
DeleteThingShadow over HTTP) produce the same messages; the service hands them to the publisher
set with `ShadowService.set_publisher(callback)`. With no publisher (no broker), nothing is
published. The broker side is a few lines in its `start()`:

    shadow = emulator.find("shadow")
    if shadow is not None:
        shadow.set_publisher(lambda messages: loop.call_soon_threadsafe(deliver, messages))

The callback may be called from any thread (HTTP request threads) and must not block.
Device Shadow MQTT topics: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SHADOW_TOPIC_PREFIX = "$aws/things/"


@dataclass(frozen=True)
class OutboundMessage:
    """One message the Device Shadow service publishes (as IoT Core, not as a client)."""

    topic: str
    payload: bytes
    qos: int = 1


ShadowPublisher = Callable[[Sequence[OutboundMessage]], None]


def is_shadow_request(topic: str) -> bool:
    """True when `topic` may be a shadow request topic; cheap enough for the broker's hot path."""
    return topic.startswith(SHADOW_TOPIC_PREFIX) and "/shadow/" in topic
