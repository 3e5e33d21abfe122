"""Writes invocation logs to CloudWatch Logs as Lambda does: group `/aws/lambda/<function>`,
one stream per execution environment, created when missing (AWS docs: "Working with
CloudWatch Logs and Lambda").

Writes go through boto3 against the emulator's endpoint (so they look like API calls) on a
background thread: an invocation never waits for its logs. `flush()` lets tests wait.

Lambda writes them with the function's execution role: Lambda must be allowed to assume it
(trust policy naming `lambda.amazonaws.com`) and the role needs logs:CreateLogGroup (when the
group is missing), logs:CreateLogStream and logs:PutLogEvents; without them the function runs
but its logs do not appear ("Lambda execution role",
https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html). `--no-iam`
turns the check off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from emulator.iam.authorizer import NoEvaluator, enforcing

log = logging.getLogger(__name__)


LAMBDA_PRINCIPAL = "lambda.amazonaws.com"


@dataclass(frozen=True)
class LogBatch:
    region: str
    group: str
    stream: str
    events: tuple[tuple[int, str], ...]  # (timestamp ms, message)
    role: str = ""  # the function's execution role


# (batch, action, resource ARN) -> a reason the role may not, or None when it may.
Denied = Callable[[LogBatch, str, str], str | None]


class ExecutionRoleAccess:
    """Asks `emulator.iam` whether a function's execution role lets Lambda write its logs."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def denied(self, batch: LogBatch, action: str, resource: str) -> str | None:
        try:
            iam = enforcing(self._emulator)
        except NoEvaluator as exc:
            return str(exc)
        if iam is None:
            return None
        role = batch.role or "(no execution role)"
        decision = iam.can_assume(role, LAMBDA_PRINCIPAL)
        if decision.allowed:
            decision = iam.authorize(role, action, resource, session=batch.group.rsplit("/", 1)[-1])
        return None if decision.allowed else decision.message()


class CloudWatchLogWriter:
    """A queue of log batches drained by one daemon thread."""

    def __init__(self, endpoint_url: Callable[[], str], denied: Denied | None = None) -> None:
        self._endpoint_url = endpoint_url
        self._denied = denied or (lambda _batch, _action, _resource: None)
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
        account = batch.role.split(":")[4] if batch.role.count(":") >= 5 else ""
        group_arn = f"arn:aws:logs:{batch.region}:{account}:log-group:{batch.group}"
        stream_arn = f"{group_arn}:log-stream:{batch.stream}"
        for action, resource in (
            ("logs:CreateLogStream", stream_arn),
            ("logs:PutLogEvents", stream_arn),
        ):
            reason = self._denied(batch, action, resource)
            if reason is not None:
                log.info("Lambda logs of %s not written: %s", batch.group, reason)
                return
        if (batch.region, batch.group, None) not in self._known:
            if not self._group_exists(client, batch.group):
                reason = self._denied(batch, "logs:CreateLogGroup", group_arn)
                if reason is not None:
                    log.info("Lambda log group %s not created: %s", batch.group, reason)
                    return
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

    @staticmethod
    def _group_exists(client: Any, group: str) -> bool:
        found = client.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        return any(g.get("logGroupName") == group for g in found)
