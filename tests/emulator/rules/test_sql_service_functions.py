"""IoT SQL functions that call other services, end to end: resources made with boto3, a topic
rule whose SQL calls the function and writes its output to S3, a message published over MQTT
(paho, mutual TLS) or iot-data Publish, the object read back ("iot-sql-functions").

A call the role may not make (or a function the rule may not invoke) fails the evaluation: no
action runs, and the failure is recorded (and logged to AWSIotLogsV2 when logging is on).
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from iam_roles import ensure_lambda_role, ensure_role, lambda_trust
from support.lambdas import create_function
from support.packages import function_zip

ACCOUNT = "123456789012"
TRUST_IOT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"},
         "Action": "sts:AssumeRole"}
    ],
}  # fmt: skip
LAMBDA_SOURCE = """
import time


def double(event, context):
    time.sleep(event.get("sleep", 0))
    return {"doubled": event["n"] * 2, "seen": event}
"""


@pytest.fixture
def rule_to_s3(aws, unique, role_arn):
    """Factory: a rule `sql` (its name and topic from `tag`) writing its output to a new
    bucket's key `out`; returns (rule name, topic, read) where read() is the stored JSON or
    None when nothing was written."""
    s3 = aws("s3")

    def create(tag: str, sql: str, version: str = "2016-03-23", key: str = "out"):
        bucket = f"sqlfn-{tag}-{unique}".lower().replace("_", "-")
        s3.create_bucket(Bucket=bucket)
        name = f"sqlfn_{tag}_{unique}"
        topic = f"sqlfn/{tag}/{unique}"
        aws("iot").create_topic_rule(
            ruleName=name,
            topicRulePayload={
                "sql": sql.replace("$TOPIC", topic),
                "awsIotSqlVersion": version,
                "actions": [{"s3": {"bucketName": bucket, "key": key, "roleArn": role_arn}}],
            },
        )

        def read(object_key: str = key):
            try:
                body = s3.get_object(Bucket=bucket, Key=object_key)["Body"].read()
            except ClientError:
                return None
            return json.loads(body)

        return name, topic, read

    return create


@pytest.fixture
def iot_role(aws, unique):
    """Factory: a role IoT may assume, allowed `actions` on `resources` (nothing if empty)."""

    def create(tag: str, actions: list[str], resources: list[str], trust=TRUST_IOT) -> str:
        statement = {"Effect": "Allow", "Action": actions, "Resource": resources}
        policy = {"Version": "2012-10-17", "Statement": [statement]} if actions else None
        return ensure_role(aws("iam"), f"sqlfn-{tag}-{unique}", trust, policy)

    return create


def _publish(aws, rules, topic: str, document: dict) -> None:
    aws("iot-data").publish(topic=topic, qos=1, payload=json.dumps(document).encode())
    assert rules.drain(10)


def _sql_failure(rules, name: str) -> str:
    failures = [f for f in rules.rule_failures(name) if f.stage == "sql"]
    assert failures, f"no SQL evaluation failure recorded for {name}"
    return failures[-1].failures[0]["errorMessage"]


def _table(aws, name: str, sort_key: bool = False) -> str:
    schema = [{"AttributeName": "id", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "id", "AttributeType": "S"}]
    if sort_key:
        schema.append({"AttributeName": "n", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "n", "AttributeType": "N"})
    return aws("dynamodb").create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]


# get_dynamodb ---------------------------------------------------------------------------------
def test_get_dynamodb_enriches_a_message_a_device_publishes_over_mqtt(
    rules, aws, unique, device_client, rule_to_s3, iot_role
):
    # given a table of device locations and a role allowed dynamodb:GetItem on it
    table = f"devices-{unique}"
    table_arn = _table(aws, table)
    aws("dynamodb").put_item(
        TableName=table,
        Item={"id": {"S": "d1"}, "location": {"S": "lab"}, "floor": {"N": "2"}},
    )
    role = iot_role("ddb", ["dynamodb:GetItem"], [table_arn])
    # and the guide's example rule: the item's location added to the payload
    name, topic, read = rule_to_s3(
        "ddb",
        f"SELECT *, get_dynamodb('{table}', 'id', id, '{role}').location AS location FROM '$TOPIC'",
    )
    # when a device publishes over MQTT with QoS 1
    device = device_client(f"ddb-{unique}")
    info = device.publish(topic, json.dumps({"id": "d1", "t": 21.5}), qos=1)
    info.wait_for_publish(10)
    assert rules.drain(10)
    # then the stored output carries the item's attribute
    assert read() == {"id": "d1", "t": 21.5, "location": "lab"}


def test_get_dynamodb_with_a_sort_key_and_a_missing_item(rules, aws, unique, rule_to_s3, iot_role):
    # given a table with a composite key (id S, n N) and one item
    table = f"readings-{unique}"
    table_arn = _table(aws, table, sort_key=True)
    aws("dynamodb").put_item(
        TableName=table, Item={"id": {"S": "d1"}, "n": {"N": "7"}, "v": {"N": "1.5"}}
    )
    role = iot_role("ddbsort", ["dynamodb:GetItem"], [table_arn])
    name, topic, read = rule_to_s3(
        "ddbsort",
        f"SELECT get_dynamodb('{table}', 'id', id, 'n', n, '{role}') AS item FROM '$TOPIC'",
    )
    # when the first message names the item and the second one names none
    _publish(aws, rules, topic, {"id": "d1", "n": 7})
    assert read() == {"item": {"id": "d1", "n": 7, "v": 1.5}}
    _publish(aws, rules, topic, {"id": "d1", "n": 8})
    # then a missing item is Undefined: the field is left out
    assert read() == {}


def test_get_dynamodb_without_permission_runs_no_action(rules, aws, unique, rule_to_s3, iot_role):
    # given a role IoT may assume but without dynamodb:GetItem
    table = f"denied-{unique}"
    _table(aws, table)
    role = iot_role("ddbdeny", [], [])
    name, topic, read = rule_to_s3(
        "ddbdeny", f"SELECT get_dynamodb('{table}', 'id', id, '{role}') AS item FROM '$TOPIC'"
    )
    # when a message arrives
    _publish(aws, rules, topic, {"id": "d1"})
    # then the evaluation failed, naming the denied action, and the action did not run
    assert read() is None
    message = _sql_failure(rules, name)
    assert "not authorized to perform: dynamodb:GetItem" in message
    assert f"table/{table}" in message


# get_secret -----------------------------------------------------------------------------------
def test_get_secret_reads_string_json_and_binary_secrets(rules, aws, unique, rule_to_s3, iot_role):
    sm = aws("secretsmanager")
    arns = [
        sm.create_secret(Name=f"api-{unique}", SecretString=json.dumps({"API_KEY": "k-1"}))["ARN"],
        sm.create_secret(Name=f"plain-{unique}", SecretString="hunter2")["ARN"],
        sm.create_secret(Name=f"bin-{unique}", SecretBinary=b"\x00\x01")["ARN"],
    ]
    role = iot_role(
        "secret", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], arns
    )
    name, topic, read = rule_to_s3(
        "secret",
        f"SELECT get_secret('api-{unique}', 'SecretString', 'API_KEY', '{role}') AS key, "
        f"get_secret('api-{unique}', 'SecretString', '{role}') AS whole, "
        f"get_secret('plain-{unique}', 'SecretString', '{role}') AS plain, "
        f"get_secret('{arns[2]}', 'SecretBinary', '{role}') AS bin FROM '$TOPIC'",
    )
    _publish(aws, rules, topic, {})
    # "iot-sql-functions" get_secret(): a key's value, the whole JSON object, the string, and
    # a binary secret as base64
    assert read() == {"key": "k-1", "whole": {"API_KEY": "k-1"}, "plain": "hunter2", "bin": "AAE="}


def test_get_secret_with_a_role_iot_may_not_assume_fails(rules, aws, unique, rule_to_s3, iot_role):
    sm = aws("secretsmanager")
    arn = sm.create_secret(Name=f"s-{unique}", SecretString="x")["ARN"]
    role = iot_role(
        "notrust",
        ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        [arn],
        trust=lambda_trust(),
    )
    name, topic, read = rule_to_s3(
        "notrust", f"SELECT get_secret('s-{unique}', 'SecretString', '{role}') AS s FROM '$TOPIC'"
    )
    _publish(aws, rules, topic, {})
    assert read() is None
    assert "cannot assume the role" in _sql_failure(rules, name)


def test_get_secret_denied_by_the_secrets_resource_policy(rules, aws, unique, rule_to_s3, iot_role):
    # given a role allowed to read the secret, and the secret's own policy denying that role
    sm = aws("secretsmanager")
    arn = sm.create_secret(Name=f"locked-{unique}", SecretString="x")["ARN"]
    role = iot_role(
        "locked", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], [arn]
    )
    deny = {"Effect": "Deny", "Principal": {"AWS": role}, "Action": "secretsmanager:*",
            "Resource": "*"}  # fmt: skip
    sm.put_resource_policy(
        SecretId=arn, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [deny]})
    )
    name, topic, read = rule_to_s3(
        "locked", f"SELECT get_secret('{arn}', 'SecretString', '{role}') AS s FROM '$TOPIC'"
    )
    _publish(aws, rules, topic, {})
    assert read() is None
    assert "explicit deny in a resource-based policy" in _sql_failure(rules, name)


# get_thing_shadow -------------------------------------------------------------------------------
def test_get_thing_shadow_filters_on_the_classic_and_a_named_shadow(
    rules, aws, unique, rule_to_s3, iot_role
):
    thing = f"pump-{unique}"
    data = aws("iot-data")
    data.update_thing_shadow(
        thingName=thing, payload=json.dumps({"state": {"reported": {"alarm": "ON"}}})
    )
    data.update_thing_shadow(
        thingName=thing,
        shadowName="cfg",
        payload=json.dumps({"state": {"reported": {"mode": "eco"}}}),
    )
    role = iot_role(
        "shadow", ["iot:GetThingShadow"], [f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{thing}"]
    )
    # the guide's examples: a WHERE on the classic shadow, a named shadow's field selected
    name, topic, read = rule_to_s3(
        "shadow",
        f"SELECT get_thing_shadow(thing, 'cfg', '{role}').state.reported.mode AS mode, "
        f"get_thing_shadow(thing, 'none', '{role}') AS missing FROM '$TOPIC' "
        f"WHERE get_thing_shadow(thing, '{role}').state.reported.alarm = 'ON'",
    )
    _publish(aws, rules, topic, {"thing": thing})
    assert read() == {"mode": "eco"}  # a shadow that does not exist is Undefined
    # when the alarm is reported OFF, the WHERE is false: the next message writes nothing new
    data.update_thing_shadow(
        thingName=thing, payload=json.dumps({"state": {"reported": {"alarm": "OFF"}}})
    )
    aws("s3").delete_object(Bucket=f"sqlfn-shadow-{unique}", Key="out")
    _publish(aws, rules, topic, {"thing": thing})
    assert read() is None


# get_registry_data ------------------------------------------------------------------------------
def test_get_registry_data_describes_the_thing_and_lists_its_groups(
    rules, aws, unique, rule_to_s3, iot_role
):
    iot = aws("iot")
    thing = f"meter-{unique}"
    iot.create_thing(thingName=thing, attributePayload={"attributes": {"model": "m7"}})
    group = f"site-{unique}"
    iot.create_thing_group(thingGroupName=group)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
    thing_arn = f"arn:aws:iot:us-east-1:{ACCOUNT}:thing/{thing}"
    role = iot_role("registry", ["iot:DescribeThing", "iot:ListThingGroupsForThing"], [thing_arn])
    name, topic, read = rule_to_s3(
        "registry",
        f"SELECT get_registry_data('DescribeThing', thing, '{role}').attributes.model AS model, "
        f"get_registry_data('ListThingGroupsForThing', thing, '{role}').thingGroups[0].groupName "
        "AS site FROM '$TOPIC'",
    )
    _publish(aws, rules, topic, {"thing": thing})
    assert read() == {"model": "m7", "site": group}


def test_get_registry_data_of_an_unknown_thing_fails(rules, aws, unique, rule_to_s3, iot_role):
    role = iot_role("regmiss", ["iot:DescribeThing"], ["*"])
    name, topic, read = rule_to_s3(
        "regmiss",
        f"SELECT get_registry_data('DescribeThing', 'nope-{unique}', '{role}') AS t FROM '$TOPIC'",
    )
    _publish(aws, rules, topic, {})
    assert read() is None
    assert "ResourceNotFoundException" in _sql_failure(rules, name)


# aws_lambda -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def doubling_function(aws):
    """A real function in the emulator's Lambda runtime, shared by this module's tests and
    warmed by one Invoke so that a rule's call is not a cold start (the rules engine allows
    2000 ms)."""
    unique = uuid.uuid4().hex[:8]
    role = ensure_lambda_role(aws("iam"), f"sqlfn-fn-{unique}")
    code = function_zip({"app.py": LAMBDA_SOURCE})
    name = f"sqlfn-double-{unique}"
    arn = create_function(aws, role, name, code, "app.double", Timeout=10)["FunctionArn"]
    aws("lambda").invoke(FunctionName=arn, Payload=b'{"n": 0}')
    return arn


def _let_iot_invoke(aws, function_arn: str, rule_name: str) -> None:
    """The guide's `aws lambda add-permission --principal iot.amazonaws.com --source-arn`."""
    aws("lambda").add_permission(
        FunctionName=function_arn,
        StatementId=f"iot-{rule_name}",
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/{rule_name}",
        SourceAccount=ACCOUNT,
    )


