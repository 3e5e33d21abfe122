"""A device: connect to IoT Core over MQTT with mutual TLS (awsiotsdk) and publish telemetry.

The client id is the thing name, which is what the stack's IoT policy allows to connect. Every
QoS 1 publish is counted as acknowledged only when its PUBACK arrived; that count is what the
later notebooks reconcile against the Firehose batches.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.paths import DATA

# AWS IoT Core accepts at most 100 unacknowledged QoS 1 publishes per client (IoT Core quotas).
MAX_IN_FLIGHT = 100


@dataclass(frozen=True)
class Message:
    """One message of the sample data: the equipment (last topic level) and the payload bytes."""

    equipment: str
    payload: bytes
    is_json: bool


def load_messages(
    path: Path | None = None, limit: int | None = None, restamp: bool = True
) -> list[Message]:
    """The sample telemetry (data/telemetry.jsonl), optionally cut to `limit` messages.

    With `restamp`, each JSON payload's `timestamp` is set to the publish time (epoch ms) when it
    is sent, like a device stamping its own clock; see `payload_at`.
    """
    path = path or DATA / "telemetry.jsonl"
    messages = []
    with open(path) as handle:
        for line in handle:
            item = json.loads(line)
            if "payload" in item:
                body = json.dumps(item["payload"], separators=(",", ":")).encode()
                messages.append(Message(item["equipment"], body, restamp))
            elif "raw" in item:
                messages.append(Message(item["equipment"], item["raw"].encode(), False))
            else:
                messages.append(
                    Message(item["equipment"], base64.b64decode(item["raw_base64"]), False)
                )
            if limit is not None and len(messages) >= limit:
                break
    return messages


def payload_at(message: Message, now_ms: int, run_id: str | None = None) -> bytes:
    """The payload as sent: the device's clock in `timestamp` and the publish run's id in
    `run_id` (JSON payloads only: the malformed samples are sent byte for byte)."""
    if not message.is_json:
        return message.payload
    data = json.loads(message.payload)
    data["timestamp"] = now_ms
    if run_id is not None:
        data["run_id"] = run_id
    return json.dumps(data, separators=(",", ":")).encode()


def not_json_objects(messages: Iterable[Message]) -> int:
    """How many of `messages` are sent byte for byte: payloads that are not JSON objects, which
    the topic rule's SQL cannot evaluate (04 must find each as a not-JSON failed record)."""
    return sum(not message.is_json for message in messages)


@dataclass
class PublishReport:
    attempted: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    per_topic: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: str | None = None
    started_ms: int = 0  # the device's clock at the first and the last publish
    finished_ms: int = 0
    timed_out: int = 0  # publishes with no PUBACK in time (counted in `failed`)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run id": self.run_id,
            "attempted": self.attempted,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "of which no PUBACK in time": self.timed_out,
            "errors": self.errors[:10],
            "per_topic": self.per_topic,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ReceivedMessage:
    topic: str
    payload: bytes
    received_at: float


