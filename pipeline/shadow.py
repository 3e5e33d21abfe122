"""The device's shadow: the device side over MQTT (awsiotsdk's `iotshadow` client on the same
connection notebook 03 opens) and the application side over HTTPS (iot-data).

The device keeps its settings (for example a target temperature and a sampling interval) in
`DeviceShadow.state`, reports them, and applies every delta IoT Core sends: a delta holds the
desired values that differ from the reported ones, so the device sets them and reports them
back, which empties the delta. The application sets desired values and reads the documents.
The same calls work on the emulator and on the account's ATS endpoint.

Topics and documents: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html
and https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from pipeline.experiments import _data_client as data_client
from pipeline.publish import Device
from pipeline.target import Target


class ShadowRejected(RuntimeError):
    """IoT Core answered a request on `/rejected`: `code` is its HTTP-like status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def merge(target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` (a delta) to `target` as the shadow does: objects merge key by key, other
    values replace, `null` removes. Returns `target`."""
    for key, value in changes.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class DeviceShadow:
    """The device's side of its classic shadow, on a connected `publish.Device`.

    `start()` subscribes to the answer topics and the delta; each delta is applied to `state`
    and reported back at once (from the SDK's callback, without waiting). `events` lists what
    the device received and sent, in order, for the notebook's table."""

    def __init__(self, device: Device, thing: str, state: dict[str, Any]) -> None:
        from awscrt import mqtt
        from awsiot import iotshadow

        self._iotshadow = iotshadow
        self.client = iotshadow.IotShadowClient(device.connection)
        self._qos = mqtt.QoS.AT_LEAST_ONCE
        self.thing = thing
        self.state: dict[str, Any] = copy.deepcopy(state)
        self.events: list[dict[str, Any]] = []
        self.version = 0  # the newest shadow version the device has seen
        self._pending: dict[str, Future] = {}
        self._lock = threading.Lock()

    # Subscriptions --------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Subscribe to update/get accepted and rejected and to the delta (before any request:
        IoT Core sends the answer only to clients already subscribed)."""
        shadow = self._iotshadow
        thing = {"thing_name": self.thing}
        update = shadow.UpdateShadowSubscriptionRequest(**thing)
        get = shadow.GetShadowSubscriptionRequest(**thing)
        delta = shadow.ShadowDeltaUpdatedSubscriptionRequest(**thing)
        client = self.client
        subscriptions = [
            client.subscribe_to_update_shadow_accepted(update, self._qos, self._on_accepted),
            client.subscribe_to_update_shadow_rejected(update, self._qos, self._on_rejected),
            client.subscribe_to_get_shadow_accepted(get, self._qos, self._on_accepted),
            client.subscribe_to_get_shadow_rejected(get, self._qos, self._on_rejected),
            client.subscribe_to_shadow_delta_updated_events(delta, self._qos, self._on_delta),
        ]
        for future, topic in subscriptions:
            granted = future.result(timeout)
            if granted not in (0, 1):  # 0x80: the policy does not allow the subscription
                raise PermissionError(f"IoT Core refused the subscription to {topic}")

    # Requests -------------------------------------------------------------------------------
    def report(self, state: dict[str, Any] | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Report `state` (default: all of `self.state`) and wait for update/accepted; raise
        ShadowRejected for update/rejected."""
        sent, answer = self._send_report(copy.deepcopy(self.state if state is None else state))
        sent.result(timeout)
        return answer.result(timeout)

    def _send_report(self, reported: dict[str, Any]) -> tuple[Future, Future]:
        """Publish an update of `reported`: (its PUBACK, its accepted document) as futures."""
        token, answer = self._request()
        request = self._iotshadow.UpdateShadowRequest(
            thing_name=self.thing,
            client_token=token,
            state=self._iotshadow.ShadowState(reported=reported),
        )
        self._log("sent", "update", {"reported": reported})
        return self.client.publish_update_shadow(request, self._qos), answer

    def get(self, timeout: float = 10.0) -> dict[str, Any]:
        """The whole shadow document (get/accepted); ShadowRejected (404) when there is none."""
        token, answer = self._request()
        request = self._iotshadow.GetShadowRequest(thing_name=self.thing, client_token=token)
        self.client.publish_get_shadow(request, self._qos).result(timeout)
        return answer.result(timeout)

    def _request(self) -> tuple[str, Future]:
        token = uuid.uuid4().hex
        answer: Future = Future()
        with self._lock:
            self._pending[token] = answer
        return token, answer

    # Callbacks (the SDK's event loop thread: never block here) ------------------------------
    def _resolve(self, token: str | None) -> Future | None:
        with self._lock:
            return self._pending.pop(token, None) if token else None

    def _on_accepted(self, response: Any) -> None:
        document = _document(response)
        self._seen(document.get("version"))
        self._log("received", "accepted", document.get("state"), document.get("version"))
        answer = self._resolve(response.client_token)
        if answer is not None:
            answer.set_result(document)

    def _on_rejected(self, error: Any) -> None:
        self._log("received", "rejected", {"code": error.code, "message": error.message})
        answer = self._resolve(error.client_token)
        if answer is not None:
            answer.set_exception(ShadowRejected(error.code, error.message))

    def _on_delta(self, event: Any) -> None:
        """Apply the delta and report the new values back. A delta older than a version the
        device has already seen is skipped: messages may arrive out of order
        (https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-data-flow.html)."""
        changes = event.state or {}
        self._log("received", "delta", changes, event.version)
        with self._lock:
            stale = event.version is not None and event.version < self.version
        if stale or not changes:
            return
        self._seen(event.version)
        merge(self.state, changes)
        self._send_report({key: copy.deepcopy(self.state.get(key)) for key in changes})

    def _seen(self, version: int | None) -> None:
        if version is not None:
            with self._lock:
                self.version = max(self.version, version)

    def _log(self, direction: str, kind: str, body: Any, version: int | None = None) -> None:
        with self._lock:
            self.events.append(
                {
                    "time": datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3],
                    "device": direction,
                    "message": kind,
                    "version": version,
                    "body": json.dumps(body, sort_keys=True),
                }
            )


def _document(response: Any) -> dict[str, Any]:
    """The SDK's response object back as the JSON document IoT Core sent."""
    doc: dict[str, Any] = {"version": response.version}
    if response.timestamp is not None:  # the SDK made a naive local datetime of epoch seconds
        doc["timestamp"] = int(response.timestamp.timestamp())
    for part in ("state", "metadata"):
        value = getattr(response, part, None)
        if value is not None:
            sections = ("desired", "reported", "delta")
            doc[part] = {k: getattr(value, k) for k in sections if getattr(value, k, None)}
    return doc


# The application's side (HTTPS, iot-data) -------------------------------------------------------
def set_desired(
    target: Target, thing: str, desired: dict[str, Any], version: int | None = None
) -> dict[str, Any]:
    """UpdateThingShadow with a desired state; the accepted document. With `version`, IoT Core
    applies it only if the shadow is still at that version (409 ConflictException otherwise)."""
    body: dict[str, Any] = {"state": {"desired": desired}}
    if version is not None:
        body["version"] = version
    answer = data_client(target).update_thing_shadow(thingName=thing, payload=json.dumps(body))
    return json.loads(answer["payload"].read())


def document(target: Target, thing: str) -> dict[str, Any] | None:
    """GetThingShadow: the whole document with its delta, or None when there is no shadow."""
    return _answer_or_none(target, "get_thing_shadow", thing)


def delete(target: Target, thing: str) -> dict[str, Any] | None:
    """DeleteThingShadow: the deleted version, or None when there was no shadow."""
    return _answer_or_none(target, "delete_thing_shadow", thing)


def _answer_or_none(target: Target, operation: str, thing: str) -> dict[str, Any] | None:
    client = data_client(target)
    try:
        answer = getattr(client, operation)(thingName=thing)
    except client.exceptions.ResourceNotFoundException:
        return None
    return json.loads(answer["payload"].read())


def reset(target: Target, thing: str) -> dict[str, Any]:
    """Delete a shadow an earlier pass left, so that this pass starts from version 1 (or from
    the deleted version + 1: IoT Core keeps a deleted shadow's version for 48 hours)."""
    deleted = delete(target, thing)
    left = "none" if deleted is None else f"version {deleted['version']}, deleted"
    return {"thing": thing, "shadow left by an earlier pass": left}


def wait_in_sync(
    target: Target, thing: str, timeout: float = 30.0, poll: float = 0.2
) -> dict[str, Any]:
    """The shadow document once it has no delta (reported caught up with desired); TimeoutError
    with the remaining delta if the device does not report back within `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        doc = document(target, thing)
        if doc is not None and "delta" not in doc.get("state", {}):
            return doc
        if time.monotonic() >= deadline:
            left = None if doc is None else doc["state"].get("delta")
            raise TimeoutError(f"the device did not report back within {timeout} s: delta {left}")
        time.sleep(poll)


def error_of(exc: ClientError) -> dict[str, Any]:
    """An iot-data error as a table row: the HTTP status, the code and IoT Core's message."""
    error = exc.response.get("Error", {})
    return {
        "status": exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        "code": error.get("Code"),
        "message": error.get("Message"),
    }


# Tables ----------------------------------------------------------------------------------------
def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": leaf} for every leaf of a nested object (arrays are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_leaves(item, f"{prefix}.{key}" if prefix else key))
    return out


def _when(meta: Any) -> str | None:
    """The time of a metadata entry; for an array (one entry per element), the latest."""
    if isinstance(meta, list):
        times = [_when(m) for m in meta]
        return max((t for t in times if t is not None), default=None)
    if isinstance(meta, dict) and isinstance(meta.get("timestamp"), int | float):
        return datetime.fromtimestamp(meta["timestamp"], UTC).strftime("%H:%M:%S")
    return None


def state_table(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per attribute of a shadow document: desired, reported, delta and when each
    section last changed it (the document's per-attribute `metadata` timestamps)."""
    if doc is None:
        return []
    state, meta = doc.get("state", {}), doc.get("metadata", {})
    sections = {name: _leaves(state.get(name, {})) for name in ("desired", "reported", "delta")}
    times = {
        name: {k: _when(v) for k, v in _leaves_meta(meta.get(name, {})).items()}
        for name in ("desired", "reported")
    }
    keys = sorted(set().union(*(s.keys() for s in sections.values())))
    return [
        {
            "attribute": key,
            **{name: _shown(sections[name], key) for name in ("desired", "reported", "delta")},
            "desired at (UTC)": times["desired"].get(key),
            "reported at (UTC)": times["reported"].get(key),
        }
        for key in keys
    ]


def _shown(section: dict[str, Any], key: str) -> str:
    """A value as JSON text (so 15 and 15.0 stay apart), empty when the section lacks it."""
    return json.dumps(section[key]) if key in section else ""


def _leaves_meta(meta: Any, prefix: str = "") -> dict[str, Any]:
    """Like `_leaves`, but a `{"timestamp": t}` object is the leaf (metadata's shape)."""
    if not isinstance(meta, dict) or "timestamp" in meta:
        return {prefix: meta}
    out: dict[str, Any] = {}
    for key, item in meta.items():
        out.update(_leaves_meta(item, f"{prefix}.{key}" if prefix else key))
    return out


def summary_row(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The document's version and timestamp, and whether desired and reported agree."""
    if doc is None:
        return {"exists": False}
    return {
        "exists": True,
        "version": doc.get("version"),
        "timestamp (UTC)": _when(doc),
        "in sync": "delta" not in doc.get("state", {}),
    }


def try_set_desired(
    target: Target, thing: str, desired: dict[str, Any], version: int
) -> dict[str, Any]:
    """`set_desired` with an expected version, as a table row: accepted with the new version,
    or the error IoT Core answered (409 ConflictException when the shadow moved on)."""
    try:
        accepted = set_desired(target, thing, desired, version)
    except ClientError as exc:
        return {"expected version": version, "outcome": "rejected", **error_of(exc)}
    return {"expected version": version, "outcome": "accepted", "version": accepted["version"]}
