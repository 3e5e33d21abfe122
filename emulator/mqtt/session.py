"""What the broker keeps per client id: subscriptions, messages in flight and queued messages.

A persistent session (MQTT 3.1.1 cleanSession=0, MQTT 5 Session Expiry Interval > 0) outlives
its connection ("MQTT persistent sessions": subscriptions and QoS 1 messages are kept for an
offline client, one hour by default), and a restart of the emulator too: `Session.to_record` /
`Session.from_record` are what the broker writes under `<data_dir>/mqtt/sessions/`
(https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions).
"""

from __future__ import annotations

import base64
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from emulator.mqtt import codec


@dataclass
class QueuedMessage:
    """A message on its way to one subscriber."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: dict
    # Its record, made once: a queue is written again whenever it changes, and encoding every
    # payload each time made a 32 MiB queue cost ~40 MB of base64 per write.
    _record: dict[str, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def to_record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = {
                "topic": self.topic,
                **message_to_record(self.payload, self.qos, self.props),
            }
        return self._record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> QueuedMessage:
        payload, qos, props = message_from_record(record)
        return cls(record["topic"], payload, qos, False, props)


@dataclass
class Session:
    """What the broker keeps for a client id: subscriptions and undelivered QoS 1 messages."""

    client_id: str
    persistent: bool
    expiry_s: int
    # topic filter -> MQTT 5 subscription options byte (QoS in bits 0-1)
    subscriptions: dict[str, int] = field(default_factory=dict)
    # QoS 1 messages waiting: the client is offline, or has 100 unacknowledged already
    queue: deque[QueuedMessage] = field(default_factory=deque)
    # packet id -> message sent to the client and not yet acknowledged
    inflight: dict[int, QueuedMessage] = field(default_factory=dict)
    queued_bytes: int = 0  # payload bytes in `queue`
    dropping: bool = False  # a message was dropped since the queue last had room
    next_packet_id: int = 1
    connection: Any = None  # the live Connection, if any
    disconnected_at: float | None = None
    principal: Any = None

    def allocate_packet_id(self) -> int:
        for _ in range(65535):
            pid = self.next_packet_id
            self.next_packet_id = pid % 65535 + 1
            if pid not in self.inflight:
                return pid
        raise RuntimeError("65,535 messages in flight to one client")

    def to_record(self) -> dict[str, Any]:
        """What survives a restart: subscriptions, and the QoS 1 messages not yet acknowledged
        (in flight first, they were sent first) or still queued. The time of the disconnect is
        wall-clock time, so that the expiry counts the time the emulator was down too."""
        offline_since = None
        if self.connection is None and self.disconnected_at is not None:
            offline_since = time.time() - (time.monotonic() - self.disconnected_at)
        return {
            "expiry_s": self.expiry_s,
            "subscriptions": self.subscriptions,
            "messages": [m.to_record() for m in (*self.inflight.values(), *self.queue)],
            "offline_since": offline_since,
        }

    @classmethod
    def from_record(cls, client_id: str, record: dict[str, Any], now: float) -> Session | None:
        """The session of a record, offline since it was written (or since `now`, for one that
        was connected when the emulator stopped); None once its expiry has passed."""
        expiry_s = int(record["expiry_s"])
        offline_since = record.get("offline_since")
        offline_since = now if offline_since is None else float(offline_since)
        if now - offline_since > expiry_s:
            return None
        session = cls(client_id, persistent=True, expiry_s=expiry_s)
        session.subscriptions = {str(k): int(v) for k, v in record["subscriptions"].items()}
        session.queue.extend(QueuedMessage.from_record(m) for m in record["messages"])
        session.queued_bytes = sum(len(m.payload) for m in session.queue)
        session.disconnected_at = time.monotonic() - (now - offline_since)
        return session


def message_to_record(payload: bytes, qos: int, props: dict) -> dict[str, Any]:
    """What the record of a queued or a retained message keeps of it: the payload (base64), the
    QoS and the MQTT 5 properties."""
    return {
        "payload": base64.b64encode(payload).decode(),
        "qos": qos,
        "props": props_to_record(props),
    }


def message_from_record(record: dict[str, Any]) -> tuple[bytes, int, dict]:
    """(payload, qos, props) of a `message_to_record` record."""
    return (
        base64.b64decode(record["payload"]),
        int(record["qos"]),
        props_from_record(record.get("props", [])),
    )


def props_to_record(props: dict) -> list:
    """MQTT 5 properties as JSON: [id, value], bytes as {"b64": ...}, user properties as pairs."""
    items = []
    for key, value in props.items():
        if isinstance(value, bytes):
            value = {"b64": base64.b64encode(value).decode()}
        elif key == codec.USER_PROPERTY:
            value = [list(pair) for pair in value]
        items.append([key, value])
    return items


def props_from_record(items: list) -> dict:
    props: dict = {}
    for key, value in items:
        if isinstance(value, dict):
            value = base64.b64decode(value["b64"])
        elif key == codec.USER_PROPERTY:
            value = [tuple(pair) for pair in value]
        props[int(key)] = value
    return props
