"""UpdateReplacePolicy: Retain keeps the old physical resource when an update replaces it
(User Guide, "UpdateReplacePolicy attribute"); refused for moto-modelled types."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import WaiterError
from support.templates import resource

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _group_template(name: str, policy: str) -> dict:
    return {
        "Resources": {
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "UpdateReplacePolicy": policy,
                "Properties": {"LogGroupName": name},
            }
        }
    }


def _names(logs, prefix: str) -> list[str]:
    groups = logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    return sorted(g["logGroupName"] for g in groups)


@pytest.mark.parametrize("policy, old_kept", [("Retain", True), ("Delete", False)])
def test_replacement_keeps_or_deletes_the_old_resource(aws, unique, policy, old_kept):
    cfn, logs = aws("cloudformation"), aws("logs")
    prefix = f"/test/urp/{unique}-{policy}"
    name = f"urp-{unique}-{policy.lower()}"
    cfn.create_stack(
        StackName=name, TemplateBody=json.dumps(_group_template(f"{prefix}/a", policy))
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    # When a new name forces a replacement
    cfn.update_stack(
        StackName=name, TemplateBody=json.dumps(_group_template(f"{prefix}/b", policy))
    )
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig=WAIT)
    # Then the new group exists, and the old one only with Retain
    expected = [f"{prefix}/a", f"{prefix}/b"] if old_kept else [f"{prefix}/b"]
    assert _names(logs, prefix) == expected
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)
    assert _names(logs, prefix) == ([f"{prefix}/a"] if old_kept else [])
    if old_kept:
        logs.delete_log_group(logGroupName=f"{prefix}/a")


def test_retain_on_replace_for_a_moto_type_is_refused_with_the_type(aws, unique, stack_events):
    cfn = aws("cloudformation")
    name = f"urp-moto-{unique}"
    template = {
        "Resources": {
            "Queue": resource(
                "AWS::SQS::Queue", {"QueueName": f"urp-{unique}"}, UpdateReplacePolicy="Retain"
            )
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    reasons = [
        e.get("ResourceStatusReason", "")
        for e in stack_events(name)
        if e["LogicalResourceId"] == "Queue" and e["ResourceStatus"] == "CREATE_FAILED"
    ]
    assert (
        "UpdateReplacePolicy Retain is not supported by the local emulator for AWS::SQS::Queue"
        in (reasons[0])
    )
