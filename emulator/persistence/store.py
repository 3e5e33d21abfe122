"""Where moto's state lives on disk, and how it is saved and loaded.

Layout under `<data_dir>/moto/` (other components keep their own folders under `data_dir`):
- `state.pkl`: a snapshot of every moto backend in use, in one pickle (CloudFormation stacks
  refer to other services' objects), S3 buckets without their objects;
- `s3/objects/<sha256 of bucket name>/<sha256 of key>.pkl`: one record per object key (all its
  versions, the attributes of each and its tags), so that PutObject rewrites one small file;
- `s3/blobs/<uuid>`: object bodies (blobs.py);
- `logs/<sha1 of stream ARN>.log`: CloudWatch Logs events, append-only (logjournal.py).
Every file is versioned (fileformat.py), replaced atomically and fsynced, private to the user.

No name from a request is ever joined into a path: bucket and key names (a key may be `../x`,
a bucket name that moto took from the raw URL may be `%2e%2e`) only ever become file names
through a hash. A record that cannot be read is quarantined (quarantine.py) and the rest loads;
an unreadable snapshot stops the start with a message, since it holds everything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from emulator.persistence import blobs as blob_files
from emulator.persistence import memory, pickling
from emulator.persistence.fileformat import (
    StateFormatError,
    fsync_dir,
    open_private,
    private_dir,
    read_checked,
    write_atomic,
)
from emulator.persistence.logjournal import LogJournals
from emulator.persistence.quarantine import QUARANTINE, Quarantine

log = logging.getLogger(__name__)

STATE_KIND = "moto-state"
RECORD_KIND = "s3-object"
MARKER = ".iot-emulator-data-dir"


def moto_dir(data_dir: Path) -> Path:
    return data_dir / "moto"


def bucket_folder(name: str) -> str:
    """The folder name of a bucket's object records: a hash, whatever the bucket's name."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def record_file(key: str) -> str:
    """The file name of an object key's record: a hash (keys can be anything, `../` too)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + ".pkl"


class Persistence:
    """Saves moto's state under `data_dir` after each change, and loads it at start."""

    def __init__(self, data_dir: Path, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.durable = durable
        self.root = moto_dir(data_dir)
        self.state_path = self.root / "state.pkl"
        self.objects_dir = self.root / "s3" / "objects"
        private_dir(self.objects_dir)
        os.close(open_private(data_dir / MARKER, os.O_WRONLY | os.O_CREAT))
        self.quarantine = Quarantine(data_dir)
        self.logs = LogJournals(self.root / "logs", data_dir, self.quarantine)
        self.blobs = blob_files.BlobStore(self.root / "s3" / "blobs", delete_at_once=not durable)
        blob_files.install(self.blobs)
        memory.limit_heap_retention()
        self._requested = 0
        self._saved = 0
        self._count_lock = threading.Lock()
        self._snapshot_lock = threading.Lock()
        self._record_lock = threading.Lock()
        # Time spent saving, for benchmarks: [count, seconds] per kind of save.
        self.stats = {"snapshot": [0, 0.0], "object_record": [0, 0.0]}
        self.last_load: dict[str, Any] = {"loaded": False}

    # Loading ------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        """Restore the saved state into moto's backends; a summary of what was loaded."""
        started = time.monotonic()
        if not self.durable or not self.state_path.exists():
            return {"loaded": False}
        pending_tags: list[dict[str, dict]] = []

        def bucket_keys(bucket_name: str) -> Any:
            return self._load_bucket_keys(bucket_name, pending_tags)

        try:
            data = read_checked(
                self.state_path,
                STATE_KIND,
                self.data_dir,
                lambda src: pickling.loads(src, self.blobs, bucket_keys, self.logs.load),
            )
        except StateFormatError as exc:
            raise StateFormatError(f"{exc}. {self._set_aside_advice()}") from exc
        finally:
            referenced, missing = pickling.take_load_report()
        buckets = install_backends(data["backends"])
        for tags in pending_tags:
            apply_object_tags(tags)
        folders = {bucket_folder(name) for name in buckets}
        for entry in os.scandir(self.objects_dir):
            if entry.name not in folders:  # records of a bucket deleted before a crash
                shutil.rmtree(entry.path, ignore_errors=True)
        # Bodies nobody refers to are a crash's leftovers, unless a record was quarantined:
        # then one of them is its body, and goes to the quarantine with it.
        records_lost = any(
            src.parent.parent == self.objects_dir for src, _ in self.quarantine.moved
        )
        set_aside = (
            (lambda path: self.quarantine.move(path, "body of no readable object record"))
            if records_lost
            else None
        )
        orphans = self.blobs.remove_unreferenced(referenced, set_aside)
        self.logs.remove_unreferenced()
        for key in missing:
            log.warning("the body of s3://%s was lost (crash while it was replaced)", key)
        summary = {
            "loaded": True,
            "seconds": round(time.monotonic() - started, 3),
            "objects": len(referenced),
            "orphan_bodies_removed": orphans,
            "quarantined": [str(target) for _, target in self.quarantine.moved],
        }
        log.info("restored the saved AWS state from %s: %s", self.root, summary)
        self.last_load = summary
        return summary

    def _load_bucket_keys(self, bucket_name: str, pending_tags: list[dict[str, dict]]) -> Any:
        from moto.s3.utils import _VersionedKeyStore

        keys = _VersionedKeyStore()
        folder = self.objects_dir / bucket_folder(bucket_name)
        if not folder.is_dir():
            self._adopt_legacy_folder(bucket_name, folder)
            if not folder.is_dir():
                return keys
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            try:
                record = read_checked(entry.path, RECORD_KIND, self.data_dir, pickling.unpickle)
                if not (
                    isinstance(record, dict)
                    and isinstance(record.get("key"), str)
                    and isinstance(record.get("versions"), list)
                    and isinstance(record.get("tags"), dict)
                ):
                    raise StateFormatError(f"{entry.path} is not an S3 object record")
            except (StateFormatError, OSError) as exc:
                self.quarantine.move(entry.path, f"an object record of bucket {bucket_name}: {exc}")
                continue
            keys.setlist(record["key"], record["versions"])
            if record["tags"]:
                pending_tags.append(record["tags"])
            if entry.name != record_file(record["key"]):  # written by an older version
                os.replace(entry.path, folder / record_file(record["key"]))
        return keys

    def _adopt_legacy_folder(self, bucket_name: str, folder: Path) -> None:
        """Older versions named a bucket's folder after the bucket: rename it to its hash.

        The folder is found by comparing names with what moto restored, never by joining the
        bucket's name into a path."""
        for entry in os.scandir(self.objects_dir):
            if entry.name == bucket_name and entry.is_dir(follow_symlinks=False):
                os.replace(entry.path, folder)
                fsync_dir(self.objects_dir)
                return

    def _set_aside_advice(self) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.data_dir / QUARANTINE / f"moto-{stamp}"
        return (
            "The emulator does not start on it: every resource but S3 objects is in this file, "
            "and starting without it would look like an empty account. To start empty and keep "
            f"the saved state for inspection, move it aside: `mkdir -p {aside.parent} && "
            f"mv {self.root} {aside}`"
        )

    # Saving -------------------------------------------------------------------------------
    def save_snapshot(self) -> None:
        """Save every backend; concurrent callers share one write (group commit)."""
        if not self.durable:
            return
        with self._count_lock:
            self._requested += 1
            ticket = self._requested
        with self._snapshot_lock:
            if self._saved >= ticket:
                return  # a snapshot started after this caller's change already covers it
            covered = self._requested
            started = time.perf_counter()
            self._write_snapshot()
            self._count("snapshot", started)
            self._saved = covered
        self.blobs.collect()

    def _write_snapshot(self) -> None:
        for attempt in range(10):
            try:
                self.logs.sync()  # events first: the snapshot then refers to them
                state = {"backends": collect_backends()}
                write_atomic(
                    self.state_path, STATE_KIND, lambda out, s=state: pickling.dumps(s, out)
                )
                return
            except RuntimeError as exc:  # another thread changed a dict while it was pickled
                if "during iteration" not in str(exc) or attempt == 9:
                    raise
                time.sleep(0.001 * (attempt + 1))

    def changed(self) -> None:
        """For components that change moto's state outside an API request (a background
        thread): save it now. Changes made while answering a request are saved by the
        middleware."""
        self.save_snapshot()

    def save_objects(self, bucket_name: str, key_names: list[str]) -> None:
        """Save the records of these keys of a bucket as they are in memory now."""
        if not self.durable:
            return
        bucket, backend = find_bucket(bucket_name)
        if bucket is None:
            return
        folder = self.objects_dir / bucket_folder(bucket.name)  # the name moto stored
        if not folder.is_dir():
            private_dir(folder)
            fsync_dir(self.objects_dir)
        self.blobs.sync()  # bodies first: a durable record must not point at a lost body
        with self._record_lock:
            started = time.perf_counter()
            for key_name in key_names:
                path = folder / record_file(key_name)
                versions = list(bucket.keys.getlist(key_name) or [])
                if not versions:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    continue
                # moto keeps an empty tag set per key; only real tags are worth restoring.
                tags = {
                    v.arn: dict(backend.tagger.tags[v.arn])
                    for v in versions
                    if hasattr(v, "arn") and backend.tagger.tags.get(v.arn)
                }
                record = {"key": key_name, "versions": versions, "tags": tags}
                write_atomic(
                    path,
                    RECORD_KIND,
                    lambda out, r=record: pickling.dumps(r, out),
                    sync_dir=False,  # once below for all the keys of the request
                )
            fsync_dir(folder)
            self._count("object_record", started)
        self.blobs.collect()

    def save_bucket(self, bucket_name: str) -> None:
        """Resynchronise all records of a bucket (after DeleteObjects, DeleteBucket, ...)."""
        if not self.durable:
            return
        bucket, _ = find_bucket(bucket_name)
        folder = self.objects_dir / bucket_folder(bucket_name if bucket is None else bucket.name)
        if bucket is None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        names = list(bucket.keys.keys())
        wanted = {record_file(n) for n in names}
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.name.endswith(".pkl") and entry.name not in wanted:
                    os.unlink(entry.path)
        self.save_objects(bucket_name, names)

    def describe(self) -> dict[str, Any]:
        """Where the state is kept and the time spent saving it (count, mean milliseconds)."""
        return {
            "data_dir": str(self.data_dir),
            "durable": self.durable,
            "load": self.last_load,
            "saves": {
                kind: {"count": n, "mean_ms": round(1000 * total / n, 3) if n else None}
                for kind, (n, total) in self.stats.items()
            },
        }

    def _count(self, kind: str, started: float) -> None:
        self.stats[kind][0] += 1
        self.stats[kind][1] += time.perf_counter() - started

    def stop(self) -> None:
        """Final save at a clean stop; bodies of keys collected from now on are kept."""
        try:
            self.save_snapshot()
        finally:
            self.blobs.frozen = True


# moto's backends ---------------------------------------------------------------------------
def collect_backends() -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """(module, attribute, {account: {region: backend}}) of every BackendDict in use."""
    from moto.core.base_backend import BackendDict

    found = []
    for backend_dict in list(BackendDict._instances):
        module_name = backend_dict.backend.__module__
        module = sys.modules.get(module_name)
        attr = (
            next((n for n, v in vars(module).items() if v is backend_dict), None)
            if module
            else None
        )
        if attr is None:
            continue
        accounts = {
            account: dict(dict.items(regions)) for account, regions in dict.items(backend_dict)
        }
        if any(accounts.values()):
            found.append((module_name, attr, accounts))
    return found


def install_backends(saved: list[tuple[str, str, dict[str, dict[str, Any]]]]) -> set[str]:
    """Put restored backends in moto's BackendDicts; the names of the restored buckets."""
    buckets: set[str] = set()
    for module_name, attr, accounts in saved:
        backend_dict = getattr(importlib.import_module(module_name), attr)
        for account, regions in accounts.items():
            per_account = backend_dict[account]
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
    from moto.s3.models import s3_backends

    # A bucket missing from bucket_accounts is silently replaced by the next CreateBucket.
    for account, partition, backend in s3_backends.iter_backends():
        for name in backend.buckets:
            s3_backends.bucket_accounts[name] = (partition, account)
            buckets.add(name)
    return buckets


def find_bucket(bucket_name: str) -> tuple[Any, Any]:
    from moto.s3.models import s3_backends

    located = s3_backends.bucket_accounts.get(bucket_name)
    if located is None:
        return None, None
    partition, account = located
    backend = dict.get(dict.get(s3_backends, account, {}), partition)
    if backend is None:
        return None, None
    return backend.buckets.get(bucket_name), backend


def apply_object_tags(tags: dict[str, dict]) -> None:
    from moto.s3.models import s3_backends

    for arn, values in tags.items():
        bucket_name = arn.split(":::", 1)[1].split("/", 1)[0]
        _, backend = find_bucket(bucket_name)
        if backend is None:
            for _account, _partition, candidate in s3_backends.iter_backends():
                if bucket_name in candidate.buckets:
                    backend = candidate
        if backend is not None:
            backend.tagger.tags[arn] = values
