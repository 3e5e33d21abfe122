"""Component `emulator.firehose`: the data path of Firehose delivery streams to S3.

moto stays the control plane (Create/Describe/Update/DeleteDeliveryStream); PutRecord and
PutRecordBatch are answered here. Each put is appended to the stream's durable spool
(`spool.py`) before it is acknowledged; a thread per stream turns buffered records into S3
objects when the buffering hints say so (`buffering.py`), runs the Lambda processor
(`processor.py`), names objects as Firehose does (`keys.py`) and writes them through the
emulator's own S3 endpoint (`s3.py`). A failed write is retried with backoff and the records
stay spooled until it succeeds (Firehose retries S3 delivery for up to 24 h; we never drop).

Notebooks can see why each object was written: `deliveries(stream)` and the route
`/_emulator/firehose/deliveries?stream=<name>` list the objects with the flush reason.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from emulator.firehose import (
    buffering,
    conversion,
    keys,
    names,
    partitioned,
    processor,
    validation,
)
from emulator.firehose.access import RoleAccess
from emulator.firehose.buffering import BufferedRecord
from emulator.firehose.config import S3Target, StreamConfig, StreamNotFound, load
from emulator.firehose.s3 import S3_ERROR_MESSAGES, DeliveryError, S3Writer, encode
from emulator.firehose.spool import Spool
from emulator.gateway import AwsRequest, AwsResponse, ServiceError, json_error, json_response

if TYPE_CHECKING:
    from emulator.server import Emulator

log = logging.getLogger(__name__)

# API reference, PutRecord / PutRecordBatch: "Each record … can be as large as 1,000 KB (before
# base64 encoding), up to a limit of 4 MB for the entire request"; at most 500 records.
MAX_RECORD_BYTES = 1_024_000
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_BACKOFF_S = 30.0
# Emulator-only clock control: every buffer interval is divided by this factor, so a stream
# keeping AWS-valid hints (60 s or more) flushes in seconds locally. `python -m emulator
# --time-scale N` sets it; 1 (the default) is AWS's timing. Listed in emulator/DEVIATIONS.md.
TIME_SCALE_ENV = "IOT_EMULATOR_TIME_SCALE"


def time_scale_from_environment() -> float:
    """IOT_EMULATOR_TIME_SCALE as a factor >= 1; ValueError naming the variable otherwise."""
    text = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        scale = float(text)
    except ValueError:
        scale = 0.0
    if not (scale >= 1 and scale < float("inf")):
        raise ValueError(f"{TIME_SCALE_ENV}={text!r}: give a number >= 1 (1: AWS's timing)")
    return scale


def scaled(target: S3Target, scale: float) -> S3Target:
    """`target` with its buffer interval divided by `scale` (the size hint is unchanged)."""
    if scale == 1:
        return target
    hints = buffering.BufferingHints(
        target.buffering.size_bytes, target.buffering.interval_s / scale
    )
    return dataclasses.replace(target, buffering=hints)


DELIVERY_LOG_LENGTH = 1000
ERROR_LOG_LENGTH = 200
LOG_STREAM_LINE = {"destination": "DestinationDelivery", "backup": "BackupDelivery"}
# Lambda invocation errors of the guide's "Monitor Amazon Data Firehose Using CloudWatch Logs"
# (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-logs.html).
LAMBDA_ACCESS_ERRORS = {
    "AssumeRole": (
        "AssumeRoleAccessDenied",
        "Access was denied. Ensure that the trust policy for the provided IAM role allows "
        "Firehose to assume the role.",
    ),
    "Invoke": (
        "InvokeAccessDenied",
        "Access was denied. Ensure that the access policy allows access to the Lambda function.",
    ),
}


class LambdaAccessDenied(Exception):
    """The stream's role may not call the processor; `processor.run` retries it, then the
    records go to processing-failed as `Lambda.<code>` (guide: data-transformation-failure-
    handling)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FirehoseError(ServiceError):
    """An error of the Firehose API, in AWS's terms."""


def _validation_error(path: str, constraint: str) -> FirehoseError:
    # The shape of AWS's request-validation errors (a ValidationException per constraint).
    return FirehoseError(
        "ValidationException",
        f"1 validation error detected: Value at '{path}' failed to satisfy constraint: "
        f"{constraint}",
    )


