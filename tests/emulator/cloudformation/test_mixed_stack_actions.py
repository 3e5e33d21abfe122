"""A stack with SQS, SNS (+ subscription), DynamoDB, Kinesis, an S3 bucket policy and a topic
rule with an action into each: it deploys, one published message arrives in every target, and
deleting the stack removes the rule with the rest."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from iam_roles import service_trust
from support.rules import kinesis_records
from test_moto_resource_types import WAIT, _mixed_template

RULE_TRUST = service_trust("iot.amazonaws.com")


def _with_rule(unique: str) -> dict:
    template = _mixed_template(unique)
    role = {"Fn::GetAtt": ["RuleRole", "Arn"]}
    template["Resources"].update(
        {
            "RuleRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": RULE_TRUST,
                    "Policies": [
                        {
                            "PolicyName": "targets",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": [
                                            "sqs:SendMessage",
                                            "sns:Publish",
                                            "dynamodb:PutItem",
                                            "kinesis:PutRecord",
                                            "s3:PutObject",
                                        ],
                                        "Resource": "*",
                                    }
                                ],
                            },
                        }
                    ],
                },
            },
            "Rule": {
                "Type": "AWS::IoT::TopicRule",
                "Properties": {
                    "TopicRulePayload": {
                        "Sql": f"SELECT topic(2) AS device, temp FROM 'mixed/+/{unique}'",
                        "Actions": [
                            {"Sqs": {"QueueUrl": {"Ref": "Queue"}, "RoleArn": role}},
                            {
                                "Sns": {
                                    "TargetArn": {"Ref": "Topic"},
                                    "MessageFormat": "RAW",
                                    "RoleArn": role,
                                }
                            },
                            {
                                "DynamoDBv2": {
                                    "PutItem": {"TableName": {"Ref": "Table"}},
                                    "RoleArn": role,
                                }
                            },
                            {
                                "Kinesis": {
                                    "StreamName": {"Ref": "Stream"},
                                    "PartitionKey": "${topic(2)}",
                                    "RoleArn": role,
                                }
                            },
                            {
                                "S3": {
                                    "BucketName": {"Ref": "Bucket"},
                                    "Key": "${topic(2)}.json",
                                    "RoleArn": role,
                                }
                            },
                        ],
                    }
                },
            },
        }
    )
    template["Outputs"]["RuleName"] = {"Value": {"Ref": "Rule"}}
    return template


def test_stack_with_rule_actions_into_each_service_delivers_and_deletes(emulator, aws, unique):
    cfn, sqs, ddb, kinesis, s3 = (
        aws("cloudformation"),
        aws("sqs"),
        aws("dynamodb"),
        aws("kinesis"),
        aws("s3"),
    )
    name = f"mixed-rule-{unique}"
    # Given the stack is deployed
    cfn.create_stack(
        StackName=name,
        TemplateBody=json.dumps(_with_rule(unique)),
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig=WAIT)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    }
    rule = aws("iot").get_topic_rule(ruleName=outputs["RuleName"])["rule"]
    assert sorted(next(iter(a)) for a in rule["actions"]) == [
        "dynamoDBv2",
        "kinesis",
        "s3",
        "sns",
        "sqs",
    ]

    # When a device publishes one reading
    aws("iot-data").publish(
        topic=f"mixed/pump-2/{unique}", qos=1, payload=json.dumps({"temp": 30, "x": 0})
    )
    assert emulator.rules.drain(10)

    # Then it arrives in every target: the queue directly and through the SNS subscription
    expected = {"device": "pump-2", "temp": 30}
    bodies = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=10)[
            "Messages"
        ]
    ]
    assert bodies == [expected, expected]
    item = ddb.get_item(TableName=f"latest-{unique}", Key={"device": {"S": "pump-2"}})["Item"]
    assert item == {"device": {"S": "pump-2"}, "temp": {"N": "30"}}
    (record,) = kinesis_records(kinesis, f"s-{unique}")
    assert (record["PartitionKey"], json.loads(record["Data"])) == ("pump-2", expected)
    body = s3.get_object(Bucket=f"cfn-mixed-{unique}", Key="pump-2.json")["Body"].read()
    assert json.loads(body) == expected
    assert emulator.rules.rule_failures(outputs["RuleName"]) == []

    # When the stack is deleted (the bucket emptied first, as CloudFormation requires)
    s3.delete_object(Bucket=f"cfn-mixed-{unique}", Key="pump-2.json")
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig=WAIT)
    # Then the rule is gone with the targets
    with pytest.raises(ClientError):
        aws("iot").get_topic_rule(ruleName=outputs["RuleName"])
    with pytest.raises(ClientError):
        ddb.describe_table(TableName=f"latest-{unique}")
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName=f"q-{unique}")
