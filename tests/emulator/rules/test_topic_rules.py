"""Topic rules over the real endpoint: CreateTopicRule validation, iot-data Publish, actions."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError
from support.rules import create_rule, error_message, keys, new_bucket, s3_action, s3_rule


# CreateTopicRule / ReplaceTopicRule ----------------------------------------------------------
def test_invalid_sql_is_refused_with_sql_parse_exception_naming_the_position(rules, aws, unique):
    iot = aws("iot")
    # when a rule with an unknown function is created
    with pytest.raises(ClientError) as caught:
        create_rule(
            iot,
            f"bad_sql_{unique}",
            "SELECT temperature,\n  celsius(temperature) AS c FROM 'sensors/+'",
            [{"republish": {"topic": "x", "roleArn": "arn:aws:iam::123456789012:role/r"}}],
        )
    # then IoT answers SqlParseException (HTTP 400) with the line, column and reason
    error = caught.value.response["Error"]
    assert error["Code"] == "SqlParseException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "line 2, column 3" in error["Message"]
    assert "celsius()" in error["Message"]
    # and moto stored nothing
    names = [r["ruleName"] for r in iot.list_topic_rules()["rules"]]
    assert f"bad_sql_{unique}" not in names


def test_replace_topic_rule_validates_the_sql_too(rules, aws, unique, role_arn):
    iot = aws("iot")
    name = f"replace_bad_{unique}"
    create_rule(
        iot, name, "SELECT * FROM 'a/b'", [{"republish": {"topic": "x", "roleArn": role_arn}}]
    )
    # when the rule is replaced by a statement with GROUP BY
    with pytest.raises(ClientError) as caught:
        iot.replace_topic_rule(
            ruleName=name,
            topicRulePayload={
                "sql": "SELECT * FROM 'a/b' GROUP BY x",
                "actions": [{"republish": {"topic": "x", "roleArn": role_arn}}],
            },
        )
    # then it is refused and the old rule stays
    assert caught.value.response["Error"]["Code"] == "SqlParseException"
    assert "GROUP BY" in caught.value.response["Error"]["Message"]
    assert iot.get_topic_rule(ruleName=name)["rule"]["sql"] == "SELECT * FROM 'a/b'"


def test_unsupported_action_is_refused_not_ignored(rules, aws, unique, role_arn):
    with pytest.raises(ClientError) as caught:
        create_rule(
            aws("iot"),
            f"events_{unique}",
            "SELECT * FROM 'a/b'",
            [{"iotEvents": {"inputName": "i", "roleArn": role_arn}}],
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "iotEvents" in caught.value.response["Error"]["Message"]


# S3 action + iot-data Publish ---------------------------------------------------------------
def test_s3_action_writes_the_rule_output_under_a_templated_key(rules, aws, unique, role_arn):
    # given a bucket and a rule whose key uses substitution templates
    bucket = f"rules-s3-{unique}"
    s3 = new_bucket(aws, bucket)
    create_rule(
        aws("iot"),
        f"s3_{unique}",
        f"SELECT *, topic(3) AS device, clientid() AS client FROM 'plant/{unique}/+'",
        [
            {
                "s3": {
                    "bucketName": bucket,
                    "key": "${topic(3)}/${temp * 2}.json",
                    "roleArn": role_arn,
                }
            }
        ],
    )
    # when a message is published over HTTP (iot-data Publish)
    response = aws("iot-data").publish(
        topic=f"plant/{unique}/pump-1", qos=1, payload=json.dumps({"temp": 21}).encode()
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert rules.drain(10)
    # then the object holds the SELECT's output; clientid() is "n/a" for HTTP publishes
    body = s3.get_object(Bucket=bucket, Key="pump-1/42.json")["Body"].read()
    assert json.loads(body) == {"temp": 21, "device": "pump-1", "client": "n/a"}


def test_binary_payload_select_star_reaches_s3_unchanged(rules, aws, unique, role_arn):
    bucket = f"rules-bin-{unique}"
    s3 = new_bucket(aws, bucket)
    create_rule(
        aws("iot"),
        f"bin_{unique}",
        f"SELECT * FROM 'bin/{unique}'",
        [s3_action(bucket, "raw", role_arn)],
    )
    payload = bytes(range(256))
    aws("iot-data").publish(topic=f"bin/{unique}", qos=0, payload=payload)
    assert rules.drain(10)
    assert s3.get_object(Bucket=bucket, Key="raw")["Body"].read() == payload


def test_disabled_rule_does_not_run_and_enabling_it_does(rules, aws, unique, role_arn):
    s3, iot, data = aws("s3"), aws("iot"), aws("iot-data")
    bucket = f"rules-dis-{unique}"
    s3.create_bucket(Bucket=bucket)
    name = f"dis_{unique}"
    action = s3_action(bucket, "${n}", role_arn)
    create_rule(iot, name, f"SELECT * FROM 'dis/{unique}'", [action], disabled=True)
    # when a message arrives while the rule is disabled, then nothing is written
    data.publish(topic=f"dis/{unique}", payload=b'{"n": "one"}')
    assert rules.drain(10)
    assert keys(s3, bucket) == []
    # when the rule is enabled, then the next message is written
    iot.enable_topic_rule(ruleName=name)
    data.publish(topic=f"dis/{unique}", payload=b'{"n": "two"}')
    assert rules.drain(10)
    assert keys(s3, bucket) == ["two"]


def test_replaced_rule_runs_its_new_sql(rules, aws, unique, role_arn):
    s3, iot, data = aws("s3"), aws("iot"), aws("iot-data")
    bucket = f"rules-rep-{unique}"
    s3.create_bucket(Bucket=bucket)
    name = f"rep_{unique}"
    action = s3_action(bucket, "out", role_arn)
    create_rule(iot, name, f"SELECT a FROM 'rep/{unique}'", [action])
    data.publish(topic=f"rep/{unique}", payload=b'{"a": 1, "b": 2}')
    assert rules.drain(10)
    # when the rule is replaced, then the next message is evaluated with the new statement
    iot.replace_topic_rule(
        ruleName=name,
        topicRulePayload={"sql": f"SELECT b FROM 'rep/{unique}'", "actions": [action]},
    )
    data.publish(topic=f"rep/{unique}", payload=b'{"a": 1, "b": 2}')
    assert rules.drain(10)
    assert error_message(s3, bucket, "out") == {"b": 2}


# errorAction ----------------------------------------------------------------------------------
def test_failed_action_sends_aws_shaped_message_to_the_error_action(rules, aws, unique, role_arn):
    # given a rule whose S3 bucket does not exist, and an errorAction writing to another bucket
    s3 = aws("s3")
    errors = f"rules-err-{unique}"
    s3.create_bucket(Bucket=errors)
    missing = f"rules-missing-{unique}"
    name = f"err_{unique}"
    create_rule(
        aws("iot"),
        name,
        f"SELECT * FROM 'err/{unique}'",
        [s3_action(missing, "k", role_arn)],
        error_action={
            "s3": {"bucketName": errors, "key": "${topic(1)}-error", "roleArn": role_arn}
        },
    )
    payload = b'{"temperature": 99}'
    # when a message arrives
    aws("iot-data").publish(topic=f"err/{unique}", payload=payload)
    assert rules.drain(10)
    # then the error action received one message in AWS's shape ("rule-error-handling")
    message = json.loads(s3.get_object(Bucket=errors, Key="err-error")["Body"].read())
    assert set(message) == {
        "ruleName",
        "topic",
        "cloudwatchTraceId",
        "clientId",
        "base64OriginalPayload",
        "failures",
    }
    assert message["ruleName"] == name
    assert message["topic"] == f"err/{unique}"
    assert message["clientId"] == "n/a"
    assert base64.b64decode(message["base64OriginalPayload"]) == payload
    [failure] = message["failures"]
    assert failure["failedAction"] == "S3Action"
    assert failure["failedResource"] == missing
    assert "NoSuchBucket" in failure["errorMessage"]


def test_failing_error_action_is_recorded_not_silent(rules, aws, unique, role_arn):
    name = f"err2_{unique}"
    create_rule(
        aws("iot"),
        name,
        f"SELECT * FROM 'err2/{unique}'",
        [{"s3": {"bucketName": f"nope-{unique}", "key": "k", "roleArn": role_arn}}],
        error_action={"s3": {"bucketName": f"nope2-{unique}", "key": "k", "roleArn": role_arn}},
    )
    aws("iot-data").publish(topic=f"err2/{unique}", payload=b"{}")
    assert rules.drain(10)
    stages = [f.stage for f in rules.rule_failures(name)]
    assert stages == ["action", "errorAction"]
    assert rules.rule_failures(name)[1].failures[0]["failedResource"] == f"nope2-{unique}"


# republish --------------------------------------------------------------------------------------
def test_republish_feeds_the_rules_again(rules, aws, unique, role_arn):
    # given rule A republishing 'in/<u>/+' to 'out/<u>/<device>', and rule B storing 'out/<u>/+'
    s3, iot = aws("s3"), aws("iot")
    bucket = f"rules-repub-{unique}"
    s3.create_bucket(Bucket=bucket)
    create_rule(
        iot,
        f"repub_a_{unique}",
        f"SELECT temp * 10 AS deci FROM 'in/{unique}/+'",
        [{"republish": {"topic": "out/" + unique + "/${topic(3)}", "qos": 1, "roleArn": role_arn}}],
    )
    create_rule(
        iot,
        f"repub_b_{unique}",
        f"SELECT *, topic() AS t FROM 'out/{unique}/+'",
        [s3_action(bucket, "${topic(3)}", role_arn)],
    )
    # when a message arrives on 'in/<u>/d7'
    aws("iot-data").publish(topic=f"in/{unique}/d7", payload=b'{"temp": 2.5}')
    assert rules.drain(10)
    # then rule B saw the republished message
    stored = error_message(s3, bucket, "d7")
    assert stored == {"deci": 25, "t": f"out/{unique}/d7"}


def test_republish_loop_is_stopped_and_reported(rules, aws, unique, role_arn):
    name = f"loop_{unique}"
    create_rule(
        aws("iot"),
        name,
        f"SELECT * FROM 'loop/{unique}'",
        [{"republish": {"topic": f"loop/{unique}", "roleArn": role_arn}}],
    )
    aws("iot-data").publish(topic=f"loop/{unique}", payload=b"{}")
    assert rules.drain(10)
    [failure] = rules.rule_failures(name)
    assert failure.failures[0]["failedAction"] == "RepublishAction"
    assert "loop" in failure.failures[0]["errorMessage"]


# CloudWatch Logs ------------------------------------------------------------------------------
def test_cloudwatch_logs_action_writes_the_output_as_a_log_event(rules, aws, unique, role_arn):
    logs = aws("logs")
    group = f"/iot/rules/{unique}"
    logs.create_log_group(logGroupName=group)
    create_rule(
        aws("iot"),
        f"logs_{unique}",
        f"SELECT level, msg FROM 'logs/{unique}'",
        [{"cloudwatchLogs": {"logGroupName": group, "roleArn": role_arn}}],
    )
    aws("iot-data").publish(topic=f"logs/{unique}", payload=b'{"level": "WARN", "msg": "hot"}')
    assert rules.drain(10)
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"])
    assert [json.loads(e["message"]) for e in events["events"]] == [{"level": "WARN", "msg": "hot"}]


def _batch_log_events(rules, aws, unique, role_arn, name: str, records: list) -> list[dict]:
    """Publish `{"records": records}` through a rule whose cloudwatchLogs action runs in batch
    mode on `SELECT VALUE records`; the events of the log group's stream."""
    logs = aws("logs")
    group = f"/iot/{name}/{unique}"
    logs.create_log_group(logGroupName=group)
    create_rule(
        aws("iot"),
        f"{name}_{unique}",
        f"SELECT VALUE records FROM '{name}/{unique}'",
        [{"cloudwatchLogs": {"logGroupName": group, "roleArn": role_arn, "batchMode": True}}],
    )
    aws("iot-data").publish(topic=f"{name}/{unique}", payload=json.dumps({"records": records}))
    assert rules.drain(10)
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
    return logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]


