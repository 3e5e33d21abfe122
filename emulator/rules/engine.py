"""The rules engine: runs the topic rules stored in moto's IoT backend on every inbound message.

`RulesEngine.accept(message)` is the broker's `MessageConsumer`. For every enabled rule of the
message's account and region whose FROM matches the topic, it evaluates the (cached, compiled
once per rule name and SQL text) statement and runs the actions. Firehose and republish run
before `accept` returns, so a QoS 1 PUBACK means the Firehose records are spooled.
`accept_many(messages)` does the same for the messages of one MQTT read. Its `_Batch` is the
explicit Firehose sink of the call, handed to every action through the message's context: each
message's Firehose puts are checked as AWS would answer them (a missing stream goes to the
errorAction), then the records of the whole batch are spooled with one write per stream before
it returns; if that write fails, it raises and the broker acknowledges none of the batch. S3,
CloudWatch Logs and Lambda actions go to one background worker (they are HTTP calls of several
milliseconds), and `drain()` waits for them. When actions fail, the rule's errorAction gets one
message with every failure ("rule-error-handling"); if the errorAction fails too, the failure is
logged and kept in `failures`. A payload the SQL cannot evaluate runs no action and no
errorAction: it is logged to `AWSIotLogsV2` when AWS IoT logging is on (`iotlogging.py`).

Basic Ingest ("iot-basic-ingest"): a message on `$aws/rules/<rule name>/<topic>` goes to that rule
only, whatever its FROM, and `topic()` sees `<topic>`.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
from botocore.config import Config

from emulator.constants import BASIC_INGEST_PREFIX
from emulator.iot.messages import InboundMessage
from emulator.rules.actions import SYNCHRONOUS, TEMPLATED, ActionContext, ActionFailure, ActionRun
from emulator.rules.iotlogging import IotLogging
from emulator.rules.permissions import RuleAccess
from emulator.rules.service_functions import ServiceCalls
from emulator.rules.sql import (
    CompiledRule,
    MessageContext,
    Result,
    SqlError,
    SqlEvaluationError,
    compile_sql,
)
from emulator.rules.templates import check_templates

log = logging.getLogger(__name__)


class _Context(MessageContext):
    """One message's way through the engine: the SQL functions' context, and the `_Batch` of
    the `accept_many` call that received it (where its actions put Firehose records and defer
    background work).

    The trace id is drawn only when something reads it: `traceid()` and the errorAction's
    cloudwatchTraceId need it; most messages need neither, and uuid4() per message was 4.5 % of
    the broker thread's time (bench/README.md)."""

    def __init__(self, batch: _Batch, **fields: Any) -> None:
        super().__init__(**fields)
        object.__setattr__(self, "batch", batch)

    def for_rule(self, rule_name: str, sql_version: str) -> _Context:
        """This message's context for one rule (its name and SQL version, which the service
        functions and the substitution templates read); the trace id stays the message's.

        The message's first rule takes this context itself; each further rule a shallow copy
        (a dict copy: most messages match one rule and pay nothing)."""
        fields = self.__dict__
        if fields["rule_name"] is None:
            fields["rule_name"], fields["sql_version"] = rule_name, sql_version
            return self
        context = object.__new__(_Context)
        context.__dict__.update(fields, rule_name=rule_name, sql_version=sql_version)
        return context

    @property
    def trace_id(self) -> str:  # type: ignore[override]
        holder = self.__dict__["_trace"]  # one list, shared by the copies for_rule makes
        if holder[0] is None:
            holder[0] = str(uuid.uuid4())
        return holder[0]

    @trace_id.setter
    def trace_id(self, value: str | None) -> None:
        # Called once by the frozen dataclass's __init__ (through object.__setattr__).
        object.__setattr__(self, "_trace", [value])


