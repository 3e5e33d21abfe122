"""The workbook's prerequisite checks and teardown against stacks in each state, on the real
emulator: missing, rolled back after a failed creation (ROLLBACK_COMPLETE)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError, WaiterError

from pipeline import runs, workbook
from pipeline.target import LOCAL_CREDENTIALS, Target


@pytest.fixture
def target(emulator):
    info = emulator.info()
    session = boto3.Session(region_name=info["region"], **LOCAL_CREDENTIALS)
    return Target(
        "local",
        info["region"],
        info["endpoint_url"],
        info["mqtt_host"],
        info["mqtt_port"],
        info["root_ca_path"],
        session,
    )


def rolled_back_stack(target: Target, name: str) -> None:
    """A stack whose creation failed (a resource type the emulator refuses) and rolled back."""
    cfn = target.client("cloudformation")
    template = {"Resources": {"Api": {"Type": "AWS::AppSync::GraphQLApi", "Properties": {}}}}
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_create_complete").wait(
            StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )


def test_a_missing_stack_names_notebook_01(target, unique):
    with pytest.raises(runs.PrerequisiteError) as error:
        workbook.require_stack(target, f"missing-{unique}")
    assert str(error.value) == (
        f"stack missing-{unique} (local, {target.region}) does not exist: run 01-deploy-stack first"
    )


def test_a_rolled_back_stack_says_what_to_do_and_teardown_deletes_it(target, unique):
    # given a stack whose creation failed
    name = f"rolled-back-{unique}"
    rolled_back_stack(target, name)
    # then the notebooks stop with the state and what to do
    with pytest.raises(runs.PrerequisiteError, match="is ROLLBACK_COMPLETE: its creation failed"):
        workbook.require_stack(target, name)
    # and teardown deletes it, although it has no outputs
    report = workbook.teardown(target, name)
    assert report["left over"] == []
    with pytest.raises(ClientError, match="does not exist"):
        target.client("cloudformation").describe_stacks(StackName=name)
