"""The project's template.yaml, packaged and deployed through boto3 against the emulator: every
resource exists through its own service's API, with the template's configuration."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

BUFFER_SECONDS = 1


@pytest.fixture(scope="module")
def deployed(aws, packaged_body):
    """One deployment of template.yaml for this module (CreateStack, as boto3 users do)."""
    import uuid

    suffix = uuid.uuid4().hex[:6]
    stack_name = f"pipeline-{suffix}"
    environment = f"t{suffix}"
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=packaged_body,
        Parameters=[
            {"ParameterKey": "Environment", "ParameterValue": environment},
            {"ParameterKey": "BufferIntervalSeconds", "ParameterValue": str(BUFFER_SECONDS)},
        ],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    yield {"name": stack_name, "env": environment, "stack": stack, "outputs": outputs}
    cfn.delete_stack(StackName=stack_name)


def test_stack_is_create_complete_with_every_resource(aws, deployed):
    # Given the deployed stack
    cfn = aws("cloudformation")
    # When its resources are listed
    summaries = cfn.list_stack_resources(StackName=deployed["name"])["StackResourceSummaries"]
    # Then the stack and each resource of the translated template completed
    assert deployed["stack"]["StackStatus"] == "CREATE_COMPLETE"
    types = sorted(r["ResourceType"] for r in summaries)
    assert types == sorted(
        ["AWS::IoT::Thing", "AWS::IoT::Policy"]
        + ["AWS::IoT::TopicRule"] * 2  # TopicRule and NotJsonTopicRule
        + ["AWS::IAM::Role"] * 4
        + ["AWS::KinesisFirehose::DeliveryStream", "AWS::Lambda::Function"]
        + ["AWS::Logs::LogGroup"] * 2
        + ["AWS::Logs::LogStream"] * 2
        + ["AWS::S3::Bucket"] * 2
        + ["AWS::Glue::Database", "AWS::Glue::Table"]
    )
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in summaries)
    assert all(r["PhysicalResourceId"] for r in summaries)


def test_outputs_are_resolved(deployed):
    # Given the stack's outputs
    outputs, name, env = deployed["outputs"], deployed["name"], deployed["env"]
    # Then each one names the created resource, with nothing left unresolved
    assert outputs["ThingName"] == f"{name}-device"
    assert outputs["PolicyName"] == f"{name}-device-policy"
    assert outputs["TopicName"] == "iot-test-topic"
    assert re.fullmatch(r"[A-Za-z0-9_]+", outputs["TopicRuleName"])
    assert outputs["TopicRuleArn"].endswith(f":rule/{outputs['TopicRuleName']}")
    assert outputs["DeliveryStreamName"] == f"{name}-stream"
    assert outputs["DeliveryStreamArn"].endswith(f":deliverystream/{name}-stream")
    assert outputs["RawBucketName"] == f"iot-pipeline-{env}-raw-123456789012-us-east-1"
    assert outputs["ParsedBucketName"] == f"iot-pipeline-{env}-parsed-123456789012-us-east-1"
    assert outputs["FunctionName"] == f"{name}-transform"
    assert outputs["FunctionArn"].endswith(f":function:{name}-transform")
    assert outputs["FunctionLogGroupName"] == f"/aws/lambda/{name}-transform"
    assert outputs["FirehoseLogGroupName"] == f"/aws/kinesisfirehose/{name}-stream"
    assert not any("${" in v or "Fn::" in v for v in outputs.values())


def test_iot_thing_policy_and_rule(aws, deployed):
    # Given the stack's IoT names
    iot, outputs = aws("iot"), deployed["outputs"]
    # When IoT describes them
    thing = iot.describe_thing(thingName=outputs["ThingName"])
    policy = iot.get_policy(policyName=outputs["PolicyName"])
    rule = iot.get_topic_rule(ruleName=outputs["TopicRuleName"])
    # Then the policy document is the template's, with its ARNs resolved
    assert thing["thingName"] == outputs["ThingName"]
    document = json.loads(policy["policyDocument"])
    connect = next(s for s in document["Statement"] if s["Sid"] == "ConnectAsTheThing")
    assert connect["Resource"] == (
        f"arn:aws:iot:us-east-1:123456789012:client/{outputs['ThingName']}"
    )
    assert [s["Effect"] for s in document["Statement"]].count("Deny") == 1
    # And the rule reads the topic and feeds the delivery stream, with its error action
    assert rule["ruleArn"] == outputs["TopicRuleArn"]
    payload = rule["rule"]
    assert payload["sql"] == "SELECT topic() AS topic, * FROM 'iot-test-topic/+'"
    assert payload["awsIotSqlVersion"] == "2016-03-23"
    assert payload["ruleDisabled"] is False
    firehose = payload["actions"][0]["firehose"]
    assert firehose["deliveryStreamName"] == outputs["DeliveryStreamName"]
    assert firehose["separator"] == "\n"
    assert firehose["roleArn"].startswith("arn:aws:iam::123456789012:role/")
    s3_error = payload["errorAction"]["s3"]
    assert s3_error["bucketName"] == outputs["RawBucketName"]
    assert s3_error["key"] == "errors/iot-rule/${topic()}/${timestamp()}-${newuuid()}.json"


def test_delivery_stream_has_processor_backup_and_buffering(aws, deployed):
    # Given the stack's delivery stream
    outputs = deployed["outputs"]
    # When Firehose describes it
    description = aws("firehose").describe_delivery_stream(
        DeliveryStreamName=outputs["DeliveryStreamName"]
    )["DeliveryStreamDescription"]
    # Then the extended S3 destination is the template's, with the parameter values applied
    assert description["DeliveryStreamType"] == "DirectPut"
    destination = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    env = deployed["env"]
    assert destination["BucketARN"] == f"arn:aws:s3:::{outputs['ParsedBucketName']}"
    assert destination["Prefix"] == (
        f"{env}/data/equipment_id=!{{partitionKeyFromLambda:equipment_id}}"
        "/dt=!{timestamp:yyyy-MM-dd}/"
    )
    assert destination["ErrorOutputPrefix"] == (
        f"{env}/errors/!{{firehose:error-output-type}}/!{{timestamp:yyyy/MM/dd/HH}}/"
    )
    assert destination["BufferingHints"] == {"IntervalInSeconds": BUFFER_SECONDS, "SizeInMBs": 64}
    # Parquet via the Glue table (record format conversion): the object is UNCOMPRESSED
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["SchemaConfiguration"]["TableName"] == deployed["outputs"]["ParsedTableName"]
    assert destination["DynamicPartitioningConfiguration"] == {"Enabled": True}
    assert destination["CloudWatchLoggingOptions"] == {
        "Enabled": True,
        "LogGroupName": outputs["FirehoseLogGroupName"],
        "LogStreamName": "DestinationDelivery",
    }
    processor = destination["ProcessingConfiguration"]["Processors"][0]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert destination["ProcessingConfiguration"]["Enabled"] is True
    assert processor["Type"] == "Lambda"
    assert parameters == {
        "LambdaArn": outputs["FunctionArn"],
        "NumberOfRetries": "3",
        "BufferSizeInMBs": "1",
        "BufferIntervalInSeconds": "60",
    }
    assert destination["S3BackupMode"] == "Enabled"
    backup = destination["S3BackupDescription"]
    assert backup["BucketARN"] == f"arn:aws:s3:::{outputs['RawBucketName']}"
    assert backup["Prefix"] == f"{env}/data/"
    assert backup["CompressionFormat"] == "GZIP"
    assert backup["BufferingHints"]["IntervalInSeconds"] == BUFFER_SECONDS
    assert backup["CloudWatchLoggingOptions"]["LogStreamName"] == "BackupDelivery"


def test_lambda_function_from_packaged_code(aws, deployed, packaged_template):
    # Given the stack's function and its declaration in the template
    outputs = deployed["outputs"]
    declared = packaged_template["Resources"]["TransformFunction"]["Properties"]
    # When Lambda describes it
    function = aws("lambda").get_function(FunctionName=outputs["FunctionName"])
    config = function["Configuration"]
    # Then it runs the project's handler from the packaged zip, with the template's settings
    assert config["Handler"] == "pipeline.handler.lambda_handler"
    assert config["Runtime"] == declared["Runtime"]
    assert config["Architectures"] == declared["Architectures"]
    assert config["Timeout"] == declared["Timeout"]
    assert config["MemorySize"] == declared["MemorySize"]
    assert config["Role"].split("/")[-1].startswith(f"{deployed['name']}-TransformFunctionRole-")
    assert config["CodeSize"] > 0
    assert function["Tags"].get("lambda:createdBy") == "SAM"
    # And the code is the package uploaded by package_template (same SHA-256)
    bucket, key = declared["CodeUri"].removeprefix("s3://").split("/", 1)
    body = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert config["CodeSha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_buckets_are_private_and_encrypted(aws, deployed):
    # Given both buckets
    s3 = aws("s3")
    for key in ("RawBucketName", "ParsedBucketName"):
        bucket = deployed["outputs"][key]
        # When S3 reports their configuration
        encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        # Then they are encrypted with S3-managed keys, private, with ACLs disabled
        rule = encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        assert rule["SSEAlgorithm"] == "AES256"
        assert block == {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
        assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]


def test_log_groups_have_retention_and_streams(aws, deployed):
    # Given the stack's log groups
    logs, outputs = aws("logs"), deployed["outputs"]
    for key in ("FunctionLogGroupName", "FirehoseLogGroupName"):
        # When CloudWatch Logs describes them
        groups = logs.describe_log_groups(logGroupNamePrefix=outputs[key])["logGroups"]
        # Then each exists with the template's retention
        assert [(g["logGroupName"], g["retentionInDays"]) for g in groups] == [(outputs[key], 14)]
    streams = logs.describe_log_streams(logGroupName=outputs["FirehoseLogGroupName"])
    assert sorted(s["logStreamName"] for s in streams["logStreams"]) == [
        "BackupDelivery",
        "DestinationDelivery",
    ]


def test_iam_roles_carry_their_inline_policies(aws, deployed):
    # Given the stack's roles
    iam, cfn = aws("iam"), aws("cloudformation")
    roles = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName=deployed["name"])["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::IAM::Role"
    }
    # When IAM lists their inline policies
    policies = {
        logical: iam.list_role_policies(RoleName=name)["PolicyNames"]
        for logical, name in roles.items()
    }
    # Then each role has the template's policy
    assert policies == {
        "TopicRuleFirehoseRole": ["put-records"],
        "TopicRuleErrorRole": ["put-error-objects"],
        "FirehoseRole": ["deliver"],
        "TransformFunctionRole": ["own-log-group"],
    }
    document = iam.get_role_policy(
        RoleName=roles["TopicRuleFirehoseRole"], PolicyName="put-records"
    )
    statement = document["PolicyDocument"]["Statement"][0]
    assert statement["Resource"] == deployed["outputs"]["DeliveryStreamArn"]
    trust = iam.get_role(RoleName=roles["FirehoseRole"])["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "firehose.amazonaws.com"}


def test_resource_events_are_in_dependency_order(aws, deployed, stack_events):
    # Given the stack's events
    events = stack_events(deployed["name"])
    # When the order of CREATE_COMPLETE is read
    completed = [
        e["LogicalResourceId"]
        for e in events
        if e["ResourceStatus"] == "CREATE_COMPLETE"
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
    ]
    # Then every resource completed after the resources it references
    assert completed.index("ParsedBucket") < completed.index("DeliveryStream")
    assert completed.index("TransformFunction") < completed.index("DeliveryStream")
    assert completed.index("DeliveryStream") < completed.index("TopicRule")
    assert completed.index("FirehoseLogGroup") < completed.index("FirehoseBackupLogStream")
    assert events[-1]["ResourceStatus"] == "CREATE_COMPLETE"
    assert events[-1]["ResourceType"] == "AWS::CloudFormation::Stack"


def test_get_template_has_original_and_processed_stages(aws, deployed):
    # Given the deployed stack
    cfn = aws("cloudformation")
    # When its template is read in both stages
    original = cfn.get_template(StackName=deployed["name"])
    processed = cfn.get_template(StackName=deployed["name"], TemplateStage="Processed")
    # Then "Original" (the default) is the SAM template as sent, "Processed" its expansion
    assert original["StagesAvailable"] == ["Original", "Processed"]
    sent = (
        json.loads(original["TemplateBody"])
        if isinstance(original["TemplateBody"], str)
        else original["TemplateBody"]
    )
    assert sent["Transform"] == "AWS::Serverless-2016-10-31"
    assert sent["Resources"]["TransformFunction"]["Type"] == "AWS::Serverless::Function"
    expanded = processed["TemplateBody"]
    expanded = json.loads(expanded) if isinstance(expanded, str) else expanded
    assert "Transform" not in expanded
    assert expanded["Resources"]["TransformFunction"]["Type"] == "AWS::Lambda::Function"


def test_validate_template_from_s3_url(aws, artifacts_bucket, packaged_body):
    # Given the packaged template uploaded to the local S3 (as `deploy --s3-bucket` does)
    s3, cfn = aws("s3"), aws("cloudformation")
    s3.put_object(Bucket=artifacts_bucket, Key="templates/validate.json", Body=packaged_body)
    url = f"{cfn.meta.endpoint_url}/{artifacts_bucket}/templates/validate.json"
    # When it is validated by URL
    answer = cfn.validate_template(TemplateURL=url)
    # Then CloudFormation reads it and lists its parameters, capabilities and transform
    defaults = {p["ParameterKey"]: p.get("DefaultValue") for p in answer["Parameters"]}
    assert defaults["Environment"] == "dev"
    assert defaults["BufferIntervalSeconds"] == "60"
    assert answer["Capabilities"] == ["CAPABILITY_IAM"]
    assert answer["CapabilitiesReason"] == (
        "The following resource(s) require capabilities: [AWS::IAM::Role]"
    )
    assert answer["DeclaredTransforms"] == ["AWS::Serverless-2016-10-31"]
    assert answer["Description"].startswith("iot-core-pipeline")


def test_describe_stack_resources_report_each_resource(aws, deployed):
    # Given the deployed stack
    cfn = aws("cloudformation")
    # When one resource is described, by logical id and by physical id
    detail = cfn.describe_stack_resource(StackName=deployed["name"], LogicalResourceId="TopicRule")
    by_physical = cfn.describe_stack_resources(
        PhysicalResourceId=deployed["outputs"]["DeliveryStreamName"]
    )["StackResources"]
    everything = cfn.describe_stack_resources(StackName=deployed["name"])["StackResources"]
    # Then each answer names the resource, its stack and its own status
    resource = detail["StackResourceDetail"]
    assert resource["PhysicalResourceId"] == deployed["outputs"]["TopicRuleName"]
    assert resource["ResourceStatus"] == "CREATE_COMPLETE"
    assert resource["StackName"] == deployed["name"]
    assert [r["LogicalResourceId"] for r in by_physical] == ["DeliveryStream"]
    assert len(everything) == 18
    assert resource["LastUpdatedTimestamp"].year > 2010  # not moto's fixed 2010-07-27
