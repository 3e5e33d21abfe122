"""emulator/rules/permissions.py: the (IAM action, resource) pairs each topic rule action's role
must be allowed, as the action pages' "Requirements" list them, and the refusal of an action
kind without an entry (fail closed). Pure: no emulator, no IAM evaluation."""

from __future__ import annotations

import pytest
from support.rules import action_run, message

from emulator.rules.actions import ActionContext, ActionFailure, ActionRun
from emulator.rules.permissions import PERMISSIONS, RuleAccess, role_pairs, rule_arn

REGION, ACCOUNT = "eu-west-1", "111122223333"


def _run(kind: str, params: dict, payload: bytes = b'{"d": "pump-7"}') -> ActionRun:
    services = ActionContext(None, None, lambda: None, lambda m, d: None, 8)  # type: ignore[arg-type]
    return action_run(kind, params, message("t/pump-7", payload, ACCOUNT, REGION), "r1", services)


def test_firehose_needs_put_record_or_put_record_batch_on_the_stream():
    single = _run("firehose", {"deliveryStreamName": "s-${d}", "roleArn": "x"})
    batch = _run("firehose", {"deliveryStreamName": "s", "roleArn": "x", "batchMode": "true"})
    stream = f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream"
    assert role_pairs(single) == [("firehose:PutRecord", f"{stream}/s-pump-7")]
    assert role_pairs(batch) == [("firehose:PutRecordBatch", f"{stream}/s")]


def test_s3_checks_the_object_the_action_writes_with_one_rendering_of_newuuid():
    run = _run("s3", {"bucketName": "b", "key": "k/${newuuid()}", "roleArn": "x"})
    ((action, resource),) = role_pairs(run)
    assert action == "s3:PutObject" and resource.startswith("arn:aws:s3:::b/k/")
    assert role_pairs(run) == [(action, resource)]  # the action itself writes that same key
    assert run.param("key") == resource.split(":::b/", 1)[1]


def test_republish_and_cloudwatch_logs():
    republish = _run("republish", {"topic": "$$aws/things/${d}/shadow/update", "roleArn": "x"})
    assert role_pairs(republish) == [
        ("iot:Publish", f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/$aws/things/pump-7/shadow/update")
    ]
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g"
    assert role_pairs(_run("cloudwatchLogs", {"logGroupName": "g", "roleArn": "x"})) == [
        ("logs:CreateLogStream", f"{group}:log-stream:iot-rule-r1"),
        ("logs:DescribeLogStreams", f"{group}:log-stream:"),
        ("logs:PutLogEvents", f"{group}:log-stream:iot-rule-r1"),
    ]
    assert rule_arn(republish) == f"arn:aws:iot:{REGION}:{ACCOUNT}:rule/r1"


def test_a_kind_without_permissions_is_refused_while_iam_is_enforced():
    class Emulator:
        iam_enforced = True

        def find(self, name):  # pragma: no cover - must not be reached
            raise AssertionError("the refusal comes before any evaluation")

    assert "iotEvents" not in PERMISSIONS
    with pytest.raises(ActionFailure) as caught:
        RuleAccess(Emulator()).check(_run("iotEvents", {"inputName": "i", "roleArn": "x"}))
    assert "does not know which IAM permissions the iotEvents action needs" in str(caught.value)
    assert caught.value.failed_resource == "r1"
