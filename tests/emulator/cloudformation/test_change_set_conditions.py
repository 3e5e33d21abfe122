"""A CREATE change set lists only the resources whose Condition holds for its parameters, as
CloudFormation creates only those (template.yaml's HotPathTable resources rely on it)."""

from __future__ import annotations

import json

import pytest

TEMPLATE = {
    "Parameters": {
        "On": {"Type": "String", "Default": "false", "AllowedValues": ["true", "false"]}
    },
    "Conditions": {
        "IsOn": {"Fn::Equals": [{"Ref": "On"}, "true"]},
        "IsOff": {"Fn::Not": [{"Condition": "IsOn"}]},
    },
    "Resources": {
        "Always": {"Type": "AWS::SQS::Queue"},
        "WhenOn": {"Type": "AWS::SQS::Queue", "Condition": "IsOn"},
        "WhenOff": {"Type": "AWS::SQS::Queue", "Condition": "IsOff"},
    },
}


@pytest.mark.parametrize(
    ("value", "listed"), [(None, {"Always", "WhenOff"}), ("true", {"Always", "WhenOn"})]
)
def test_create_change_set_leaves_out_resources_whose_condition_is_false(
    aws, unique, value, listed
):
    cfn = aws("cloudformation")
    name = f"cond-{unique}"
    parameters = [] if value is None else [{"ParameterKey": "On", "ParameterValue": value}]
    cfn.create_change_set(
        StackName=name,
        ChangeSetName="initial",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=parameters,
    )
    cfn.get_waiter("change_set_create_complete").wait(
        StackName=name, ChangeSetName="initial", WaiterConfig={"Delay": 1}
    )
    changes = cfn.describe_change_set(StackName=name, ChangeSetName="initial")["Changes"]
    assert {c["ResourceChange"]["LogicalResourceId"] for c in changes} == listed
    cfn.delete_change_set(StackName=name, ChangeSetName="initial")
    cfn.delete_stack(StackName=name)
