"""template.yaml with HotPathTable=true: the DynamoDB table, its DynamoDBv2 rule and role are
created, a device's latest reading is what pipeline.hotpath reads back, and the default
(false) stack has none of them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from pipeline import hotpath

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _deploy(cfn, body: str, name: str, parameters: dict[str, str]) -> dict[str, str]:
    cfn.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_hot_path_table_keeps_the_latest_reading_per_device_topic(
    emulator, aws, packaged_body, unique
):
    cfn, ddb, data = aws("cloudformation"), aws("dynamodb"), aws("iot-data")
    name = f"hot-{unique}"
    topic = f"hot-{unique}"
    # Given the project's stack deployed with the hot path on
    outputs = _deploy(
        cfn,
        packaged_body,
        name,
        {"Environment": f"h{unique[:6]}", "IotTopicName": topic, "HotPathTable": "true"},
    )
    table = hotpath.table_name(outputs)
    assert table
    # When two devices publish, one of them twice
    for device, reading in (("pump", 20.5), ("fan", 7), ("pump", 21.5)):
        data.publish(
            topic=f"{topic}/{device}",
            qos=1,
            payload=json.dumps({"temperature_c": reading, "status": "ok"}),
        )
    assert emulator.rules.drain(10)
    # Then the table holds one row per device topic, with its latest reading
    frame = hotpath.latest_readings(ddb, table)
    latest = dict(zip(frame["topic"], frame["temperature_c"], strict=True))
    assert latest == {f"{topic}/pump": 21.5, f"{topic}/fan": 7}
    assert str(frame["received_at"].dt.tz) == "UTC"
    assert list(frame.columns[:2]) == ["topic", "received_at"]
    # and deleting the stack deletes the table
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)
    with pytest.raises(ClientError):
        ddb.describe_table(TableName=table)


def test_default_stack_has_no_hot_path(aws, packaged_body, unique):
    cfn = aws("cloudformation")
    name = f"cold-{unique}"
    outputs = _deploy(cfn, packaged_body, name, {"Environment": f"c{unique[:6]}"})
    try:
        assert hotpath.table_name(outputs) is None
        types = [
            r["ResourceType"]
            for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
        ]
        assert "AWS::DynamoDB::Table" not in types
        assert types.count("AWS::IoT::TopicRule") == 2
    finally:
        cfn.delete_stack(StackName=name)
