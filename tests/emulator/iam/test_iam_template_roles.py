"""The project's template.yaml, deployed through CloudFormation: its least-privilege roles allow
exactly what the pipeline's services do on its behalf, and nothing next to it."""

from __future__ import annotations

import json
import uuid

import pytest

from emulator.iam.authorizer import source_context
from pipeline.paths import TEMPLATE

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def stack(aws):
    from pipeline.stack import package_template

    suffix = uuid.uuid4().hex[:6]
    bucket = f"iam-template-artifacts-{suffix}"
    aws("s3").create_bucket(Bucket=bucket)

    body = json.dumps(package_template(TEMPLATE, bucket, aws("s3")))
    name = f"iam-{suffix}"
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName=name,
        TemplateBody=body,
        Parameters=[{"ParameterKey": "Environment", "ParameterValue": f"i{suffix}"}],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 90}
    )
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    iam = aws("iam")
    roles = {
        logical: iam.get_role(RoleName=physical)["Role"]["Arn"]
        for logical, physical in resources.items()
        if logical.endswith("Role")
    }
    yield {"outputs": outputs, "roles": roles}
    cfn.delete_stack(StackName=name)


def test_topic_rule_role_trust_and_permissions(emulator, stack):
    role = stack["roles"]["TopicRuleFirehoseRole"]
    rule_arn = stack["outputs"]["TopicRuleArn"]
    source = source_context(rule_arn)
    assert source == {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT}
    assert emulator.iam.can_assume(role, "iot.amazonaws.com", source).allowed
    assert not emulator.iam.can_assume(role, "firehose.amazonaws.com", source).allowed
    stream = stack["outputs"]["DeliveryStreamArn"]
    assert emulator.iam.authorize(role, "firehose:PutRecord", stream).allowed
    assert emulator.iam.authorize(role, "firehose:PutRecordBatch", stream).allowed
    other = stream.rsplit("/", 1)[0] + "/another-stream"
    assert not emulator.iam.authorize(role, "firehose:PutRecord", other).allowed
    assert not emulator.iam.authorize(role, "firehose:DeleteDeliveryStream", stream).allowed


def test_error_action_role_writes_only_error_objects(emulator, stack):
    role = stack["roles"]["TopicRuleErrorRole"]
    raw = f"arn:aws:s3:::{stack['outputs']['RawBucketName']}"
    assert emulator.iam.authorize(role, "s3:PutObject", f"{raw}/errors/iot-rule/t/1.json").allowed
    assert not emulator.iam.authorize(role, "s3:PutObject", f"{raw}/data/1.json").allowed


def test_firehose_role_trust_needs_the_external_id(emulator, stack):
    role = stack["roles"]["FirehoseRole"]
    # Firehose passes the account id as sts:ExternalId, a key only the caller can supply.
    assert emulator.iam.can_assume(
        role, "firehose.amazonaws.com", {"sts:ExternalId": ACCOUNT}
    ).allowed
    decision = emulator.iam.can_assume(role, "firehose.amazonaws.com", {"sts:ExternalId": "1"})
    assert not decision.allowed


def test_firehose_role_delivers_transforms_and_logs(emulator, stack):
    role = stack["roles"]["FirehoseRole"]
    outputs = stack["outputs"]
    for bucket in (outputs["RawBucketName"], outputs["ParsedBucketName"]):
        arn = f"arn:aws:s3:::{bucket}"
        assert emulator.iam.authorize(role, "s3:PutObject", f"{arn}/2026/01/01/x.gz").allowed
        assert emulator.iam.authorize(role, "s3:ListBucket", arn).allowed
        assert not emulator.iam.authorize(role, "s3:DeleteObject", f"{arn}/x").allowed
    function = outputs["FunctionArn"]
    assert emulator.iam.authorize(role, "lambda:InvokeFunction", function).allowed
    assert emulator.iam.authorize(role, "lambda:GetFunctionConfiguration", function).allowed
    group = outputs["FirehoseLogGroupName"]
    stream = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:DestinationDelivery"
    assert emulator.iam.authorize(role, "logs:PutLogEvents", stream).allowed


def test_transform_role_logs_to_its_own_group_only(emulator, stack):
    role = stack["roles"]["TransformFunctionRole"]
    assert emulator.iam.can_assume(role, "lambda.amazonaws.com").allowed
    group = stack["outputs"]["FunctionLogGroupName"]
    own = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:2026/01/01/[$LATEST]x"
    assert emulator.iam.authorize(role, "logs:PutLogEvents", own).allowed
    assert emulator.iam.authorize(role, "logs:CreateLogStream", own).allowed
    other = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/other:log-stream:x"
    assert not emulator.iam.authorize(role, "logs:PutLogEvents", other).allowed
    raw = f"arn:aws:s3:::{stack['outputs']['RawBucketName']}/k"
    assert not emulator.iam.authorize(role, "s3:PutObject", raw).allowed


def test_simulator_agrees_on_the_deployed_role(aws, stack):
    results = aws("iam").simulate_principal_policy(
        PolicySourceArn=stack["roles"]["TopicRuleFirehoseRole"],
        ActionNames=["firehose:PutRecordBatch", "s3:PutObject"],
        ResourceArns=[stack["outputs"]["DeliveryStreamArn"]],
    )["EvaluationResults"]
    assert [r["EvalDecision"] for r in results] == ["allowed", "implicitDeny"]
