"""AWS IoT logging (v2): the account's logging options and the rules engine's log entries.

moto has no v2 logging API, so these operations answer before it (gateway `on()` handlers):
SetV2LoggingOptions, GetV2LoggingOptions, SetV2LoggingLevel, ListV2LoggingLevels and
DeleteV2LoggingLevel (IoT API reference; "Configure AWS IoT logging",
https://docs.aws.amazon.com/iot/latest/developerguide/configure-logging.html).

Why it matters: a message whose payload the rule's SQL cannot evaluate (for example
`SELECT topic() AS topic, *` on a payload that is not a JSON object: "If you have an empty or a
JSON payload, the resulting payload can have data added using the rule",
https://docs.aws.amazon.com/iot/latest/developerguide/binary-payloads.html) runs no action and
no errorAction: "The error handling covered in this topic is for rule actions. To debug SQL
issues ... you can set up AWS IoT logging"
(https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html). So the only
trace of such a message is an entry in the `AWSIotLogsV2` log group, written when logging is on.

Entries carry the common attributes (timestamp, logLevel, traceId, accountId, status, eventType)
and the rules engine's (clientId, topicName, ruleName, principalId), plus `reason` and `details`
as AWS's failure entries do ("CloudWatch AWS IoT log entries",
https://docs.aws.amazon.com/iot/latest/developerguide/cwl-format.html). The `reason` value of a
SQL evaluation failure and the log stream names are not documented (see emulator/DEVIATIONS.md).

State is kept per account and region in `<data_dir>/iot-logging/options.json` (directory 0700,
file 0600, the persistence package's header + temporary file and rename), so it survives a
restart as AWS's does.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response
from emulator.lambda_.logs import CloudWatchLogWriter, LogBatch
from emulator.persistence.fileformat import read_checked, write_atomic

if TYPE_CHECKING:
    from emulator.iot.messages import InboundMessage
    from emulator.rules.sql import MessageContext

log = logging.getLogger(__name__)

LOG_GROUP = "AWSIotLogsV2"
STATE_KIND = "iot-logging-options"
# Not documented: AWS's own stream names in AWSIotLogsV2 are opaque; one stream for the engine.
RULES_ENGINE_STREAM = "iot-rules-engine"
# Not documented: the `reason` of a SQL evaluation failure entry (AWS documents RuleNotFound and
# RuleExecutionThrottled for the other rules engine failures).
SQL_FAILURE_REASON = "SqlEvaluationFailure"

LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "DISABLED")
# Verbosity order: a target at level L logs entries of level L and of every level after it.
_VERBOSITY = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3, "DISABLED": 4}
# Fine-grained targets the emulator can resolve from a message. THING_GROUP needs group
# membership and SOURCE_IP the device's address at evaluation time: refused, never ignored.
_RESOLVED_TARGETS = ("CLIENT_ID", "PRINCIPAL_ID")
_TARGET_TYPES = ("DEFAULT", "THING_GROUP", "CLIENT_ID", "SOURCE_IP", "PRINCIPAL_ID")


class IotLogging:
    """The v2 logging options of every account and region, and the writer of log entries."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()
        self._options: dict[str, dict[str, Any]] = {}  # "<account>/<region>" -> options
        self._path: Path | None = None
        data_dir = getattr(emulator, "data_dir", None)
        if data_dir is not None:
            self._path = Path(data_dir) / "iot-logging" / "options.json"
            self._load()
        self.writer = CloudWatchLogWriter(lambda: emulator.endpoint_url)

    # Gateway -------------------------------------------------------------------------------
    def register(self, gateway: Any) -> None:
        gateway.on("iot", "SetV2LoggingOptions", self.set_options)
        gateway.on("iot", "GetV2LoggingOptions", self.get_options)
        gateway.on("iot", "SetV2LoggingLevel", self.set_level)
        gateway.on("iot", "ListV2LoggingLevels", self.list_levels)
        gateway.on("iot", "DeleteV2LoggingLevel", self.delete_level)

    def set_options(self, request: AwsRequest) -> AwsResponse:
        body = _body(request)
        if body is None:
            return json_error("InvalidRequestException", "The request body is not valid JSON")
        level = body.get("defaultLogLevel")
        if level is not None and level not in LOG_LEVELS:
            return json_error(
                "InvalidRequestException",
                f"defaultLogLevel {level!r} is not one of {', '.join(LOG_LEVELS)}",
            )
        if body.get("eventConfigurations"):
            return json_error(
                "InvalidRequestException",
                "eventConfigurations is not supported by the local emulator: set "
                "defaultLogLevel (and SetV2LoggingLevel for a client id or principal) instead",
            )
        with self._lock:
            current = self._options.setdefault(_key(request), {"levels": {}})
            current["roleArn"] = body.get("roleArn")
            # The level applied when none is given is not documented: then nothing is logged.
            current["defaultLogLevel"] = level
            current["disableAllLogs"] = bool(body.get("disableAllLogs", False))
            self._save()
        return json_response({})

    def get_options(self, request: AwsRequest) -> AwsResponse:
        options = self._options.get(_key(request))
        if options is None:
            return _not_configured()
        answer: dict[str, Any] = {"disableAllLogs": options["disableAllLogs"]}
        if options.get("defaultLogLevel"):
            answer["defaultLogLevel"] = options["defaultLogLevel"]
        if options.get("roleArn"):
            answer["roleArn"] = options["roleArn"]
        return json_response(answer)

    def set_level(self, request: AwsRequest) -> AwsResponse:
        body = _body(request)
        if body is None:
            return json_error("InvalidRequestException", "The request body is not valid JSON")
        target = body.get("logTarget") or {}
        target_type, name = target.get("targetType"), target.get("targetName")
        level = body.get("logLevel")
        if level not in LOG_LEVELS:
            return json_error(
                "InvalidRequestException", f"logLevel must be one of {', '.join(LOG_LEVELS)}"
            )
        if target_type not in _RESOLVED_TARGETS:
            return json_error(
                "InvalidRequestException",
                f"logTarget.targetType {target_type!r}: the local emulator resolves only "
                f"{' and '.join(_RESOLVED_TARGETS)} targets (set the default level with "
                "SetV2LoggingOptions)",
            )
        if not isinstance(name, str) or not name:
            return json_error("InvalidRequestException", "logTarget.targetName is required")
        with self._lock:
            options = self._options.get(_key(request))
            if options is None:
                return _not_configured()
            options["levels"][f"{target_type}:{name}"] = level
            self._save()
        return json_response({})

    def list_levels(self, request: AwsRequest) -> AwsResponse:
        options = self._options.get(_key(request))
        if options is None:
            return _not_configured()
        wanted = request.query_value("targetType")
        if wanted is not None and wanted not in _TARGET_TYPES:
            return json_error(
                "InvalidRequestException", f"targetType must be one of {', '.join(_TARGET_TYPES)}"
            )
        rows = []
        for key, level in sorted(options["levels"].items()):
            target_type, _, name = key.partition(":")
            if wanted in (None, target_type):
                rows.append(
                    {
                        "logTarget": {"targetType": target_type, "targetName": name},
                        "logLevel": level,
                    }
                )
        return json_response({"logTargetConfigurations": rows})

    def delete_level(self, request: AwsRequest) -> AwsResponse:
        target_type = request.query_value("targetType")
        name = request.query_value("targetName")
        if target_type not in _TARGET_TYPES or not name:
            return json_error(
                "InvalidRequestException",
                f"targetType (one of {', '.join(_TARGET_TYPES)}) and targetName are required",
            )
        with self._lock:
            options = self._options.get(_key(request))
            if options is not None and options["levels"].pop(f"{target_type}:{name}", None):
                self._save()
        return json_response({})

    # The rules engine's entries ------------------------------------------------------------
    def level_for(self, account_id: str, region: str, client_id: str, principal: str) -> str:
        """The log level that applies to a message of this client and principal."""
        options = self._options.get(f"{account_id}/{region}")
        if options is None or options.get("disableAllLogs"):
            return "DISABLED"
        levels = options["levels"]
        # A fine-grained target overrides the default level ("Configure resource-specific
        # logging", configure-logging.html); the client id is checked before the principal.
        for key in (f"CLIENT_ID:{client_id}", f"PRINCIPAL_ID:{principal}"):
            if key in levels:
                return levels[key]
        return options.get("defaultLogLevel") or "DISABLED"

    def sql_failure(
        self, message: InboundMessage, context: MessageContext, rule_name: str, details: str
    ) -> dict[str, Any] | None:
        """Write the ERROR entry of a message the rule's SQL could not evaluate, if logging
        is on for it and its role exists; return the entry written (None when not logged)."""
        account, region = message.account_id, message.region
        level = self.level_for(account, region, message.client_id, message.principal or "")
        if _VERBOSITY[level] > _VERBOSITY["ERROR"]:
            return None
        role_arn = self._options[f"{account}/{region}"].get("roleArn")
        if not _role_exists(account, role_arn):
            # AWS IoT writes with the role it assumes; without one nothing reaches the group.
            log.warning("IoT logging is on but role %r does not exist: entry dropped", role_arn)
            return None
        now_ms = int(time.time() * 1000)
        entry = {
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now_ms / 1000))
            + f".{now_ms % 1000:03d}",
            "logLevel": "ERROR",
            "traceId": context.trace_id,
            "accountId": account,
            "status": "Failure",
            "eventType": "RuleExecution",
            "clientId": message.client_id,
            "topicName": context.topic,
            "ruleName": rule_name,
            "principalId": message.principal or "",
            "reason": SQL_FAILURE_REASON,
            "details": details,
        }
        self.writer.put(
            LogBatch(region, LOG_GROUP, RULES_ENGINE_STREAM, ((now_ms, json.dumps(entry)),))
        )
        return entry

    def flush(self, timeout: float = 10.0) -> bool:
        return self.writer.flush(timeout)

    def close(self) -> None:
        self.writer.close()

    # State ---------------------------------------------------------------------------------
    def _load(self) -> None:
        assert self._path is not None
        if not self._path.exists():
            return
        # A file of another format or version is refused with a message (StateFormatError).
        stored = read_checked(
            self._path, STATE_KIND, self._path.parent.parent, lambda f: json.loads(f.read())
        )
        if isinstance(stored, dict):
            self._options = stored

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        body = json.dumps(self._options).encode()
        write_atomic(self._path, STATE_KIND, lambda out: out.write(body))
        os.chmod(self._path, 0o600)


def _key(request: AwsRequest) -> str:
    return f"{request.account_id}/{request.region}"


def _body(request: AwsRequest) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _not_configured() -> AwsResponse:
    return json_error(
        "NotConfiguredException",
        "AWS IoT v2 logging is not configured for this account: call SetV2LoggingOptions first",
        status=404,
    )


def _role_exists(account_id: str, role_arn: str | None) -> bool:
    if not role_arn:
        return False
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["global"]
    try:
        backend.get_role_by_arn(role_arn)
    except Exception:  # moto raises IAMNotFoundException
        return False
    return True
