"""What IoT Core saw of a client: connects, disconnects with their reason, denied actions.

Locally this is the emulator's activity log (like the console's "Activity" tab). On AWS the same
facts are in the AWSIotLogsV2 CloudWatch log group once IoT logging is enabled
(`iot.set_v2_logging_options`), which this reads instead.
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
    logs = target.client("logs")
    pattern = f'{{ $.clientId = "{client_id}" }}' if client_id else ""
    try:
        response = logs.filter_log_events(
            logGroupName=AWS_LOG_GROUP,
            filterPattern=pattern,
            startTime=int((time.time() - 3600) * 1000),
            limit=limit,
        )
    except logs.exceptions.ResourceNotFoundException:
        return [{"event": "IoT logging is not enabled: no AWSIotLogsV2 log group"}]
    return [json.loads(e["message"]) for e in response["events"]]
