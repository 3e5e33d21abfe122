"""Rule actions into SQS, SNS, DynamoDB, Kinesis, Step Functions and CloudWatch, through the
real endpoint: rules made with boto3, messages published with iot-data Publish, results read
back with boto3 from each target service."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import ClientError
from support.rules import action_run, create_rule, kinesis_records, message

from emulator.rules.service_actions import PERMISSIONS


def _publish(aws, rules, topic, payload):
    aws("iot-data").publish(topic=topic, qos=1, payload=json.dumps(payload).encode())
    assert rules.drain(10)


def _queue(aws, name):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs, url


def _bodies(sqs, url):
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


# SQS -----------------------------------------------------------------------------------------
def test_sqs_action_sends_the_output_to_a_templated_queue_url(rules, aws, unique, role_arn):
    sqs, url = _queue(aws, f"rules-sqs-{unique}")
    base = url.rsplit("/", 1)[0]
    create_rule(
        aws("iot"),
        f"sqs_{unique}",
        f"SELECT temp, topic(2) AS device FROM 'sqs/+/{unique}'",
        [{"sqs": {"queueUrl": base + "/rules-sqs-${topic(3)}", "roleArn": role_arn}}],
    )
    _publish(aws, rules, f"sqs/d1/{unique}", {"temp": 20, "x": 1})
    assert [json.loads(b) for b in _bodies(sqs, url)] == [{"temp": 20, "device": "d1"}]


def test_sqs_action_use_base64_encodes_the_body(rules, aws, unique, role_arn):
    sqs, url = _queue(aws, f"rules-sqs64-{unique}")
    create_rule(
        aws("iot"),
        f"sqs64_{unique}",
        f"SELECT * FROM 'sqs64/{unique}'",
        [{"sqs": {"queueUrl": url, "roleArn": role_arn, "useBase64": True}}],
    )
    _publish(aws, rules, f"sqs64/{unique}", {"v": 1})
    (body,) = _bodies(sqs, url)
    assert json.loads(base64.b64decode(body)) == {"v": 1}


def test_sqs_failure_reaches_the_error_action_with_aws_fields(rules, aws, unique, role_arn):
    errors, errors_url = _queue(aws, f"rules-err-{unique}")
    _, url = _queue(aws, f"rules-gone-{unique}")
    aws("sqs").delete_queue(QueueUrl=url)
    create_rule(
        aws("iot"),
        f"sqserr_{unique}",
        f"SELECT * FROM 'sqserr/{unique}'",
        [{"sqs": {"queueUrl": url, "roleArn": role_arn}}],
        error_action={"sqs": {"queueUrl": errors_url, "roleArn": role_arn}},
    )
    _publish(aws, rules, f"sqserr/{unique}", {"v": 2})
    (body,) = _bodies(errors, errors_url)
    document = json.loads(body)
    assert document["ruleName"] == f"sqserr_{unique}"
    assert json.loads(base64.b64decode(document["base64OriginalPayload"])) == {"v": 2}
    (failure,) = document["failures"]
    assert failure["failedAction"] == "SqsAction"
    assert failure["failedResource"] == url
    assert "NonExistentQueue" in failure["errorMessage"]


# SNS -----------------------------------------------------------------------------------------
def test_sns_action_publishes_to_the_topic_and_its_subscribers(rules, aws, unique, role_arn):
    sns = aws("sns")
    topic = sns.create_topic(Name=f"rules-sns-{unique}")["TopicArn"]
    sqs, url = _queue(aws, f"rules-snsq-{unique}")
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    create_rule(
        aws("iot"),
        f"sns_{unique}",
        f"SELECT * FROM 'sns/{unique}'",
        [{"sns": {"targetArn": topic, "roleArn": role_arn, "messageFormat": "RAW"}}],
    )
    _publish(aws, rules, f"sns/{unique}", {"alert": "hot"})
    assert [json.loads(b) for b in _bodies(sqs, url)] == [{"alert": "hot"}]


# DynamoDB ------------------------------------------------------------------------------------
def _table(aws, name, hash_key, range_key=None, range_type="N"):
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": range_type})
    ddb = aws("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def test_dynamodb_action_writes_keys_from_templates_and_the_payload_field(
    rules, aws, unique, role_arn
):
    table = f"rules-ddb-{unique}"
    ddb = _table(aws, table, "device", "ts")
    create_rule(
        aws("iot"),
        f"ddb_{unique}",
        f"SELECT temp, unit FROM 'ddb/+/{unique}'",
        [
            {
                "dynamoDB": {
                    "tableName": table,
                    "roleArn": role_arn,
                    "hashKeyField": "device",
                    "hashKeyValue": "${topic(2)}",
                    "hashKeyType": "STRING",
                    "rangeKeyField": "ts",
                    "rangeKeyValue": "${seq}",
                    "rangeKeyType": "NUMBER",
                    "payloadField": "data",
                }
            }
        ],
    )
    _publish(aws, rules, f"ddb/pump-1/{unique}", {"temp": 21.5, "unit": "C", "seq": 7})
    item = ddb.get_item(TableName=table, Key={"device": {"S": "pump-1"}, "ts": {"N": "7"}})
    # the SELECT's output is written as a map in payloadField
    assert item["Item"]["data"] == {"M": {"temp": {"N": "21.5"}, "unit": {"S": "C"}}}


def test_dynamodb_action_delete_operation_from_a_template(rules, aws, unique, role_arn):
    table = f"rules-ddbdel-{unique}"
    ddb = _table(aws, table, "id")
    ddb.put_item(TableName=table, Item={"id": {"S": "a"}, "payload": {"S": "old"}})
    create_rule(
        aws("iot"),
        f"ddbdel_{unique}",
        f"SELECT * FROM 'ddbdel/{unique}'",
        [
            {
                "dynamoDB": {
                    "tableName": table,
                    "roleArn": role_arn,
                    "hashKeyField": "id",
                    "hashKeyValue": "${id}",
                    "operation": "${op}",
                }
            }
        ],
    )
    _publish(aws, rules, f"ddbdel/{unique}", {"id": "a", "op": "DELETE"})
    assert "Item" not in ddb.get_item(TableName=table, Key={"id": {"S": "a"}})


def test_dynamodb_v2_action_writes_each_attribute_as_a_column(rules, aws, unique, role_arn):
    table = f"rules-ddb2-{unique}"
    ddb = _table(aws, table, "device")
    create_rule(
        aws("iot"),
        f"ddb2_{unique}",
        f"SELECT topic(2) AS device, temp, tags FROM 'ddb2/+/{unique}'",
        [{"dynamoDBv2": {"putItem": {"tableName": table}, "roleArn": role_arn}}],
    )
    _publish(aws, rules, f"ddb2/fan-3/{unique}", {"temp": 19, "tags": ["a", "b"]})
    item = ddb.get_item(TableName=table, Key={"device": {"S": "fan-3"}})["Item"]
    assert item == {
        "device": {"S": "fan-3"},
        "temp": {"N": "19"},
        "tags": {"L": [{"S": "a"}, {"S": "b"}]},
    }


def test_dynamodb_v2_missing_key_goes_to_the_error_action(rules, aws, unique, role_arn):
    table = f"rules-ddb2e-{unique}"
    _table(aws, table, "device")
    errors, errors_url = _queue(aws, f"rules-ddb2e-{unique}")
    create_rule(
        aws("iot"),
        f"ddb2e_{unique}",
        f"SELECT temp FROM 'ddb2e/{unique}'",
        [{"dynamoDBv2": {"putItem": {"tableName": table}, "roleArn": role_arn}}],
        error_action={"sqs": {"queueUrl": errors_url, "roleArn": role_arn}},
    )
    _publish(aws, rules, f"ddb2e/{unique}", {"temp": 1})
    (failure,) = json.loads(_bodies(errors, errors_url)[0])["failures"]
    assert failure["failedAction"] == "DynamoDBv2Action"
    assert failure["failedResource"] == table
    assert "ValidationException" in failure["errorMessage"]


# Kinesis -------------------------------------------------------------------------------------
def test_kinesis_action_puts_a_record_with_the_templated_partition_key(
    rules, aws, unique, role_arn
):
    kinesis = aws("kinesis")
    stream = f"rules-kin-{unique}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    create_rule(
        aws("iot"),
        f"kin_{unique}",
        f"SELECT * FROM 'kin/+/{unique}'",
        [{"kinesis": {"streamName": stream, "partitionKey": "${topic(2)}", "roleArn": role_arn}}],
    )
    _publish(aws, rules, f"kin/dev-9/{unique}", {"n": 5})
    (record,) = kinesis_records(kinesis, stream)
    assert record["PartitionKey"] == "dev-9"
    assert json.loads(record["Data"]) == {"n": 5}


# Step Functions ------------------------------------------------------------------------------
def test_step_functions_action_starts_an_execution_with_the_prefix(rules, aws, unique, role_arn):
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"rules-sm-{unique}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=role_arn,
    )["stateMachineArn"]
    create_rule(
        aws("iot"),
        f"sfn_{unique}",
        f"SELECT * FROM 'sfn/{unique}'",
        [
            {
                "stepFunctions": {
                    "stateMachineName": f"rules-sm-{unique}",
                    "executionNamePrefix": "${device}-",
                    "roleArn": role_arn,
                }
            }
        ],
    )
    _publish(aws, rules, f"sfn/{unique}", {"device": "d4"})
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert execution["name"].startswith("d4-")
    assert len(execution["name"]) == len("d4-") + 36
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"device": "d4"}


# CloudWatch ----------------------------------------------------------------------------------
def test_cloudwatch_metric_action_puts_a_datum_from_templates(rules, aws, unique, role_arn):
    namespace = f"rules/{unique}"
    create_rule(
        aws("iot"),
        f"cwm_{unique}",
        f"SELECT * FROM 'cwm/{unique}'",
        [
            {
                "cloudwatchMetric": {
                    "metricNamespace": namespace,
                    "metricName": "${name}",
                    "metricValue": "${reading * 2}",
                    "metricUnit": "Count",
                    "metricTimestamp": "${ts}",
                    "roleArn": role_arn,
                }
            }
        ],
    )
    _publish(aws, rules, f"cwm/{unique}", {"name": "pressure", "reading": 21, "ts": 1_700_000_000})
    cloudwatch = aws("cloudwatch")
    (metric,) = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert metric["MetricName"] == "pressure"
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="pressure",
        StartTime=1_699_999_000,
        EndTime=1_700_001_000,
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [d["Sum"] for d in stats] == [42.0]


def test_cloudwatch_alarm_action_sets_the_templated_state(rules, aws, unique, role_arn):
    cloudwatch = aws("cloudwatch")
    alarm = f"rules-alarm-{unique}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="m",
        Namespace="n",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    create_rule(
        aws("iot"),
        f"cwa_{unique}",
        f"SELECT * FROM 'cwa/{unique}'",
        [
            {
                "cloudwatchAlarm": {
                    "alarmName": alarm,
                    "stateValue": "${state}",
                    "stateReason": "device says ${reason}",
                    "roleArn": role_arn,
                }
            }
        ],
    )
    _publish(aws, rules, f"cwa/{unique}", {"state": "ALARM", "reason": "overheat"})
    (described,) = cloudwatch.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert described["StateValue"] == "ALARM"
    assert described["StateReason"] == "device says overheat"


# CreateTopicRule validation ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "words"),
    [
        (
            {
                "dynamoDB": {
                    "tableName": "t",
                    "hashKeyField": "k",
                    "hashKeyValue": "v",
                    "hashKeyType": "TEXT",
                }
            },
            "hashKeyType",
        ),
        ({"dynamoDBv2": {"putItem": {"tableName": ""}}}, "putItem.tableName"),
        (
            {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "messageFormat": "XML"}},
            "messageFormat",
        ),
        (
            {"cloudwatchAlarm": {"alarmName": "a", "stateReason": "r", "stateValue": "RED"}},
            "stateValue",
        ),
        ({"kinesis": {"streamName": "s", "partitionKey": "${topic(}"}}, "substitution template"),
        ({"iotEvents": {"inputName": "i"}}, "'iotEvents' is not supported"),
    ],
)
def test_create_topic_rule_refuses_what_the_action_cannot_run(
    rules, aws, unique, role_arn, action, words
):
    ((kind, params),) = action.items()
    with pytest.raises(ClientError) as caught:
        create_rule(
            aws("iot"),
            f"bad_{unique}",
            "SELECT * FROM 'a/b'",
            [{kind: {**params, "roleArn": role_arn}}],
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert words in error["Message"]


# PERMISSIONS (the pairs IAM authorisation of actions checks) ---------------------------------
@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        (
            "sqs",
            {"queueUrl": "https://sqs.us-east-2.amazonaws.com/111122223333/q-${dev}"},
            [("sqs:SendMessage", "arn:aws:sqs:us-east-2:111122223333:q-d1")],
        ),
        (
            "dynamoDBv2",
            {"putItem": {"tableName": "${t}"}},
            [("dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/tbl")],
        ),
        (
            "dynamoDB",
            {"tableName": "x", "operation": "UPDATE"},
            [("dynamodb:UpdateItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/x")],
        ),
        (
            "kinesis",
            {"streamName": "s-${dev}"},
            [("kinesis:PutRecord", "arn:aws:kinesis:eu-west-1:123456789012:stream/s-d1")],
        ),
        (
            "stepFunctions",
            {"stateMachineName": "m"},
            [("states:StartExecution", "arn:aws:states:eu-west-1:123456789012:stateMachine:m")],
        ),
        ("cloudwatchMetric", {}, [("cloudwatch:PutMetricData", "*")]),
        (
            "cloudwatchAlarm",
            {"alarmName": "al"},
            [("cloudwatch:SetAlarmState", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:al")],
        ),
        (
            "sns",
            {"targetArn": "arn:aws:sns:eu-west-1:123456789012:t"},
            [("sns:Publish", "arn:aws:sns:eu-west-1:123456789012:t")],
        ),
    ],
)
def test_permissions_name_the_iam_action_and_rendered_resource(kind, params, expected):
    sent = message("a/b", b'{"t": "tbl", "dev": "d1"}', "123456789012", "eu-west-1")
    assert PERMISSIONS[kind](action_run(kind, params, sent)) == expected