def test_aws_lambda_calls_the_function_iot_may_invoke(
    rules, aws, unique, rule_to_s3, doubling_function
):
    # "iot-sql-functions" aws_lambda(): grant IoT lambda:InvokeFunction for the rule
    _let_iot_invoke(aws, doubling_function, f"sqlfn_lambda_{unique}")
    _, topic, read = rule_to_s3(
        "lambda",
        f"SELECT aws_lambda('{doubling_function}', *).doubled AS d, "
        f"aws_lambda('{doubling_function}', {{'n': n + 1}}).seen AS seen FROM '$TOPIC'",
    )
    _publish(aws, rules, topic, {"n": 21})
    assert read() == {"d": 42, "seen": {"n": 22}}


def test_aws_lambda_without_a_permission_for_iot_fails(
    rules, aws, unique, rule_to_s3, doubling_function
):
    # given a function whose policy lets IoT invoke it for another rule only
    _let_iot_invoke(aws, doubling_function, "another_rule")
    name, topic, read = rule_to_s3(
        "lambdadeny", f"SELECT aws_lambda('{doubling_function}', *) AS out FROM '$TOPIC'"
    )
    _publish(aws, rules, topic, {"n": 1})
    assert read() is None
    message = _sql_failure(rules, name)
    assert "lambda:InvokeFunction" in message and "add-permission" in message


