"""The Device Shadow component (`emulator.shadow`): iot-data's shadow operations over HTTP and
the reserved MQTT request topics, both on the one model in `model.py`.

The HTTP handlers answer GetThingShadow, UpdateThingShadow, DeleteThingShadow and
ListNamedShadowsForThing before moto (which keeps its own, incomplete shadows otherwise).
REST API: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-rest-api.html

Authorization. Over MQTT a shadow request is an ordinary PUBLISH on a reserved topic: the broker
checks iot:Publish on the request topic before `handle()` is called (a denied request never
reaches the shadow), and iot:Subscribe / iot:Receive on the answer topics like any other topic,
so policies written with `${iot:Connection.Thing.ThingName}` as in the developer guide's examples
(device-shadow-mqtt.html) confine a device to its own shadows. The shadow policy actions
(iot:GetThingShadow, iot:UpdateThingShadow, iot:DeleteThingShadow,
iot:ListNamedShadowsForThing) apply only to the HTTP API (device-shadow-rest-api.html, each
operation's "Authorization"), whose callers AWS authenticates with SigV4 or a client certificate
on the data endpoint. This emulator serves that API on its one endpoint, which authenticates no
request (as for every other API), and has no mutual-TLS HTTPS data endpoint, so those actions
are never evaluated here.

A thing does not have to be in the registry: ListNamedShadowsForThing answers an empty list for a
thing that "doesn't exist" (device-shadow-rest-api.html), and shadows are addressed by thing name
alone; so no registry lookup is made.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from emulator.constants import IOT_MESSAGE_MAX_BYTES
from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response
from emulator.shadow import model
from emulator.shadow.messages import OutboundMessage, ShadowPublisher
from emulator.shadow.model import Shadow, ShadowError
from emulator.shadow.store import ShadowStore

log = logging.getLogger(__name__)

SERVICE = "iot-data"
# ListNamedShadowsForThing: "pageSize ... Minimum value of 1. Maximum value of 100."
# https://docs.aws.amazon.com/iot/latest/apireference/API_iotdata_ListNamedShadowsForThing.html
MAX_PAGE_SIZE = 100
# IoT Core's message size (128 KB) bounds what an HTTP request may carry; larger is 413.
MAX_REQUEST_BYTES = IOT_MESSAGE_MAX_BYTES
_HTTP_ERRORS = {
    400: "InvalidRequestException",
    401: "UnauthorizedException",
    404: "ResourceNotFoundException",
    409: "ConflictException",
    413: "RequestEntityTooLargeException",
    415: "UnsupportedDocumentEncodingException",
    429: "ThrottlingException",
    500: "InternalFailureException",
}
_OPERATIONS = ("update", "get", "delete")


def parse_topic(topic: str) -> tuple[str, str, str] | None:
    """(thing, shadow name or "", operation) of a shadow request topic, else None.

    `$aws/things/<thing>/shadow/<op>` (classic) or `$aws/things/<thing>/shadow/name/<name>/<op>`.
    """
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != "$aws" or parts[1] != "things" or parts[3] != "shadow":
        return None
    if len(parts) == 5 and parts[4] in _OPERATIONS:
        return parts[2], "", parts[4]
    if len(parts) == 7 and parts[4] == "name" and parts[6] in _OPERATIONS:
        return parts[2], parts[5], parts[6]
    return None


def topic_prefix(thing: str, name: str) -> str:
    base = f"$aws/things/{thing}/shadow"
    return f"{base}/name/{name}" if name else base


class ShadowService:
    """Shadows in memory, written through to `<data_dir>/shadow/` before any answer."""

    def __init__(self, emulator: Any, clock: Callable[[], float] = time.time) -> None:
        self.emulator = emulator
        self._clock = clock
        self._lock = threading.Lock()
        self._shadows: dict[tuple[str, str], Shadow] = {}
        self._publisher: ShadowPublisher | None = None
        self.store = ShadowStore(emulator.data_dir / "shadow", durable=not emulator.ephemeral)
        emulator.shadow = self
        gateway = emulator.gateway
        gateway.on(SERVICE, "GetThingShadow", self._http_get)
        gateway.on(SERVICE, "UpdateThingShadow", self._http_update)
        gateway.on(SERVICE, "DeleteThingShadow", self._http_delete)
        gateway.on(SERVICE, "ListNamedShadowsForThing", self._http_list)

    # Life cycle ---------------------------------------------------------------------------
    def start(self) -> ShadowService:
        now = self._now()
        shadows = {}
        for shadow in self.store.load():
            if shadow.deleted_at is not None and model.current_version(shadow, now) == 0:
                # A deletion older than 48 hours no longer carries a version: forget it.
                self.store.remove(shadow.thing, shadow.name)
                continue
            shadows[(shadow.thing, shadow.name)] = shadow
        with self._lock:
            self._shadows = shadows
        return self

    def set_publisher(self, publisher: ShadowPublisher | None) -> None:
        """The broker's callback for messages of changes made over HTTP (see messages.py)."""
        self._publisher = publisher

    @property
    def publisher(self) -> ShadowPublisher | None:
        """The callback set last (so that who replaces it for a while can put it back)."""
        return self._publisher

    def _now(self) -> int:
        return int(self._clock())

    # The model, under one lock ------------------------------------------------------------
    def update(self, thing: str, name: str, request: Any) -> model.UpdateResult:
        with self._lock:
            now = self._now()
            result = model.apply_update(self._shadows.get((thing, name)), thing, name, request, now)
            self.store.save(result.shadow)
            self._shadows[(thing, name)] = result.shadow
            return result

    def get(self, thing: str, name: str, token: str | None = None) -> dict[str, Any]:
        with self._lock:
            return model.get_document(
                self._shadows.get((thing, name)), thing, name, self._now(), token
            )

    def delete(self, thing: str, name: str, token: str | None = None) -> dict[str, Any]:
        with self._lock:
            tombstone, doc = model.delete(
                self._shadows.get((thing, name)), thing, name, self._now(), token
            )
            self.store.save(tombstone)
            self._shadows[(thing, name)] = tombstone
            return doc

    def named_shadows(self, thing: str) -> list[str]:
        with self._lock:
            return sorted(
                name for (t, name), s in self._shadows.items() if t == thing and name and s.exists
            )

    # MQTT hand-off ------------------------------------------------------------------------
    def handle(
        self, topic: str, payload: bytes, client_id: str | None = None
    ) -> list[OutboundMessage] | None:
        """The messages IoT Core publishes in answer to a PUBLISH on a shadow request topic;
        None when `topic` is not a shadow request topic.

        The caller (the broker) has already authorised `iot:Publish` on `topic`; `client_id` is
        kept for per-connection limits (AWS answers 429 beyond 10 in-flight requests on one
        connection), which the broker is better placed to count."""
        parsed = parse_topic(topic)
        if parsed is None:
            return None
        thing, name, operation = parsed
        prefix = topic_prefix(thing, name)
        token: str | None = None
        try:
            if not model.THING_NAME.fullmatch(thing):
                raise model.bad_request("Invalid thing name")
            if name and not model.SHADOW_NAME.fullmatch(name):
                raise model.bad_request("Invalid shadow name")
            if operation == "update":
                request = model.parse_json(payload)
                token = _token_or_none(request)
                result = self.update(thing, name, request)
                return self._update_messages(prefix, result)
            # get and delete: "The content of the message is ignored" except for a clientToken,
            # which AWS's SDKs send and expect back.
            token = _optional_token(payload)
            if operation == "get":
                doc = self.get(thing, name, token)
            else:
                doc = self.delete(thing, name, token)
            return [_message(f"{prefix}/{operation}/accepted", doc)]
        except ShadowError as exc:
            if exc.client_token is None and token is not None:
                exc.client_token = token
            return [_message(f"{prefix}/{operation}/rejected", exc.document(self._now()))]
        except Exception:
            log.exception("shadow request on %s failed", topic)
            error = ShadowError(500, "Internal service failure", token)
            return [_message(f"{prefix}/{operation}/rejected", error.document(self._now()))]

    @staticmethod
    def _update_messages(prefix: str, result: model.UpdateResult) -> list[OutboundMessage]:
        messages = [_message(f"{prefix}/update/accepted", result.accepted)]
        if result.delta is not None:
            messages.append(_message(f"{prefix}/update/delta", result.delta))
        messages.append(_message(f"{prefix}/update/documents", result.documents))
        return messages

    def _publish(self, messages: Sequence[OutboundMessage]) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        try:
            publisher(messages)
        except Exception:  # the change is stored and answered; a broker failure is logged
            log.exception("publishing shadow messages failed")

    # HTTP (iot-data) ------------------------------------------------------------------------
    def _names(self, request: AwsRequest) -> tuple[str, str]:
        thing = request.path_params.get("thingName", "")
        name = request.query_value("name") or ""
        if not model.THING_NAME.fullmatch(thing):
            raise model.bad_request("thingName must be 1-128 characters of [a-zA-Z0-9:_-]")
        if "name" in request.query and not model.SHADOW_NAME.fullmatch(name):
            raise model.bad_request(
                "name (the shadow name) must be 1-64 characters of [$a-zA-Z0-9:_-]"
            )
        return thing, name

    def _http_get(self, request: AwsRequest) -> AwsResponse:
        try:
            thing, name = self._names(request)
            return json_response(self.get(thing, name))
        except ShadowError as exc:
            return _http_error(exc)

    def _http_update(self, request: AwsRequest) -> AwsResponse:
        try:
            thing, name = self._names(request)
            if len(request.body) > MAX_REQUEST_BYTES:
                raise ShadowError(413, "The payload exceeds the maximum size allowed")
            result = self.update(thing, name, model.parse_json(request.body))
        except ShadowError as exc:
            return _http_error(exc)
        self._publish(self._update_messages(topic_prefix(thing, name), result))
        return json_response(result.accepted)

    def _http_delete(self, request: AwsRequest) -> AwsResponse:
        try:
            thing, name = self._names(request)
            doc = self.delete(thing, name)
        except ShadowError as exc:
            return _http_error(exc)
        self._publish([_message(f"{topic_prefix(thing, name)}/delete/accepted", doc)])
        return json_response(doc)

    def _http_list(self, request: AwsRequest) -> AwsResponse:
        try:
            thing, _ = self._names(request)
            size = _page_size(request.query_value("pageSize"))
            names = self.named_shadows(thing)
            start = 0
            token = request.query_value("nextToken")
            if token:
                after = _decode_token(token)
                start = next((i for i, n in enumerate(names) if n > after), len(names))
        except ShadowError as exc:
            return _http_error(exc)
        page = names[start : start + size]
        body: dict[str, Any] = {"results": page, "timestamp": self._now()}
        if start + size < len(names):
            body["nextToken"] = _encode_token(page[-1])
        return json_response(body)


def _token_or_none(request: Any) -> str | None:
    try:
        return model.client_token_of(request)
    except ShadowError:
        return None


def _optional_token(payload: bytes) -> str | None:
    if not payload.strip():
        return None
    try:
        request = json.loads(payload)
    except ValueError:
        return None
    return model.client_token_of(request)


def _message(topic: str, document: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage(topic, json.dumps(document, separators=(",", ":")).encode("utf-8"))


def _http_error(exc: ShadowError) -> AwsResponse:
    return json_error(_HTTP_ERRORS.get(exc.code, "InternalFailureException"), exc.message, exc.code)


def _page_size(value: str | None) -> int:
    if value is None:
        return MAX_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise model.bad_request(f"pageSize must be an integer from 1 to {MAX_PAGE_SIZE}")
    return size


def _encode_token(last_name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_name}).encode()).decode()


def _decode_token(token: str) -> str:
    try:
        after = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
        if isinstance(after, str):
            return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise model.bad_request("nextToken is not a token returned by ListNamedShadowsForThing")
