"""Mixed stacks: resource types the emulator creates itself (S3 buckets, logs, ...) next to
types moto's own models create (SQS, SNS, DynamoDB, Kinesis), plus AWS::S3::BucketPolicy and
AWS::SNS::Subscription, which moto lacks and which S3 and SNS store through their APIs."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, WaiterError
from support.templates import resource

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _policy(bucket_ref: dict) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [
                    {"Fn::Sub": ["arn:aws:s3:::${B}", {"B": bucket_ref}]},
                    {"Fn::Sub": ["arn:aws:s3:::${B}/*", {"B": bucket_ref}]},
                ],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def _mixed_template(unique: str) -> dict:
    return {
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": f"cfn-mixed-{unique}"},
            },
            "BucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": _policy({"Ref": "Bucket"}),
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"q-{unique}"}},
            "KeptQueue": {
                "Type": "AWS::SQS::Queue",
                "DeletionPolicy": "Retain",
                "Properties": {"QueueName": f"kept-{unique}"},
            },
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"t-{unique}"}},
            "Subscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "Topic"},
                    "Protocol": "sqs",
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "RawMessageDelivery": "true",
                },
            },
            "Table": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": f"latest-{unique}",
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "device", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "device", "KeyType": "HASH"}],
                },
            },
            "Stream": {
                "Type": "AWS::Kinesis::Stream",
                "Properties": {"Name": f"s-{unique}", "ShardCount": 1},
            },
            # One of ours that uses a moto resource's attribute: cross-model references.
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": {"Fn::Sub": "/mixed/${Table}"}},
            },
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "Queue"}},
            "TableArn": {"Value": {"Fn::GetAtt": ["Table", "Arn"]}},
            "StreamArn": {"Value": {"Fn::GetAtt": ["Stream", "Arn"]}},
            "BucketArn": {"Value": {"Fn::GetAtt": ["Bucket", "Arn"]}},
            "TopicArn": {"Value": {"Ref": "Topic"}},
        },
    }


def test_mixed_stack_creates_resolves_and_deletes_both_kinds(aws, unique, stack_events):
    cfn, s3, sqs, sns = aws("cloudformation"), aws("s3"), aws("sqs"), aws("sns")
    ddb, kinesis, logs = aws("dynamodb"), aws("kinesis"), aws("logs")
    name = f"mixed-{unique}"
    template = _mixed_template(unique)
    # When a stack with the emulator's types and moto's types is created
    stack_id = cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))["StackId"]
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    # Then Outputs resolve across both kinds
    assert outputs["QueueUrl"].endswith(f"/q-{unique}")
    assert outputs["TableArn"].endswith(f":table/latest-{unique}")
    assert outputs["StreamArn"].endswith(f":stream/s-{unique}")
    assert outputs["BucketArn"] == f"arn:aws:s3:::cfn-mixed-{unique}"
    # the bucket policy is S3's stored policy, with the Refs resolved
    stored = json.loads(s3.get_bucket_policy(Bucket=f"cfn-mixed-{unique}")["Policy"])
    assert stored["Statement"][0]["Resource"] == [
        f"arn:aws:s3:::cfn-mixed-{unique}",
        f"arn:aws:s3:::cfn-mixed-{unique}/*",
    ]
    # our log group saw the table's Ref (the table name)
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/mixed/latest-{unique}")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [f"/mixed/latest-{unique}"]
    # the SNS subscription delivers to the queue (raw delivery)
    sns.publish(TopicArn=outputs["TopicArn"], Message='{"t": 21.5}')
    received = sqs.receive_message(QueueUrl=outputs["QueueUrl"], WaitTimeSeconds=2)
    assert [m["Body"] for m in received["Messages"]] == ['{"t": 21.5}']
    assert ddb.describe_table(TableName=f"latest-{unique}")["Table"]["TableStatus"] == "ACTIVE"
    assert kinesis.describe_stream_summary(StreamName=f"s-{unique}")
    # creation order: the policy after its bucket, the subscription after topic and queue
    events = stack_events(name)
    done = [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "CREATE_COMPLETE"]
    assert done.index("Bucket") < done.index("BucketPolicy")
    assert done.index("Queue") < done.index("Subscription") > done.index("Topic")
    listed = {
        r["LogicalResourceId"]: r["ResourceType"]
        for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    }
    assert listed["Table"] == "AWS::DynamoDB::Table"
    assert listed["BucketPolicy"] == "AWS::S3::BucketPolicy"

    # When the stack is deleted
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)
    # Then both kinds are gone, in reverse order, and the retained queue stays
    events = stack_events(stack_id)
    deleted = [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "DELETE_COMPLETE"]
    assert deleted.index("BucketPolicy") < deleted.index("Bucket")
    assert deleted.index("Subscription") < deleted.index("Queue")
    assert ("KeptQueue", "DELETE_SKIPPED") in [
        (e["LogicalResourceId"], e["ResourceStatus"]) for e in events
    ]
    assert sqs.get_queue_url(QueueName=f"kept-{unique}")["QueueUrl"]
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=f"q-{unique}")
    with pytest.raises(ClientError):
        ddb.describe_table(TableName=f"latest-{unique}")
    with pytest.raises(ClientError):
        kinesis.describe_stream_summary(StreamName=f"s-{unique}")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=f"cfn-mixed-{unique}")
    assert f"t-{unique}" not in str(sns.list_topics()["Topics"])
    assert sns.list_subscriptions()["Subscriptions"] == [] or all(
        f"t-{unique}" not in s["TopicArn"] for s in sns.list_subscriptions()["Subscriptions"]
    )


def test_failure_in_ours_rolls_back_moto_resources(aws, unique, stack_events):
    # Given a moto queue, then one of our log groups (depending on it) that Logs refuses
    cfn, sqs = aws("cloudformation"), aws("sqs")
    name = f"mixed-fail-{unique}"
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"rb-{unique}"}},
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "DependsOn": "Queue",
                "Properties": {"RetentionInDays": 13},
            },
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    # Then the stack is rolled back and moto's queue was deleted again
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "ROLLBACK_COMPLETE"
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in stack_events(name)]
    assert ("Queue", "DELETE_COMPLETE") in statuses
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=f"rb-{unique}")


def test_bucket_policy_update_and_bad_policy(aws, unique, stack_events):
    # Given a stack with a bucket and its policy
    cfn, s3 = aws("cloudformation"), aws("s3")
    name = f"policy-{unique}"
    bucket = f"cfn-pol-{unique}"
    template = {
        "Resources": {
            "Bucket": resource("AWS::S3::Bucket", {"BucketName": bucket}),
            "Policy": resource(
                "AWS::S3::BucketPolicy",
                {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": _policy(bucket)},
            ),
        }
    }
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    # When the policy document changes
    template["Resources"]["Policy"]["Properties"]["PolicyDocument"]["Statement"][0]["Sid"] = "V2"
    cfn.update_stack(StackName=name, TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig=WAIT)
    # Then S3 holds the new document
    stored = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert stored["Statement"][0]["Sid"] == "V2"
    # And removing the policy resource from the template removes the bucket's policy
    del template["Resources"]["Policy"]
    cfn.update_stack(StackName=name, TemplateBody=json.dumps(template))
    cfn.get_waiter("stack_update_complete").wait(StackName=name, WaiterConfig=WAIT)
    with pytest.raises(ClientError) as raised:
        s3.get_bucket_policy(Bucket=bucket)
    assert raised.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)