def test_cloudwatch_logs_batch_mode_writes_one_event_per_element(rules, aws, unique, role_arn):
    now = int(time.time() * 1000)
    records = [{"timestamp": now - 1000, "message": "one"}, {"timestamp": now, "message": "two"}]
    events = _batch_log_events(rules, aws, unique, role_arn, "logsb", records)
    assert [(e["timestamp"], e["message"]) for e in events] == [(now - 1000, "one"), (now, "two")]


def test_cloudwatch_logs_batch_mode_writes_object_messages_as_json(rules, aws, unique, role_arn):
    # given a batch whose messages are objects with decimal numbers (IoT SQL Decimals)
    now = int(time.time() * 1000)
    records = [{"timestamp": now, "message": {"temperature": 21.5, "unit": "C"}}]
    # when it is published
    events = _batch_log_events(rules, aws, unique, role_arn, "logso", records)
    # then the event's message is the object as JSON, numbers as they were sent
    assert [json.loads(e["message"]) for e in events] == [{"temperature": 21.5, "unit": "C"}]


def test_cloudwatch_logs_missing_group_goes_to_the_error_action(rules, aws, unique, role_arn):
    bucket = f"rules-logerr-{unique}"
    s3 = new_bucket(aws, bucket)
    create_rule(
        aws("iot"),
        f"logse_{unique}",
        f"SELECT * FROM 'logse/{unique}'",
        [{"cloudwatchLogs": {"logGroupName": f"/missing/{unique}", "roleArn": role_arn}}],
        error_action=s3_action(bucket, "e", role_arn),
    )
    aws("iot-data").publish(topic=f"logse/{unique}", payload=b"{}")
    assert rules.drain(10)
    [failure] = error_message(s3, bucket, "e")["failures"]
    assert failure["failedAction"] == "CloudwatchLogsAction"
    assert failure["failedResource"] == f"/missing/{unique}"