def test_aws_lambda_slower_than_the_rules_engine_allows_fails(
    rules, aws, unique, rule_to_s3, doubling_function
):
    # "iot-sql-functions" aws_lambda(): calls "should be completed within 2000 milliseconds";
    # the limit is lowered for this test so that it does not wait two seconds
    name, topic, read = rule_to_s3(
        "lambdaslow", f"SELECT aws_lambda('{doubling_function}', *) AS out FROM '$TOPIC'"
    )
    _let_iot_invoke(aws, doubling_function, name)
    rules.service_calls.lambda_time_limit_s = 0.2
    try:
        _publish(aws, rules, topic, {"n": 1, "sleep": 0.6})
    finally:
        rules.service_calls.lambda_time_limit_s = 2.0
    assert read() is None
    assert "did not answer within 200 ms" in _sql_failure(rules, name)


def test_get_dynamodb_item_over_8_kb_runs_no_action(rules, aws, unique, rule_to_s3, iot_role):
    # "iot-sql-functions" get_dynamodb(): more than 8 KB of data and the action may not run
    table = f"big-{unique}"
    table_arn = _table(aws, table)
    aws("dynamodb").put_item(TableName=table, Item={"id": {"S": "d1"}, "blob": {"S": "x" * 9000}})
    role = iot_role("ddbbig", ["dynamodb:GetItem"], [table_arn])
    name, topic, read = rule_to_s3(
        "ddbbig", f"SELECT get_dynamodb('{table}', 'id', id, '{role}').id AS id FROM '$TOPIC'"
    )
    _publish(aws, rules, topic, {"id": "d1"})
    assert read() is None
    assert "8192 bytes (8 KB)" in _sql_failure(rules, name)


