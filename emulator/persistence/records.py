"""Small JSON records of a component, one file per key, replaced crash-safely.

For state that changes one item at a time (the broker's retained messages and persistent
sessions): each record is a file named by the SHA-256 of its key, so names from requests (a
topic, a client id) never become paths. A file is written with the format header of
fileformat.py to a temporary name, fsync'ed and renamed over the old one (`write_atomic`): an
answered change survives `kill -9`, and a crash leaves the old or the new record, never a torn
one. Files are 0600 in a 0700 directory. A record that cannot be read is moved to the
quarantine (quarantine.py) and the rest loads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from emulator.persistence.fileformat import (
    StateFormatError,
    fsync_dir,
    private_dir,
    read_checked,
    write_atomic,
)
from emulator.persistence.quarantine import Quarantine

log = logging.getLogger(__name__)

_SUFFIX = ".json"


def record_name(key: str) -> str:
    """The file name of a record: a hash of its key, never the key itself."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest() + _SUFFIX


class RecordFiles:
    """JSON records `{"key": ..., ...}` of one kind in one private directory."""

    def __init__(self, directory: Path, kind: str, data_dir: Path, durable: bool = True) -> None:
        self.directory = directory
        self.kind = kind
        self.data_dir = data_dir
        self.durable = durable

    def load(self) -> list[dict[str, Any]]:
        """Every readable record; unreadable ones go to the quarantine, leftovers of a crash
        (temporary files before their rename) are removed: the old record is intact."""
        private_dir(self.directory)
        records = []
        quarantine: Quarantine | None = None
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith("."):
                path.unlink(missing_ok=True)
                continue
            try:
                record = read_checked(path, self.kind, self.data_dir, _load_json)
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    raise StateFormatError(f"{path} holds no keyed record")
                if path.name != record_name(record["key"]):
                    raise StateFormatError(f"{path} holds another record than its name says")
            except (StateFormatError, OSError) as exc:
                quarantine = quarantine or Quarantine(self.data_dir)
                quarantine.move(path, f"an unreadable {self.kind} record ({exc})")
                continue
            records.append(record)
        return records

    def save(self, key: str, record: dict[str, Any]) -> None:
        """Write (or replace) the record of `key`."""
        self.save_many([(key, record)])

    def remove(self, key: str) -> None:
        self.save_many([(key, None)])

    def save_many(self, changes: list[tuple[str, dict[str, Any] | None]]) -> None:
        """Write or (with None) remove several records; the directory is fsync'ed once."""
        if not changes:
            return
        private_dir(self.directory)
        for key, record in changes:
            path = self.directory / record_name(key)
            if record is None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                continue
            body = json.dumps({**record, "key": key}, separators=(",", ":")).encode("utf-8")
            write_atomic(path, self.kind, lambda out, b=body: out.write(b), self.durable, False)
        if self.durable:
            fsync_dir(self.directory)


def _load_json(src: Any) -> Any:
    return json.loads(src.read())