def validate_records(records: list[bytes], single: bool = False) -> None:
    """The PutRecord / PutRecordBatch limits, with AWS's error codes."""
    if not single:
        if not records:
            raise _validation_error("records", "Member must have length greater than or equal to 1")
        if len(records) > MAX_BATCH_RECORDS:
            raise _validation_error(
                "records", f"Member must have length less than or equal to {MAX_BATCH_RECORDS}"
            )
    for index, data in enumerate(records, start=1):
        if len(data) > MAX_RECORD_BYTES:
            path = "record.data" if single else f"records.{index}.member.data"
            raise _validation_error(
                path, f"Member must have length less than or equal to {MAX_RECORD_BYTES}"
            )
    total = sum(len(d) for d in records)
    if total > MAX_BATCH_BYTES:
        raise FirehoseError(
            "InvalidArgumentException",
            f"The request carries {total} bytes of record data; PutRecordBatch accepts at most "
            f"4 MiB ({MAX_BATCH_BYTES} bytes) per request. Split it into smaller batches.",
        )


_id_lock = threading.Lock()
_id_counter = 0


def new_record_id() -> str:
    """A 56-digit, time-ordered id shaped like Firehose's record ids."""
    return new_record_ids(1)[0]


def new_record_ids(count: int) -> list[str]:
    """`count` such ids for one put: one lock round trip and one clock read for all of them."""
    global _id_counter
    with _id_lock:
        first = _id_counter + 1
        _id_counter = (_id_counter + count) % 10**12
    head = f"49{time.time_ns():020d}"
    # The random tail keeps ids unique across processes sharing a data directory; one draw per
    # put, the counter (unique within the process) tells the records of a put apart.
    tail = f"{random.randrange(10**22):022d}"
    return [f"{head}{(first + i) % 10**12:012d}{tail}" for i in range(count)]


def _iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass
class _InFlight:
    """What has been done for the batch being delivered, so a retry does not redo it."""

    first_id: str
    count: int
    outcome: processor.ProcessorOutcome | None = None
    # With format conversion: (the Parquet/ORC body and its row count, error lines, their
    # source records), computed once per batch.
    converted: tuple[bytes, int, list[bytes], list[BufferedRecord]] | None = None
    written: set[str] = field(default_factory=set)


@dataclass
class _Consumer:
    position: int = 0  # records[:position] are delivered by this consumer
    retry_at: float = 0.0
    failures: int = 0
    in_flight: _InFlight | None = None


class _Stream:
    """Runtime state of one delivery stream: its spool, buffered records and worker thread."""

    def __init__(self, account_id: str, region: str, name: str, spool: Spool) -> None:
        self.account_id = account_id
        self.region = region
        self.name = name
        self.spool = spool
        self.records: list[BufferedRecord] = spool.pending()
        self.cond = threading.Condition()
        self.consumers: dict[str, _Consumer] = {}
        for consumer in ("destination", "backup"):
            # Records before this consumer's checkpoint are delivered by it already.
            done = spool.checkpoints.get(consumer, 0)
            position = sum(1 for r in self.records if r.end_offset <= done)
            self.consumers[consumer] = _Consumer(position=position)
        self.thread: threading.Thread | None = None
        self.wake = False  # set by a put, so a notify between two waits is not lost
        self.missing_logged = False
        # True once this process saw the stream in moto: if it disappears after that it was
        # deleted (DeleteDeliveryStream "deletes a Firehose stream and its data"). Records
        # recovered from disk wait instead, because moto's state does not survive a restart.
        self.seen = False
        self.generation = 0  # bumped when the stream's data is discarded


