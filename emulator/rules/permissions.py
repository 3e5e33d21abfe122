"""What IAM must allow before a topic rule action runs, and the check itself.

AWS IoT performs each action (and the errorAction) with the role named in its `roleArn`: the
role's trust policy must let `iot.amazonaws.com` assume it, with the confused-deputy keys
`aws:SourceAccount` and `aws:SourceArn` (the rule's ARN) set
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-create-role.html,
https://docs.aws.amazon.com/iot/latest/developerguide/cross-service-confused-deputy-prevention.html),
and the role's policies must allow each operation the action's page lists under "Requirements".
The lambda action has no role: the function's resource-based policy must allow
`lambda:InvokeFunction` to `iot.amazonaws.com`
(https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html).

`PERMISSIONS` maps an action kind to the (IAM action, resource ARN) pairs its role must be
allowed. Modules that add action kinds expose a table of the same shape, merged into this one
(`PERMISSIONS.update(other.PERMISSIONS)`); it is looked up at call time, so a kind without an
entry is refused (fail closed), never run unchecked.

A denial fails the action like any other failure: the errorAction gets it in `failures[]`, and
the denial (role, IAM action, resource, deciding statement or its absence) goes to the broker's
activity log (`/_emulator/activity`, event `RULE_ACTION_DENIED`) and to the emulator's log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from emulator.iam.authorizer import source_context

if TYPE_CHECKING:
    from emulator.iam.evaluator import Decision
    from emulator.rules.actions import ActionRun

log = logging.getLogger(__name__)

IOT_PRINCIPAL = "iot.amazonaws.com"
SESSION = "iot-rule"  # the role session name; AWS does not document the one IoT uses
DENIED_EVENT = "RULE_ACTION_DENIED"

RolePermissions = Callable[["ActionRun"], list[tuple[str, str]]]


def rule_arn(run: ActionRun) -> str:
    return _rule_source(run.message.region, run.message.account_id, run.rule_name)[0]


@lru_cache(maxsize=4096)
def _rule_source(region: str, account: str, rule_name: str) -> tuple[str, dict[str, str]]:
    """The rule's ARN and the confused-deputy keys IoT sets for it (read-only)."""
    arn = f"arn:aws:iot:{region}:{account}:rule/{rule_name}"
    return arn, source_context(arn)


