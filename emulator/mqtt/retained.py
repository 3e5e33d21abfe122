"""Retained messages: one per topic, durable under `<data_dir>/mqtt/retained/`, bounded.

"MQTT retained messages" (https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-retain):
- Only one message per topic name is retained; a new retained PUBLISH replaces it, and one with
  a 0-byte payload deletes it (it is still delivered, but not retained).
- "When an account has stored the maximum number of retained messages, AWS IoT Core returns a
  throttled response to messages published with RETAIN set and payloads greater than 0 bytes
  until some retained messages are deleted": `refusal()` says so before the message is taken.
- With MQTT 5, a retained message with a Message Expiry Interval is not delivered to new
  subscribers once it expired (nor listed).
The iot-data API lists and reads them (ListRetainedMessages, GetRetainedMessage; data_api.py).

Thread-safe: the broker's event loop (client PUBLISH) and the HTTP threads (iot-data) use it.
Each change is written before the call returns (persistence/records.py), so a retained message
that was acknowledged survives `kill -9`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.mqtt import codec
from emulator.mqtt.limits import MAX_RETAINED_MESSAGES
from emulator.mqtt.session import message_from_record, message_to_record
from emulator.persistence.records import RecordFiles

log = logging.getLogger(__name__)

KIND = "mqtt-retained-message"


@dataclass(frozen=True)
class RetainedMessage:
    topic: str
    payload: bytes
    qos: int
    props: dict  # the MQTT 5 properties forwarded to subscribers (broker._FORWARDED_PROPERTIES)
    last_modified_ms: int
    expires_at_ms: int | None = None  # MQTT 5 Message Expiry Interval, as a deadline

    def expired(self, now_ms: int) -> bool:
        return self.expires_at_ms is not None and now_ms >= self.expires_at_ms

    def props_for_delivery(self, now_ms: int) -> dict:
        """The properties to send: the expiry interval is what is left of it (MQTT 5 3.3.2.3.3)."""
        if self.expires_at_ms is None:
            return self.props
        left = max(0, (self.expires_at_ms - now_ms) // 1000)
        return {**self.props, codec.MESSAGE_EXPIRY_INTERVAL: left}

    def user_properties(self) -> list[tuple[str, str]]:
        return list(self.props.get(codec.USER_PROPERTY, ()))

    def to_record(self) -> dict[str, Any]:
        return {
            **message_to_record(self.payload, self.qos, self.props),
            "last_modified_ms": self.last_modified_ms,
            "expires_at_ms": self.expires_at_ms,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RetainedMessage:
        payload, qos, props = message_from_record(record)
        last_modified_ms = int(record["last_modified_ms"])
        return cls(
            record["key"], payload, qos, props, last_modified_ms, record.get("expires_at_ms")
        )


class RetainedStore:
    """The account's retained messages, by topic."""

    def __init__(
        self,
        directory: Path | None,
        data_dir: Path | None,
        durable: bool = True,
        limit: int = MAX_RETAINED_MESSAGES,
    ) -> None:
        # Without a data directory (a broker built alone, in tests) the store is in memory.
        self._files = (
            RecordFiles(directory, KIND, data_dir, durable)
            if directory is not None and data_dir is not None
            else None
        )
        self.limit = limit
        self._messages: dict[str, RetainedMessage] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._files is None:
            return
        now_ms = _now_ms()
        messages = [RetainedMessage.from_record(r) for r in self._files.load()]
        with self._lock:
            self._messages = {m.topic: m for m in messages if not m.expired(now_ms)}
        if self._messages:
            log.info("%d retained message(s) loaded", len(self._messages))

    def refusal(self, topic: str, payload_size: int) -> str | None:
        """Why a retained PUBLISH to `topic` is throttled (the account's quota), or None."""
        if payload_size == 0:
            return None  # a deletion is always taken
        with self._lock:
            if len(self._messages) < self.limit or topic in self._messages:
                return None
            if self._purge_expired() and len(self._messages) < self.limit:
                return None
        return (
            f"the account stores {self.limit} retained messages, the quota 'Maximum number of "
            "retained messages per account': delete some (publish an empty retained message to "
            "their topics) before retaining a message on a new topic"
        )

    def put(self, topic: str, payload: bytes, qos: int, props: dict) -> bool:
        """Retain (non-empty payload) or delete (empty payload) the message of `topic`; False
        when the quota refused it (a race with another publisher past `refusal`)."""
        now_ms = _now_ms()
        with self._lock:
            if not payload:
                if self._messages.pop(topic, None) is not None and self._files is not None:
                    self._files.remove(topic)
                return True
            if len(self._messages) >= self.limit and topic not in self._messages:
                if not self._purge_expired() or len(self._messages) >= self.limit:
                    return False
            expiry = props.get(codec.MESSAGE_EXPIRY_INTERVAL)
            message = RetainedMessage(
                topic,
                payload,
                qos,
                {k: v for k, v in props.items() if k != codec.MESSAGE_EXPIRY_INTERVAL},
                now_ms,
                now_ms + int(expiry) * 1000 if expiry is not None else None,
            )
            if self._files is not None:
                self._files.save(topic, message.to_record())
            self._messages[topic] = message
        return True

    def _purge_expired(self) -> int:
        """Forget the expired messages (under the lock; at the quota only, so that expired
        messages do not count against it); how many."""
        now_ms = _now_ms()
        expired = [t for t, m in self._messages.items() if m.expired(now_ms)]
        for topic in expired:
            del self._messages[topic]
        if expired and self._files is not None:
            self._files.save_many([(topic, None) for topic in expired])
        return len(expired)

    def get(self, topic: str) -> RetainedMessage | None:
        message = self._messages.get(topic)
        if message is None or message.expired(_now_ms()):
            return None
        return message

    def topics(self) -> list[str]:
        """Topics of the live retained messages, sorted (a stable order for paging)."""
        now_ms = _now_ms()
        with self._lock:
            return sorted(t for t, m in self._messages.items() if not m.expired(now_ms))

    def __contains__(self, topic: str) -> bool:
        return self.get(topic) is not None

    def __len__(self) -> int:
        return len(self._messages)


def _now_ms() -> int:
    return int(time.time() * 1000)