class _Batch:
    """The Firehose sink of one `accept_many` call, and the background work it defers.

    Each `put_records` is checked at once (`check_put`), so a failing request still fails its
    own message's action, and the records wait for one `put_checked` per stream at `commit`.
    Background jobs are queued only after that commit. Once committed (a background
    errorAction, or a rule it republishes to), puts and jobs go straight through."""

    def __init__(self, engine: RulesEngine) -> None:
        self.firehose = engine.emulator.firehose
        self.records: dict[tuple[str, str, str], list[bytes]] = {}
        self.jobs: list[Callable[[], None]] = []
        self.committed = False
        self._submit = engine._submit
        self.actions = ActionContext(
            firehose=self,
            client=engine.client,
            lambdas=engine.lambdas,
            republish=partial(engine._republish, self),
            max_republish_depth=engine.max_republish_depth,
            destinations=engine.destinations,
            authorize=engine.access.check,
        )

    def put_records(
        self, account_id: str, region: str, stream_name: str, records: list[bytes]
    ) -> None:
        if self.committed:
            self.firehose.put_records(account_id, region, stream_name, records)
            return
        self.firehose.check_put(account_id, region, stream_name, records)
        key = (account_id, region, stream_name)
        pending = self.records.get(key)
        if pending is None:
            self.records[key] = list(records)
        else:
            pending.extend(records)

    def defer(self, job: Callable[[], None]) -> None:
        if self.committed:
            self._submit(job)
        else:
            self.jobs.append(job)

    def commit(self) -> None:
        """Spool the records (raises if that fails: nothing of the batch is accepted), then
        queue the background jobs."""
        for (account_id, region, stream_name), records in self.records.items():
            self.firehose.put_checked(account_id, region, stream_name, records)
        self.committed = True
        for job in self.jobs:
            self._submit(job)
        self.jobs.clear()


@dataclass(frozen=True)
class RuleFailure:
    """A failure nobody else will report: kept for tests and notebooks, and logged."""

    rule_name: str
    topic: str
    stage: str  # "sql", "action" or "errorAction"
    failures: tuple[dict[str, str], ...]
    at: float = field(default_factory=time.time)
    # IAM denials among the failures: role, action, resource, deciding statement.
    denials: tuple[dict[str, Any], ...] = ()


