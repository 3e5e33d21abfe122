"""On-disk format of the emulator's moto state: a versioned header, atomic replacement of files.

Every state file starts with one JSON line (the header) followed by a pickle. The header names
the format version and the moto version whose classes the pickle refers to, so that a state
written by another format or another moto is refused with a message instead of being misread
(pickles refer to moto's class paths; ARCHITECTURE.md, "Persistence").

Files are written to a temporary name in the same directory and renamed over the old one:
a process killed at any moment leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
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


def write_atomic(path: Path, kind: str, dump: Callable[[IO[bytes]], None]) -> int:
    """Write header + `dump(file)` to `path` via a temporary file and rename; return the size."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        out.write(json.dumps(header(kind)).encode() + b"\n")
        dump(out)
        size = out.tell()
    os.replace(tmp, path)
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
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
            raise StateFormatError(
                f"{path} cannot be read ({type(exc).__name__}: {exc}); remove it with "
                f"`python -m emulator --reset --data-dir {data_dir}`"
            ) from exc
