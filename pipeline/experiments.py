"""Notebook 07's tools: trace one message, try rule SQL, ask IoT Core's policy evaluation,
change Firehose's buffering, and break one IAM permission on purpose. Each works on the emulator
and on AWS with the same calls.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import urllib.parse
import urllib.request
from typing import Any

from pipeline import batches, objects, publish, runs, workbook
from pipeline.target import Target
from pipeline.workbook import Delivered

# ------------------------------------------------------------------------ trace a message


def _same_message(doc: Any, message: publish.Message, run_id: str) -> bool:
    """Whether a delivered JSON record is `message` of run `run_id`: same run, same `sequence`,
    and the message's equipment in its topic, equipment_id or device_id (a payload may carry a
    `topic` field of its own, which then replaces `topic()` in the rule's output)."""
    if not isinstance(doc, dict) or runs.run_of(doc) != run_id or not message.is_json:
        return False
    sent = json.loads(message.payload)
    names = (doc.get("topic"), doc.get("equipment_id"), doc.get("device_id"))
    return doc.get("sequence") == sent.get("sequence") and any(
        str(name).split("/")[-1] == message.equipment for name in names if name is not None
    )


def trace(
    target: Target, found: Delivered, message: publish.Message, index: int
) -> list[dict[str, Any]]:
    """Every place message #`index` of the run landed, found from S3 alone: the raw object and
    line, the parsed object and row, or the error output with its reason."""
    s3, run_id = target.client("s3"), found.scope.run_id
    places = []
    for where, which in (("raw batch", found.raw), ("parsed batch", found.parsed)):
        for obj in found.ours(which):
            for line in batches.iter_batch_records(objects.read_object(s3, obj)):
                doc = line.value if line.ok else None
                if (
                    _same_message(doc, message, run_id)
                    and (where == "raw batch" or doc.get("equipment_id") == message.equipment)
                ) or (where == "raw batch" and workbook.forwarded_payload(doc) == message.payload):
                    places.append(
                        {"where": where, "key": obj.key, "line": line.line, "record": doc}
                    )
    for obj in found.ours(found.processing_failed):
        for item in batches.iter_processing_failed(objects.read_object(s3, obj)):
            if not isinstance(item, batches.FailedRecord):
                continue
            try:
                doc = json.loads(item.raw_data)
            except ValueError:
                doc = None
            if _same_message(doc, message, run_id) or (
                not message.is_json and workbook.not_json_payload(item) == message.payload
            ):
                places.append(
                    {
                        "where": "processing-failed",
                        "key": obj.key,
                        "line": item.line,
                        "record": f"{item.error_code}: {item.error_message}",
                    }
                )
    for obj, error in found.details(found.rule_errors):
        payload = base64.b64decode(error.get("base64OriginalPayload", ""))
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            doc = None
        if payload == message.payload or _same_message(doc, message, run_id):
            reasons = "; ".join(f.get("errorMessage", "") for f in error.get("failures", []))
            places.append(
                {"where": "rule errorAction", "key": obj.key, "line": 1, "record": reasons}
            )
    if not places:
        places.append(
            {
                "where": "nowhere yet",
                "key": None,
                "line": None,
                "record": f"message #{index} of run {run_id} is in no object (yet)",
            }
        )
    return places


# ------------------------------------------------------------------------ rule SQL playground
def _data_client(target: Target) -> Any:
    """IoT's data plane over HTTPS (Publish). On AWS its address is the account's ATS
    endpoint (https://docs.aws.amazon.com/iot/latest/developerguide/iot-connect-devices.html)."""
    if target.name == "local":
        return target.client("iot-data")
    return target.session.client(
        "iot-data", region_name=target.region, endpoint_url=f"https://{target.mqtt_host}"
    )


def _republish_role(target: Target, name: str, topic: str) -> str:
    """A role the rule's republish action uses: IoT may assume it and publish to `topic` only."""
    iam = target.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "iot.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    topic_arn = f"arn:aws:iot:{target.region}:{target.account_id}:topic/{topic}"
    permission = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": topic_arn}],
    }
    iam.put_role_policy(
        RoleName=name, PolicyName="republish", PolicyDocument=json.dumps(permission)
    )
    if target.name == "aws":
        time.sleep(10)  # IAM is eventually consistent: a fresh role is not assumable at once
    return role["Arn"]


