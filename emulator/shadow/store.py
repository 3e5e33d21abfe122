"""Durable shadows under `<data_dir>/shadow/`: one file per shadow, replaced crash-safely.

A file is written to a temporary name, fsync'ed, renamed over the old one with `os.replace` and
the directory fsync'ed, so that an answered change survives `kill -9` and a crash leaves the old
or the new file, never a torn one. File names are the SHA-256 of (thing, shadow name): names from
requests never become paths. Files are 0600 in a 0700 directory. Each file starts with a format
header line; a file with another header is refused with a message, never misread.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from emulator.persistence.fileformat import StateFormatError
from emulator.shadow.model import Shadow

MAGIC = "iot-core-pipeline-emulator-shadow"
FORMAT_VERSION = 1
_HEADER = json.dumps({"magic": MAGIC, "format": FORMAT_VERSION}).encode() + b"\n"
_SUFFIX = ".json"


def file_name(thing: str, name: str) -> str:
    """The file of a shadow: a hash of its key, so no request text reaches the file system."""
    key = json.dumps([thing, name]).encode("utf-8")
    return hashlib.sha256(key).hexdigest() + _SUFFIX


class ShadowStore:
    """Reads all shadows at start; writes one shadow per change."""

    def __init__(self, directory: Path, durable: bool = True) -> None:
        self.directory = directory
        self.durable = durable

    def ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def load(self) -> list[Shadow]:
        self.ensure_directory()
        shadows = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith("."):
                # A temporary file left by a crash before its rename: the old file is intact.
                path.unlink(missing_ok=True)
                continue
            if path.suffix != _SUFFIX:
                continue
            shadows.append(self._read(path))
        return shadows

    def _read(self, path: Path) -> Shadow:
        fix = f"remove it with `python -m emulator --reset --data-dir {self.directory.parent}`"
        with open(path, "rb") as src:
            header = src.readline()
            if header != _HEADER:
                raise StateFormatError(f"{path} is not a shadow file of this emulator; {fix}")
            try:
                shadow = Shadow.from_record(json.loads(src.read()))
            except (ValueError, KeyError, TypeError) as exc:
                raise StateFormatError(f"{path} cannot be read ({exc}); {fix}") from exc
        if path.name != file_name(shadow.thing, shadow.name):
            raise StateFormatError(f"{path} holds another shadow than its name says; {fix}")
        return shadow

    def save(self, shadow: Shadow) -> None:
        self.ensure_directory()
        path = self.directory / file_name(shadow.thing, shadow.name)
        tmp = self.directory / f".{path.name}.{os.getpid()}.tmp"
        body = _HEADER + json.dumps(shadow.to_record(), separators=(",", ":")).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
            out.flush()
            if self.durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
        if self.durable:
            self._fsync_directory()

    def remove(self, thing: str, name: str) -> None:
        (self.directory / file_name(thing, name)).unlink(missing_ok=True)
        if self.durable:
            self._fsync_directory()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
