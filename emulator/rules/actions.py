"""Topic rule actions: Firehose, S3, republish, CloudWatch Logs and Lambda here; SQS, SNS,
DynamoDB, Kinesis, Step Functions and CloudWatch metrics/alarms in service_actions.py, merged
into this module's tables at its end.

Each action takes the rule's output and the original message, and raises `ActionFailure` with
AWS's error-action fields (failedAction, failedResource, errorMessage: "rule-error-handling")
when it cannot complete. Writes that must look like API calls (S3 objects, log events) go through
boto3 against the emulator's own endpoint. Action parameters that support substitution
templates ("iot-substitution-templates") are rendered against the original message.

An action sees the engine only through its `ActionContext`: the Firehose sink of the current
`accept_many` call, boto3 clients, the Lambda component, and republish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.iot.messages import InboundMessage
from emulator.mqtt.topics import publish_topic_error
from emulator.rules.sql import MessageContext, Result
from emulator.rules.templates import compile_template
from emulator.rules.values import dumps

# Firehose action `separator` values ("kinesis-firehose-rule-action"), also as escaped text.
FIREHOSE_SEPARATORS = {
    ",": b",",
    "\t": b"\t",
    "\n": b"\n",
    "\r\n": b"\r\n",
    "\\t": b"\t",
    "\\n": b"\n",
    "\\r\\n": b"\r\n",
}
FIREHOSE_BATCH_LIMIT = 500  # PutRecordBatch's limit ("kinesis-firehose-rule-action")

# The action types this engine runs, and their name in error-action messages.
ACTION_NAMES = {
    "firehose": "FirehoseAction",
    "s3": "S3Action",
    "republish": "RepublishAction",
    "cloudwatchLogs": "CloudwatchLogsAction",
    "lambda": "LambdaAction",
}
# Parameters of each action that take substitution templates.
TEMPLATED = {
    "firehose": ("deliveryStreamName",),
    "s3": ("bucketName", "key"),
    "republish": ("topic",),
    "cloudwatchLogs": ("logGroupName",),
    "lambda": (),
}
REQUIRED = {
    "firehose": ("deliveryStreamName", "roleArn"),
    "s3": ("bucketName", "key", "roleArn"),
    "republish": ("topic", "roleArn"),
    "cloudwatchLogs": ("logGroupName", "roleArn"),
    "lambda": ("functionArn",),
}
# Actions that must complete before the message counts as accepted (the broker's PUBACK).
SYNCHRONOUS = {"firehose", "republish"}


class ActionFailure(Exception):
    def __init__(
        self, action: str, resource: str, message: str, denial: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.failed_action = ACTION_NAMES.get(action, action)
        self.failed_resource = resource
        self.error_message = message
        # An IAM denial (emulator/rules/permissions.py): the role, action, resource and the
        # deciding statement, for the log and views; never part of the errorAction message.
        self.denial = denial

    def as_dict(self) -> dict[str, str]:
        return {
            "failedAction": self.failed_action,
            "failedResource": self.failed_resource,
            "errorMessage": self.error_message,
        }


def check_action(action: dict[str, Any]) -> str | None:
    """Why the engine cannot run `action` (a {type: params} dict), or None."""
    if not isinstance(action, dict) or len(action) != 1:
        return "each action must have exactly one action type"
    kind, params = next(iter(action.items()))
    if kind not in ACTION_NAMES:
        supported = ", ".join(sorted(ACTION_NAMES))
        return f"action type {kind!r} is not supported by this emulator (supported: {supported})"
    if not isinstance(params, dict):
        return f"{kind} action parameters must be an object"
    missing = [name for name in REQUIRED[kind] if not params.get(name)]
    if missing:
        return f"{kind} action is missing {', '.join(missing)}"
    if kind == "firehose":
        separator = params.get("separator")
        if separator is not None and separator not in FIREHOSE_SEPARATORS:
            return (
                f"firehose separator {separator!r} is not valid: use ',', '\\t', '\\n' or '\\r\\n'"
            )
    if kind == "republish" and params.get("qos", 0) not in (0, 1):
        return "republish qos must be 0 or 1"
    reason = service_actions.check(kind, params)
    if reason:
        return reason
    for name in TEMPLATED[kind]:
        if name in params:  # optional members too (e.g. dynamoDB rangeKeyValue)
            compile_template(str(params[name]))  # raises SqlError for a bad ${...}
    return None


def render(kind: str, params: dict[str, Any], name: str, message: InboundMessage, ctx) -> str:
    value = str(params[name])
    if name in TEMPLATED[kind] and "${" in value:
        return compile_template(value)(message.payload, ctx)
    return value


class FirehoseSink(Protocol):
    """Where the firehose action puts records (the rules engine's batch of one accept_many)."""

    def put_records(
        self, account_id: str, region: str, stream_name: str, records: list[bytes]
    ) -> None:
        """Check (and keep or spool) the records; raise FirehoseError for what Firehose's API
        answers with an error, anything else when they cannot be durably accepted."""
        ...


@dataclass(frozen=True)
class ActionContext:
    """What actions may use of the engine: narrow on purpose."""

    firehose: FirehoseSink
    # A boto3 client on the emulator's own endpoint: client(service, region).
    client: Callable[[str, str], Any]
    # The Lambda component, found at call time (None if absent).
    lambdas: Callable[[], Any]
    # Accept a republished message in the current batch, then deliver it: (message, depth).
    republish: Callable[[InboundMessage, int], None]
    max_republish_depth: int
    # HTTP topic rule destinations (destinations.TopicRuleDestinations), for the http action.
    destinations: Any = None
    # Raises ActionFailure when IAM does not let IoT run the action (permissions.RuleAccess).
    authorize: Callable[[ActionRun], None] | None = None


def log_stream_name(rule_name: str) -> str:
    # AWS does not document the stream name the action writes to; one stream per rule.
    return f"iot-rule-{rule_name}"


@dataclass
class ActionRun:
    """One action of one rule for one message."""

    services: ActionContext
    kind: str
    params: dict[str, Any]
    message: InboundMessage
    context: MessageContext
    rule_name: str
    depth: int
    # Rendered once: the IAM check and the action must see the same ${newuuid()}.
    _rendered: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def run(self, result: Result) -> None:
        if self.services.authorize is not None:
            self.services.authorize(self)  # trust, then each permission (permissions.py)
        RUNNERS[self.kind](self, result)

    def param(self, name: str) -> str:
        value = self._rendered.get(name)
        if value is None:
            value = render(self.kind, self.params, name, self.message, self.context)
            self._rendered[name] = value
        return value

    # Firehose ---------------------------------------------------------------------------
    def firehose(self, result: Result) -> None:
        stream = self.param("deliveryStreamName")
        separator = FIREHOSE_SEPARATORS.get(self.params.get("separator") or "", b"")
        if _truthy(self.params.get("batchMode")):
            if result.raw is not None or not isinstance(result.value, list):
                raise ActionFailure(
                    "firehose",
                    stream,
                    "batchMode is true but the rule's SQL statement did not evaluate to an Array",
                )
            if len(result.value) > FIREHOSE_BATCH_LIMIT:
                raise ActionFailure(
                    "firehose",
                    stream,
                    f"batchMode: {len(result.value)} records exceed the limit of "
                    f"{FIREHOSE_BATCH_LIMIT} per PutRecordBatch",
                )
            records = [dumps(item).encode("utf-8") + separator for item in result.value]
        else:
            records = [result.to_bytes() + separator]
        if not records:
            return
        try:
            self.services.firehose.put_records(
                self.message.account_id, self.message.region, stream, records
            )
        except Exception as exc:
            # Imported here, on the failure path only: emulator.rules stays importable without
            # boto3 (validate_sql), and a message that succeeds pays nothing for it.
            from emulator.firehose.service import FirehoseError

            if isinstance(exc, FirehoseError):
                raise ActionFailure(
                    "firehose",
                    stream,
                    f"Failed to send message to Firehose stream {stream}. "
                    f"{exc.code}: {exc.message}",
                ) from None
            # Anything else (a full disk, a bug) means "not durably accepted": the broker must
            # not acknowledge, so the device publishes again.
            raise

    # S3 ---------------------------------------------------------------------------------
    def s3(self, result: Result) -> None:
        bucket = self.param("bucketName")
        key = self.param("key")
        extra = {}
        if self.params.get("cannedAcl"):
            extra["ACL"] = self.params["cannedAcl"]
        try:
            self.services.client("s3", self.message.region).put_object(
                Bucket=bucket, Key=key, Body=result.to_bytes(), **extra
            )
        except Exception as exc:
            raise ActionFailure(
                "s3",
                bucket,
                f"Failed to put S3 object. The error received was {_describe(exc, 'Amazon S3')}. "
                f"Message arrived on: {self.message.topic}, Action: s3, Bucket: {bucket}, "
                f'Key: "{key}".',
            ) from None

    # Republish --------------------------------------------------------------------------
    def republish(self, result: Result) -> None:
        topic = self.param("topic")
        if topic.startswith("$$"):  # "$$" stands for a reserved topic's "$"
            topic = topic[1:]
        refusal = publish_topic_error(topic)
        if refusal is not None:
            # The republished message is a publish like any other: a topic rendered from the
            # payload must pass the same topic rules, and a failure goes to the errorAction
            # (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html).
            raise ActionFailure("republish", topic, f"Failed to republish: {refusal[1]}")
        limit = self.services.max_republish_depth
        if self.depth >= limit:
            raise ActionFailure(
                "republish",
                topic,
                f"Republish loop: the message was republished {self.depth} times in a row "
                f"(limit {limit}); check the rules' topic filters",
            )
        republished = InboundMessage(
            topic=topic,
            payload=result.to_bytes(),
            qos=int(self.params.get("qos", 0) or 0),
            client_id=self.message.client_id,
            principal=self.message.principal,
            timestamp_ms=int(time.time() * 1000),
            account_id=self.message.account_id,
            region=self.message.region,
            user_properties=self.message.user_properties,
        )
        self.services.republish(republished, self.depth + 1)

    # CloudWatch Logs --------------------------------------------------------------------
    def cloudwatch_logs(self, result: Result) -> None:
        group = self.param("logGroupName")
        now = int(time.time() * 1000)
        if _truthy(self.params.get("batchMode")):
            # batchMode: an array of {"timestamp": ms, "message": ...} ("cloudwatch-logs-rule-
            # action", MQTT message format requirements for batchMode).
            items = result.value if result.raw is None else None
            if not isinstance(items, list) or not all(
                isinstance(i, dict) and "timestamp" in i and "message" in i for i in items
            ):
                raise ActionFailure(
                    "cloudwatchLogs",
                    group,
                    "batchMode is true but the payload is not an array of objects with "
                    "'timestamp' and 'message'",
                )
            events = [
                {
                    "timestamp": int(i["timestamp"]),
                    "message": i["message"]
                    if isinstance(i["message"], str)
                    else dumps(i["message"]),
                }
                for i in items
            ]
        else:
            events = [{"timestamp": now, "message": result.to_bytes().decode("utf-8", "replace")}]
        events.sort(key=lambda e: e["timestamp"])
        logs = self.services.client("logs", self.message.region)
        stream = log_stream_name(self.rule_name)
        try:
            try:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except logs.exceptions.ResourceNotFoundException:
                # The action creates its log stream (it needs logs:CreateLogStream); a missing
                # log group stays an error.
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as exc:
            raise ActionFailure(
                "cloudwatchLogs",
                group,
                f"Failed to put log events to {group}. "
                f"The error received was {_describe(exc, 'AWSLogs')}.",
            ) from None

    # Lambda -----------------------------------------------------------------------------
    def invoke_lambda(self, result: Result) -> None:
        arn = self.params["functionArn"]
        lambdas = self.services.lambdas()
        if lambdas is None:
            raise ActionFailure("lambda", arn, "Lambda is not available in this emulator process")
        if result.raw is not None:
            # "binary-payloads": the Lambda action does not take binary input; decode it with
            # SELECT encode(*, 'base64') AS data.
            raise ActionFailure(
                "lambda",
                arn,
                "The Lambda action does not support binary payloads: use "
                "SELECT encode(*, 'base64') AS data",
            )
        try:
            # AWS IoT invokes the function asynchronously ("lambda-rule-action").
            lambdas.invoke(
                self.message.account_id,
                self.message.region,
                arn,
                result.to_bytes(),
                invocation_type="Event",
            )
        except Exception as exc:
            code = getattr(exc, "code", type(exc).__name__)
            raise ActionFailure(
                "lambda",
                arn,
                f"Failed to invoke lambda function. Received Server error from Lambda. "
                f"The error code is {code}: {getattr(exc, 'message', str(exc))}",
            ) from None


# The action types this engine runs (keys of ACTION_NAMES): what `ActionRun.run` calls.
RUNNERS: dict[str, Callable[[ActionRun, Result], None]] = {
    "firehose": ActionRun.firehose,
    "s3": ActionRun.s3,
    "republish": ActionRun.republish,
    "cloudwatchLogs": ActionRun.cloudwatch_logs,
    "lambda": ActionRun.invoke_lambda,
}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _describe(exc: Exception, service: str) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return (
            f"{error.get('Message', str(exc))} (Service: {service}; Status Code: {status}; "
            f"Error Code: {error.get('Code')})"
        )
    return f"{type(exc).__name__}: {exc}"


# Actions into other moto-backed services (imported last: that module uses the names above),
# with the permissions their roles need (emulator/rules/permissions.py checks them).
from emulator.rules import permissions, service_actions  # noqa: E402

ACTION_NAMES.update(service_actions.ACTION_NAMES)
TEMPLATED.update(service_actions.TEMPLATED)
REQUIRED.update(service_actions.REQUIRED)
RUNNERS.update(service_actions.RUNNERS)
permissions.PERMISSIONS.update(service_actions.PERMISSIONS)
