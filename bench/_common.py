"""What the end-to-end benchmark needs around the pipeline: an emulator in its own process, the
stack deployed from template.yaml, a fleet of devices (one thing and certificate each) and the
zero-loss accounting of both buckets.

The fleet's policy uses the thing-name policy variable, so one policy serves every device and
each device may only connect as its own thing and publish to its own topic
(IoT developer guide, "Thing policy variables"):

    iot:Connect  client/${iot:Connection.Thing.ThingName}
    iot:Publish  topic/<T>/${iot:Connection.Thing.ThingName}
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline import batches, certificates, objects, publish, workbook  # noqa: E402
from pipeline.analysis import is_parquet  # noqa: E402
from pipeline.ledger import Ledger  # noqa: E402

# A sample-like telemetry message of about 200 bytes; `sequence` makes every line unique. It
# carries `run_id`, as the workbook's messages do: template.yaml's NotJsonTopicRule forwards the
# messages that have none (payloads that are not JSON objects).
PAYLOAD_TEMPLATE = (
    '{{"device_id":"{device}","timestamp":{ts},"temperature_c":47.47,"vibration_mm_s":2.171,'
    '"pressure_kpa":316.0,"status":{{"code":0,"message":"ok"}},"sequence":{seq},'
    '"site":"plant-a","line":"line-3","firmware":"1.4.2","run_id":"bench"}}'
)


def payload(device: str, sequence: int, now_ms: int, size: int = 0) -> bytes:
    """A telemetry message; with `size`, padded by a `note` field to about `size` bytes."""
    body = PAYLOAD_TEMPLATE.format(device=device, ts=now_ms, seq=sequence)
    if size > len(body) + 12:
        body = body[:-1] + ',"note":"' + "x" * (size - len(body) - 10) + '"}'
    return body.encode()


def fleet_policy(topic_root: str) -> dict[str, Any]:
    thing = "${iot:Connection.Thing.ThingName}"
    prefix = "arn:aws:iot:*:*:"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{prefix}client/{thing}"},
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{prefix}topic/{topic_root}/{thing}",
            },
        ],
    }


@dataclass
class FleetDevice:
    thing_name: str
    cert_path: Path
    key_path: Path
    certificate_arn: str
    certificate_id: str


def make_fleet(
    iot: Any, count: int, prefix: str, topic_root: str, secrets_dir: Path
) -> list[FleetDevice]:
    """`count` things, each with a certificate signed from its own CSR, sharing one policy."""
    policy_name = f"{prefix}-fleet"
    iot.create_policy(policyName=policy_name, policyDocument=json.dumps(fleet_policy(topic_root)))
    fleet = []
    for i in range(count):
        thing = f"{prefix}-{i:03d}"
        iot.create_thing(thingName=thing)
        cert = certificates.create_from_csr(iot, thing, policy_name, secrets_dir=secrets_dir)
        fleet.append(
            FleetDevice(
                thing,
                cert.certificate_path,
                cert.private_key_path,
                cert.certificate_arn,
                cert.certificate_id,
            )
        )
    return fleet


@dataclass
class FleetRun(publish.PublishReport):
    """The notebooks' publish report (attempted, acknowledged, failed, errors) with the timings
    the benchmark reports."""

    connect_s: float = 0.0
    first_publish: float = 0.0  # time.time()
    last_puback: float = 0.0


def publish_fleet(
    host: str,
    port: int,
    ca_path: str,
    fleet: list[FleetDevice],
    topic_root: str,
    messages: int,
    window: int = 100,
    payload_bytes: int = 0,
    timeout: float = 300.0,
) -> FleetRun:
    """Connect every device (awsiotsdk, MQTT 3.1.1, mutual TLS), then publish `messages` QoS 1
    messages from each, round robin, keeping at most `window` unacknowledged per device (AWS IoT
    Core's in-flight quota is 100)."""
    from awscrt import mqtt
    from awsiot import mqtt_connection_builder

    run = FleetRun()
    connections = [
        mqtt_connection_builder.mtls_from_path(
            endpoint=host,
            port=port,
            cert_filepath=str(d.cert_path),
            pri_key_filepath=str(d.key_path),
            ca_filepath=ca_path,
            client_id=d.thing_name,
            clean_session=True,
            keep_alive_secs=60,
        )
        for d in fleet
    ]
    started = time.perf_counter()
    for future in [c.connect() for c in connections]:
        future.result(60)
    run.connect_s = time.perf_counter() - started
    # The window is kept without per-message callbacks (Python callbacks from awscrt's threads
    # cost the publisher as much CPU as the emulator spends): before a device's next publish,
    # wait for its publish `window` messages earlier.
    pending: list[deque] = [deque() for _ in fleet]
    futures: list[Any] = []
    run.first_publish = time.time()
    topics = [f"{topic_root}/{d.thing_name}" for d in fleet]
    for seq in range(messages):
        now_ms = int(time.time() * 1000)
        for conn, device, topic, queue in zip(connections, fleet, topics, pending, strict=True):
            if len(queue) >= window:
                _settle(queue.popleft(), timeout)
            run.attempted += 1
            future, _ = conn.publish(
                topic,
                payload(device.thing_name, seq, now_ms, payload_bytes),
                mqtt.QoS.AT_LEAST_ONCE,
            )
            queue.append(future)
            futures.append(future)
    for future in futures:
        error = _settle(future, timeout)
        if error is None:
            run.acknowledged += 1
        else:
            run.failed += 1
            run.errors.append(error)
    run.last_puback = time.time()
    for future in [c.disconnect() for c in connections]:
        try:
            future.result(30)
        except Exception:  # already closed by the server
            pass
    return run


def _settle(future: Any, timeout: float) -> str | None:
    """Wait for a publish's PUBACK; the error text if it failed (server closed, refused)."""
    try:
        future.result(timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _rows(body: bytes) -> int:
    """Rows of a parsed object: Parquet (record format conversion) or JSON lines."""
    if is_parquet(body):
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.ParquetFile(pa.BufferReader(body)).metadata.num_rows
    return len(batches.split_lines(body))


class Accounting:
    """Counts both buckets' lines incrementally: each object is read once, when it first shows."""

    def __init__(self, s3: Any, out: dict[str, str], environment: str) -> None:
        self.s3 = s3
        self.out = out
        self.where = workbook.prefixes(environment)
        self.seen: dict[tuple[str, str], int] = {}
        self.failed_reasons: dict[str, int] = {}

    def _count(self, bucket: str, prefix: str, reader: Callable[[bytes], int]) -> int:
        total = 0
        for obj in objects.list_objects(self.s3, bucket, prefix):
            key = (bucket, obj.key)
            if key not in self.seen:
                self.seen[key] = reader(objects.read_object(self.s3, obj))
            total += self.seen[key]
        return total

    def _failed(self, body: bytes) -> int:
        count = 0
        for item in batches.iter_processing_failed(body):
            count += 1
            reason = getattr(item, "error_code", None) or "unreadable"
            if isinstance(item, batches.FailedRecord) and workbook.is_not_json_record(item):
                # a payload that is not a JSON object, forwarded by NotJsonTopicRule
                reason = "not a JSON object (NotJsonTopicRule)"
            self.failed_reasons[reason] = self.failed_reasons.get(reason, 0) + 1
        return count

    def figures(self) -> dict[str, int]:
        lines = lambda body: len(batches.split_lines(body))  # noqa: E731
        raw = self.out["RawBucketName"]
        parsed = self.out["ParsedBucketName"]
        return {
            "raw_lines": self._count(raw, self.where["data"], lines),
            "rule_errors": len(objects.list_objects(self.s3, raw, workbook.RULE_ERRORS_PREFIX)),
            "parsed_rows": self._count(parsed, self.where["data"], _rows),
            "processing_failed": self._count(parsed, self.where["processing_failed"], self._failed),
        }

    def wait_complete(self, acknowledged: int, timeout: float, poll: float = 0.2) -> dict:
        """Poll until raw + rule errors == acknowledged and parsed + failed == raw; return the
        figures and the time (time.time()) the last count was first seen complete."""
        deadline = time.monotonic() + timeout
        while True:
            figures = self.figures()
            complete = Ledger.of(figures).complete(acknowledged)
            if complete or time.monotonic() > deadline:
                return {**figures, "complete": complete, "at": time.time()}
            time.sleep(poll)
