"""The broker's activity log: who connected, what was refused and why, readable by a notebook.

AWS IoT reports these things through CloudWatch Logs (AWSIotLogsV2: Connect, Publish-In,
Subscribe events with `status`, `reason`, `principalId`); locally the same facts are kept in a
bounded in-memory list and served as JSON at `GET /_emulator/activity?clientId=...&since=...`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response

DEFAULT_CAPACITY = 10_000


class ActivityLog:
    """The last `capacity` broker events, oldest first."""

    def __init__(self, emulator: Any, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: deque[tuple[float, dict[str, Any]]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        emulator.activity = self
        gateway = getattr(emulator, "gateway", None)
        if gateway is not None:
            gateway.route("/_emulator/activity", self._serve)

    def record(
        self,
        event: str,
        client_id: str | None,
        reason: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        policy_decision: str | None = None,
        principal: str | None = None,
    ) -> None:
        now = time.time()
        entry = {
            "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "clientId": client_id,
            "event": event,
            "reason": reason,
            "action": action,
            "resource": resource,
            "policyDecision": policy_decision,
            "principal": principal,
        }
        with self._lock:
            self._events.append((now, entry))

    def events(self, client_id: str | None = None, since: float | None = None) -> list[dict]:
        """Events for `client_id` (all clients when None) at or after epoch seconds `since`."""
        with self._lock:
            items = list(self._events)
        return [
            dict(entry)
            for at, entry in items
            if (client_id is None or entry["clientId"] == client_id)
            and (since is None or at >= since)
        ]

    def _serve(self, request: AwsRequest) -> AwsResponse:
        since_text = request.query_value("since")
        try:
            since = float(since_text) if since_text else None
        except ValueError:
            return json_error(
                "InvalidRequestException", f"since must be epoch seconds, got {since_text!r}"
            )
        return json_response({"events": self.events(request.query_value("clientId"), since)})
