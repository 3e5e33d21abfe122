"""Pickling moto's backends: what plain `pickle` cannot or must not write.

- An S3 key (`FakeKey`) is written as its attributes plus the *name* of its body file (blobs.py),
  never its bytes; a bucket is written without its keys, which live in per-object records
  (records.py), so that a PutObject does not rewrite the whole state.
- Multipart uploads in progress are not kept (their parts are dropped; AWS would keep them).
- A log stream is written without its events, which live in journals (logjournal.py).
- Object tags live in the S3 backend's `tagger` under the object's ARN; they are written with the
  object's record instead of the snapshot.
- Locks, `weakref.WeakValueDictionary` and `defaultdict(lambda: {})` (moto's Lambda backend) have
  no pickle support; they are rebuilt.
"""

from __future__ import annotations

import _thread
import io
import pickle
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from moto.logs.models import LogStream
from moto.s3.models import FakeBucket, FakeKey, FakeMultipart, MultipartDict, S3Backend

from emulator.persistence.blobs import BlobFile, BlobStore
from emulator.persistence.logjournal import journal_name

# Set while loading: restores key bodies and a bucket's keys.
_loading: dict[str, Any] = {}


class MotoPickler(pickle.Pickler):
    """A pickler that knows moto's unpicklable and too-big-to-repeat objects."""

    def reducer_override(self, obj: Any) -> Any:  # noqa: C901 - one dispatch table
        kind = type(obj)
        if kind is FakeKey:
            return _reduce_key(obj)
        if kind is FakeBucket:
            state = obj.__dict__.copy()
            state.pop("keys", None)
            state["multiparts"] = MultipartDict()
            return (_new, (FakeBucket,), state, None, None, _set_bucket_state)
        if kind is FakeMultipart:
            state = obj.__dict__.copy()
            state["parts"] = {}
            return (_new, (FakeMultipart,), state)
        if kind is S3Backend:
            state = obj.__dict__.copy()
            tagger = obj.tagger.__class__.__new__(obj.tagger.__class__)
            tagger.__dict__.update(obj.tagger.__dict__)
            # moto tags only buckets and keys here; keys' tags are in their records. Looking up
            # the buckets keeps this O(buckets), not O(objects), for every snapshot.
            tags = obj.tagger.tags
            arns = (bucket.arn for bucket in list(obj.buckets.values()))
            tagger.tags = {arn: tags[arn] for arn in arns if arn in tags}
            state["tagger"] = tagger
            return (_new, (S3Backend,), state)
        if kind is LogStream:
            state = obj.__dict__.copy()
            state.pop("events", None)
            state["_events_journal"] = journal_name(obj)
            return (_new, (LogStream,), state, None, None, _set_stream_state)
        if kind is _thread.LockType:
            return (threading.Lock, ())
        if kind is _thread.RLock or kind.__name__ == "RLock":
            return (threading.RLock, ())
        if kind is weakref.WeakValueDictionary:
            return (_weak_value_dict, (dict(obj.items()),))
        if kind is defaultdict and _is_lambda(obj.default_factory):
            return (
                _defaultdict_of,
                (_factory_kind(obj.default_factory),),
                None,
                None,
                iter(list(obj.items())),
            )
        return NotImplemented


def dumps(obj: Any, out: io.BufferedIOBase | Any) -> None:
    MotoPickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)


def loads(
    src: Any,
    blobs: BlobStore,
    bucket_keys: Callable[[str], Any],
    log_events: Callable[[str, Any], list] = lambda _name, _stream: [],
) -> Any:
    """Unpickle; key bodies are adopted from `blobs`, a bucket's keys come from `bucket_keys`,
    a log stream's events from `log_events(journal name, stream)`."""
    _loading.clear()
    _loading.update(
        blobs=blobs, bucket_keys=bucket_keys, log_events=log_events, referenced=set(), missing=[]
    )
    return unpickle(src)


def unpickle(src: Any) -> Any:
    """Unpickle within a load started by `loads` (an object record read for a bucket)."""
    return pickle.Unpickler(src).load()


def take_load_report() -> tuple[set[str], list[str]]:
    """Body names referenced by the keys loaded so far, and keys whose body was missing."""
    referenced, missing = _loading.get("referenced", set()), _loading.get("missing", [])
    _loading.clear()
    return referenced, missing


# Reducers and rebuilders (module level: pickle refers to them by name) ---------------------
def _reduce_key(key: FakeKey) -> tuple:
    state = key.__dict__.copy()
    buffer = state.pop("_value_buffer")
    state.pop("lock", None)
    if not isinstance(buffer, BlobFile):
        raise TypeError("S3 key body is not in the data directory (blob store not installed)")
    state["_blob_name"] = buffer.blob_name
    return (_new, (FakeKey,), state, None, None, _set_key_state)


def _new(cls: type) -> Any:
    return cls.__new__(cls)


def _set_key_state(key: FakeKey, state: dict[str, Any]) -> None:
    blob_name = state.pop("_blob_name")
    key.__dict__.update(state)
    blobs: BlobStore = _loading["blobs"]
    key.lock = threading.Lock()
    if blobs.exists(blob_name):
        key._value_buffer = blobs.adopt(blob_name)
        _loading["referenced"].add(blob_name)
    else:  # a crash between a body's retirement and its record's update
        key._value_buffer = blobs.new()
        key.contentsize = 0
        _loading["missing"].append(f"{state.get('bucket_name')}/{state.get('name')}")


def _set_bucket_state(bucket: FakeBucket, state: dict[str, Any]) -> None:
    bucket.__dict__.update(state)
    bucket.keys = _loading["bucket_keys"](bucket.name)


def _set_stream_state(stream: LogStream, state: dict[str, Any]) -> None:
    name = state.pop("_events_journal")
    stream.__dict__.update(state)
    stream.events = _loading["log_events"](name, stream)


def _weak_value_dict(items: dict) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _is_lambda(factory: Any) -> bool:
    return getattr(factory, "__name__", "") == "<lambda>"


def _factory_kind(factory: Callable[[], Any]) -> type:
    made = factory()
    if type(made) in (dict, list, set, int) and not made:
        return type(made)
    raise TypeError(f"cannot persist a defaultdict whose factory returns {made!r}")


def _defaultdict_of(kind: type) -> defaultdict:
    return defaultdict(kind)
