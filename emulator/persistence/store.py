"""Where moto's state lives on disk, and how it is saved and loaded.

Layout under `<data_dir>/moto/` (other components keep their own folders under `data_dir`):
- `state.pkl`: a snapshot of every moto backend in use, in one pickle (CloudFormation stacks
  refer to other services' objects), S3 buckets without their objects;
- `s3/objects/<bucket>/<sha1 of key>.pkl`: one record per object key (all its versions, the
  attributes of each and its tags), so that PutObject rewrites one small file;
- `s3/blobs/<uuid>`: object bodies (blobs.py);
- `logs/<sha1 of stream ARN>.log`: CloudWatch Logs events, append-only (logjournal.py).
Every file is versioned (fileformat.py) and replaced atomically.
"""

from __future__ import annotations

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
from emulator.persistence.fileformat import read_checked, write_atomic
from emulator.persistence.logjournal import LogJournals

log = logging.getLogger(__name__)

STATE_KIND = "moto-state"
RECORD_KIND = "s3-object"
MARKER = ".iot-emulator-data-dir"


def moto_dir(data_dir: Path) -> Path:
    return data_dir / "moto"


class Persistence:
    """Saves moto's state under `data_dir` after each change, and loads it at start."""

    def __init__(self, data_dir: Path, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.durable = durable
        self.root = moto_dir(data_dir)
        self.state_path = self.root / "state.pkl"
        self.objects_dir = self.root / "s3" / "objects"
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / MARKER).touch()
        self.logs = LogJournals(self.root / "logs", data_dir)
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
        finally:
            referenced, missing = pickling.take_load_report()
        buckets = install_backends(data["backends"])
        for tags in pending_tags:
            apply_object_tags(tags)
        for name in os.listdir(self.objects_dir):
            if name not in buckets:  # records of a bucket deleted before a crash
                shutil.rmtree(self.objects_dir / name, ignore_errors=True)
        orphans = self.blobs.remove_unreferenced(referenced)
        self.logs.remove_unreferenced()
        for key in missing:
            log.warning("the body of s3://%s was lost (crash while it was replaced)", key)
        summary = {
            "loaded": True,
            "seconds": round(time.monotonic() - started, 3),
            "objects": len(referenced),
            "orphan_bodies_removed": orphans,
        }
        log.info("restored the saved AWS state from %s: %s", self.root, summary)
        self.last_load = summary
        return summary

    def _load_bucket_keys(self, bucket_name: str, pending_tags: list[dict[str, dict]]) -> Any:
        from moto.s3.utils import _VersionedKeyStore

        keys = _VersionedKeyStore()
        folder = self.objects_dir / bucket_name
        if not folder.is_dir():
            return keys
        for entry in os.scandir(folder):
            if entry.name.startswith("."):
                continue
            record = read_checked(entry.path, RECORD_KIND, self.data_dir, pickling.unpickle)
            keys.setlist(record["key"], record["versions"])
            if record["tags"]:
                pending_tags.append(record["tags"])
        return keys

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
        folder = self.objects_dir / bucket_name
        folder.mkdir(exist_ok=True)
        with self._record_lock:
            started = time.perf_counter()
            for key_name in key_names:
                path = folder / f"{hashlib.sha1(key_name.encode()).hexdigest()}.pkl"
                versions = list(bucket.keys.getlist(key_name) or [])
                if not versions:
                    path.unlink(missing_ok=True)
                    continue
                # moto keeps an empty tag set per key; only real tags are worth restoring.
                tags = {
                    v.arn: dict(backend.tagger.tags[v.arn])
                    for v in versions
                    if hasattr(v, "arn") and backend.tagger.tags.get(v.arn)
                }
                record = {"key": key_name, "versions": versions, "tags": tags}
                write_atomic(path, RECORD_KIND, lambda out, r=record: pickling.dumps(r, out))
            self._count("object_record", started)
        self.blobs.collect()

    def save_bucket(self, bucket_name: str) -> None:
        """Resynchronise all records of a bucket (after DeleteObjects, DeleteBucket, ...)."""
        if not self.durable:
            return
        bucket, _ = find_bucket(bucket_name)
        folder = self.objects_dir / bucket_name
        if bucket is None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        names = list(bucket.keys.keys())
        wanted = {f"{hashlib.sha1(n.encode()).hexdigest()}.pkl" for n in names}
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