def _arn(run: ActionRun, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{run.message.region}:{run.message.account_id}:{resource}"


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _firehose(run: ActionRun) -> list[tuple[str, str]]:
    # "An IAM role that AWS IoT can assume to perform the firehose:PutRecord operation";
    # batchMode sends with PutRecordBatch, its own IAM action
    # (https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-firehose-rule-action.html).
    action = (
        "firehose:PutRecordBatch" if _truthy(run.params.get("batchMode")) else "firehose:PutRecord"
    )
    stream = run.param("deliveryStreamName")
    return [(action, _arn(run, "firehose", f"deliverystream/{stream}"))]


def _s3(run: ActionRun) -> list[tuple[str, str]]:
    # https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html
    return [("s3:PutObject", f"arn:aws:s3:::{run.param('bucketName')}/{run.param('key')}")]


def _republish(run: ActionRun) -> list[tuple[str, str]]:
    # https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html
    topic = run.param("topic")
    if topic.startswith("$$"):  # "$$" stands for a reserved topic's "$"
        topic = topic[1:]
    return [("iot:Publish", _arn(run, "iot", f"topic/{topic}"))]


def _cloudwatch_logs(run: ActionRun) -> list[tuple[str, str]]:
    # "logs:CreateLogStream, logs:DescribeLogStreams, and logs:PutLogEvents"
    # (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html).
    # DescribeLogStreams names no stream: AWS reports it on "log-group:<name>:log-stream:".
    from emulator.rules.actions import log_stream_name

    group = run.param("logGroupName")
    stream = _arn(run, "logs", f"log-group:{group}:log-stream:{log_stream_name(run.rule_name)}")
    return [
        ("logs:CreateLogStream", stream),
        ("logs:DescribeLogStreams", _arn(run, "logs", f"log-group:{group}:log-stream:")),
        ("logs:PutLogEvents", stream),
    ]


# Action kind -> the (IAM action, resource ARN) pairs its roleArn must be allowed.
PERMISSIONS: dict[str, RolePermissions] = {
    "firehose": _firehose,
    "s3": _s3,
    "republish": _republish,
    "cloudwatchLogs": _cloudwatch_logs,
}
# Action kinds authorised by the target's resource-based policy instead of a role.
RESOURCE_POLICY_KINDS = {"lambda"}
# Action kinds that act with no role: the http action posts to a confirmed destination (its
# `auth.sigv4`, the one part that names a role, is refused at CreateTopicRule).
# https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html
ROLELESS_KINDS = {"http"}

# How each action words an access failure in its errorAction message: the parameter that names
# the failed resource, and the message. {code} and {text} are the denial's, {message_topic} the
# topic the message arrived on; any other field is the action's parameter of that name.
_WORDING: dict[str, tuple[str, str]] = {
    "firehose": (
        "deliveryStreamName",
        "Failed to send message to Firehose stream {deliveryStreamName}. {code}: {text}",
    ),
    "s3": (
        "bucketName",
        "Failed to put S3 object. The error received was {text} (Service: Amazon S3; "
        "Status Code: 403; Error Code: {code}). Message arrived on: {message_topic}, "
        'Action: s3, Bucket: {bucketName}, Key: "{key}".',
    ),
    "republish": ("topic", "Failed to republish: {code}: {text}"),
    "cloudwatchLogs": (
        "logGroupName",
        "Failed to put log events to {logGroupName}. The error received was {text} "
        "(Service: AWSLogs; Status Code: 400; Error Code: {code}).",
    ),
    "lambda": (
        "functionArn",
        "Failed to invoke lambda function. Received Server error from Lambda. "
        "The error code is {code}: {text}",
    ),
}


class _WordingFields(dict):
    """The fields of a `_WORDING` message: those given, else the action's parameter (rendered,
    substitution templates applied) of that name, looked up only when the message uses it."""

    def __init__(self, run: ActionRun, **given: str) -> None:
        super().__init__(given)
        self.run = run

    def __missing__(self, name: str) -> str:
        return self.run.param(name)


# The service's own error code for a denied call (its API reference).
_DENIED_CODES = {"s3": "AccessDenied", "republish": "ForbiddenException"}


@dataclass(frozen=True)
class Denial:
    """Why IoT may not run an action: the role (or service principal), the IAM action and the
    resource, and the decision naming the statement that decided (or its absence)."""

    kind: str
    role: str
    decision: Decision

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, **self.decision.as_dict()}


def role_pairs(run: ActionRun) -> list[tuple[str, str]]:
    """The (IAM action, resource) pairs `run`'s role must be allowed; KeyError for a kind that
    has no entry (the caller refuses it)."""
    return PERMISSIONS[run.kind](run)