def rule_playground(
    target: Target,
    device: publish.Device,
    topic_root: str,
    select: str,
    where: str | None,
    payloads: list[Any],
    wait: float = 5.0,
) -> list[dict[str, Any]]:
    """Evaluate `SELECT <select> ... WHERE <where>` on each payload with a real topic rule.

    A temporary rule reads a private input topic (published over HTTPS, so the stack's rule,
    which reads `<topic>/+`, never sees it) and republishes its result under
    `<topic>/playground/<id>/out`, where the device's policy lets it subscribe. Each payload is
    published alone: an output within `wait` s means matched. Rule and role are deleted after.
    """
    token = secrets.token_hex(4)
    source, output = f"playground/{token}/in", f"{topic_root}/playground/{token}/out"
    rule_name, role_name = f"playground_{token}", f"iot-playground-{token}"
    sql = f"SELECT {select} FROM '{source}'" + (f" WHERE {where}" if where else "")
    iot, iam = target.client("iot"), target.client("iam")
    role_arn = _republish_role(target, role_name, output)
    rows = []
    try:
        iot.create_topic_rule(
            ruleName=rule_name,
            topicRulePayload={
                "sql": sql,
                "awsIotSqlVersion": "2016-03-23",
                "ruleDisabled": False,
                "actions": [{"republish": {"topic": output, "roleArn": role_arn, "qos": 1}}],
            },
        )
        device.subscribe(output)
        data = _data_client(target)
        for payload in payloads:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            seen = len(device.received)
            data.publish(topic=source, qos=1, payload=body)
            deadline = time.monotonic() + wait
            while len(device.received) == seen and time.monotonic() < deadline:
                time.sleep(0.05)
            got = list(device.received)[seen:]
            rows.append(
                {
                    "payload": body.decode("utf-8", "replace"),
                    "matched": bool(got),
                    "output": got[0].payload.decode("utf-8", "replace") if got else None,
                }
            )
    finally:
        try:
            iot.delete_topic_rule(ruleName=rule_name)
        finally:
            iam.delete_role_policy(RoleName=role_name, PolicyName="republish")
            iam.delete_role(RoleName=role_name)
    return [{"sql": sql, **row} for row in rows]


