"""A payload the rule's SQL cannot evaluate: no action, no errorAction, an AWS IoT log entry.

AWS: "The error handling covered in this topic is for rule actions. To debug SQL issues ... you
can set up AWS IoT logging" (rule-error-handling); data can be added to `*` only for an empty or
JSON payload (binary-payloads). Logging is configured with SetV2LoggingOptions (with the role
IoT assumes to write) and written to the `AWSIotLogsV2` log group (cwl-format).
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from iam_roles import service_trust
from support.rules import keys, s3_rule

LOG_GROUP = "AWSIotLogsV2"
TRUST_IOT = service_trust("iot.amazonaws.com")


@pytest.fixture
def logging_role(aws, unique):
    return aws("iam").create_role(
        RoleName=f"iot-logging-{unique}", AssumeRolePolicyDocument=json.dumps(TRUST_IOT)
    )["Role"]["Arn"]


@pytest.fixture
def iot_logging(aws, rules):
    """Sets the account's v2 logging options for one test; logging is switched off after it
    (the options are account-wide and the emulator is shared by the session)."""
    iot = aws("iot")

    def configure(**options):
        iot.set_v2_logging_options(**options)

    yield configure
    iot.set_v2_logging_options(defaultLogLevel="DISABLED", disableAllLogs=True)
    assert rules.drain(10)


def _rule_with_error_action(aws, unique, role_arn):
    """A rule that adds a field to `*` (needs an empty or JSON object payload) on sqlfail/<u>,
    with an S3 action and an S3 errorAction into one bucket."""
    bucket, name = f"sqlfail-{unique}", f"sqlfail_{unique}"
    sql = f"SELECT topic() AS topic, * FROM 'sqlfail/{unique}'"
    return s3_rule(aws, name, sql, bucket, role_arn), bucket, name


def _publish(rules, aws, unique, payload: bytes) -> None:
    """Publish `payload` on the rule's topic and wait until the rules engine handled it."""
    aws("iot-data").publish(topic=f"sqlfail/{unique}", payload=payload)
    assert rules.drain(10)