# Payload evaluation errors, Basic Ingest, MQTT 5 user properties ------------------------------
def test_star_with_fields_on_a_binary_payload_runs_no_action_and_no_error_action(
    rules, aws, unique, role_arn
):
    # given SELECT *, <field> (needs a JSON payload: "binary-payloads") and an errorAction
    bucket, name = f"rules-binerr-{unique}", f"binerr_{unique}"
    sql = f"SELECT *, timestamp() AS ts FROM 'binerr/{unique}'"
    s3 = s3_rule(aws, name, sql, bucket, role_arn)
    # when a non-JSON payload arrives
    aws("iot-data").publish(topic=f"binerr/{unique}", payload=b"\xff\x00binary")
    assert rules.drain(10)
    # then nothing was written: the errorAction is for rule actions, SQL problems are only
    # visible in AWS IoT logging ("rule-error-handling"); the engine records it
    assert keys(s3, bucket) == []
    [failure] = rules.rule_failures(name)
    assert failure.stage == "sql" and "not a JSON object" in failure.failures[0]["errorMessage"]


def test_basic_ingest_topic_reaches_only_the_named_rule(rules, aws, unique, role_arn):
    # given a rule whose FROM is some other topic ("iot-basic-ingest" ignores it)
    bucket = f"rules-ingest-{unique}"
    s3 = new_bucket(aws, bucket)
    name = f"ingest_{unique}"
    create_rule(
        aws("iot"),
        name,
        "SELECT *, topic() AS t, topic(1) AS first FROM 'unused/topic'",
        [s3_action(bucket, "out", role_arn)],
    )
    # when a message is published to $aws/rules/<rule>/plant/line
    aws("iot-data").publish(topic=f"$aws/rules/{name}/plant/line", payload=b'{"v": 3}')
    assert rules.drain(10)
    # then the rule ran and topic() does not include the $aws/rules/<rule> prefix
    stored = error_message(s3, bucket, "out")
    assert stored == {"v": 3, "t": "plant/line", "first": "plant"}


def test_get_user_properties_reads_iot_data_user_properties(rules, aws, unique, role_arn):
    bucket = f"rules-props-{unique}"
    s3 = new_bucket(aws, bucket)
    create_rule(
        aws("iot"),
        f"props_{unique}",
        f"SELECT get(get_user_properties('site'), 0) AS site FROM 'props/{unique}'",
        [s3_action(bucket, "out", role_arn)],
    )
    aws("iot-data").publish(
        topic=f"props/{unique}", payload=b"{}", userProperties=json.dumps([{"site": "north"}])
    )
    assert rules.drain(10)
    assert error_message(s3, bucket, "out") == {"site": "north"}