def test_calls_are_allowed_when_iam_is_not_enforced(
    emulator, rules, aws, unique, rule_to_s3, iot_role
):
    # given a role without the permission, and the emulator started with --no-iam
    table = f"noiam-{unique}"
    _table(aws, table)
    aws("dynamodb").put_item(TableName=table, Item={"id": {"S": "d1"}, "v": {"S": "ok"}})
    role = iot_role("noiam", [], [])
    name, topic, read = rule_to_s3(
        "noiam", f"SELECT get_dynamodb('{table}', 'id', id, '{role}').v AS v FROM '$TOPIC'"
    )
    emulator.iam_enforced = False
    try:
        _publish(aws, rules, topic, {"id": "d1"})
    finally:
        emulator.iam_enforced = True
    assert read() == {"v": "ok"}


# Substitution templates use the rule's SQL version ---------------------------------------------
def test_templates_of_a_2015_10_08_rule_are_evaluated_as_2015_10_08(rules, aws, rule_to_s3):
    # "iot-sql-data-types": 2015-10-08 keeps the whole-number Decimal 2.0, 2016-03-23 makes
    # it the Int 2; the s3 key template follows the rule's version
    _, topic, read = rule_to_s3("v1key", "SELECT * FROM '$TOPIC'", "2015-10-08", "out-${2.0}")
    _publish(aws, rules, topic, {"a": 1})
    assert read("out-2.0") == {"a": 1}


def test_a_template_the_rules_version_cannot_run_is_refused(aws, unique, role_arn):
    # a nested field (a.b) needs 2016-03-23: in a 2015-10-08 rule's template it is refused
    with pytest.raises(ClientError) as caught:
        aws("iot").create_topic_rule(
            ruleName=f"sqlfn_v1tpl_{unique}",
            topicRulePayload={
                "sql": "SELECT * FROM 'a'",
                "awsIotSqlVersion": "2015-10-08",
                "actions": [{"s3": {"bucketName": "b", "key": "${a.b}", "roleArn": role_arn}}],
            },
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "2016-03-23" in caught.value.response["Error"]["Message"]
