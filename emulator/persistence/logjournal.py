"""CloudWatch Logs events in append-only journals, one per log stream, outside the snapshot.

Log events only ever grow (Lambda writes a few per invocation), so pickling them with every
snapshot made each state change cost ~2.5 ms per 1,000 stored events (measured: 285 ms with
100,000). The snapshot keeps each `LogStream` without its events; before each snapshot the events
added since the last one are appended to `<data_dir>/moto/logs/<sha1 of stream ARN>.log`.

A journal is a versioned header line followed by frames (8-byte length + pickle of a list of
events). A process killed in the middle of an append leaves a torn last frame, which loading
drops: those events belonged to a request that had not been answered yet. Appends are fsynced
before the snapshot that counts on them is written. A journal that cannot be read at all, or a
frame in the middle that does not unpickle, is set aside in the quarantine (quarantine.py) and
the stream keeps the events that could be read.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import re
import struct
import threading
import weakref
from pathlib import Path
from typing import IO, Any

from emulator.persistence.fileformat import (
    StateFormatError,
    open_private,
    private_dir,
    read_checked,
    write_atomic,
)

log = logging.getLogger(__name__)

KIND = "log-events"
_FRAME = struct.Struct(">Q")
JOURNAL_NAME = re.compile(r"[0-9a-f]{40}\.log")  # what journal_name gives; nothing else is read


def journal_name(stream: Any) -> str:
    return hashlib.sha1(stream.arn.encode()).hexdigest() + ".log"


def _frame(events: list[Any]) -> bytes:
    payload = pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(payload)) + payload


class LogJournals:
    """Keeps one journal per log stream in step with moto's in-memory events."""

    def __init__(self, directory: Path, data_dir: Path, quarantine: Any = None) -> None:
        self.directory = directory
        self.data_dir = data_dir
        self.quarantine = quarantine  # a quarantine.Quarantine, or None: read-only (status)
        private_dir(directory)
        # journal name -> (the stream it was written for, how many events it holds)
        self._saved: dict[str, tuple[weakref.ref, int]] = {}
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Append the events added to every stream since the last sync."""
        from moto.logs.models import logs_backends

        with self._lock:
            for _account, _region, backend in logs_backends.iter_backends():
                for group in list(backend.groups.values()):
                    for stream in list(group.streams.values()):
                        self._sync_stream(stream)

    def _sync_stream(self, stream: Any) -> None:
        name = journal_name(stream)
        events = stream.events
        count = len(events)
        saved = self._saved.get(name)
        if saved is not None and saved[0]() is stream and saved[1] <= count:
            if saved[1] == count:
                return
            fd = open_private(self.directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            with os.fdopen(fd, "ab") as out:
                out.write(_frame(events[saved[1] : count]))
                out.flush()
                os.fsync(out.fileno())  # the snapshot written next counts on these events
        else:  # a new stream, or a deleted one's name reused: start the journal again
            write_atomic(self.directory / name, KIND, lambda out: out.write(_frame(events[:count])))
        self._saved[name] = (weakref.ref(stream), count)

    def load(self, name: str, stream: Any, repair: bool = True) -> list[Any]:
        """The events of a stream being restored (called while unpickling the snapshot)."""
        events: list[Any] = []
        if not JOURNAL_NAME.fullmatch(name):  # saved state names only journal_name()s
            log.warning("ignored the log events of %s: bad journal name %r", stream.arn, name)
            return events
        path = self.directory / name
        if path.exists():
            try:
                events, good_length, corrupt = read_checked(path, KIND, self.data_dir, _read_frames)
            except (StateFormatError, OSError) as exc:
                if repair and self.quarantine is not None:
                    self.quarantine.move(path, f"the log events of {stream.arn}: {exc}")
                return self._track(name, stream, [])
            if repair and good_length < path.stat().st_size:
                if corrupt and self.quarantine is not None:  # more than a torn last append
                    self.quarantine.move(
                        path, f"events of {stream.arn} after byte {good_length}", copy=True
                    )
                os.truncate(path, good_length)  # keep the frames that could be read
        return self._track(name, stream, events)

    def _track(self, name: str, stream: Any, events: list[Any]) -> list[Any]:
        self._saved[name] = (weakref.ref(stream), len(events))
        return events

    def remove_unreferenced(self) -> None:
        """Delete journals of streams that no longer exist (deleted before a crash)."""
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".log") and entry.name not in self._saved:
                os.unlink(entry.path)


def _read_frames(src: IO[bytes]) -> tuple[list[Any], int, bool]:
    """The events of the frames that read back, the file length up to the last of them, and
    whether a complete frame failed to unpickle (damage, not a torn last append)."""
    events: list[Any] = []
    good = src.tell()
    data = src.read()
    view = io.BytesIO(data)
    while True:
        head = view.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return events, good, False
        (length,) = _FRAME.unpack(head)
        payload = view.read(length)
        if len(payload) < length:
            return events, good, False
        try:
            frame = pickle.loads(payload)
        except Exception:  # any damage inside a pickle can surface as almost any error
            return events, good, True
        if not isinstance(frame, list):
            return events, good, True
        events.extend(frame)
        good += _FRAME.size + length