# ------------------------------------------------------------------------ policy playground
def policy_playground(
    target: Target, certificate_arn: str, client_id: str, checks: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """IoT Core's own answer (TestAuthorization) for the certificate and client id on each
    (action, topic or filter): allowed or denied, and the policy that decided
    (https://docs.aws.amazon.com/iot/latest/apireference/API_TestAuthorization.html)."""
    prefix = f"arn:aws:iot:{target.region}:{target.account_id}"
    kinds = {
        "CONNECT": "client",
        "PUBLISH": "topic",
        "RECEIVE": "topic",
        "SUBSCRIBE": "topicfilter",
    }
    infos = [
        {"actionType": action, "resources": [f"{prefix}:{kinds[action]}/{name}"]}
        for action, name in checks
    ]
    response = target.client("iot").test_authorization(
        principal=certificate_arn, clientId=client_id, authInfos=infos
    )
    rows = []
    for (action, name), result in zip(checks, response["authResults"], strict=True):
        denied = result.get("denied", {})
        explicit = denied.get("explicitDeny", {}).get("policies", [])
        allowed = result.get("allowed", {}).get("policies", [])
        deciding = explicit or allowed
        rows.append(
            {
                "action": action,
                "resource": name,
                "decision": result.get("authDecision"),
                "decided by": ", ".join(p.get("policyName", "") for p in deciding)
                or "no statement allows it (implicit deny)",
            }
        )
    return rows


def policy_statements(target: Target, policy_name: str) -> list[dict[str, Any]]:
    """The statements of a policy, to read next to the decisions."""
    document = json.loads(target.client("iot").get_policy(policyName=policy_name)["policyDocument"])
    statements = document.get("Statement", [])
    return [
        {
            "Sid": s.get("Sid"),
            "Effect": s.get("Effect"),
            "Action": s.get("Action"),
            "Resource": s.get("Resource"),
        }
        for s in (statements if isinstance(statements, list) else [statements])
    ]


# ------------------------------------------------------------------------ buffering experiment
def set_buffering(
    target: Target, config: Any, interval_seconds: int, size_mbs: int
) -> dict[str, int]:
    """Update the stack with other buffering hints (the rest as the settings say); return the
    hints the delivery stream now has."""
    from pipeline import workbook

    out = workbook.deploy(
        target,
        config.stack_name,
        {
            "Environment": config.environment,
            "BufferIntervalSeconds": interval_seconds,
            "BufferSizeMBs": size_mbs,
            "ProcessorBufferIntervalSeconds": config.processor_buffer_interval_seconds,
        },
    )
    return workbook.stream_buffering(target, out)


def scope_of(report: publish.PublishReport) -> runs.RunScope:
    """The run an experiment published (not recorded as 03's run: 04/05 keep theirs)."""
    return runs.RunScope(str(report.run_id), report.started_ms, report.finished_ms)


# ------------------------------------------------------------------------ a broken permission
BREAK_POLICY = "experiment-deny-s3-writes"  # the inline policy the experiment adds, then removes
BREAK_SID = "ExperimentBreaksDelivery"


def firehose_role(target: Target, stack_name: str) -> str:
    """The name of the stack's Firehose delivery role (template.yaml's FirehoseRole)."""
    detail = target.client("cloudformation").describe_stack_resource(
        StackName=stack_name, LogicalResourceId="FirehoseRole"
    )["StackResourceDetail"]
    return detail["PhysicalResourceId"]


def break_s3_writes(target: Target, stack_name: str, out: dict[str, str]) -> dict[str, Any]:
    """Add an explicit Deny of s3:PutObject on both buckets to the Firehose role: an explicit
    Deny wins over the role's Allow
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
    so Firehose can no longer write, keeps the records and retries
    (https://docs.aws.amazon.com/firehose/latest/dev/troubleshooting.html: for an S3 destination
    "Firehose keeps retrying until the retention period ends", 24 hours for Direct PUT).
    `restore_s3_writes` undoes it."""
    role = firehose_role(target, stack_name)
    buckets = (out["RawBucketName"], out["ParsedBucketName"])
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": BREAK_SID,
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": [f"arn:aws:s3:::{bucket}/*" for bucket in buckets],
            }
        ],
    }
    target.client("iam").put_role_policy(
        RoleName=role, PolicyName=BREAK_POLICY, PolicyDocument=json.dumps(document)
    )
    if target.name == "aws":
        time.sleep(15)  # IAM changes take effect after a few seconds (eventual consistency)
    return {"role": role, "added inline policy": BREAK_POLICY, "statement": document["Statement"]}


def restore_s3_writes(target: Target, stack_name: str) -> dict[str, Any]:
    """Remove the experiment's Deny again (nothing to do if it is not there)."""
    role = firehose_role(target, stack_name)
    iam = target.client("iam")
    try:
        iam.delete_role_policy(RoleName=role, PolicyName=BREAK_POLICY)
        removed = True
    except iam.exceptions.NoSuchEntityException:
        removed = False
    if removed and target.name == "aws":
        time.sleep(15)
    left = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return {"role": role, "removed": BREAK_POLICY if removed else None, "inline policies": left}


def firehose_error_lines(
    target: Target, out: dict[str, str], since_ms: int, timeout: float = 0.0
) -> list[dict[str, Any]]:
    """The error log lines Firehose wrote to the stack's log group since `since_ms` (waiting
    up to `timeout` s for the first), as the guide describes them
    (https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-logs.html)."""
    logs = target.client("logs")
    deadline = time.monotonic() + timeout
    while True:
        events = logs.filter_log_events(
            logGroupName=out["FirehoseLogGroupName"], startTime=since_ms
        ).get("events", [])
        if events or time.monotonic() >= deadline:
            break
        time.sleep(1.0 if target.name == "local" else 5.0)
    rows = []
    for event in events:
        try:
            line = json.loads(event["message"])
        except ValueError:
            line = {"message": event["message"]}
        rows.append(
            {
                "log stream": event.get("logStreamName"),
                "errorCode": line.get("errorCode"),
                "message": line.get("message"),
                "destination": line.get("destination"),
            }
        )
    return rows


def held_back(
    target: Target, out: dict[str, str], environment: str, scope: runs.RunScope, acknowledged: int
) -> dict[str, int]:
    """How many acknowledged messages of the run are in S3 yet, and how many Firehose holds."""
    figures = workbook.collect(target, out, environment, scope).figures()
    landed = figures["raw_lines"] + figures["rule_errors"]
    return {
        "acknowledged by IoT Core": acknowledged,
        "in the raw bucket": figures["raw_lines"],
        "parsed rows": figures["parsed_rows"],
        "held back (not in S3 yet)": max(0, acknowledged - landed),
    }


def why_denied(target: Target, out: dict[str, str]) -> list[dict[str, Any]]:
    """The emulator's explanation of each denied delivery: role, action, resource and the
    statement that decided. AWS does not show this to the stream's owner (CloudTrail records
    the denied call), so on AWS this is empty."""
    if target.name != "local":
        return []
    query = urllib.parse.urlencode({"stream": out["DeliveryStreamName"]})
    with urllib.request.urlopen(
        f"{target.endpoint_url}/_emulator/firehose/errors?{query}", timeout=10
    ) as answer:
        errors = json.loads(answer.read())  # the stream's recent delivery errors, oldest first
    rows = []
    for error in errors:
        denial = error.get("denial")
        if not denial:
            continue
        statements = denial.get("statements") or []
        rows.append(
            {
                "role": denial.get("principal"),
                "action": denial.get("action"),
                "resource": denial.get("resource"),
                "decision": denial.get("decision"),
                "decided by": ", ".join(f"{s['policy']} {s['statement']}" for s in statements)
                or "no statement allows it",
            }
        )
    return rows