class RulesEngine:
    """Runs moto-stored topic rules on inbound messages (component attribute `rules`)."""

    def __init__(self, emulator: Any, max_republish_depth: int = 8) -> None:
        self.emulator = emulator
        self.max_republish_depth = max_republish_depth
        self.failures: deque[RuleFailure] = deque(maxlen=10_000)
        self.access = RuleAccess(emulator)
        self._compiled: dict[tuple[str, str, str, str, str], CompiledRule | SqlError] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._work: queue.Queue = queue.Queue()
        self._pending = 0
        self._pending_cond = threading.Condition()
        self._worker: threading.Thread | None = None
        # What the SQL functions that call other services use (aws_lambda, get_dynamodb, ...).
        self.service_calls = ServiceCalls(emulator)
        emulator.rules = self
        from emulator.rules.api import register

        register(emulator.gateway)
        from emulator.rules.destinations import TopicRuleDestinations

        self.destinations = TopicRuleDestinations(emulator)
        self.destinations.register(emulator.gateway)
        self.iot_logging = IotLogging(emulator)
        self.iot_logging.register(emulator.gateway)

    # Life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.destinations.load()  # before the broker takes messages for their http actions
        self._ensure_worker()

    def stop(self) -> None:
        self.drain(timeout=10)
        if self._worker is not None:
            self._work.put(None)
            self._worker.join(timeout=5)
            self._worker = None
        self.service_calls.close()
        self.iot_logging.close()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until background actions (S3, logs, Lambda, errorActions) and AWS IoT log
        entries have been written."""
        deadline = time.monotonic() + timeout
        with self._pending_cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pending_cond.wait(left)
        return self.iot_logging.flush(max(0.0, deadline - time.monotonic()))

    # MessageConsumer ------------------------------------------------------------------------
    def accept(self, message: InboundMessage) -> None:
        """Run every matching rule; return once Firehose records are durably accepted."""
        self.accept_many((message,))

    def accept_many(self, messages: Sequence[InboundMessage]) -> None:
        """`accept` for several messages, with one spool write per Firehose stream.

        Returns once every message's Firehose records are durably spooled; raises if they
        could not be (then none of the messages counts as accepted). Background actions and
        errorActions of the batch are queued only after that."""
        batch = _Batch(self)
        for message in messages:
            self._accept(message, 0, batch)
        batch.commit()

    def _republish(self, batch: _Batch, message: InboundMessage, depth: int) -> None:
        """The republish action: the message joins the batch that produced it (its Firehose
        records are spooled with the batch's), then MQTT subscribers get it."""
        self._accept(message, depth, batch)
        self.emulator.broker.deliver(message)

    def _accept(self, message: InboundMessage, depth: int, batch: _Batch) -> None:
        from moto.iot.models import iot_backends

        rules = iot_backends[message.account_id][message.region].rules
        topic = message.topic
        only_rule = None
        if topic.startswith(BASIC_INGEST_PREFIX):
            rest = topic[len(BASIC_INGEST_PREFIX) :]
            only_rule, _, topic = rest.partition("/")
            candidates = [rules[only_rule]] if only_rule in rules else []
        else:
            while True:
                try:
                    candidates = list(rules.values())
                    break
                except RuntimeError:  # the dict changed under us (CreateTopicRule meanwhile)
                    continue
        context: _Context | None = None
        for rule in candidates:
            if rule.rule_disabled:
                continue
            compiled = self._compile(message.account_id, message.region, rule)
            if compiled is None or (only_rule is None and not compiled.matches(topic)):
                continue
            if context is None:
                context = _Context(
                    batch,
                    topic=topic,
                    client_id=message.client_id,
                    principal=message.principal,
                    timestamp_ms=message.timestamp_ms,
                    account_id=message.account_id,
                    user_properties=message.user_properties,
                    source_ip=message.source_ip,
                    mqtt_properties=message.mqtt_properties,
                    region=message.region,
                    services=self.service_calls,
                )
            self._run_rule(rule, compiled, message, context, depth)

    # Compilation cache ------------------------------------------------------------------
    def _compile(self, account_id: str, region: str, rule: Any) -> CompiledRule | None:
        key = (account_id, region, rule.rule_name, rule.sql, rule.aws_iot_sql_version)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = compile_sql(rule.sql, rule.aws_iot_sql_version)
                # The actions' substitution templates are IoT SQL of the rule's version too.
                for action in [*rule.actions, *([rule.error_action] if rule.error_action else [])]:
                    check_templates(
                        action, TEMPLATED, rule.aws_iot_sql_version, compiled.variable_names
                    )
            except SqlError as error:
                compiled = error
                # A rule stored without our CreateTopicRule check (e.g. moto directly).
                self._record(rule.rule_name, "", "sql", [_failure("Rule", rule.rule_name, error)])
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled if isinstance(compiled, CompiledRule) else None

    # One rule, one message --------------------------------------------------------------
    def _run_rule(
        self,
        rule: Any,
        compiled: CompiledRule,
        message: InboundMessage,
        message_context: _Context,
        depth: int,
    ) -> None:
        context = message_context.for_rule(rule.rule_name, compiled.version)
        try:
            result = compiled.evaluate(message.payload, context)
        except SqlEvaluationError as error:
            # No action runs and no errorAction either: "The error handling covered in this
            # topic is for rule actions. To debug SQL issues ... you can set up AWS IoT
            # logging" (https://docs.aws.amazon.com/iot/latest/developerguide/
            # rule-error-handling.html). The only trace on AWS is an AWSIotLogsV2 entry when
            # logging is on (emulator/rules/iotlogging.py); `failures` keeps it for tests.
            self._record(
                rule.rule_name,
                message.topic,
                "sql",
                [{"failedResource": rule.rule_name, "errorMessage": str(error)}],
            )
            self.iot_logging.sql_failure(message, context, rule.rule_name, str(error))
            return
        if result is None:
            return
        failures: list[dict[str, str]] = []
        denials: list[dict[str, Any]] = []
        background: list[ActionRun] = []
        for action in rule.actions:
            kind, params = next(iter(action.items()))
            run = ActionRun(
                context.batch.actions, kind, params, message, context, rule.rule_name, depth
            )
            if kind in SYNCHRONOUS:
                _run_action(run, result, failures, denials)
            else:
                background.append(run)
        if background:
            context.batch.defer(
                lambda: self._finish(rule, message, context, result, background, failures, denials)
            )
        elif failures:
            self._record(rule.rule_name, message.topic, "action", failures, denials)
            context.batch.defer(lambda: self._error_action(rule, message, context, failures))

    def _finish(
        self,
        rule: Any,
        message: InboundMessage,
        context: MessageContext,
        result: Result,
        runs: list[ActionRun],
        failures: list[dict[str, str]],
        denials: list[dict[str, Any]],
    ) -> None:
        for run in runs:
            try:
                _run_action(run, result, failures, denials)
            except Exception as exc:  # a bug of ours still reaches the error action
                log.exception("rule %s: action %s failed", rule.rule_name, run.kind)
                failures.append(_failure(run.kind, rule.rule_name, exc))
        if failures:
            self._record(rule.rule_name, message.topic, "action", failures, denials)
            self._error_action(rule, message, context, failures)

    def _error_action(
        self,
        rule: Any,
        message: InboundMessage,
        context: MessageContext,
        failures: list[dict[str, str]],
    ) -> None:
        if not rule.error_action:
            return
        document = {
            "ruleName": rule.rule_name,
            "topic": message.topic,
            "cloudwatchTraceId": context.trace_id or str(uuid.uuid4()),  # drawn here if unread
            "clientId": message.client_id,
            "base64OriginalPayload": base64.b64encode(message.payload).decode("ascii"),
            "failures": failures,
        }
        kind, params = next(iter(rule.error_action.items()))
        run = ActionRun(
            context.batch.actions, kind, params, message, context, rule.rule_name, depth=0
        )
        try:
            run.run(Result(value=document))
        except ActionFailure as failure:
            # The error message is dropped (an errorAction has no errorAction of its own); the
            # failure stays in `failures`, the log and, for a denial, the activity log.
            denials = [failure.denial] if failure.denial else []
            self._record(rule.rule_name, message.topic, "errorAction", [failure.as_dict()], denials)
        except Exception as exc:
            log.exception("rule %s: error action failed", rule.rule_name)
            self._record(
                rule.rule_name, message.topic, "errorAction", [_failure(kind, rule.rule_name, exc)]
            )

    def _record(
        self,
        rule_name: str,
        topic: str,
        stage: str,
        failures: list[dict],
        denials: list[dict[str, Any]] | None = None,
    ) -> None:
        self.failures.append(
            RuleFailure(rule_name, topic, stage, tuple(failures), denials=tuple(denials or ()))
        )
        for failure in failures:
            log.warning(
                "rule %s (%s) on %r: %s %s: %s%s",
                rule_name,
                stage,
                topic,
                failure.get("failedAction") or "SQL evaluation",
                failure.get("failedResource"),
                failure.get("errorMessage"),
                " (the error message is dropped)" if stage == "errorAction" else "",
            )

    # Background worker ------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._drain_queue, name="rules", daemon=True)
            self._worker.start()

    def _submit(self, job: Callable[[], None]) -> None:
        with self._pending_cond:
            self._pending += 1
        self._ensure_worker()
        self._work.put(job)

    def _drain_queue(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("rules engine background job failed")
            finally:
                with self._pending_cond:
                    self._pending -= 1
                    self._pending_cond.notify_all()

    # Helpers for actions (through ActionContext) -----------------------------------------
    def lambdas(self) -> Any:
        """The Lambda component, found at call time (emulator/README.md)."""
        return self.emulator.find("lambdas")

    def client(self, service: str, region: str) -> Any:
        """A boto3 client on the emulator's own endpoint (writes look like API calls)."""
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            with self._clients_lock:
                client = self._clients.get(key)
                if client is None:
                    client = boto3.session.Session().client(
                        service,
                        endpoint_url=self.emulator.endpoint_url,
                        region_name=region,
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}),
                    )
                    self._clients[key] = client
        return client

    def rule_failures(self, rule_name: str | None = None) -> list[RuleFailure]:
        return [f for f in list(self.failures) if rule_name is None or f.rule_name == rule_name]


def _run_action(
    run: ActionRun,
    result: Result,
    failures: list[dict[str, str]],
    denials: list[dict[str, Any]],
) -> None:
    """Run one action; its ActionFailure joins `failures` (and the denial behind it, if any,
    `denials`) for the rule's error action."""
    try:
        run.run(result)
    except ActionFailure as failure:
        failures.append(failure.as_dict())
        denials.extend([failure.denial] if failure.denial else [])


def _failure(action: str, resource: str, error: Exception) -> dict[str, str]:
    return {"failedAction": action, "failedResource": resource, "errorMessage": str(error)}
