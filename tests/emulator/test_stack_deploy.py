"""pipeline.stack, the notebooks' deploy helper, against the emulator: package, deploy (create,
then a no-op update, then a real update), tables of outputs and resources, failure reasons,
delete."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import stack as pipeline_stack
from pipeline.paths import TEMPLATE


@pytest.fixture(scope="module")
def bucket(aws):
    aws("s3").create_bucket(Bucket="stack-helper-artifacts")
    return "stack-helper-artifacts"


def test_package_template_uploads_code_by_content_hash(aws, bucket):
    # Given the project's template
    s3 = aws("s3")
    # When it is packaged twice
    first = pipeline_stack.package_template(TEMPLATE, bucket, s3)
    second = pipeline_stack.package_template(TEMPLATE, bucket, s3)
    # Then CodeUri points at one uploaded zip whose key is its SHA-256, the same both times
    code_uri = first["Resources"]["TransformFunction"]["Properties"]["CodeUri"]
    assert code_uri == second["Resources"]["TransformFunction"]["Properties"]["CodeUri"]
    key = code_uri.removeprefix(f"s3://{bucket}/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert key == f"packages/{hashlib.sha256(body).hexdigest()}.zip"
    # And nothing else in the template changed
    assert first["Transform"] == "AWS::Serverless-2016-10-31"
    assert first["Resources"]["TransformFunction"]["Properties"]["Handler"] == (
        "pipeline.handler.lambda_handler"
    )


def test_deploy_update_inspect_and_delete(aws, bucket, unique):
    # Given the packaged template
    cfn = aws("cloudformation")
    template = pipeline_stack.package_template(TEMPLATE, bucket, aws("s3"))
    name, env = f"helper-{unique}", f"h{unique[:7]}"
    parameters = {"Environment": env, "BufferIntervalSeconds": 1}
    # When it is deployed
    outputs = pipeline_stack.deploy_stack(cfn, name, template, parameters, delay=1)
    # Then the outputs come back as a dict
    assert outputs["ThingName"] == f"{name}-device"
    assert outputs["ParsedBucketName"] == f"iot-pipeline-{env}-parsed-123456789012-us-east-1"
    # And deploying the same again is a no-op that returns the same outputs
    assert pipeline_stack.deploy_stack(cfn, name, json.dumps(template), parameters, 1) == outputs
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    # And a changed parameter updates the stack
    pipeline_stack.deploy_stack(cfn, name, template, {**parameters, "BufferIntervalSeconds": 2}, 1)
    stream = aws("firehose").describe_delivery_stream(
        DeliveryStreamName=outputs["DeliveryStreamName"]
    )["DeliveryStreamDescription"]
    hints = stream["Destinations"][0]["ExtendedS3DestinationDescription"]["BufferingHints"]
    assert hints["IntervalInSeconds"] == 2
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    # (updated in place: the Firehose log group kept its log streams)
    streams = aws("logs").describe_log_streams(logGroupName=outputs["FirehoseLogGroupName"])
    assert len(streams["logStreams"]) == 2
    # And the tables list every output and resource
    table = pipeline_stack.stack_outputs(cfn, name)
    assert {row["OutputKey"] for row in table} == set(outputs)
    resources = pipeline_stack.stack_resources(cfn, name)
    assert len(resources) == 18
    statuses = {r["LogicalResourceId"]: r["ResourceStatus"] for r in resources}
    # (only what referenced the changed parameter was updated)
    assert {k for k, v in statuses.items() if v == "UPDATE_COMPLETE"} == {"DeliveryStream"}
    assert {v for k, v in statuses.items() if k != "DeliveryStream"} == {"CREATE_COMPLETE"}
    # When it is deleted
    pipeline_stack.delete_stack(cfn, name, delay=1)
    # Then it is gone, and so are its resources
    with pytest.raises(cfn.exceptions.ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=name)
    with pytest.raises(aws("iot").exceptions.ResourceNotFoundException):
        aws("iot").describe_thing(thingName=outputs["ThingName"])


def test_failed_deploy_raises_with_the_resource_reason(aws, unique):
    # Given a template with a resource type the emulator does not implement
    cfn = aws("cloudformation")
    template = {"Resources": {"Queue": {"Type": "AWS::AppSync::GraphQLApi"}}}
    # When it is deployed, then the error names the resource and why it failed
    with pytest.raises(pipeline_stack.StackError) as caught:
        pipeline_stack.deploy_stack(cfn, f"helper-bad-{unique}", template, {}, delay=1)
    assert (
        "Queue (AWS::AppSync::GraphQLApi): Resource type AWS::AppSync::GraphQLApi is not supported"
        in str(caught.value)
    )
    # And a second deploy replaces the rolled-back stack instead of failing on it
    good = {"Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}}}
    pipeline_stack.deploy_stack(cfn, f"helper-bad-{unique}", good, {}, delay=1)
    resources = pipeline_stack.stack_resources(cfn, f"helper-bad-{unique}")
    assert [r["ResourceType"] for r in resources] == ["AWS::Logs::LogGroup"]
    pipeline_stack.delete_stack(cfn, f"helper-bad-{unique}", delay=1)
