"""The Device Shadow rules, pure (no I/O, no clock: callers pass `now` in epoch seconds).

What a shadow holds and answers follows the developer guide:
- documents and delta: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html
- update/get/delete flows: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-data-flow.html
- error codes and messages: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-error-messages.html
- limits (8 KB of desired + reported, metadata not counted): https://docs.aws.amazon.com/iot/latest/developerguide/diagnosing-shadows.html
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

SECTIONS = ("desired", "reported")
# "A client token that is longer than 64 bytes" is rejected (device-shadow-error-messages.html).
MAX_CLIENT_TOKEN_BYTES = 64
# "JSON contains too many levels of nesting; maximum is 6" (device-shadow-error-messages.html),
# counted inside `desired` / `reported`: {"desired": {"a": 1}} has one level.
MAX_DEPTH = 6
# "The device's shadow supports 8 KB of data only ... Only the data for desired and reported
# state ... counts toward the limit" (diagnosing-shadows.html).
MAX_STATE_BYTES = 8 * 1024
# A deleted shadow re-created within 48 hours continues its version numbering
# (device-shadow-data-flow.html, "DELETE").
VERSION_MEMORY_SECONDS = 48 * 3600
# iot-data API reference (GetThingShadow, ListNamedShadowsForThing): name patterns and lengths.
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
SHADOW_NAME = re.compile(r"[$a-zA-Z0-9:_-]{1,64}")


class ShadowError(Exception):
    """A rejected request: `code` is the HTTP status AWS uses, `message` its documented text."""

    def __init__(self, code: int, message: str, client_token: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_token = client_token

    def document(self, now: int) -> dict[str, Any]:
        """The error response document published on `/rejected`."""
        doc: dict[str, Any] = {"code": self.code, "message": self.message, "timestamp": now}
        if self.client_token is not None:
            doc["clientToken"] = self.client_token
        return doc


def bad_request(message: str, client_token: str | None = None) -> ShadowError:
    return ShadowError(400, message, client_token)


@dataclass
class Shadow:
    """One shadow's stored data. `deleted_at` set means deleted (kept only for its version)."""

    thing: str
    name: str  # "" for the classic shadow
    state: dict[str, Any] = field(default_factory=dict)  # {"desired": {...}, "reported": {...}}
    metadata: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    deleted_at: int | None = None

    @property
    def exists(self) -> bool:
        return self.deleted_at is None and self.version > 0

    def display_name(self) -> str:
        # AWS names a named shadow "<thing>~<shadow>" in its 404 message.
        return f"{self.thing}~{self.name}" if self.name else self.thing

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Shadow:
        return cls(
            thing=record["thing"],
            name=record["name"],
            state=record["state"],
            metadata=record["metadata"],
            version=int(record["version"]),
            deleted_at=record.get("deleted_at"),
        )


@dataclass(frozen=True)
class UpdateResult:
    shadow: Shadow
    accepted: dict[str, Any]
    delta: dict[str, Any] | None
    documents: dict[str, Any]


