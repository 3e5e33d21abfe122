"""On-disk format of the emulator's moto state: a versioned header, atomic replacement of files.

Every state file starts with one JSON line (the header) followed by a pickle. The header names
the format version and the moto version whose classes the pickle refers to, so that a state
written by another format or another moto is refused with a message instead of being misread
(pickles refer to moto's class paths).

Files are written to a temporary name in the same directory, flushed to the disk (fsync),
renamed over the old one, and the directory is flushed too: a process killed at any moment, or a
power loss, leaves either the old or the new file, never a torn one (rename(2) is atomic, but
without the two fsyncs the kernel may write the rename before the data it points at). Files are
private to the user (0600) in private directories (0700): the snapshot holds IAM secret keys,
Secrets Manager values and Lambda environments.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

FORMAT_VERSION = 1
MAGIC = "iot-core-pipeline-emulator-state"
MOTO_VERSION = version("moto")
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


class StateFormatError(Exception):
    """A state file that this emulator cannot read (corrupt, or written by another version)."""


def header(kind: str) -> dict[str, Any]:
    return {
        "magic": MAGIC,
        "kind": kind,
        "format": FORMAT_VERSION,
        "moto": MOTO_VERSION,
        "python": PYTHON_VERSION,
    }


FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents as 0700, or make an existing `path` 0700.

    One level at a time: mkdir(parents=True) gives the parents it creates the umask's mode."""
    missing, directory = [], path
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)
    return path


def open_private(path: str | Path, flags: int) -> int:
    """`os.open` with mode 0600 for a file it creates."""
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


def fsync_dir(directory: str | Path) -> None:
    """Make the directory's entries (a rename, a new or removed file) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    kind: str,
    dump: Callable[[IO[bytes]], None],
    sync: bool = True,
    sync_dir: bool = True,
) -> int:
    """Write header + `dump(file)` to `path` via a temporary file and rename; return the size.

    With `sync`, the file is fsynced before the rename and (with `sync_dir`; a caller writing
    several files of one directory does it once) its directory after it, so that the new
    content, not an empty or torn file, is what survives a power loss."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(json.dumps(header(kind)).encode() + b"\n")
            dump(out)
            size = out.tell()
            out.flush()
            if sync:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync and sync_dir:
        fsync_dir(path.parent)
    return size


def check_header(line: bytes, path: str | Path, kind: str, data_dir: Path) -> None:
    """Refuse a file whose header is missing, of another kind, or of another version."""
    fix = f"remove it with `python -m emulator --reset --data-dir {data_dir}`"
    try:
        found = json.loads(line)
    except ValueError:
        found = None
    if not isinstance(found, dict) or found.get("magic") != MAGIC:
        raise StateFormatError(f"{path} is not an emulator state file (corrupt?); {fix}")
    if found.get("kind") != kind:
        raise StateFormatError(f"{path} holds {found.get('kind')!r}, expected {kind!r}; {fix}")
    expected = header(kind)
    for field in ("format", "moto", "python"):
        if found.get(field) != expected[field]:
            raise StateFormatError(
                f"{path} was written with {field} {found.get(field)!r} but this emulator uses "
                f"{expected[field]!r}: the saved state cannot be read safely. Start the version "
                f"that wrote it, or {fix} (the state is then lost)"
            )


def read_checked(
    path: str | Path, kind: str, data_dir: Path, load: Callable[[IO[bytes]], Any]
) -> Any:
    """Read a file written by `write_atomic`, checking its header; `load(file)` reads the rest."""
    with open(path, "rb") as src:
        check_header(src.readline(), path, kind, data_dir)
        try:
            return load(src)
        except StateFormatError:
            raise
        except Exception as exc:  # damage inside a pickle can surface as almost any error
            raise StateFormatError(
                f"{path} cannot be read ({type(exc).__name__}: {exc}); remove it with "
                f"`python -m emulator --reset --data-dir {data_dir}`"
            ) from exc