def _entries(aws, rule_name, timeout=10.0):
    """The AWSIotLogsV2 entries of `rule_name` (waits up to `timeout` for at least one)."""
    logs = aws("logs")
    deadline = time.monotonic() + timeout
    while True:
        try:
            events = logs.filter_log_events(logGroupName=LOG_GROUP)["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        found = [json.loads(e["message"]) for e in events]
        found = [e for e in found if e.get("ruleName") == rule_name]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize(
    "payload",
    [b"temperature=21.5", b"[1, 2, 3]", b'{"t": 1', b"\xff\xfe\x00bad"],
    ids=["text", "json-array", "truncated-json", "not-utf8"],
)
def test_sql_failure_runs_no_action_and_no_error_action_and_is_logged(
    rules, aws, unique, role_arn, logging_role, iot_logging, payload
):
    # given a rule that adds a field to `*` (needs an empty or JSON object payload), with an
    # errorAction, and AWS IoT logging on at ERROR with its role
    s3, bucket, name = _rule_with_error_action(aws, unique, role_arn)
    iot_logging(roleArn=logging_role, defaultLogLevel="ERROR")
    # when a payload that is not a JSON object is published
    _publish(rules, aws, unique, payload)
    # then neither the action nor the errorAction wrote anything
    assert keys(s3, bucket) == []
    # and one ERROR entry in AWSIotLogsV2 names the rule, the topic and the reason
    [entry] = _entries(aws, name)
    assert entry["logLevel"] == "ERROR" and entry["status"] == "Failure"
    assert entry["eventType"] == "RuleExecution"
    assert entry["topicName"] == f"sqlfail/{unique}"
    assert entry["accountId"] == "123456789012"
    assert entry["traceId"] and entry["timestamp"] and entry["reason"]
    assert "JSON" in entry["details"]
    assert {"clientId", "principalId"} <= set(entry)


def test_sql_failure_is_silent_when_logging_is_off(
    rules, aws, unique, role_arn, logging_role, iot_logging
):
    # given the same rule and logging disabled
    s3, bucket, name = _rule_with_error_action(aws, unique, role_arn)
    iot_logging(roleArn=logging_role, defaultLogLevel="DISABLED")
    # when a non-JSON payload is published
    _publish(rules, aws, unique, b"not json")
    # then nothing is written anywhere: the message vanished, as on AWS
    assert keys(s3, bucket) == []
    assert _entries(aws, name, timeout=1.0) == []
    # but the engine still records it for tests and notebooks
    assert [f.stage for f in rules.rule_failures(name)] == ["sql"]


def test_no_entry_without_the_logging_role(rules, aws, unique, role_arn, iot_logging):
    # given logging on, but with a role that does not exist (IoT cannot assume it)
    _, _, name = _rule_with_error_action(aws, unique, role_arn)
    iot_logging(roleArn=f"arn:aws:iam::123456789012:role/missing-{unique}", defaultLogLevel="INFO")
    _publish(rules, aws, unique, b"not json")
    assert _entries(aws, name, timeout=1.0) == []


def test_client_id_level_overrides_the_default(
    rules, aws, unique, role_arn, logging_role, iot_logging
):
    # given logging disabled by default but ERROR for one client id
    _, _, name = _rule_with_error_action(aws, unique, role_arn)
    iot_logging(roleArn=logging_role, defaultLogLevel="DISABLED")
    iot = aws("iot")
    from emulator.iot.messages import NO_CLIENT_ID

    iot.set_v2_logging_level(
        logTarget={"targetType": "CLIENT_ID", "targetName": NO_CLIENT_ID}, logLevel="ERROR"
    )
    try:
        listed = iot.list_v2_logging_levels(targetType="CLIENT_ID")["logTargetConfigurations"]
        assert {
            "logTarget": {"targetType": "CLIENT_ID", "targetName": NO_CLIENT_ID},
            "logLevel": "ERROR",
        } in listed
        # when that client (iot-data Publish has no MQTT client id) publishes a bad payload
        aws("iot-data").publish(topic=f"sqlfail/{unique}", payload=b"not json")
        assert rules.drain(10)
        # then it is logged
        [entry] = _entries(aws, name)
        assert entry["clientId"] == NO_CLIENT_ID
    finally:
        iot.delete_v2_logging_level(targetType="CLIENT_ID", targetName=NO_CLIENT_ID)


def test_get_v2_logging_options_answers_what_was_set(aws, logging_role, iot_logging):
    iot = aws("iot")
    iot_logging(roleArn=logging_role, defaultLogLevel="WARN", disableAllLogs=False)
    got = iot.get_v2_logging_options()
    assert (got["roleArn"], got["defaultLogLevel"], got["disableAllLogs"]) == (
        logging_role,
        "WARN",
        False,
    )


def test_unsupported_logging_targets_are_refused_naming_what_to_use(aws, logging_role, iot_logging):
    iot = aws("iot")
    iot_logging(roleArn=logging_role, defaultLogLevel="ERROR")
    with pytest.raises(ClientError) as caught:
        iot.set_v2_logging_level(
            logTarget={"targetType": "THING_GROUP", "targetName": "g"}, logLevel="ERROR"
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "CLIENT_ID" in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        iot.set_v2_logging_options(roleArn=logging_role, defaultLogLevel="LOUD")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"


def test_json_object_payloads_still_run_the_actions(
    rules, aws, unique, role_arn, logging_role, iot_logging
):
    # given logging on: a good payload is not logged as a failure and reaches the action
    s3, bucket, name = _rule_with_error_action(aws, unique, role_arn)
    iot_logging(roleArn=logging_role, defaultLogLevel="ERROR")
    _publish(rules, aws, unique, b'{"t": 1}')
    assert keys(s3, bucket) == ["out"]
    assert _entries(aws, name, timeout=1.0) == []
