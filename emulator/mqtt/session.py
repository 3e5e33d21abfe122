"""What the broker keeps per client id: subscriptions, messages in flight and queued messages.

A persistent session (MQTT 3.1.1 cleanSession=0, MQTT 5 Session Expiry Interval > 0) outlives
its connection ("MQTT persistent sessions": subscriptions and QoS 1 messages are kept for an
offline client, one hour by default).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class QueuedMessage:
    """A message on its way to one subscriber."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: dict


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
