"""HTTP topic rule destinations (moto 5.2.5 has none): the IoT API's Create/Get/List/Update/
Delete/ConfirmTopicRuleDestination, and the confirmation request AWS sends.

An HTTP action may only send to a destination that was confirmed: after
CreateTopicRuleDestination, AWS IoT POSTs a confirmation request with a token to the
confirmation URL; the endpoint's owner passes the token to ConfirmTopicRuleDestination and the
destination becomes ENABLED (https://docs.aws.amazon.com/iot/latest/developerguide/
rule-destination-http-managing.html). CreateTopicRule with an http action whose URL has no
destination yet creates one ("url"/"confirmationUrl" in https-rule-action.html).

The emulator sends only to https://127.0.0.1 or https://localhost (any port), and verifies the
server's certificate against the system's CAs and the emulator's own root CA; anything else is
refused when the destination or rule is created.

State: every destination (what Get/List return, and the confirmation token of one that is
IN_PROGRESS) is a record under `<data_dir>/rules/destinations/`, one file per destination named
by the SHA-256 of its ARN (persistence/records.py: written fsync'ed before the API answers,
0600 in 0700 directories, an unreadable record quarantined) and loaded by the rules engine's
start(), so the topic rules moto keeps find their destinations after a restart, and a
destination still IN_PROGRESS can be confirmed with its token. An --ephemeral emulator (and one
built without a data directory) keeps them in memory only and writes nothing.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response
from emulator.persistence.quarantine import Quarantine
from emulator.persistence.records import RecordFiles, record_name

log = logging.getLogger(__name__)

# Hosts the emulator's HTTP action and confirmation requests may reach. AWS takes hostnames
# or IPv4 addresses, not IPv6 ("url", https-rule-action.html).
LOCAL_HOSTS = ("127.0.0.1", "localhost")
# AWS documents no request timeout for the HTTP action; the emulator gives up after this long.
REQUEST_TIMEOUT_SECONDS = 3.0
URL_LIMIT = 2000  # confirmationUrl / url: "Maximum length of 2000" (API_HttpAction)
STATUSES = ("ENABLED", "IN_PROGRESS", "DISABLED", "ERROR", "DELETING")
KIND = "iot-topic-rule-destination"  # the format header's kind of a destination's record
# A stored destination's fields and their types (the record also has RecordFiles' "key": the ARN).
RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "accountId": str,
    "region": str,
    "arn": str,
    "status": str,
    "statusReason": str,
    "confirmationUrl": str,
    "token": str,
    "createdAt": (int, float),
    "lastUpdatedAt": (int, float),
}


def url_problem(url: str, member: str) -> str | None:
    """Why the emulator will not send to `url` (https on a local host only), or None."""
    if len(url) > URL_LIMIT:
        return f"{member} is longer than {URL_LIMIT} characters"
    parts = urlsplit(url)
    if parts.scheme != "https":
        return f"{member} {url!r} must be an https:// URL"
    if parts.hostname not in LOCAL_HOSTS:
        return (
            f"{member} {url!r}: the local emulator sends HTTP actions only to "
            f"https://127.0.0.1 or https://localhost (any port)"
        )
    return None


class TopicRuleDestinations:
    """Destinations per (account, region); registered on the gateway by the rules engine."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        # Held while a change is written, so that the files change in the order memory does.
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        data_dir = getattr(emulator, "data_dir", None)
        self._files = (
            RecordFiles(Path(data_dir) / "rules" / "destinations", KIND, Path(data_dir))
            if data_dir is not None and not getattr(emulator, "ephemeral", False)
            else None
        )

    def load(self) -> None:
        """Read the stored destinations (the rules engine's start()); a record without the
        fields of a destination goes to the quarantine like an unreadable one."""
        if self._files is None:
            return
        loaded = []
        for record in self._files.load():
            problem = _record_problem(record)
            if problem:
                Quarantine(self._files.data_dir).move(
                    self._files.directory / record_name(record["key"]),
                    f"an unusable {KIND} record ({problem})",
                )
                continue
            loaded.append({name: record[name] for name in RECORD_FIELDS})
        with self._lock:
            for item in loaded:
                # One made by a request answered while the engine started stays as it is.
                self._scope(item["accountId"], item["region"]).setdefault(item["arn"], item)
        if loaded:
            log.info("%d topic rule destination(s) loaded", len(loaded))

    def register(self, gateway: Any) -> None:
        gateway.on("iot", "CreateTopicRuleDestination", self.create)
        gateway.on("iot", "GetTopicRuleDestination", self.get)
        gateway.on("iot", "ListTopicRuleDestinations", self.list)
        gateway.on("iot", "UpdateTopicRuleDestination", self.update)
        gateway.on("iot", "DeleteTopicRuleDestination", self.delete)
        gateway.on("iot", "ConfirmTopicRuleDestination", self.confirm)
        gateway.after("iot", "CreateTopicRule", self.rule_stored)
        gateway.after("iot", "ReplaceTopicRule", self.rule_stored)

    def rule_stored(self, request: AwsRequest, status: int, body: bytes) -> None:
        """A stored rule's http actions without a destination get one, IN_PROGRESS, and its
        confirmation request: "If url is hardcoded and confirmationUrl is not provided, we
        implicitly treat the url field as the confirmationUrl"; a templated confirmationUrl
        needs a destination made beforehand (https-rule-action.html)."""
        try:
            payload = request.json().get("topicRulePayload") or request.json()
        except ValueError:
            return
        actions = list(payload.get("actions") or []) + [payload.get("errorAction") or {}]
        for action in actions:
            params = action.get("http") if isinstance(action, dict) else None
            if not isinstance(params, dict):
                continue
            url = params.get("confirmationUrl") or params.get("url")
            if isinstance(url, str) and "${" not in url and url_problem(url, "url") is None:
                self.ensure(request.account_id, request.region, url)

    # Engine side -----------------------------------------------------------------------
    def ensure(self, account_id: str, region: str, confirmation_url: str) -> None:
        """The destination CreateTopicRule makes for an http action's URL, if none exists."""
        self._new(account_id, region, confirmation_url)

    def status_for(self, account_id: str, region: str, url: str) -> str | None:
        """The best status of the destinations whose confirmation URL prefixes `url`."""
        with self._lock:
            found = [
                item["status"]
                for item in self._scope(account_id, region).values()
                if url.startswith(item["confirmationUrl"])
            ]
        if not found:
            return None
        return "ENABLED" if "ENABLED" in found else found[0]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        iot = self.emulator.find("iot")
        if iot is not None:
            context.load_verify_locations(cadata=iot.ca.root_pem)
        return context

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to a local https URL (checked again here: fail closed); the status code."""
        problem = url_problem(url, "url")
        if problem:
            raise ValueError(problem)
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection = http.client.HTTPSConnection(
            parts.hostname,
            parts.port or 443,
            timeout=REQUEST_TIMEOUT_SECONDS,
            context=self.ssl_context(),
        )
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    # API -------------------------------------------------------------------------------
    def create(self, request: AwsRequest) -> AwsResponse:
        try:
            body = request.json()
        except ValueError:
            return json_error("InvalidRequestException", "The request body is not valid JSON")
        config = body.get("destinationConfiguration") or {}
        if "vpcConfiguration" in config:
            return json_error(
                "InvalidRequestException",
                "VPC destinations are not supported by the local emulator: use "
                "httpUrlConfiguration",
            )
        url = (config.get("httpUrlConfiguration") or {}).get("confirmationUrl")
        if not isinstance(url, str) or not url:
            return json_error(
                "InvalidRequestException",
                "destinationConfiguration.httpUrlConfiguration.confirmationUrl is required",
            )
        problem = url_problem(url, "confirmationUrl")
        if problem:
            return json_error("InvalidRequestException", problem)
        item = self._new(request.account_id, request.region, url)
        if item is None:
            return json_error(
                "ResourceAlreadyExistsException",
                f"A topic rule destination for {url} already exists",
                status=409,
            )
        return json_response({"topicRuleDestination": _describe(item)})

    def get(self, request: AwsRequest) -> AwsResponse:
        item = self._find(request, _arn_from_path(request))
        if item is None:
            return _not_found(_arn_from_path(request))
        return json_response({"topicRuleDestination": _describe(item)})

    def list(self, request: AwsRequest) -> AwsResponse:
        with self._lock:
            items = list(self._scope(request.account_id, request.region).values())
        summaries = [
            {
                "arn": i["arn"],
                "status": i["status"],
                "statusReason": i["statusReason"],
                "createdAt": i["createdAt"],
                "lastUpdatedAt": i["lastUpdatedAt"],
                "httpUrlSummary": {"confirmationUrl": i["confirmationUrl"]},
            }
            for i in items
        ]
        return json_response({"destinationSummaries": summaries})

    def update(self, request: AwsRequest) -> AwsResponse:
        body = request.json() if request.body else {}
        arn, status = body.get("arn"), body.get("status")
        item = self._find(request, arn)
        if item is None:
            return _not_found(arn)
        # Allowed changes ("Updating/Enabling/Disabling", rule-destination-http-managing.html):
        # ENABLED <-> DISABLED; IN_PROGRESS sends a new confirmation request.
        if status == "IN_PROGRESS":
            if not self._set(item, "IN_PROGRESS", "Awaiting confirmation"):
                return _not_found(arn)
            self._send_confirmation(item)
            return json_response({})
        allowed = {"ENABLED": "DISABLED", "DISABLED": "ENABLED"}
        if status not in allowed or not self._set(item, status, "", expect=allowed[status]):
            return json_error(
                "ConflictingResourceUpdateException",
                f"Cannot change topic rule destination {arn} from {item['status']} to "
                f"{status}: only ENABLED <-> DISABLED, or IN_PROGRESS to confirm again",
                status=409,
            )
        return json_response({})

    def delete(self, request: AwsRequest) -> AwsResponse:
        arn = _arn_from_path(request)
        with self._lock:
            scope = self._scope(request.account_id, request.region)
            found = scope.get(arn)
            if found is not None:
                if self._files is not None:
                    self._files.remove(found["arn"])
                del scope[arn]
        if found is None:
            return _not_found(arn)
        return json_response({})

    def confirm(self, request: AwsRequest) -> AwsResponse:
        token = unquote(request.path.rstrip("/").rsplit("/confirmdestination/", 1)[-1])
        with self._lock:
            item = next(
                (
                    i
                    for i in self._scope(request.account_id, request.region).values()
                    if secrets.compare_digest(i["token"], token)
                ),
                None,
            )
        if item is None:
            return json_error(
                "InvalidRequestException",
                "The confirmation token is not valid: use the confirmationToken of the "
                "destination's confirmation request",
            )
        if item["status"] != "IN_PROGRESS":
            return json_error(
                "ConflictingResourceUpdateException",
                f"Topic rule destination {item['arn']} is {item['status']}, not IN_PROGRESS",
                status=409,
            )
        if not self._set(item, "ENABLED", "", expect="IN_PROGRESS"):
            return json_error(
                "ConflictingResourceUpdateException",
                f"Topic rule destination {item['arn']} changed while it was confirmed: "
                "get it and try again",
                status=409,
            )
        return json_response({})

    # Helpers ---------------------------------------------------------------------------
    def _scope(self, account_id: str, region: str) -> dict[str, dict[str, Any]]:
        return self._items.setdefault((account_id, region), {})

    def _find(self, request: AwsRequest, arn: Any) -> dict[str, Any] | None:
        with self._lock:
            return self._scope(request.account_id, request.region).get(arn)

    def _new(self, account_id: str, region: str, url: str) -> dict[str, Any] | None:
        """A new IN_PROGRESS destination for `url`, stored, its confirmation request sent;
        None when the account already has one for that URL."""
        from moto.utilities.utils import get_partition  # moto only once a destination is made

        partition = get_partition(region)
        now = time.time()
        item = {
            "accountId": account_id,
            "region": region,
            "arn": f"arn:{partition}:iot:{region}:{account_id}:ruledestination/http/{uuid.uuid4()}",
            "status": "IN_PROGRESS",
            "statusReason": "Awaiting confirmation",
            "confirmationUrl": url,
            "token": secrets.token_urlsafe(48),
            "createdAt": now,
            "lastUpdatedAt": now,
        }
        with self._lock:
            scope = self._scope(account_id, region)
            if any(i["confirmationUrl"] == url for i in scope.values()):
                return None
            self._save(item)
            scope[item["arn"]] = item
        self._send_confirmation(item)
        return item

    def _set(
        self, item: dict[str, Any], status: str, reason: str, expect: str | None = None
    ) -> bool:
        """Change a destination's status, on disk first; False (and nothing changed) if it was
        deleted meanwhile or, with `expect`, is no longer in that status."""
        with self._lock:
            if self._scope(item["accountId"], item["region"]).get(item["arn"]) is not item:
                return False
            if expect is not None and item["status"] != expect:
                return False
            changed = {**item, "status": status, "statusReason": reason}
            changed["lastUpdatedAt"] = time.time()
            self._save(changed)
            item.update(changed)
        return True

    def _save(self, item: dict[str, Any]) -> None:
        """Write a destination's record (under the lock, before the caller answers)."""
        if self._files is not None:
            self._files.save(item["arn"], {name: item[name] for name in RECORD_FIELDS})

    def _send_confirmation(self, item: dict[str, Any]) -> None:
        threading.Thread(target=self._confirmation, args=(item,), daemon=True).start()

    def _confirmation(self, item: dict[str, Any]) -> None:
        """AWS's confirmation request: POST {confirmationUrl}/?confirmationToken=..."""
        token = item["token"]
        body = {
            "arn": item["arn"],
            "confirmationToken": token,
            "enableUrl": f"{self.emulator.endpoint_url}/confirmdestination/{quote(token)}",
            "messageType": "DestinationConfirmation",
        }
        url = item["confirmationUrl"].rstrip("/") + "/?confirmationToken=" + quote(token)
        headers = {
            "x-amz-rules-engine-message-type": "DestinationConfirmation",
            "x-amz-rules-engine-destination-arn": item["arn"],
            "Content-Type": "application/json",
        }
        try:
            status = self.post(url, json.dumps(body).encode("utf-8"), headers)
            reason = "" if 200 <= status < 300 else f"the confirmation URL answered {status}"
        except Exception as exc:
            reason = f"the confirmation request failed: {type(exc).__name__}: {exc}"
        if reason and self._set(item, "ERROR", reason, expect="IN_PROGRESS"):
            log.warning("topic rule destination %s: %s", item["arn"], reason)


def _describe(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "arn": item["arn"],
        "status": item["status"],
        "statusReason": item["statusReason"],
        "createdAt": item["createdAt"],
        "lastUpdatedAt": item["lastUpdatedAt"],
        "httpUrlProperties": {"confirmationUrl": item["confirmationUrl"]},
    }


def _record_problem(record: dict[str, Any]) -> str | None:
    """What a stored record lacks to be a destination, or None."""
    for name, kind in RECORD_FIELDS.items():
        if not isinstance(record.get(name), kind):
            return f"no valid {name}"
    if record["key"] != record["arn"]:
        return "its key is not its arn"
    if record["status"] not in STATUSES:
        return f"unknown status {record['status']!r}"
    return None


def _arn_from_path(request: AwsRequest) -> str:
    arn = request.path_params.get("arn")
    if arn:
        return unquote(arn)
    return unquote(request.path.split("/destinations/", 1)[-1])


def _not_found(arn: Any) -> AwsResponse:
    return json_error(
        "ResourceNotFoundException", f"Topic rule destination {arn} not found", status=404
    )
