"""The destination consumer of a dynamically partitioned stream: one buffer per partition.

Guide, "buffering" (https://docs.aws.amazon.com/firehose/latest/dev/buffering.html): "A new
partition is created when an S3 prefix is evaluated to a new value based on the record data
fields and the S3 prefix expressions. A new buffer is created for each active partition", and
"Firehose delivers each buffered data as a single object when the buffering size or interval
are met for each partition separately." After delivery "the buffer for that partition and the
partition itself are deleted". At most `MAX_ACTIVE_PARTITIONS` partitions are active; the
remaining records go to the error prefix (`activePartitionExceeded`).

Records are split into partitions as they arrive (processors run then, not at flush). The
spool's destination checkpoint only moves past a record once every piece of it is written, so
a restart re-partitions what was buffered (at least once, as Firehose delivers).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from emulator.firehose import conversion, keys, partitioning, processor
from emulator.firehose.buffering import INTERVAL, SIZE, BufferedRecord
from emulator.firehose.config import BufferingHints, Processor, S3Target, StreamConfig
from emulator.firehose.partitioning import PartitioningError, Piece
from emulator.firehose.s3 import DeliveryError, encode

if TYPE_CHECKING:
    from emulator.firehose.service import FirehoseService, _Consumer, _Stream

log = logging.getLogger(__name__)

DESTINATION = "destination"


@dataclass
class _Partition:
    kind: str  # "destination" or an error output type
    prefix: str  # evaluated, with random strings marked
    chunks: list[bytes] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # record id of each chunk
    arrivals: list[int] = field(default_factory=list)  # arrival (epoch ms) of each chunk
    size: int = 0
    first_arrival_ms: int = 0

    def take(self, count: int | None) -> tuple[_Partition, _Partition | None]:
        """The oldest `count` chunks (all if None) and the partition left, if any."""
        if count is None or count >= len(self.chunks):
            return self, None
        parts = []
        for lo, hi in ((0, count), (count, len(self.chunks))):
            arrivals = self.arrivals[lo:hi]
            chunks = self.chunks[lo:hi]
            parts.append(
                _Partition(
                    self.kind,
                    self.prefix,
                    chunks,
                    self.sources[lo:hi],
                    arrivals,
                    sum(len(c) for c in chunks),
                    min(arrivals),
                )  # fmt: skip
            )
        return parts[0], parts[1]


def _due(part: _Partition, now_ms: int, hints: BufferingHints) -> str | None:
    if part.size >= hints.size_bytes:
        return SIZE
    if now_ms - part.first_arrival_ms >= hints.interval_s * 1000:
        return INTERVAL
    return None


def _object_length(part: _Partition, size_bytes: int) -> int:
    """How many of the oldest chunks fill one object: up to the size hint, at least one."""
    total = 0
    for count, chunk in enumerate(part.chunks):
        if count and total + len(chunk) > size_bytes:
            return count
        total += len(chunk)
    return len(part.chunks)


@dataclass
class _State:
    generation: int = -1
    split: int = 0  # records after the consumer's position already in partitions
    partitions: dict[tuple[str, str], _Partition] = field(default_factory=dict)
    outstanding: dict[str, int] = field(default_factory=dict)  # record id -> unwritten pieces


def _iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


class Partitioner:
    """Per-stream partition buffers; driven by the stream's delivery thread."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str, str], _State] = {}

    def consume(
        self,
        service: FirehoseService,
        stream: _Stream,
        cfg: StreamConfig,
        consumer: _Consumer,
        target: S3Target,
    ) -> float:
        """Partition new records, write the partitions that are due; the wait until the next."""
        key = (stream.account_id, stream.region, stream.name)
        state = self._states.setdefault(key, _State())
        if state.generation != stream.generation:
            self._states[key] = state = _State(generation=stream.generation)
        now = time.time()
        if now < consumer.retry_at:
            return consumer.retry_at - now
        with stream.cond:
            pending = list(stream.records[consumer.position + state.split :])
            generation = stream.generation
        if pending:
            try:
                self._split(service, cfg, target, state, pending)
            except DeliveryError as exc:  # e.g. the Glue table of a conversion can't be read
                return service._retry_later(consumer, cfg, DESTINATION, target, exc)
            state.split += len(pending)
        now_ms = int(time.time() * 1000)
        hints = target.buffering
        wait = 1.0
        for part_key, part in list(state.partitions.items()):
            while (reason := _due(part, now_ms, hints)) is not None:
                # A partition over the size hint is written in objects of at most the hint.
                count = _object_length(part, hints.size_bytes) if reason == SIZE else None
                head, rest = part.take(count)
                try:
                    self._write(service, cfg, target, head, reason)
                except DeliveryError as exc:
                    return service._retry_later(consumer, cfg, DESTINATION, target, exc)
                consumer.failures = 0
                for record_id in head.sources:
                    state.outstanding[record_id] -= 1
                if rest is None:
                    del state.partitions[part_key]
                    break
                state.partitions[part_key] = part = rest
            else:
                due = part.first_arrival_ms / 1000 + hints.interval_s
                wait = min(wait, max(due - now_ms / 1000, 0.01))
        self._checkpoint(service, stream, state, consumer, generation)
        return wait

    # Splitting ----------------------------------------------------------------------------
    def _split(
        self,
        service: FirehoseService,
        cfg: StreamConfig,
        target: S3Target,
        state: _State,
        records: list[BufferedRecord],
    ) -> None:
        procs = partitioning.split_processors(cfg.processors)
        failures: list[tuple[Piece, str, str, str]] = []  # piece, output type, code, message
        processing_failed: list[tuple[str, int, bytes]] = []  # record id, arrival, line
        pieces: list[Piece] = []

        def extraction_failed(piece: Piece, exc: PartitioningError) -> None:
            failures.append(
                (piece, partitioning.PARTITIONING_FAILED,
                 partitioning.METADATA_EXTRACTION_FAILED, str(exc))
            )  # fmt: skip

        for index, record in enumerate(records):
            state.outstanding.setdefault(record.record_id, 0)
            whole = Piece(index, record.arrival_ms, record.data, record.data)
            deaggregation = procs.get("RecordDeAggregation")
            if deaggregation is None:
                pieces.append(whole)
                continue
            try:
                parts = partitioning.deaggregate(record.data, deaggregation)
            except PartitioningError as exc:
                extraction_failed(whole, exc)
                continue
            pieces.extend(Piece(index, record.arrival_ms, part, part) for part in parts)

        lambda_proc = procs.get("Lambda")
        if lambda_proc is not None and pieces:
            pieces = self._transform(service, cfg, lambda_proc, records, pieces, processing_failed)

        active = sum(1 for kind, _ in state.partitions if kind == DESTINATION)
        opened: set[tuple[str, str]] = set()
        adds: list[tuple[str, str, bytes, str, int]] = []

        def source_of(piece: Piece) -> str:
            return records[piece.source].record_id

        extraction = procs.get("MetadataExtraction")
        delimiter = None
        if "AppendDelimiterToRecord" in procs:
            text = procs["AppendDelimiterToRecord"].parameters.get("Delimiter", "\\n")
            delimiter = text.encode().decode("unicode_escape").encode()
        for piece in pieces:
            source_id = records[piece.source].record_id
            try:
                if extraction is not None:
                    found = partitioning.extract(piece.data, extraction)
                    piece.query_keys = {k: partitioning.key_text(v) for k, v in found.items()}
                piece.lambda_keys = {
                    k: partitioning.key_text(v)
                    for k, v in piece.lambda_keys.items()
                    if v is not None
                }
                when = keys.arrival_instant(piece.arrival_ms, target.time_zone)
                prefix = partitioning.partition_prefix(target.prefix, piece, when)
            except PartitioningError as exc:
                extraction_failed(piece, exc)
                continue
            if delimiter is not None:
                piece.data += delimiter
            part_key = (DESTINATION, prefix)
            if part_key not in state.partitions and part_key not in opened:
                if active + len(opened) >= partitioning.MAX_ACTIVE_PARTITIONS:
                    failures.append(
                        (piece, partitioning.ACTIVE_PARTITION_EXCEEDED,
                         partitioning.ACTIVE_PARTITIONS_EXCEEDED_CODE,
                         f"The number of active partitions reached the limit of "
                         f"{partitioning.MAX_ACTIVE_PARTITIONS} for this Firehose stream.")
                    )  # fmt: skip
                    continue
                opened.add(part_key)
            adds.append((DESTINATION, prefix, piece.data, source_id, piece.arrival_ms))

        if cfg.conversion is not None:
            # Records that can't be deserialized go to format-conversion-failed now; the
            # rest are converted when their partition is written.
            adds = self._check_conversion(service, cfg, target, records, adds)
        now_ms = int(time.time() * 1000)
        for piece, kind, code, message in failures:
            line = partitioning.error_line(piece, code, message, now_ms)
            adds.append(self._error_add(target, kind, source_of(piece), line, piece.arrival_ms))
        for record_id, arrival_ms, line in processing_failed:
            adds.append(self._error_add(target, "processing-failed", record_id, line, arrival_ms))
        # Only now, once nothing can fail: a step that raised is retried from the same records.
        for add in adds:
            self._add(state, *add)

    def _transform(
        self,
        service: FirehoseService,
        cfg: StreamConfig,
        lambda_proc: Processor,
        records: list[BufferedRecord],
        pieces: list[Piece],
        processing_failed: list[tuple[str, int, bytes]],
    ) -> list[Piece]:
        """Run the transform Lambda over the pieces; keep its `metadata.partitionKeys`."""
        batch: list[BufferedRecord] = []
        owner: dict[str, Piece] = {}
        seen: dict[str, int] = {}
        for piece in pieces:
            source = records[piece.source]
            count = seen.get(source.record_id, 0)
            seen[source.record_id] = count + 1
            # A deaggregated record's pieces need ids of their own in the Lambda event.
            record_id = source.record_id if count == 0 else f"{source.record_id}.{count}"
            owner[record_id] = piece
            batch.append(BufferedRecord(record_id, piece.arrival_ms, piece.data, source.end_offset))
        outcome = processor.run(
            service.invoke,
            account_id=cfg.account_id,
            region=cfg.region,
            stream_arn=cfg.arn,
            processor=lambda_proc,
            records=batch,
        )
        out: list[Piece] = []
        for data, source, found in zip(
            outcome.delivered, outcome.sources, outcome.partition_keys, strict=True
        ):
            piece = owner[source.record_id]
            piece.data = data
            piece.lambda_keys = found
            out.append(piece)
        for failed in outcome.failed:
            piece = owner[failed.record.record_id]
            line = json.dumps(failed.error_line(), separators=(",", ":")).encode() + b"\n"
            processing_failed.append((records[piece.source].record_id, piece.arrival_ms, line))
        return out

    def _check_conversion(
        self,
        service: FirehoseService,
        cfg: StreamConfig,
        target: S3Target,
        records: list[BufferedRecord],
        adds: list[tuple[str, str, bytes, str, int]],
    ) -> list[tuple[str, str, bytes, str, int]]:
        conv = cfg.conversion
        assert conv is not None
        schema = service.schema(cfg)
        out = []
        for add in adds:
            kind, _prefix, data, source_id, arrival_ms = add
            if kind != DESTINATION:
                out.append(add)
                continue
            try:
                conversion.rows(data, conv, schema)
            except conversion.RecordError as exc:
                line = conversion.error_line(
                    data, arrival_ms, str(exc),
                    int(time.time() * 1000), conv, schema,
                )  # fmt: skip
                out.append(
                    self._error_add(target, conversion.ERROR_OUTPUT_TYPE, source_id, line,
                                    arrival_ms)
                )  # fmt: skip
                continue
            out.append(add)
        return out

    @staticmethod
    def _add(
        state: _State, kind: str, prefix: str, chunk: bytes, source_id: str, arrival_ms: int
    ) -> None:
        part = state.partitions.get((kind, prefix))
        if part is None:
            part = state.partitions[(kind, prefix)] = _Partition(
                kind, prefix, first_arrival_ms=arrival_ms
            )
        part.chunks.append(chunk)
        part.sources.append(source_id)
        part.arrivals.append(arrival_ms)
        part.size += len(chunk)
        part.first_arrival_ms = min(part.first_arrival_ms, arrival_ms)
        state.outstanding[source_id] = state.outstanding.get(source_id, 0) + 1

    @staticmethod
    def _error_add(
        target: S3Target, kind: str, source_id: str, line: bytes, arrival_ms: int
    ) -> tuple[str, str, bytes, str, int]:
        when = keys.arrival_instant(arrival_ms, target.time_zone)
        prefix = keys.error_prefix(
            target.prefix, target.error_output_prefix, when, kind,
            random=lambda: partitioning.RANDOM_MARK,
        )  # fmt: skip
        return (kind, prefix, line, source_id, arrival_ms)

    # Writing ------------------------------------------------------------------------------
    @staticmethod
    def _write(
        service: FirehoseService,
        cfg: StreamConfig,
        target: S3Target,
        part: _Partition,
        reason: str,
    ) -> None:
        when = keys.arrival_instant(part.first_arrival_ms, target.time_zone)
        prefix = partitioning.object_prefix(part.prefix)
        extension = target.extension
        data = b"".join(part.chunks)
        records = len(part.chunks)
        if cfg.conversion is not None and part.kind == DESTINATION:
            # Checked at split time: the chunks are rows of the table (at least once, as a
            # restart re-partitions, so they are read again here).
            pairs = [
                (BufferedRecord("", a, c, 0), c)
                for a, c in zip(part.arrivals, part.chunks, strict=True)
            ]
            body, records, lines, _sources = service.convert(cfg, pairs)
            content_encoding = None
            if lines:  # the table changed since the split: these rows no longer fit it
                error_key = keys.object_name(
                    keys.error_prefix(target.prefix, target.error_output_prefix, when,
                                      conversion.ERROR_OUTPUT_TYPE),
                    cfg.name, cfg.version, when,
                )  # fmt: skip
                service._writer.put(cfg.region, target.bucket, error_key, b"".join(lines), None)
        else:
            if cfg.conversion is not None:
                extension = ""  # error outputs are JSON lines, not Parquet / ORC
            body, content_encoding = encode(data, target.compression)
        key = keys.object_name(prefix, cfg.name, cfg.version, when, extension)
        service._writer.put(cfg.region, target.bucket, key, body, content_encoding)
        entry = {
            "stream": cfg.name,
            "kind": part.kind,
            "bucket": target.bucket,
            "key": key,
            "partition": part.prefix.replace(partitioning.RANDOM_MARK, "!{firehose:random-string}"),
            "records": records,
            "bytes": len(data),
            "compressed_bytes": len(body),
            "reason": reason,
            "first_arrival": _iso(part.first_arrival_ms),
            "delivered_at": _iso(time.time() * 1000),
        }
        # service.py imports this module: its constant is read at call time.
        from emulator.firehose.service import DELIVERY_LOG_LENGTH

        log_entries = service._deliveries.setdefault(cfg.name, deque(maxlen=DELIVERY_LOG_LENGTH))
        log_entries.append(entry)
        log.info(
            "Firehose %s: wrote s3://%s/%s (%s, %s)",
            cfg.name,
            target.bucket,
            key,
            part.kind,
            reason,
        )

    @staticmethod
    def _checkpoint(
        service: FirehoseService,
        stream: _Stream,
        state: _State,
        consumer: _Consumer,
        generation: int,
    ) -> None:
        """Move the destination checkpoint past the records whose pieces are all written."""
        with stream.cond:
            if stream.generation != generation:
                return
            head = stream.records[consumer.position : consumer.position + state.split]
        count = 0
        for record in head:
            if state.outstanding.get(record.record_id, 0) > 0:
                break
            count += 1
        if not count:
            return
        for record in head[:count]:
            state.outstanding.pop(record.record_id, None)
        service._advance(stream, DESTINATION, count, generation)
        state.split -= count
