"""Unreadable state files set aside under `<data_dir>/quarantine/` instead of blocking start-up.

One damaged S3 object record or log journal (a disk error, a file edited by hand) must not make
the whole saved state unusable: it is moved, with the path it had under the data directory, to
`quarantine/<when>/...`, a warning names both places, and the emulator starts with the rest.
`python -m emulator status` lists what is there. Nothing is ever deleted from the quarantine by
the emulator; `--reset` removes it with everything else.

The snapshot (`moto/state.pkl`) is the exception: it holds every resource but S3 objects and log
events, so starting without it would silently look like an empty account. The emulator refuses
to start on an unreadable snapshot and says how to set it aside (store.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from emulator.persistence.fileformat import fsync_dir, private_dir

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"


class Quarantine:
    """Moves unreadable files of one data directory into one folder per start."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.root = data_dir / QUARANTINE
        self._batch: Path | None = None
        self.moved: list[tuple[Path, Path]] = []

    def _folder(self) -> Path:
        if self._batch is None:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            batch = self.root / stamp
            suffix = 1
            while batch.exists():
                suffix += 1
                batch = self.root / f"{stamp}-{suffix}"
            self._batch = private_dir(batch)
        return self._batch

    def move(self, path: str | Path, reason: str, copy: bool = False) -> Path:
        """Move (or copy) `path`, a file under the data directory, to the quarantine; where."""
        source = Path(path)
        relative = source.relative_to(self.data_dir)  # only our own files, never a request's
        target = self._folder() / relative
        private_dir(target.parent)
        if copy:
            shutil.copy2(source, target)
        else:
            os.replace(source, target)
            fsync_dir(source.parent)
        fsync_dir(target.parent)
        self.moved.append((source, target))
        log.warning(
            "%s %s to %s: %s. The emulator starts without it; inspect or delete the copy.",
            "copied" if copy else "moved",
            source,
            target,
            reason,
        )
        return target


def quarantined_files(data_dir: Path) -> list[Path]:
    """Every file in the data directory's quarantine, oldest first."""
    root = data_dir / QUARANTINE
    if not root.is_dir():
        return []
    return sorted(Path(dirpath) / name for dirpath, _dirs, names in os.walk(root) for name in names)
