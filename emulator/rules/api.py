"""Gateway handlers of the rules engine: topic rule validation.

- iot CreateTopicRule / ReplaceTopicRule: the SQL is compiled before moto stores the rule; a
  statement the engine cannot run is refused with `SqlParseException` (HTTP 400, the error the
  IoT API reference lists for these operations) naming the position and the reason. Actions the
  engine cannot run are refused with `InvalidRequestException`.

iot-data Publish is IoT Core's data plane: emulator/mqtt/data_api.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from emulator.gateway import AwsRequest, AwsResponse, json_error
from emulator.rules.actions import TEMPLATED, check_action
from emulator.rules.sql import DEFAULT_VERSION, SqlError, compile_sql
from emulator.rules.templates import check_templates

if TYPE_CHECKING:
    from emulator.gateway import Gateway


def register(gateway: Gateway) -> None:
    gateway.on("iot", "CreateTopicRule", validate_topic_rule)
    gateway.on("iot", "ReplaceTopicRule", validate_topic_rule)


def validate_sql(sql: str, version: str = DEFAULT_VERSION) -> None:
    """Raise `SqlError` if the rules engine cannot run `sql` (used by CloudFormation too)."""
    compile_sql(sql, version)


def validate_topic_rule(request: AwsRequest) -> AwsResponse | None:
    try:
        payload = request.json()
    except ValueError:
        return None  # let moto answer the malformed request
    sql = payload.get("sql")
    if not isinstance(sql, str):
        return None
    version = payload.get("awsIotSqlVersion")
    if version is None:
        # AWS runs (and GetTopicRule reports) a rule without awsIotSqlVersion as 2015-10-08
        # (https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-sql-version.html);
        # moto would store 2016-03-23, so the version is written into the request it stores.
        version = DEFAULT_VERSION
        payload["awsIotSqlVersion"] = version
        request.body = json.dumps(payload).encode("utf-8")
    if not isinstance(version, str):
        return json_error("InvalidRequestException", "awsIotSqlVersion must be a string")
    try:
        variables = compile_sql(sql, version).variable_names
    except SqlError as error:
        return json_error(
            "SqlParseException",
            f"Line {error.line}:{error.column - 1}: {error.reason} "
            f"(line {error.line}, column {error.column}, offset {error.offset}) in {sql!r}",
        )
    actions = list(payload.get("actions") or [])
    if not actions:
        return json_error("InvalidRequestException", "A topic rule needs at least one action")
    error_action = payload.get("errorAction")
    for label, action in [("actions", a) for a in actions] + (
        [("errorAction", error_action)] if error_action else []
    ):
        try:
            reason = check_action(action)
            # Templates are IoT SQL of the rule's awsIotSqlVersion (check_action reads them
            # as 2016-03-23).
            check_templates(action, TEMPLATED, version, variables)
        except SqlError as error:
            reason = f"invalid substitution template: {error.reason}"
        if reason:
            return json_error("InvalidRequestException", f"{label}: {reason}")
    return None
