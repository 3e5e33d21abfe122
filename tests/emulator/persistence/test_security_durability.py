"""State files are written so that a power loss leaves the old or the new file, never a torn or
empty one: data fsynced before the rename, the directory fsynced after it, bodies before the
records that refer to them. The order of the real system calls is recorded (they still run)."""

from __future__ import annotations

import os
import pickle
import stat

from emulator.persistence.blobs import BlobStore
from emulator.persistence.fileformat import read_checked, write_atomic


def recording(monkeypatch) -> list[tuple[str, str]]:
    """Record (call, path) for fsync and replace, then run the real call."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_a_state_file_is_synced_renamed_then_its_directory_synced(tmp_path, monkeypatch):
    # Given a directory holding an older version of a state file
    path = tmp_path / "state.pkl"
    write_atomic(path, "test", lambda out: pickle.dump("old", out))
    calls = recording(monkeypatch)
    # When it is replaced
    write_atomic(path, "test", lambda out: pickle.dump("new", out))
    # Then the new data reached the disk before the rename, and the rename after it
    assert [c for c, _ in calls] == ["fsync", "replace", "fsync"]
    assert calls[0][1].startswith(str(tmp_path / ".state.pkl."))  # the temporary file
    assert calls[1][1] == str(path)
    assert calls[2][1] == str(tmp_path)
    assert read_checked(path, "test", tmp_path, pickle.load) == "new"
    # And the file is private, with no temporary file left
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pkl"]


def test_written_bodies_are_synced_once_with_their_directory(tmp_path, monkeypatch):
    # Given two bodies written, one of them twice
    store = BlobStore(tmp_path / "blobs")
    first, second = store.new(), store.new()
    first.write(b"a" * 10)
    first.write(b"b" * 10)
    second.write(b"c")
    calls = recording(monkeypatch)
    # When the store is synced (before the records that refer to them are written)
    store.sync()
    # Then each body is fsynced once, then the directory that gained them
    assert sorted(path for _, path in calls[:2]) == sorted([str(first.path), str(second.path)])
    assert calls[2:] == [("fsync", str(tmp_path / "blobs"))]
    # And nothing is synced again until a body changes
    store.sync()
    assert len(calls) == 3
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
