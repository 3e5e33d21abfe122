"""The broker's activity log: who connected, what was refused and why, readable by a notebook.

AWS IoT reports these things through CloudWatch Logs (AWSIotLogsV2: Connect, Publish-In,
Subscribe events with `status`, `reason`, `principalId`); locally the same facts are kept in a
bounded in-memory list and served as JSON at `GET /_emulator/activity?clientId=...&since=...`.
Each event is also appended to `<data_dir>/mqtt/activity.jsonl`, so the log survives a restart
or a crash (a torn last line is skipped when it is read back); the file is compacted to the last
`capacity` events when it grows past twice that.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from emulator.gateway import AwsRequest, AwsResponse, json_error, json_response

DEFAULT_CAPACITY = 10_000


class ActivityLog:
    """The last `capacity` broker events, oldest first."""

    def __init__(self, emulator: Any, capacity: int = DEFAULT_CAPACITY) -> None:
        self._events: deque[tuple[float, dict[str, Any]]] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._capacity = capacity
        self._journal_path: Path | None = None
        self._journal = None
        self._journal_lines = 0
        data_dir = getattr(emulator, "data_dir", None)
        if data_dir is not None:
            self._open_journal(Path(data_dir) / "mqtt" / "activity.jsonl")
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
            if self._journal is not None:
                self._journal.write(json.dumps([now, entry], separators=(",", ":")) + "\n")
                self._journal.flush()
                self._journal_lines += 1
                if self._journal_lines > 2 * self._capacity:
                    self._compact()

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # The journal ----------------------------------------------------------------------------
    def _open_journal(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    try:
                        at, entry = json.loads(line)
                    except ValueError:  # a line torn by a crash mid-write
                        continue
                    self._events.append((at, entry))
                    self._journal_lines += 1
        self._journal_path = path
        self._journal = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)

    def _compact(self) -> None:
        """Rewrite the journal with the events in memory (write, then rename: crash-safe)."""
        assert self._journal_path is not None and self._journal is not None
        tmp = self._journal_path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for item in self._events:
                handle.write(json.dumps(list(item), separators=(",", ":")) + "\n")
        self._journal.close()
        os.replace(tmp, self._journal_path)
        self._journal = open(self._journal_path, "a", encoding="utf-8")  # noqa: SIM115
        self._journal_lines = len(self._events)

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