class Device:
    """An MQTT 3.1.1 connection with awsiotsdk, as the device would open it."""

    def __init__(
        self,
        host: str,
        port: int,
        certificate_path: Path,
        private_key_path: Path,
        root_ca_path: str,
        client_id: str,
        clean_session: bool = True,
    ) -> None:
        from awscrt import mqtt
        from awsiot import mqtt_connection_builder

        self._mqtt = mqtt
        self.client_id = client_id
        self.interruptions: list[str] = []
        self.received: deque[ReceivedMessage] = deque(maxlen=10_000)
        self.connection = mqtt_connection_builder.mtls_from_path(
            endpoint=host,
            port=port,
            cert_filepath=str(certificate_path),
            pri_key_filepath=str(private_key_path),
            ca_filepath=str(root_ca_path),
            client_id=client_id,
            clean_session=clean_session,
            keep_alive_secs=30,
            on_connection_interrupted=lambda connection, error, **kw: self.interruptions.append(
                str(error)
            ),
        )

    @classmethod
    def for_target(
        cls, target: Any, certificate: Any, client_id: str, clean_session: bool = True
    ) -> Device:
        """A device for a `pipeline.target.Target` with a `certificates.DeviceCertificate`."""
        return cls(
            target.mqtt_host,
            target.mqtt_port,
            certificate.certificate_path,
            certificate.private_key_path,
            target.root_ca_path,
            client_id,
            clean_session,
        )

    def connect(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.connection.connect().result(timeout)

    def disconnect(self, timeout: float = 10.0) -> None:
        try:
            self.connection.disconnect().result(timeout)
        except Exception:  # already closed by the server: nothing left to close
            pass

    def subscribe(self, topic_filter: str, timeout: float = 10.0) -> dict[str, Any]:
        """Subscribe like the console's MQTT test client: keep what arrives in `received`."""

        def on_message(topic, payload, **kwargs):
            self.received.append(ReceivedMessage(topic, payload, time.time()))

        future, _ = self.connection.subscribe(
            topic_filter, self._mqtt.QoS.AT_LEAST_ONCE, on_message
        )
        return future.result(timeout)

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> None:
        future, _ = self.connection.publish(topic, payload, self._mqtt.QoS.AT_LEAST_ONCE)
        future.result(timeout)

    def publish_all(
        self,
        topic_root: str,
        messages: Iterable[Message],
        max_rate: float | None = None,
        timeout: float = 30.0,
        run_id: str | None = None,
    ) -> PublishReport:
        """Publish each message to `<topic_root>/<equipment>` at QoS 1 and count the PUBACKs.

        At most MAX_IN_FLIGHT publishes wait for their PUBACK at once; `max_rate` (messages/s)
        keeps under AWS's 100 publishes/s per connection when the target is AWS. A publish whose
        PUBACK has not come `timeout` s after the last send counts as failed (a late PUBACK is
        then ignored), so `acknowledged` never grows after the report is returned.
        """
        messages = list(messages)
        report = PublishReport(run_id=run_id, started_ms=int(time.time() * 1000))
        lock = threading.Lock()
        window = threading.Semaphore(MAX_IN_FLIGHT)
        pending: list[tuple[Any, str]] = []
        settled: set[int] = set()
        started = time.monotonic()

        def done(future, topic):
            try:
                future.result()
                with lock:
                    if id(future) in settled:
                        return
                    settled.add(id(future))
                    report.acknowledged += 1
                    report.per_topic[topic] = report.per_topic.get(topic, 0) + 1
            except Exception as exc:  # the server closed the connection or refused the publish
                with lock:
                    if id(future) in settled:
                        return
                    settled.add(id(future))
                    report.failed += 1
                    report.errors.append(f"{topic}: {exc}")
            finally:
                window.release()

        for i, message in enumerate(messages):
            if max_rate:
                delay = started + i / max_rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            topic = f"{topic_root}/{message.equipment}"
            window.acquire()
            report.attempted += 1
            now_ms = int(time.time() * 1000)
            report.finished_ms = now_ms
            payload = payload_at(message, now_ms, run_id)
            future, _ = self.connection.publish(topic, payload, self._mqtt.QoS.AT_LEAST_ONCE)
            future.add_done_callback(lambda f, t=topic: done(f, t))
            pending.append((future, topic))
        deadline = time.monotonic() + timeout
        for future, _topic in pending:
            try:
                future.exception(max(0.0, deadline - time.monotonic()))
            except Exception:
                pass
        with lock:
            for future, topic in pending:
                if id(future) not in settled:
                    settled.add(id(future))
                    report.failed += 1
                    report.timed_out += 1
                    report.errors.append(f"{topic}: no PUBACK within {timeout:.0f} s")
        report.seconds = time.monotonic() - started
        return report


def try_connect(target: Any, certificate: Any, client_id: str) -> dict[str, Any]:
    """Connect and disconnect once; report what the device saw (for the troubleshooting cells)."""
    device = Device.for_target(target, certificate, client_id)
    try:
        device.connect()
    except Exception as exc:  # what awscrt reports is the lesson: show it, do not raise
        return {"client id": client_id, "connected": False, "error": f"{type(exc).__name__}: {exc}"}
    device.disconnect()
    return {"client id": client_id, "connected": True, "error": None}


def try_publish(
    device: Device, topic: str, payload: bytes = b'{"probe": true}', timeout: float = 10.0
) -> dict[str, Any]:
    """Publish once at QoS 1 and report whether a PUBACK came back or the server hung up.

    Over MQTT 3.1.1, AWS IoT Core answers a publish the policy denies by closing the connection
    (the SDK reports AWS_ERROR_MQTT_UNEXPECTED_HANGUP or a timeout), not with an error code.
    """
    try:
        device.publish(topic, payload, timeout)
        outcome = {"topic": topic, "acknowledged": True, "error": None}
    except Exception as exc:
        outcome = {"topic": topic, "acknowledged": False, "error": f"{type(exc).__name__}: {exc}"}
    time.sleep(0.5)  # let the interruption callback run
    outcome["connection interrupted"] = bool(device.interruptions)
    outcome["interruptions"] = list(device.interruptions)
    return outcome


def received_table(device: Device, limit: int = 20) -> list[dict[str, Any]]:
    """The last messages a subscription received, as the console's MQTT test client lists them."""
    rows = []
    for item in list(device.received)[-limit:]:
        try:
            shown = json.loads(item.payload)
        except ValueError:
            shown = item.payload[:80]
        rows.append(
            {
                "topic": item.topic,
                "received": time.strftime("%H:%M:%S", time.gmtime(item.received_at)),
                "payload": shown,
            }
        )
    return rows


def malformed(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """The sample's bad messages (on purpose): payloads that are not JSON objects, and JSON
    objects that are not telemetry (no `sequence`), with what becomes of each (see
    data/generate.py)."""
    rows = []
    for index, message in enumerate(messages):
        if message.is_json and "sequence" in json.loads(message.payload):
            continue
        rows.append(
            {
                "message #": index,
                "equipment": message.equipment,
                "payload": message.payload.decode("utf-8", "replace"),
                "expected": "Lambda: ProcessingFailed"
                if message.is_json
                else "PUBACK, then no action of TopicRule (its SQL needs a JSON object);"
                " NotJsonTopicRule forwards it base64: Lambda: ProcessingFailed",
            }
        )
    return rows
