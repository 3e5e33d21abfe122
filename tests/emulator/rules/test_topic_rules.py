"""Topic rules over the real endpoint: CreateTopicRule validation, iot-data Publish, actions."""

from __future__ import annotations

import base64
import json
import time

import pytest
from botocore.exceptions import ClientError
from support.rules import create_rule, error_message, keys, s3_action, s3_rule


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
def test_s3_action_writes_the_rule_output_under_a_templated_key(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    # given a bucket and a rule whose key uses substitution templates
    bucket, s3 = rule_bucket("s3")
    sql = f"SELECT *, topic(3) AS device, clientid() AS client FROM 'plant/{unique}/+'"
    topic_rule("s3", sql, [s3_action(bucket, "${topic(3)}/${temp * 2}.json", role_arn)])
    # when a message is published over HTTP (iot-data Publish)
    response = publish_drained(f"plant/{unique}/pump-1", json.dumps({"temp": 21}).encode(), qos=1)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    # then the object holds the SELECT's output; clientid() is "n/a" for HTTP publishes
    body = s3.get_object(Bucket=bucket, Key="pump-1/42.json")["Body"].read()
    assert json.loads(body) == {"temp": 21, "device": "pump-1", "client": "n/a"}


def test_binary_payload_select_star_reaches_s3_unchanged(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    bucket, s3 = rule_bucket("bin")
    topic_rule("bin", f"SELECT * FROM 'bin/{unique}'", [s3_action(bucket, "raw", role_arn)])
    payload = bytes(range(256))
    publish_drained(f"bin/{unique}", payload, qos=0)
    assert s3.get_object(Bucket=bucket, Key="raw")["Body"].read() == payload


def test_disabled_rule_does_not_run_and_enabling_it_does(
    aws, unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    bucket, s3 = rule_bucket("dis")
    action = s3_action(bucket, "${n}", role_arn)
    name = topic_rule("dis", f"SELECT * FROM 'dis/{unique}'", [action], disabled=True)
    # when a message arrives while the rule is disabled, then nothing is written
    publish_drained(f"dis/{unique}", b'{"n": "one"}')
    assert keys(s3, bucket) == []
    # when the rule is enabled, then the next message is written
    aws("iot").enable_topic_rule(ruleName=name)
    publish_drained(f"dis/{unique}", b'{"n": "two"}')
    assert keys(s3, bucket) == ["two"]


def test_replaced_rule_runs_its_new_sql(
    aws, unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    bucket, s3 = rule_bucket("rep")
    action = s3_action(bucket, "out", role_arn)
    name = topic_rule("rep", f"SELECT a FROM 'rep/{unique}'", [action])
    publish_drained(f"rep/{unique}", b'{"a": 1, "b": 2}')
    # when the rule is replaced, then the next message is evaluated with the new statement
    aws("iot").replace_topic_rule(
        ruleName=name,
        topicRulePayload={"sql": f"SELECT b FROM 'rep/{unique}'", "actions": [action]},
    )
    publish_drained(f"rep/{unique}", b'{"a": 1, "b": 2}')
    assert error_message(s3, bucket, "out") == {"b": 2}


# errorAction ----------------------------------------------------------------------------------
def test_failed_action_sends_aws_shaped_message_to_the_error_action(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    # given a rule whose S3 bucket does not exist, and an errorAction writing to another bucket
    errors, s3 = rule_bucket("err")
    missing = f"rules-missing-{unique}"
    name = topic_rule(
        "err",
        f"SELECT * FROM 'err/{unique}'",
        [s3_action(missing, "k", role_arn)],
        error_action=s3_action(errors, "${topic(1)}-error", role_arn),
    )
    payload = b'{"temperature": 99}'
    # when a message arrives
    publish_drained(f"err/{unique}", payload)
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


def test_failing_error_action_is_recorded_not_silent(
    rules, unique, role_arn, topic_rule, publish_drained
):
    actions = [s3_action(f"nope-{unique}", "k", role_arn)]
    error_action = s3_action(f"nope2-{unique}", "k", role_arn)
    name = topic_rule("err2", f"SELECT * FROM 'err2/{unique}'", actions, error_action=error_action)
    publish_drained(f"err2/{unique}", b"{}")
    stages = [f.stage for f in rules.rule_failures(name)]
    assert stages == ["action", "errorAction"]
    assert rules.rule_failures(name)[1].failures[0]["failedResource"] == f"nope2-{unique}"


# republish --------------------------------------------------------------------------------------
def test_republish_feeds_the_rules_again(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    # given rule A republishing 'in/<u>/+' to 'out/<u>/<device>', and rule B storing 'out/<u>/+'
    bucket, s3 = rule_bucket("repub")
    out = {"republish": {"topic": "out/" + unique + "/${topic(3)}", "qos": 1, "roleArn": role_arn}}
    topic_rule("repub_a", f"SELECT temp * 10 AS deci FROM 'in/{unique}/+'", [out])
    store = s3_action(bucket, "${topic(3)}", role_arn)
    topic_rule("repub_b", f"SELECT *, topic() AS t FROM 'out/{unique}/+'", [store])
    # when a message arrives on 'in/<u>/d7'
    publish_drained(f"in/{unique}/d7", b'{"temp": 2.5}')
    # then rule B saw the republished message
    stored = error_message(s3, bucket, "d7")
    assert stored == {"deci": 25, "t": f"out/{unique}/d7"}


def test_republish_loop_is_stopped_and_reported(
    rules, unique, role_arn, topic_rule, publish_drained
):
    loop = {"republish": {"topic": f"loop/{unique}", "roleArn": role_arn}}
    name = topic_rule("loop", f"SELECT * FROM 'loop/{unique}'", [loop])
    publish_drained(f"loop/{unique}", b"{}")
    [failure] = rules.rule_failures(name)
    assert failure.failures[0]["failedAction"] == "RepublishAction"
    assert "loop" in failure.failures[0]["errorMessage"]


# CloudWatch Logs ------------------------------------------------------------------------------
@pytest.fixture
def log_events(aws, unique, role_arn, topic_rule, publish_drained):
    """Factory: a log group, a rule `<name>_<unique>` running `<select> FROM '<name>/<unique>'`
    with a cloudwatchLogs action into it (`options` added to the action), `payload` published
    to that topic; the events of the log group's stream."""

    def run(name: str, select: str, payload: bytes | str, **options) -> list[dict]:
        logs = aws("logs")
        group = f"/iot/{name}/{unique}"
        logs.create_log_group(logGroupName=group)
        action = {"cloudwatchLogs": {"logGroupName": group, "roleArn": role_arn, **options}}
        topic_rule(name, f"{select} FROM '{name}/{unique}'", [action])
        publish_drained(f"{name}/{unique}", payload)
        stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"]
        return logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]

    return run


def test_cloudwatch_logs_action_writes_the_output_as_a_log_event(log_events):
    events = log_events("logs", "SELECT level, msg", b'{"level": "WARN", "msg": "hot"}')
    assert [json.loads(e["message"]) for e in events] == [{"level": "WARN", "msg": "hot"}]


def test_cloudwatch_logs_batch_mode_writes_one_event_per_element(log_events):
    now = int(time.time() * 1000)
    records = [{"timestamp": now - 1000, "message": "one"}, {"timestamp": now, "message": "two"}]
    events = log_events(
        "logsb", "SELECT VALUE records", json.dumps({"records": records}), batchMode=True
    )
    assert [(e["timestamp"], e["message"]) for e in events] == [(now - 1000, "one"), (now, "two")]


def test_cloudwatch_logs_batch_mode_writes_object_messages_as_json(log_events):
    # given a batch whose messages are objects with decimal numbers (IoT SQL Decimals)
    now = int(time.time() * 1000)
    records = [{"timestamp": now, "message": {"temperature": 21.5, "unit": "C"}}]
    # when it is published
    events = log_events(
        "logso", "SELECT VALUE records", json.dumps({"records": records}), batchMode=True
    )
    # then the event's message is the object as JSON, numbers as they were sent
    assert [json.loads(e["message"]) for e in events] == [{"temperature": 21.5, "unit": "C"}]


def test_cloudwatch_logs_missing_group_goes_to_the_error_action(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    bucket, s3 = rule_bucket("logerr")
    missing = {"cloudwatchLogs": {"logGroupName": f"/missing/{unique}", "roleArn": role_arn}}
    error_action = s3_action(bucket, "e", role_arn)
    topic_rule("logse", f"SELECT * FROM 'logse/{unique}'", [missing], error_action=error_action)
    publish_drained(f"logse/{unique}", b"{}")
    [failure] = error_message(s3, bucket, "e")["failures"]
    assert failure["failedAction"] == "CloudwatchLogsAction"
    assert failure["failedResource"] == f"/missing/{unique}"


# Payload evaluation errors, Basic Ingest, MQTT 5 user properties ------------------------------
def test_star_with_fields_on_a_binary_payload_runs_no_action_and_no_error_action(
    rules, aws, unique, role_arn, publish_drained
):
    # given SELECT *, <field> (needs a JSON payload: "binary-payloads") and an errorAction
    bucket, name = f"rules-binerr-{unique}", f"binerr_{unique}"
    sql = f"SELECT *, timestamp() AS ts FROM 'binerr/{unique}'"
    s3 = s3_rule(aws, name, sql, bucket, role_arn)
    # when a non-JSON payload arrives
    publish_drained(f"binerr/{unique}", b"\xff\x00binary")
    # then nothing was written: the errorAction is for rule actions, SQL problems are only
    # visible in AWS IoT logging ("rule-error-handling"); the engine records it
    assert keys(s3, bucket) == []
    [failure] = rules.rule_failures(name)
    assert failure.stage == "sql" and "not a JSON object" in failure.failures[0]["errorMessage"]


def test_basic_ingest_topic_reaches_only_the_named_rule(
    role_arn, topic_rule, rule_bucket, publish_drained
):
    # given a rule whose FROM is some other topic ("iot-basic-ingest" ignores it)
    bucket, s3 = rule_bucket("ingest")
    sql = "SELECT *, topic() AS t, topic(1) AS first FROM 'unused/topic'"
    name = topic_rule("ingest", sql, [s3_action(bucket, "out", role_arn)])
    # when a message is published to $aws/rules/<rule>/plant/line
    publish_drained(f"$aws/rules/{name}/plant/line", b'{"v": 3}')
    # then the rule ran and topic() does not include the $aws/rules/<rule> prefix
    stored = error_message(s3, bucket, "out")
    assert stored == {"v": 3, "t": "plant/line", "first": "plant"}


def test_get_user_properties_reads_iot_data_user_properties(
    unique, role_arn, topic_rule, rule_bucket, publish_drained
):
    bucket, s3 = rule_bucket("props")
    sql = f"SELECT get(get_user_properties('site'), 0) AS site FROM 'props/{unique}'"
    topic_rule("props", sql, [s3_action(bucket, "out", role_arn)])
    properties = json.dumps([{"site": "north"}])
    publish_drained(f"props/{unique}", b"{}", userProperties=properties)
    assert error_message(s3, bucket, "out") == {"site": "north"}