# Request parsing ------------------------------------------------------------------------------
def parse_json(payload: bytes) -> Any:
    """The request body as JSON; 415 for bytes that are not UTF-8, 400 for invalid JSON."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise ShadowError(
            415, "Unsupported documented encoding; supported encoding is UTF-8"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError:
        raise bad_request("Invalid JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e400 would become inf, which cannot be written back as JSON.
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def client_token_of(request: Any) -> str | None:
    """The request's clientToken, validated (string of at most 64 bytes) or None."""
    if not isinstance(request, dict) or "clientToken" not in request:
        return None
    token = request["clientToken"]
    if not isinstance(token, str) or len(token.encode("utf-8")) > MAX_CLIENT_TOKEN_BYTES:
        raise bad_request("Invalid clientToken")
    return token


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _has_null_in_array(value: Any, in_array: bool = False) -> bool:
    if value is None:
        return in_array
    if isinstance(value, dict):
        return any(_has_null_in_array(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null_in_array(v, True) for v in value)
    return False


def validate_update(request: Any) -> tuple[dict[str, Any], str | None, int | None]:
    """(state sections to apply, clientToken, expected version) of an update request."""
    if not isinstance(request, dict):
        raise bad_request("Invalid JSON")
    token = client_token_of(request)
    version = request.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise bad_request("Invalid version", token)
    if "state" not in request:
        raise bad_request("Missing required node: state", token)
    state = request["state"]
    if state is None:
        # "Setting the device's shadow state to null does not delete the shadow"
        # (device-shadow-data-flow.html): both sections are cleared, the version moves on.
        state = {"desired": None, "reported": None}
    if not isinstance(state, dict):
        raise bad_request("State node must be an object", token)
    for key, value in state.items():
        if key not in SECTIONS:
            raise bad_request("State contains an invalid node", token)
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"{key.capitalize()} node must be an object", token)
        if value is not None and _depth(value) > MAX_DEPTH:
            raise bad_request("JSON contains too many levels of nesting; maximum is 6", token)
        # "Arrays can't have null values" (device-shadow-document.html, array values).
        if _has_null_in_array(value):
            raise bad_request("State contains an invalid node", token)
    return state, token, version


