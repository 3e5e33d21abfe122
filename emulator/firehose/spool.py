"""The durable, append-only spool of one delivery stream's records.

A record acknowledged to PutRecord(Batch) must survive the emulator being killed while it is
still buffered. Each put appends one line per record (`{"i": id, "t": arrival ms, "d": base64}`)
in one write and flushes it to the OS before returning: the page cache survives `kill -9`
(an `os.fsync` per put, for power loss, is optional). Consumers (the destination and the S3
backup) each keep a checkpoint, the byte offset up to which their objects are written; the
file is truncated once every consumer has read all of it. Delivery is at least once: a crash
between writing an object and saving the checkpoint delivers those records again.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from emulator.firehose.buffering import BufferedRecord

CONSUMERS = ("destination", "backup")


class Spool:
    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self._checkpoint_path = path.with_suffix(".checkpoint")
        self._fsync = fsync
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        # Unbuffered: each put is one write() to the OS, nothing waits in a Python buffer.
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the stream's life
        self.checkpoints = self._load_checkpoints()

    # Writing -------------------------------------------------------------------------------
    def append(self, records: Iterable[tuple[str, int, bytes]]) -> list[BufferedRecord]:
        """Append (id, arrival ms, data) entries durably; returns them with their offsets.

        All entries go out in one write (and one fsync when asked): a caller that batches
        (the rules engine, per MQTT read) pays the syscall and the lock once per batch."""
        lines = [
            (record_id, arrival_ms, data, _entry_line(record_id, arrival_ms, data))
            for record_id, arrival_ms, data in records
        ]
        payload = memoryview(b"".join([line for *_, line in lines]))
        with self._lock:
            offset = self._file.tell()
            try:
                while payload:
                    written = self._file.write(payload)
                    payload = payload[written:]
                if self._fsync:
                    os.fsync(self._file.fileno())
            except OSError:
                self._file.truncate(offset)  # leave no torn entry behind a failed put
                raise
            out = []
            for record_id, arrival_ms, data, line in lines:
                offset += len(line)
                out.append(BufferedRecord(record_id, arrival_ms, data, offset))
            return out

    def commit(self, consumer: str, offset: int) -> None:
        """Record that `consumer` has delivered everything before `offset`."""
        with self._lock:
            self.checkpoints[consumer] = max(self.checkpoints.get(consumer, 0), offset)
            if all(self.checkpoints.get(c, 0) >= self._file.tell() for c in CONSUMERS):
                # Everything delivered: start the file again (checkpoint saved right after).
                self._file.truncate(0)
                self._file.seek(0)
                self.checkpoints = dict.fromkeys(CONSUMERS, 0)
            self._save_checkpoints()

    def discard(self) -> None:
        """Forget every entry (the stream was deleted with its data)."""
        with self._lock:
            self._file.truncate(0)
            self.checkpoints = dict.fromkeys(CONSUMERS, 0)
            self._save_checkpoints()

    def close(self) -> None:
        with self._lock:
            self._file.close()

    # Reading (at start) ------------------------------------------------------------------
    def pending(self) -> list[BufferedRecord]:
        """Entries some consumer has not delivered yet (from the lowest checkpoint)."""
        start = min(self.checkpoints.get(c, 0) for c in CONSUMERS)
        out = []
        with open(self.path, "rb") as handle:
            handle.seek(start)
            offset = start
            for line in handle:
                offset += len(line)
                entry = json.loads(line)
                out.append(
                    BufferedRecord(entry["i"], entry["t"], base64.b64decode(entry["d"]), offset)
                )
        return out

    def _repair(self) -> None:
        """Drop a torn last line (a put that never returned) left by a killed process."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as handle:
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if end != len(data):
                handle.truncate(end)

    def _load_checkpoints(self) -> dict[str, int]:
        size = self.path.stat().st_size
        try:
            saved = json.loads(self._checkpoint_path.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        # A checkpoint past the end means the file was truncated just before a crash.
        return {c: min(int(saved.get(c, 0)), size) for c in CONSUMERS}

    def _save_checkpoints(self) -> None:
        tmp = self._checkpoint_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.checkpoints))
        os.replace(tmp, self._checkpoint_path)


def _entry_line(record_id: str, arrival_ms: int, data: bytes) -> bytes:
    """One spool line, `{"i": id, "t": ms, "d": base64}` + newline, as JSON.

    Record ids are digits (service.new_record_ids) and base64 needs no escaping, so the line is
    formatted directly; any other id goes through json.dumps."""
    if record_id.isascii() and record_id.isalnum():
        quoted = record_id.encode()
    else:
        quoted = json.dumps(record_id)[1:-1].encode()
    return b'{"i":"%b","t":%d,"d":"%b"}\n' % (quoted, arrival_ms, base64.b64encode(data))
