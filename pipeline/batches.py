"""Read and write Firehose batch objects: raw and parsed batches, processing-failed error output.

A batch object is what Firehose writes to S3: the records of one buffer, concatenated, gzip
compressed when the destination's CompressionFormat is GZIP (the `.gz` key suffix). Ours are
newline-separated JSON: the topic rule adds "\\n" after each message (raw bucket), the transform
ends each output line with "\\n" (parsed bucket). Readers here accept gzip or plain bytes (told by
the gzip header, see `is_gzip`), a missing final separator, and report each bad line with its
1-based line number instead of stopping, so a notebook can show what was wrong and where.

Records the Lambda returned ProcessingFailed are written by Firehose under
`processing-failed/` as JSON lines `{attemptsMade, arrivalTimestamp, errorCode, errorMessage,
attemptEndingTimestamp, rawData, lambdaArn}` with rawData base64 (Firehose developer guide,
"data-transformation"); `iter_processing_failed` decodes them.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

GZIP_MAGIC = b"\x1f\x8b"
GZIP_DEFLATE = 8  # CM, the header's third byte
GZIP_RESERVED_FLAGS = 0xE0  # FLG (the fourth byte) bits 5-7
SEPARATOR = b"\n"


@dataclass(frozen=True)
class BatchLine:
    """One line of a batch: its 1-based number, the parsed object or why it could not be."""

    line: int
    raw: bytes
    value: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def is_gzip(data: bytes) -> bool:
    """Whether the object is gzip: it starts with a gzip member header (RFC 1952, section 2.3.1)
    that is well-formed as far as it goes: ID1 ID2 = 1f 8b, CM = 8 (deflate, the only method
    the RFC defines) and FLG's reserved bits 5-7 zero (a compliant reader must refuse them).

    Why more than the magic number: plain bytes may start with 1f 8b (never a JSON batch: JSON
    text cannot start with 0x1f, nor UTF-8 with 0x8b, but a batch of arbitrary records can), and
    such bytes were read as a gzip that does not decompress. Bytes with the magic number but a
    header no gzip member can have are plain data (the line readers then report their lines). A
    gzip object damaged after its first four bytes (a truncated download, the usual case) keeps
    a well-formed header, so it still raises a clear error in `decompress`; one whose first four
    bytes are damaged cannot be told from plain bytes, and its lines are reported as unreadable.
    """
    if data[:2] != GZIP_MAGIC:
        return False
    if len(data) > 2 and data[2] != GZIP_DEFLATE:
        return False
    return not (len(data) > 3 and data[3] & GZIP_RESERVED_FLAGS)


def decompress(data: bytes) -> bytes:
    """The object's bytes, gunzipped when they are gzip (`is_gzip`).

    Raises ValueError when a gzip object does not decompress (truncated, corrupt).
    """
    if not is_gzip(data):
        return data
    # gzip.decompress reads concatenated members too (RFC 1952 allows several in one file).
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(
            f"a gzip object ({len(data)} bytes) that cannot be decompressed: {exc}; "
            "was it truncated while downloading?"
        ) from exc


def split_lines(data: bytes) -> list[bytes]:
    """The batch's lines, without separators; a missing final separator is tolerated."""
    text = decompress(data)
    if not text:
        return []
    lines = text.split(SEPARATOR)
    if lines[-1] == b"":
        lines.pop()  # the final separator ends the last line; it does not start a new one
    return lines


def parse_line(number: int, raw: bytes) -> BatchLine:
    """One line parsed as a JSON object, or the reason it is not one."""
    if not raw.strip():
        return BatchLine(number, raw, error="empty line")
    try:
        # Decode as UTF-8 ourselves: json.loads(bytes) would guess UTF-16/32 from a BOM.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BatchLine(number, raw, error=f"not valid UTF-8 at byte {exc.start}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return BatchLine(number, raw, error=f"not valid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(value, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}
        return BatchLine(
            number, raw, error=f"not a JSON object but a JSON {kind.get(type(value), 'number')}"
        )
    return BatchLine(number, raw, value=value)


def iter_batch_records(data: bytes) -> Iterator[BatchLine]:
    """Each line of a (gzip or plain) batch object, good or bad, with its 1-based line number."""
    for number, raw in enumerate(split_lines(data), start=1):
        yield parse_line(number, raw)


def write_batch(records: Iterable[dict[str, Any] | bytes], compress: bool = True) -> bytes:
    """A batch object as Firehose would write it: one JSON object (or given bytes) per line."""
    lines = [
        r if isinstance(r, bytes) else json.dumps(r, separators=(",", ":")).encode("utf-8")
        for r in records
    ]
    body = b"".join(line + SEPARATOR for line in lines)
    # mtime=0 makes the bytes depend on the content only.
    return gzip.compress(body, mtime=0) if compress else body


@dataclass(frozen=True)
class FailedRecord:
    """One processing-failed error record, with rawData decoded."""

    line: int
    attempts_made: int | None
    arrival_time: datetime | None
    error_code: str | None
    error_message: str | None
    attempt_ending_time: datetime | None
    raw_data: bytes
    lambda_arn: str | None
    document: dict[str, Any]  # the error record as Firehose wrote it


def _epoch_ms(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    return None


def _first(doc: dict[str, Any], *names: str) -> Any:
    return next((doc[name] for name in names if name in doc), None)


def iter_processing_failed(data: bytes) -> Iterator[FailedRecord | BatchLine]:
    """Each error record of a processing-failed object; bad lines come back as BatchLine.

    The data-transformation page spells the keys `errorCode`/`errorMessage`; the format
    conversion error records spell them `ErrorCode`/`ErrorMessage` in the guide's markdown and
    `lastErrorCode`/`lastErrorMessage` in its HTML: all are read.
    """
    for line in iter_batch_records(data):
        if not line.ok:
            yield line
            continue
        doc = line.value or {}
        try:
            raw = base64.b64decode(doc.get("rawData", ""), validate=True)
        except (binascii.Error, ValueError, TypeError):
            yield BatchLine(line.line, line.raw, error="rawData is not valid base64")
            continue
        yield FailedRecord(
            line=line.line,
            attempts_made=doc.get("attemptsMade"),
            arrival_time=_epoch_ms(doc.get("arrivalTimestamp")),
            error_code=_first(doc, "errorCode", "ErrorCode", "lastErrorCode"),
            error_message=_first(doc, "errorMessage", "ErrorMessage", "lastErrorMessage"),
            attempt_ending_time=_epoch_ms(doc.get("attemptEndingTimestamp")),
            raw_data=raw,
            lambda_arn=doc.get("lambdaArn"),
            document=doc,
        )