# Merge, metadata and delta ------------------------------------------------------------------
def metadata_for(value: Any, now: int) -> Any:
    """Per-attribute timestamps: objects recurse, arrays get one entry per element."""
    if isinstance(value, dict):
        return {k: metadata_for(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [metadata_for(v, now) for v in value]
    return {"timestamp": now}


def _merge(target: dict[str, Any], meta: dict[str, Any], update: dict[str, Any], now: int) -> None:
    """Merge `update` into `target` (and its metadata): `null` removes a key; arrays replace."""
    for key, value in update.items():
        if value is None:
            target.pop(key, None)
            meta.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            sub_meta = meta.get(key)
            if not isinstance(sub_meta, dict):
                sub_meta = meta[key] = {}
            _merge(target[key], sub_meta, value, now)
            if not target[key]:
                del target[key]
                meta.pop(key, None)
        elif isinstance(value, dict):
            pruned = _without_nulls(value)
            if pruned:
                target[key] = pruned
                meta[key] = metadata_for(pruned, now)
            else:
                target.pop(key, None)
                meta.pop(key, None)
        else:
            target[key] = copy.deepcopy(value)
            meta[key] = metadata_for(value, now)


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            v = _without_nulls(v)
            if not v:
                continue
        elif v is None:
            continue
        out[k] = copy.deepcopy(v)
    return out


def _same(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0, arrays compare whole."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def delta_of(desired: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """Desired fields that reported lacks or holds differently, with their path to the root."""
    delta: dict[str, Any] = {}
    for key, want in desired.items():
        if key not in reported:
            delta[key] = copy.deepcopy(want)
        elif isinstance(want, dict) and isinstance(reported[key], dict):
            sub = delta_of(want, reported[key])
            if sub:
                delta[key] = sub
        elif not _same(want, reported[key]):
            delta[key] = copy.deepcopy(want)
    return delta


def _restrict(meta: Any, shape: Any) -> Any:
    """The part of `meta` (desired metadata) that covers the keys of `shape` (a delta)."""
    if isinstance(shape, dict) and isinstance(meta, dict):
        return {k: _restrict(meta.get(k), v) for k, v in shape.items()}
    return copy.deepcopy(meta)


def state_bytes(state: dict[str, Any]) -> int:
    return len(json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# Operations ---------------------------------------------------------------------------------
def current_version(shadow: Shadow | None, now: int) -> int:
    """The version an update is checked against: a recently deleted shadow keeps its number."""
    if shadow is None:
        return 0
    if shadow.deleted_at is not None and now - shadow.deleted_at > VERSION_MEMORY_SECONDS:
        return 0
    return shadow.version


def apply_update(
    shadow: Shadow | None, thing: str, name: str, request: Any, now: int
) -> UpdateResult:
    """Validate and apply an update request; raise ShadowError for a rejected one."""
    sections, token, expected = validate_update(request)
    base = current_version(shadow, now)
    if expected is not None and expected != base:
        raise ShadowError(409, "Version conflict", token)
    existed = shadow is not None and shadow.exists
    before = copy.deepcopy(shadow) if existed else None
    state = copy.deepcopy(shadow.state) if existed else {}
    metadata = copy.deepcopy(shadow.metadata) if existed else {}
    for section, value in sections.items():
        if value is None:
            state.pop(section, None)
            metadata.pop(section, None)
            continue
        target = state.setdefault(section, {})
        meta = metadata.setdefault(section, {})
        _merge(target, meta, value, now)
        if not target:
            state.pop(section, None)
            metadata.pop(section, None)
    if state_bytes(state) > MAX_STATE_BYTES:
        raise ShadowError(413, "The payload exceeds the maximum size allowed", token)
    after = Shadow(thing, name, state, metadata, base + 1, None)

    accepted: dict[str, Any] = {
        "state": copy.deepcopy(sections),
        "metadata": {
            section: (metadata_for(value, now) if value is not None else {"timestamp": now})
            for section, value in sections.items()
        },
        "version": after.version,
        "timestamp": now,
    }
    delta = delta_of(state.get("desired", {}), state.get("reported", {}))
    delta_doc = None
    if delta:
        delta_doc = {
            "version": after.version,
            "timestamp": now,
            "state": delta,
            "metadata": _restrict(metadata.get("desired", {}), delta),
        }
    documents: dict[str, Any] = {}
    if before is not None:
        documents["previous"] = _snapshot(before)
    documents["current"] = _snapshot(after)
    documents["timestamp"] = now
    if token is not None:
        accepted["clientToken"] = token
        documents["clientToken"] = token
        if delta_doc is not None:
            delta_doc["clientToken"] = token
    return UpdateResult(after, accepted, delta_doc, documents)


def _snapshot(shadow: Shadow) -> dict[str, Any]:
    return {
        "state": copy.deepcopy(shadow.state),
        "metadata": copy.deepcopy(shadow.metadata),
        "version": shadow.version,
    }


def get_document(
    shadow: Shadow | None, thing: str, name: str, now: int, token: str | None = None
) -> dict[str, Any]:
    """The full shadow with its delta; 404 when there is no shadow."""
    if shadow is None or not shadow.exists:
        display = Shadow(thing, name).display_name()
        raise ShadowError(404, f"No shadow exists with name: '{display}'", token)
    state = copy.deepcopy(shadow.state)
    metadata = copy.deepcopy(shadow.metadata)
    delta = delta_of(state.get("desired", {}), state.get("reported", {}))
    if delta:
        # The delta carries the desired metadata of its keys (device-shadow-document.html).
        state["delta"] = delta
        metadata["delta"] = _restrict(metadata.get("desired", {}), delta)
    doc: dict[str, Any] = {
        "state": state,
        "metadata": metadata,
        "version": shadow.version,
        "timestamp": now,
    }
    if token is not None:
        doc["clientToken"] = token
    return doc


def delete(
    shadow: Shadow | None, thing: str, name: str, now: int, token: str | None = None
) -> tuple[Shadow, dict[str, Any]]:
    """(the tombstone to keep, the delete/accepted document); 404 when there is no shadow."""
    if shadow is None or not shadow.exists:
        display = Shadow(thing, name).display_name()
        raise ShadowError(404, f"No shadow exists with name: '{display}'", token)
    tombstone = Shadow(thing, name, {}, {}, shadow.version, now)
    doc: dict[str, Any] = {"version": shadow.version, "timestamp": now}
    if token is not None:
        doc["clientToken"] = token
    return tombstone, doc
