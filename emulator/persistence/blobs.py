"""S3 object bodies as files under `<data_dir>/moto/s3/blobs`, never held in the emulator's RAM.

moto's `FakeKey` keeps its body in `tempfile.SpooledTemporaryFile` (in memory up to 5 MiB, then an
anonymous temporary file) and only ever calls seek/tell/read/write/truncate/close on it. The least
invasive way to put bodies on disk is therefore to give `moto.s3.models` a `tempfile` whose
`SpooledTemporaryFile` is a `BlobFile`: a named file in the data directory that is opened only
for the duration of each call (10,000 objects must not hold 10,000 file descriptors).

moto closes a key's buffer when the key is disposed (overwritten, deleted, a multipart part after
completion, or garbage-collected). A closed blob is *retired*, not deleted: it is removed after
the state that no longer references it has been saved, so that a crash in between never leaves a
saved record that points at a missing body. Orphans left by a crash are removed at the next start.

Body files are named by a random UUID, never by the bucket or key (key names can be anything,
`../` included); names read back from saved state are checked against that form before use.
Before a record that refers to a body is written, the body is fsynced (`sync`), so that a power
loss never leaves a durable record pointing at a body the disk never received.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from emulator.persistence.fileformat import fsync_dir, open_private, private_dir

_CHUNK = 16 * 1024 * 1024
BLOB_NAME = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, the only names `new` gives


class BlobFile:
    """The file-like subset moto's FakeKey uses, backed by a named file opened per call."""

    def __init__(self, store: BlobStore, name: str, create: bool = True) -> None:
        self._store = store
        self.blob_name = name
        self._path = os.path.join(store.directory_str, name)  # str: 10,000 keys load faster
        self._pos = 0
        self.closed = False
        if create:
            os.close(open_private(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
            store.dirty(name)

    @property
    def path(self) -> Path:
        return Path(self._path)

    # The file API moto calls -------------------------------------------------------------
    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = os.path.getsize(self._path) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        with open(self._path, "rb") as src:
            src.seek(self._pos)
            data = src.read() if size is None or size < 0 else src.read(size)
        self._pos += len(data)
        return data

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._check_open()
        with open(self._path, "r+b") as dst:
            dst.seek(self._pos)
            written = dst.write(data)
        self._pos += written
        self._store.dirty(self.blob_name)
        return written

    def truncate(self, size: int | None = None) -> int:
        self._check_open()
        size = self._pos if size is None else size
        # Like io.BytesIO (moto's in-memory buffer): truncating never extends the file.
        if size < os.path.getsize(self._path):
            os.truncate(self._path, size)
            self._store.dirty(self.blob_name)
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store.retire(self.blob_name)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file.")

    def __getstate__(self) -> Any:
        raise TypeError("a BlobFile is persisted by name, see emulator.persistence.pickling")


class BlobStore:
    """Creates, adopts and retires body files in one directory."""

    def __init__(self, directory: Path, delete_at_once: bool = False) -> None:
        self.directory = directory
        self.directory_str = str(directory)
        private_dir(directory)
        self._delete_at_once = delete_at_once
        self._retired: list[str] = []
        self._dirty: set[str] = set()  # written since their last fsync
        self._new_entries = False  # files created since the directory's last fsync
        self._lock = threading.Lock()
        self.frozen = False

    def new(self, *_args: Any, **_kwargs: Any) -> BlobFile:
        """What `tempfile.SpooledTemporaryFile(max_size)` returns inside moto.s3.models."""
        return BlobFile(self, uuid.uuid4().hex)

    def adopt(self, name: str) -> BlobFile:
        """The body file of a key being restored from saved state."""
        if not BLOB_NAME.fullmatch(name):
            raise ValueError(f"not a body file name: {name!r}")
        return BlobFile(self, name, create=False)

    def exists(self, name: str) -> bool:
        return bool(BLOB_NAME.fullmatch(name)) and os.path.isfile(
            os.path.join(self.directory_str, name)
        )

    def dirty(self, name: str) -> None:
        """Note a body written to since its last fsync (and a new file in the directory)."""
        if self._delete_at_once:  # not durable (ephemeral): nothing is ever synced
            return
        with self._lock:
            self._dirty.add(name)
            self._new_entries = True

    def sync(self) -> None:
        """fsync every body written since the last call, then the directory of new files."""
        with self._lock:
            names, self._dirty = self._dirty, set()
            new_entries, self._new_entries = self._new_entries, False
        for name in names:
            try:
                fd = os.open(os.path.join(self.directory_str, name), os.O_RDONLY)
            except FileNotFoundError:  # retired and deleted meanwhile
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        if new_entries:
            fsync_dir(self.directory_str)

    def retire(self, name: str) -> None:
        if self.frozen:  # stopping: keys collected now are still in the saved state
            return
        if self._delete_at_once:
            (self.directory / name).unlink(missing_ok=True)
            return
        with self._lock:
            self._retired.append(name)
            self._dirty.discard(name)

    def collect(self) -> None:
        """Delete the bodies retired before the state that dropped them was saved."""
        with self._lock:
            retired, self._retired = self._retired, []
        for name in retired:
            (self.directory / name).unlink(missing_ok=True)

    def remove_unreferenced(self, referenced: set[str], set_aside: Any = None) -> int:
        """Delete body files no saved key refers to (left by a crash); return how many.

        `set_aside(path)`, if given, is called instead of deleting: when an unreadable object
        record was quarantined, its body is one of these and must not be lost with them."""
        removed = 0
        for entry in os.scandir(self.directory):
            if entry.name not in referenced:
                if set_aside is not None and BLOB_NAME.fullmatch(entry.name):
                    set_aside(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
        return removed


class _TempfileWithBlobs:
    """Stands in for the `tempfile` module inside moto.s3.models."""

    def __init__(self, store: BlobStore) -> None:
        self.SpooledTemporaryFile = store.new

    def __getattr__(self, name: str) -> Any:
        return getattr(tempfile, name)


def install(store: BlobStore) -> None:
    """Make every FakeKey created from now on keep its body in `store`."""
    import moto.s3.models as s3_models

    s3_models.tempfile = _TempfileWithBlobs(store)  # type: ignore[assignment]


def uninstall() -> None:
    import moto.s3.models as s3_models

    s3_models.tempfile = tempfile
