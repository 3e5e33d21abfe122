"""Writes invocation logs to CloudWatch Logs as Lambda does: group `/aws/lambda/<function>`,
one stream per execution environment, created when missing (AWS docs: "Working with
CloudWatch Logs and Lambda").

Writes go through boto3 against the emulator's endpoint (so they look like API calls) on a
background thread: an invocation never waits for its logs. `flush()` lets tests wait.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogBatch:
    region: str
    group: str
    stream: str
    events: tuple[tuple[int, str], ...]  # (timestamp ms, message)


class CloudWatchLogWriter:
    """A queue of log batches drained by one daemon thread."""

    def __init__(self, endpoint_url: Callable[[], str]) -> None:
        self._endpoint_url = endpoint_url
        self._queue: queue.Queue[LogBatch | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._clients: dict[str, object] = {}
        self._known: set[tuple[str, str, str | None]] = set()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, batch: LogBatch) -> None:
        if not batch.events:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lambda-logs", daemon=True)
                self._thread.start()
        with self._idle:
            self._pending += 1
        self._queue.put(batch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued batch was written; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self._write(batch)
            except Exception:  # a log write must never break the runtime
                log.exception("writing Lambda logs to %s failed", batch.group)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _client(self, region: str):  # type: ignore[no-untyped-def]
        if region not in self._clients:
            self._clients[region] = boto3.client(
                "logs",
                endpoint_url=self._endpoint_url(),
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 2}),
            )
        return self._clients[region]

    def _write(self, batch: LogBatch, retry: bool = False) -> None:
        client = self._client(batch.region)
        if (batch.region, batch.group, None) not in self._known:
            try:
                client.create_log_group(logGroupName=batch.group)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            self._known.add((batch.region, batch.group, None))
        if (batch.region, batch.group, batch.stream) not in self._known:
            try:
                client.create_log_stream(logGroupName=batch.group, logStreamName=batch.stream)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
            self._known.add((batch.region, batch.group, batch.stream))
        events = [{"timestamp": ts, "message": message} for ts, message in batch.events]
        try:
            client.put_log_events(
                logGroupName=batch.group, logStreamName=batch.stream, logEvents=events
            )
        except ClientError as exc:
            # Someone deleted the group or stream: create them again, as Lambda would.
            if exc.response["Error"]["Code"] != "ResourceNotFoundException" or retry:
                raise
            self._known.discard((batch.region, batch.group, None))
            self._known.discard((batch.region, batch.group, batch.stream))
            self._write(batch, retry=True)
