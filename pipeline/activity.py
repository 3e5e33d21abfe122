"""What IoT Core saw of a client: connects, disconnects with their reason, denied actions.

Locally this is the emulator's activity log (like the console's "Activity" tab). On AWS the same
facts are in the AWSIotLogsV2 CloudWatch log group once IoT logging is enabled
(`aws iot set-v2-logging-options --role-arn <role> --default-log-level INFO`, see
https://docs.aws.amazon.com/iot/latest/developerguide/configure-logging.html), which this reads
instead: the latest events of the last `minutes`, not the first page of the hour.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from pipeline.target import Target

AWS_LOG_GROUP = "AWSIotLogsV2"


def activity(target: Target, client_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The latest events for `client_id` (all clients if None), oldest first."""
    if target.name == "local":
        query = urllib.parse.urlencode({"clientId": client_id} if client_id else {})
        with urllib.request.urlopen(
            f"{target.endpoint_url}/_emulator/activity?{query}", timeout=10
        ) as r:
            events = json.loads(r.read())["events"]
        return events[-limit:]
    return aws_activity(target, client_id, limit)


NOT_ENABLED = (
    "IoT logging is not enabled (no AWSIotLogsV2 log group): `aws iot set-v2-logging-options"
    " --role-arn <role IoT can use to write logs> --default-log-level INFO`; it is billed as"
    " CloudWatch Logs, so set DISABLED again when done"
)


def aws_activity(
    target: Target, client_id: str | None, limit: int, minutes: int = 15
) -> list[dict[str, Any]]:
    """The latest `limit` AWSIotLogsV2 events of `client_id` (FilterLogEvents returns the
    oldest first, page by page: every page of the window is read and the tail kept)."""
    logs = target.client("logs")
    pattern = f'{{ $.clientId = "{client_id}" }}' if client_id else ""
    events: list[dict[str, Any]] = []
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=AWS_LOG_GROUP,
            filterPattern=pattern,
            startTime=int((time.time() - minutes * 60) * 1000),
        )
        for page in pages:
            events.extend(page["events"])
    except logs.exceptions.ResourceNotFoundException:
        return [{"event": NOT_ENABLED}]
    events.sort(key=lambda e: e["timestamp"])
    return [json.loads(e["message"]) for e in events[-limit:]]