class FirehoseService:
    """Component `emulator.firehose`."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._root = Path(emulator.data_dir) / "firehose"
        self._streams: dict[tuple[str, str, str], _Stream] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._started = False
        self._writer = S3Writer(lambda: emulator.endpoint_url)
        self._deliveries: dict[str, deque[dict[str, Any]]] = {}
        # (account, region, name) -> (moto's stream object, its version, encryption status,
        # config): a put reads moto's model only when one of these changed.
        self._put_configs: dict[tuple[str, str, str], tuple[Any, Any, Any, StreamConfig]] = {}
        self._errors: dict[str, deque[dict[str, Any]]] = {}
        self._access = RoleAccess(emulator)
        # Tests of the processor contract may replace this with a fake of the same signature.
        self.invoke = self._invoke_lambda
        self._partitioner = partitioned.Partitioner()
        self.time_scale = time_scale_from_environment()
        emulator.firehose = self
        gateway = emulator.gateway
        names.register(gateway)  # before the handlers below: a bad name is refused first
        validation.register(gateway)  # CreateDeliveryStream / UpdateDestination, before moto
        gateway.on("firehose", "PutRecord", self._handle_put_record)
        gateway.on("firehose", "PutRecordBatch", self._handle_put_record_batch)
        gateway.after("firehose", "DeleteDeliveryStream", self._after_delete)
        gateway.after("firehose", "UpdateDestination", self._after_update)
        for operation in (
            "CreateDeliveryStream",
            "StartDeliveryStreamEncryption",
            "StopDeliveryStreamEncryption",
        ):
            gateway.after("firehose", operation, self._forget_put_config)
        gateway.route("/_emulator/firehose/deliveries", self._route_deliveries)
        gateway.route("/_emulator/firehose/errors", self._route_errors)

    # Life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start delivering, beginning with records spooled by an earlier run."""
        if self._started:
            return
        self._started = True
        self._stopping.clear()
        for path in sorted(self._root.glob("*/*/*.spool")):
            account_id, region, name = path.parent.parent.name, path.parent.name, path.stem
            try:
                stream = self._stream(account_id, region, name)
            except FirehoseError as exc:
                log.warning("Firehose: spool %s ignored: %s", path, exc.message)
                continue
            if stream.records:
                log.info("Firehose %s: recovered %d spooled records", name, len(stream.records))

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            with stream.cond:
                stream.cond.notify_all()
        for stream in streams:
            if stream.thread:
                stream.thread.join(timeout=10)
            stream.spool.close()
        with self._lock:
            self._streams.clear()
        self._started = False

    # Public interface ---------------------------------------------------------------------
    def put_records(
        self, account_id: str, region: str, stream_name: str, records: list[bytes]
    ) -> list[str]:
        """Spool `records` durably and return their RecordIds; raises FirehoseError."""
        validate_records(records)
        self._config_for_put(account_id, region, stream_name)
        return self._append(account_id, region, stream_name, records)

    def check_put(
        self, account_id: str, region: str, stream_name: str, records: list[bytes]
    ) -> None:
        """PutRecordBatch's checks of one request, without spooling; raises FirehoseError.

        With `put_checked`, a caller that has many small requests (the rules engine, for the
        messages of one MQTT read) checks each request on its own, as AWS would answer it,
        and then spools all of them with one write."""
        validate_records(records)
        self._config_for_put(account_id, region, stream_name)

    def put_checked(
        self, account_id: str, region: str, stream_name: str, records: list[bytes]
    ) -> list[str]:
        """Spool records whose requests passed `check_put`, in one durable append.

        The per-request limits (500 records, 4 MiB) were checked per request, so `records` may
        hold several requests' worth. Raises FirehoseError (ServiceUnavailableException) if the
        spool cannot be written: then none of them is acknowledged."""
        if not records:
            return []
        return self._append(account_id, region, stream_name, records)

    def deliveries(self, stream_name: str) -> list[dict[str, Any]]:
        """The objects written for `stream_name`, oldest first, with why each was flushed."""
        return list(self._deliveries.get(stream_name, ()))

    def errors(self, stream_name: str) -> list[dict[str, Any]]:
        """Recent delivery errors of `stream_name` (each is retried until it succeeds)."""
        return list(self._errors.get(stream_name, ()))

    def flush_pending(self, timeout: float = 30.0, stream_name: str | None = None) -> bool:
        """Wait until every stream (or the one named) has delivered every spooled record
        (for tests, notebooks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                streams = [s for key, s in self._streams.items() if stream_name in (None, key[2])]
            if all(not s.records for s in streams):
                return True
            time.sleep(0.05)
        return False

    # PutRecord / PutRecordBatch -------------------------------------------------------------
    def _config_for_put(self, account_id: str, region: str, name: str) -> StreamConfig:
        from moto.firehose.models import firehose_backends

        key = (account_id, region, name)
        try:
            model = firehose_backends[account_id][region].delivery_streams.get(name)
        except KeyError:
            model = None
        cached = self._put_configs.get(key)
        if model is None:
            cached = None
        else:
            # UpdateDestination bumps version_id; Start/StopDeliveryStreamEncryption change
            # the status in place; Delete + Create make a new object: each misses the cache,
            # even when the change bypassed the gateway (a CloudFormation stack).
            version = model.version_id
            status = (model.delivery_stream_encryption_configuration or {}).get("Status")
            if cached is not None and not (
                cached[0] is model and cached[1] == version and cached[2] == status
            ):
                cached = None
        if cached is not None:
            cfg = cached[3]
        else:
            try:
                cfg = load(account_id, region, name)
            except StreamNotFound as exc:
                self._put_configs.pop(key, None)
                raise FirehoseError("ResourceNotFoundException", str(exc)) from exc
            if len(self._put_configs) > 10_000:
                self._put_configs.clear()
            self._put_configs[key] = (model, version, status, cfg)
        if cfg.stream_type != "DirectPut":
            raise FirehoseError(
                "InvalidArgumentException",
                f"Delivery stream {name} has source type {cfg.stream_type}; PutRecord and "
                "PutRecordBatch are only allowed on DirectPut delivery streams.",
            )
        if cfg.destination is None:
            raise FirehoseError(
                "InvalidArgumentException",
                f"Delivery stream {name} delivers to {cfg.destination_type}; the local emulator "
                "delivers only to S3 (ExtendedS3DestinationConfiguration or S3).",
            )
        return cfg

    def _append(self, account_id: str, region: str, name: str, records: list[bytes]) -> list[str]:
        stream = self._stream(account_id, region, name)
        now_ms = int(time.time() * 1000)
        entries = [
            (record_id, now_ms, data)
            for record_id, data in zip(new_record_ids(len(records)), records, strict=True)
        ]
        with stream.cond:
            try:
                spooled = stream.spool.append(entries)
            except OSError as exc:  # e.g. a full disk: nothing was acknowledged, retry later
                raise FirehoseError(
                    "ServiceUnavailableException",
                    f"the record spool of {name} could not be written ({exc}); back off and retry",
                    503,
                ) from exc
            stream.records.extend(spooled)
            stream.seen = True
            stream.wake = True
            stream.cond.notify_all()
        return [record_id for record_id, _, _ in entries]

    def _decode_data(self, value: Any, path: str) -> bytes:
        if not isinstance(value, str):
            raise _validation_error(path, "Member must not be null")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FirehoseError("SerializationException", f"{path} is not valid base64") from exc

    def _handle_put_record(self, request: AwsRequest) -> AwsResponse:
        try:
            body = request.json()
            data = self._decode_data((body.get("Record") or {}).get("Data"), "record.data")
            validate_records([data], single=True)
            cfg = self._config_for_put(
                request.account_id, request.region, body.get("DeliveryStreamName", "")
            )
            (record_id,) = self._append(cfg.account_id, cfg.region, cfg.name, [data])
        except FirehoseError as exc:
            return json_error(exc.code, exc.message, exc.status)
        return json_response({"RecordId": record_id, "Encrypted": cfg.encrypted})

    def _handle_put_record_batch(self, request: AwsRequest) -> AwsResponse:
        try:
            body = request.json()
            entries = body.get("Records") or []
            records = [
                self._decode_data((entry or {}).get("Data"), f"records.{i}.member.data")
                for i, entry in enumerate(entries, start=1)
            ]
            validate_records(records)
            cfg = self._config_for_put(
                request.account_id, request.region, body.get("DeliveryStreamName", "")
            )
            ids = self._append(cfg.account_id, cfg.region, cfg.name, records)
        except FirehoseError as exc:
            return json_error(exc.code, exc.message, exc.status)
        # Every record is spooled or the whole call failed, so FailedPutCount is 0 here.
        return json_response(
            {
                "FailedPutCount": 0,
                "Encrypted": cfg.encrypted,
                "RequestResponses": [{"RecordId": record_id} for record_id in ids],
            }
        )

    def _forget_put_config(self, request: AwsRequest, _status: int = 0, _body: bytes = b"") -> None:
        name = request.json().get("DeliveryStreamName", "")
        self._put_configs.pop((request.account_id, request.region, name), None)

    def _changed_stream(self, request: AwsRequest) -> _Stream | None:
        """After a request changed a stream: its put config is stale; the live stream, if any."""
        self._forget_put_config(request)
        name = request.json().get("DeliveryStreamName", "")
        with self._lock:
            return self._streams.get((request.account_id, request.region, name))

    def _after_delete(self, request: AwsRequest, _status: int, _body: bytes) -> None:
        stream = self._changed_stream(request)
        if stream is not None:
            self._discard(stream)

    def _after_update(self, request: AwsRequest, _status: int, _body: bytes) -> None:
        # New buffering hints apply to what is buffered now: look again at once.
        stream = self._changed_stream(request)
        if stream is not None:
            with stream.cond:
                stream.wake = True
                stream.cond.notify_all()

    def _discard(self, stream: _Stream) -> None:
        with stream.cond:
            if stream.records:
                log.info(
                    "Firehose %s deleted: %d buffered records discarded",
                    stream.name,
                    len(stream.records),
                )
            stream.records.clear()
            for consumer in stream.consumers.values():
                consumer.position = 0
                consumer.in_flight = None
                consumer.retry_at = 0.0
                consumer.failures = 0
            stream.spool.discard()
            stream.seen = False
            stream.generation += 1

    def _route_deliveries(self, request: AwsRequest) -> AwsResponse:
        name = request.query_value("stream")
        if not name:
            return json_error("InvalidArgumentException", "give the stream: ?stream=<name>")
        return json_response(self.deliveries(name))

    def _route_errors(self, request: AwsRequest) -> AwsResponse:
        name = request.query_value("stream")
        if not name:
            return json_error("InvalidArgumentException", "give the stream: ?stream=<name>")
        return json_response(self.errors(name))

    # Streams and their threads --------------------------------------------------------------
    def _stream(self, account_id: str, region: str, name: str) -> _Stream:
        key = (account_id, region, name)
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                try:
                    path = names.spool_path(self._root, account_id, region, name)
                except names.UnsafeName as exc:
                    raise FirehoseError("InvalidArgumentException", str(exc)) from exc
                stream = _Stream(account_id, region, name, Spool(path))
                self._streams[key] = stream
                stream.thread = threading.Thread(
                    target=self._run, args=(stream,), name=f"firehose-{name}", daemon=True
                )
                stream.thread.start()
            return stream

    def _run(self, stream: _Stream) -> None:
        wait = 0.0
        while not self._stopping.is_set():
            with stream.cond:
                if wait > 0 and not stream.wake:
                    stream.cond.wait(timeout=wait)
                stream.wake = False
            if self._stopping.is_set():
                return
            try:
                wait = self._step(stream)
            except Exception:  # a bug must not kill the stream's thread; records stay spooled
                log.exception("Firehose %s: delivery step failed", stream.name)
                wait = 1.0

    def _step(self, stream: _Stream) -> float:
        """Deliver what is due; return how long to wait before looking again."""
        if not stream.records:
            return 1.0
        try:
            cfg = load(stream.account_id, stream.region, stream.name)
        except StreamNotFound:
            if stream.seen:
                self._discard(stream)  # deleted by a path that bypassed the gateway (e.g. a stack)
                return 1.0
            if not stream.missing_logged:
                log.warning(
                    "Firehose %s: %d records spooled but the stream does not exist (yet); "
                    "they are delivered once it does",
                    stream.name,
                    len(stream.records),
                )
                stream.missing_logged = True
            return 1.0
        stream.missing_logged = False
        stream.seen = True
        targets = {"destination": cfg.destination, "backup": cfg.backup}
        wait = 1.0
        for consumer_name, target in targets.items():
            if target is None:
                continue
            wait = min(wait, self._consume(stream, cfg, consumer_name, target))
        if cfg.backup is None:
            # Without S3 backup the backup checkpoint follows the destination's.
            self._mirror_backup(stream)
        return max(wait, 0.01)

    def _consume(self, stream: _Stream, cfg: StreamConfig, name: str, target: S3Target) -> float:
        consumer = stream.consumers[name]
        target = scaled(target, self.time_scale)
        if name == "destination" and cfg.dynamic_partitioning:
            return self._partitioner.consume(self, stream, cfg, consumer, target)
        while not self._stopping.is_set():
            now = time.time()
            if now < consumer.retry_at:
                return consumer.retry_at - now
            with stream.cond:
                pending = stream.records[consumer.position :]
                generation = stream.generation
            reason = buffering.flush_reason(pending, int(now * 1000), target.buffering)
            if reason is None:
                due = buffering.next_due_ms(pending, target.buffering)
                return 1.0 if due is None else max(due / 1000 - now, 0.01)
            batch = pending[: buffering.batch_length(pending, target.buffering)]
            try:
                self._deliver(cfg, name, consumer, target, batch, reason)
            except DeliveryError as exc:
                return self._retry_later(consumer, cfg, name, target, exc)
            consumer.failures = 0
            consumer.in_flight = None
            self._advance(stream, name, len(batch), generation)
        return 1.0

    def _advance(self, stream: _Stream, name: str, count: int, generation: int) -> None:
        with stream.cond:
            if stream.generation != generation:
                return  # the stream was deleted while this batch was being written
            consumer = stream.consumers[name]
            consumer.position += count
            offset = stream.records[consumer.position - 1].end_offset
            stream.spool.commit(name, offset)
            self._trim(stream)

    def _mirror_backup(self, stream: _Stream) -> None:
        with stream.cond:
            destination, backup = stream.consumers["destination"], stream.consumers["backup"]
            if backup.position < destination.position:
                backup.position = destination.position
                stream.spool.commit("backup", stream.records[backup.position - 1].end_offset)
                self._trim(stream)

    @staticmethod
    def _trim(stream: _Stream) -> None:
        done = min(c.position for c in stream.consumers.values())
        if done:
            del stream.records[:done]
            for consumer in stream.consumers.values():
                consumer.position -= done

    # Delivery -------------------------------------------------------------------------------
    def _deliver(
        self,
        cfg: StreamConfig,
        name: str,
        consumer: _Consumer,
        target: S3Target,
        batch: list[BufferedRecord],
        reason: str,
    ) -> None:
        flight = consumer.in_flight
        if flight is None or flight.first_id != batch[0].record_id or flight.count != len(batch):
            flight = consumer.in_flight = _InFlight(batch[0].record_id, len(batch))
        if name == "backup":
            # The backup holds the untransformed source records (guide: "Source Record Backup").
            self._write(cfg, name, target, flight, "backup", batch, [r.data for r in batch], reason)
            return
        delivered = [r.data for r in batch]
        failed: list[processor.FailedRecord] = []
        dropped = 0
        if cfg.processors:
            if flight.outcome is None:
                flight.outcome = self._process(cfg, batch)
            delivered, failed = flight.outcome.delivered, flight.outcome.failed
            dropped = flight.outcome.dropped
        if delivered and cfg.conversion is not None:
            if flight.converted is None:
                sources = (flight.outcome.sources if flight.outcome else None) or batch
                flight.converted = self.convert(cfg, list(zip(sources, delivered, strict=True)))
            body, rows, error_lines, error_sources = flight.converted
            if rows:
                self._write(cfg, name, target, flight, "destination", batch, [body], reason,
                            dropped, count=rows)  # fmt: skip
            if error_lines:
                self._write(cfg, name, target, flight, conversion.ERROR_OUTPUT_TYPE,
                            error_sources, error_lines, reason)  # fmt: skip
        elif delivered:
            self._write(cfg, name, target, flight, "destination", batch, delivered, reason, dropped)
        if failed:
            lines = [
                json.dumps(f.error_line(), separators=(",", ":")).encode() + b"\n" for f in failed
            ]
            self._write(
                cfg, name, target, flight, "processing-failed", [f.record for f in failed], lines,
                reason,
            )  # fmt: skip

    def schema(self, cfg: StreamConfig) -> conversion.Schema:
        """The Glue table of the stream's conversion, read with its role; DeliveryError when
        it can't be (the records stay spooled and the read is retried)."""
        conv = cfg.conversion
        assert conv is not None
        denied = self._access.glue_read(conv.role_arn, cfg.account_id, cfg.arn, conv)
        if denied is not None:
            raise DeliveryError(
                "DataFormatConversion.AccessDenied",
                f"Access was denied reading the Glue table {conv.database}.{conv.table}: the "
                "role needs glue:GetTable, glue:GetTableVersion and glue:GetTableVersions",
                denial=denied.as_dict(),
            )
        return conversion.read_schema(conv)  # a SchemaError is a DeliveryError

    def convert(
        self, cfg: StreamConfig, records: list[tuple[BufferedRecord, bytes]]
    ) -> tuple[bytes, int, list[bytes], list[BufferedRecord]]:
        """(source, data) pairs to one Parquet/ORC body, its row count, and the error lines
        (with their sources) of the records that could not be deserialized."""
        conv = cfg.conversion
        assert conv is not None
        schema = self.schema(cfg)
        error_lines: list[bytes] = []
        error_sources: list[BufferedRecord] = []

        def fail(source: BufferedRecord, data: bytes, exc: Exception) -> None:
            now_ms = int(time.time() * 1000)
            line = conversion.error_line(data, source.arrival_ms, str(exc), now_ms, conv, schema)
            error_lines.append(line)
            error_sources.append(source)

        converted: list[tuple[BufferedRecord, bytes, list[dict[str, Any]]]] = []
        for source, data in records:
            try:
                converted.append((source, data, conversion.rows(data, conv, schema)))
            except conversion.RecordError as exc:
                fail(source, data, exc)
        table_rows = [row for _, _, found in converted for row in found]
        try:
            body = conversion.serialize(table_rows, conv, schema) if table_rows else b""
        except conversion.ARROW_ERRORS:
            # A value its column can't hold: find the records, one by one, and fail only them.
            table_rows = []
            for source, data, found in converted:
                try:
                    conversion.check_fits(found, schema)
                except conversion.RecordError as exc:
                    fail(source, data, exc)
                    continue
                table_rows.extend(found)
            body = conversion.serialize(table_rows, conv, schema) if table_rows else b""
        return body, len(table_rows), error_lines, error_sources

    def _process(
        self, cfg: StreamConfig, batch: list[BufferedRecord]
    ) -> processor.ProcessorOutcome:
        records = batch
        outcome = processor.ProcessorOutcome()
        for proc in cfg.processors:
            if proc.type == "Lambda":
                outcome = processor.run(
                    self._invoke_with_role(cfg, proc),
                    account_id=cfg.account_id,
                    region=cfg.region,
                    stream_arn=cfg.arn,
                    processor=proc,
                    records=records,
                )
                return outcome
            if proc.type == "AppendDelimiterToRecord":
                delimiter = proc.parameters.get("Delimiter", "\\n")
                delimiter = delimiter.encode().decode("unicode_escape").encode()
                records = [
                    BufferedRecord(r.record_id, r.arrival_ms, r.data + delimiter, r.end_offset)
                    for r in records
                ]
                continue
            raise DeliveryError(
                "Emulator.UnsupportedProcessor",
                f"processor type {proc.type} is not implemented by the local emulator (Lambda "
                "and AppendDelimiterToRecord are); records stay buffered",
            )
        outcome.delivered = [r.data for r in records]
        return outcome

    def _write(
        self,
        cfg: StreamConfig,
        consumer: str,
        target: S3Target,
        flight: _InFlight,
        kind: str,
        records: list[BufferedRecord],
        chunks: list[bytes],
        reason: str,
        dropped: int = 0,
        count: int | None = None,
    ) -> None:
        if kind in flight.written:
            return
        when = keys.arrival_instant(min(r.arrival_ms for r in records), target.time_zone)
        extension = target.extension
        try:
            if kind in keys.ERROR_OUTPUT_TYPES:
                prefix = keys.error_prefix(target.prefix, target.error_output_prefix, when, kind)
                if cfg.conversion is not None:
                    extension = ""  # error outputs are JSON lines, not Parquet / ORC
            else:
                prefix = keys.destination_prefix(target.prefix, when)
        except keys.PrefixError as exc:
            raise DeliveryError("Emulator.InvalidPrefix", str(exc)) from exc
        key = keys.object_name(prefix, cfg.name, cfg.version, when, extension)
        data = b"".join(chunks)
        body, content_encoding = encode(data, target.compression)
        denied = self._access.s3_put(target.role_arn, cfg.account_id, cfg.arn, target.bucket, key)
        if denied is not None:
            # Firehose reports a role it cannot assume and a denied PutObject alike (guide:
            # monitoring-with-cloudwatch-logs, "Amazon S3 data delivery errors").
            raise DeliveryError(
                "S3.AccessDenied",
                f"{S3_ERROR_MESSAGES['S3.AccessDenied']} (bucket {target.bucket!r})",
                denial=denied.as_dict(),
            )
        self._writer.put(cfg.region, target.bucket, key, body, content_encoding)
        flight.written.add(kind)
        entry = {
            "stream": cfg.name,
            "kind": kind,
            "bucket": target.bucket,
            "key": key,
            "records": len(chunks) if count is None else count,
            "bytes": len(data),
            "compressed_bytes": len(body),
            "reason": reason,
            "first_arrival": _iso(min(r.arrival_ms for r in records)),
            "delivered_at": _iso(time.time() * 1000),
        }
        if kind == "destination":
            entry["dropped"] = dropped
        self._deliveries.setdefault(cfg.name, deque(maxlen=DELIVERY_LOG_LENGTH)).append(entry)
        log.info(
            "Firehose %s: wrote s3://%s/%s (%s, %s)", cfg.name, target.bucket, key, kind, reason
        )

    def _invoke_with_role(self, cfg: StreamConfig, proc: processor.Processor):
        """`self.invoke`, after checking that the stream's role may call the function."""
        role_arn = proc.role_arn or (cfg.destination.role_arn if cfg.destination else "")

        def invoke(account_id: str, region: str, function_arn: str, payload: bytes):
            denied = self._access.lambda_invoke(role_arn, cfg.account_id, cfg.arn, function_arn)
            if denied is not None:
                kind, decision = denied
                code, message = LAMBDA_ACCESS_ERRORS[kind]
                self._record_denial(cfg, "processor", function_arn, f"Lambda.{code}", message,
                                    decision.as_dict())  # fmt: skip
                raise LambdaAccessDenied(code, message)
            return self.invoke(account_id, region, function_arn, payload)

        return invoke

    def _invoke_lambda(self, account_id: str, region: str, function_arn: str, payload: bytes):
        lambdas = self._emulator.find("lambdas")
        if lambdas is None:
            raise FirehoseError(
                "ServiceException", "the emulator has no Lambda runtime (emulator.lambdas)"
            )
        return lambdas.invoke(account_id, region, function_arn, payload)

    def _retry_later(
        self, consumer: Any, cfg: StreamConfig, name: str, target: S3Target, exc: DeliveryError
    ) -> float:
        """A failed delivery: records stay spooled, the next try waits (exponential backoff up
        to MAX_BACKOFF_S), and the error is recorded. Returns the wait in seconds."""
        consumer.failures += 1
        backoff = min(MAX_BACKOFF_S, 0.5 * 2 ** (consumer.failures - 1))
        consumer.retry_at = time.time() + backoff
        self._record_error(cfg, name, target, exc, backoff)
        return backoff

    def _record_error(
        self, cfg: StreamConfig, consumer: str, target: S3Target, exc: DeliveryError, backoff: float
    ) -> None:
        entry = {
            "stream": cfg.name,
            "consumer": consumer,
            "bucket": target.bucket,
            "errorCode": exc.code,
            "message": exc.message,
            "retry_in_s": round(backoff, 2),
            "at": _iso(time.time() * 1000),
        }
        if exc.denial is not None:
            entry["denial"] = exc.denial
        self._errors.setdefault(cfg.name, deque(maxlen=ERROR_LOG_LENGTH)).append(entry)
        log.warning(
            "Firehose %s: %s delivery failed (%s), retrying in %.1fs%s",
            cfg.name,
            consumer,
            exc,
            backoff,
            f"; IAM: {exc.denial['message']}" if exc.denial else "",
        )
        if cfg.logging:
            self._log_to_cloudwatch(cfg, f"arn:aws:s3:::{target.bucket}", exc.code, exc.message)

    def _record_denial(
        self,
        cfg: StreamConfig,
        consumer: str,
        destination: str,
        code: str,
        message: str,
        denial: dict[str, Any],
    ) -> None:
        """A denied call that `processor.run` retries itself: the errors view, log, CloudWatch."""
        entry = {
            "stream": cfg.name,
            "consumer": consumer,
            "destination": destination,
            "errorCode": code,
            "message": message,
            "denial": denial,
            "at": _iso(time.time() * 1000),
        }
        self._errors.setdefault(cfg.name, deque(maxlen=ERROR_LOG_LENGTH)).append(entry)
        log.warning("Firehose %s: %s (%s); IAM: %s", cfg.name, code, message, denial["message"])
        if cfg.logging:
            self._log_to_cloudwatch(cfg, destination, code, message)

    def _log_to_cloudwatch(self, cfg: StreamConfig, destination: str, code: str, text: str) -> None:
        """Best effort, as Firehose logs errors (guide: "monitoring-with-cloudwatch-logs")."""
        group, log_stream = cfg.logging or ("", "")
        role_arn = cfg.destination.role_arn if cfg.destination else ""
        denied = self._access.log_put(
            role_arn, cfg.account_id, cfg.arn, cfg.region, group, log_stream
        )
        if denied is not None:  # without logs:PutLogEvents the error log stays empty, as on AWS
            log.info("Firehose %s: error log not written: %s", cfg.name, denied.message())
            return
        message = {
            "deliveryStreamARN": cfg.arn,
            "destination": destination,
            "deliveryStreamVersionId": int(cfg.version),
            "message": text,
            "errorCode": code,
        }
        try:
            client = boto3.session.Session().client(
                "logs",
                endpoint_url=self._emulator.endpoint_url,
                region_name=cfg.region,
                aws_access_key_id="firehose",
                aws_secret_access_key="firehose",
            )
            client.put_log_events(
                logGroupName=group,
                logStreamName=log_stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(message)}],
            )
        except Exception as log_exc:  # the log group may not exist: Firehose logs nothing then
            log.debug("Firehose %s: CloudWatch error log not written: %s", cfg.name, log_exc)