def function_policy(account_id: str, region: str, function_arn: str) -> str | None | bool:
    """The function's resource-based policy document (None: it has none; False: no such
    function, which the invoke itself reports)."""
    import json

    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account_id][region]
    try:
        fn = backend.get_function(function_arn)
    except Exception:  # moto raises its own not-found errors
        base = ":".join(function_arn.split(":")[:7]) if function_arn.startswith("arn:") else ""
        try:
            backend.get_function(base or function_arn.split(":")[0])
        except Exception:
            return False
        # The function exists but this qualifier's policy cannot be read: nothing allows it.
        return None
    statements = list(getattr(fn.policy, "statements", ()) or ())
    if not statements:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _resource_policy(run: ActionRun, resource: str) -> dict[str, Any]:
    """The target's resource-based policy, where it has one: an S3 bucket policy can deny what
    the role allows
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    if not resource.startswith("arn:aws:s3:::"):
        return {}
    from emulator.firehose.access import bucket_policy

    bucket = resource[len("arn:aws:s3:::") :].split("/", 1)[0]
    policy = bucket_policy(run.message.account_id, bucket)
    if policy is None:
        return {}
    return {"resource_policy": policy, "resource_policy_id": f"bucket policy of {bucket}"}


def find_denial(run: ActionRun, iam: Any) -> Denial | None:
    """The first check `run` fails, or None when IoT may run it."""
    context = _rule_source(run.message.region, run.message.account_id, run.rule_name)[1]
    if run.kind in RESOURCE_POLICY_KINDS:
        arn = str(run.params.get("functionArn", ""))
        policy = function_policy(run.message.account_id, run.message.region, arn)
        if policy is False:
            return None
        decision = iam.authorize_service(
            IOT_PRINCIPAL,
            "lambda:InvokeFunction",
            arn,
            policy,
            context,
            resource_policy_id=f"resource-based policy of {arn}",
        )
        return None if decision.allowed else Denial(run.kind, IOT_PRINCIPAL, decision)
    if run.kind in ROLELESS_KINDS:
        return None
    role = str(run.params.get("roleArn") or "(no roleArn)")
    decision = iam.can_assume(role, IOT_PRINCIPAL, context)
    if not decision.allowed:
        return Denial(run.kind, role, decision)
    for action, resource in role_pairs(run):
        policy = _resource_policy(run, resource)
        decision = iam.authorize(role, action, resource, session=SESSION, **policy)
        if not decision.allowed:
            return Denial(run.kind, role, decision)
    return None


class RuleAccess:
    """The check `ActionRun.run` makes before running an action, for one emulator."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def check(self, run: ActionRun) -> None:
        """Raise `ActionFailure` when IoT may not run `run` (IAM enforced only)."""
        from emulator.rules.actions import ActionFailure

        if not getattr(self._emulator, "iam_enforced", True):
            return
        if run.kind not in PERMISSIONS and run.kind not in RESOURCE_POLICY_KINDS | ROLELESS_KINDS:
            raise ActionFailure(
                run.kind,
                run.rule_name,
                f"The emulator does not know which IAM permissions the {run.kind} action needs,"
                " so it refuses to run it while IAM is enforced (start with --no-iam to run it"
                " unchecked)",
            )
        iam = self._emulator.find("iam")
        if iam is None:
            raise ActionFailure(
                run.kind,
                run.rule_name,
                "IAM enforcement is on but the emulator has no IAM component",
            )
        denial = find_denial(run, iam)
        if denial is None:
            return
        self._report(run, denial)
        code = _DENIED_CODES.get(run.kind, "AccessDeniedException")
        if denial.decision.action == "sts:AssumeRole":
            code = "AccessDenied"  # STS's code for a role that may not be assumed
        text = denial.decision.message()
        if run.kind not in _WORDING:
            resource, error = run.rule_name, f"{code}: {text}"
        else:
            parameter, wording = _WORDING[run.kind]
            resource = run.param(parameter)
            fields = _WordingFields(run, code=code, text=text, message_topic=run.message.topic)
            error = wording.format_map(fields)
        raise ActionFailure(run.kind, resource, error, denial=denial.as_dict())

    def _report(self, run: ActionRun, denial: Denial) -> None:
        decision = denial.decision
        activity = getattr(self._emulator, "activity", None)
        if activity is not None:
            activity.record(
                DENIED_EVENT,
                run.message.client_id,
                f"rule {run.rule_name}, {run.kind} action: {decision.message()}",
                action=decision.action,
                resource=decision.resource,
                policy_decision=decision.decision,
                principal=denial.role,
            )
        log.warning(
            "rule %s: %s action denied: role %s, %s on %s: %s",
            run.rule_name,
            run.kind,
            denial.role,
            decision.action,
            decision.resource,
            decision.reason,
        )
