"""SQL versions over the real endpoint: the 2015-10-08 default, beta, and their evaluation.

https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-sql-version.html
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from support.rules import new_bucket, s3_action


def _s3_rule(aws, name, sql, bucket, role_arn, version=None):
    payload = {
        "sql": sql,
        "actions": [s3_action(bucket, "out", role_arn)],
    }
    if version is not None:
        payload["awsIotSqlVersion"] = version
    aws("iot").create_topic_rule(ruleName=name, topicRulePayload=payload)


def test_rule_without_a_version_is_2015_10_08_and_get_topic_rule_says_so(
    rules, aws, unique, role_arn
):
    # given a rule created without awsIotSqlVersion
    bucket = f"sqlv1-{unique}"
    s3 = new_bucket(aws, bucket)
    name = f"sqlv1_{unique}"
    _s3_rule(aws, name, f"SELECT t, sql_version() AS v FROM 'v1/{unique}'", bucket, role_arn)
    # then GetTopicRule reports the version it runs with, 2015-10-08
    rule = aws("iot").get_topic_rule(ruleName=name)["rule"]
    assert rule["awsIotSqlVersion"] == "2015-10-08"
    # and a whole-number Decimal stays a Decimal ("iot-sql-data-types": only V2 makes it an Int)
    aws("iot-data").publish(topic=f"v1/{unique}", payload=b'{"t": 10.0}')
    assert rules.drain(10)
    body = s3.get_object(Bucket=bucket, Key="out")["Body"].read()
    assert body == b'{"t":10.0,"v":"2015-10-08"}'


def test_2016_03_23_processes_whole_number_decimals_as_ints(rules, aws, unique, role_arn):
    bucket = f"sqlv2-{unique}"
    s3 = new_bucket(aws, bucket)
    _s3_rule(aws, f"sqlv2_{unique}", f"SELECT t FROM 'v2/{unique}'", bucket, role_arn, "2016-03-23")
    aws("iot-data").publish(topic=f"v2/{unique}", payload=b'{"t": 10.0}')
    assert rules.drain(10)
    assert s3.get_object(Bucket=bucket, Key="out")["Body"].read() == b'{"t":10}'


def test_rule_without_a_version_using_a_2016_feature_is_refused(aws, rules, unique, role_arn):
    # when a rule without awsIotSqlVersion uses an object literal ("iot-sql-literals":
    # "available only when using SQL version 2016-03-23 or later")
    with pytest.raises(ClientError) as caught:
        _s3_rule(aws, f"v1lit_{unique}", "SELECT {'a': 1} AS o FROM 'x'", "b", role_arn)
    # then CreateTopicRule answers SqlParseException naming the version to use
    error = caught.value.response["Error"]
    assert error["Code"] == "SqlParseException"
    assert "requires SQL version 2016-03-23" in error["Message"]
    names = [r["ruleName"] for r in aws("iot").list_topic_rules()["rules"]]
    assert f"v1lit_{unique}" not in names


def test_beta_version_is_accepted_and_reported(aws, rules, unique, role_arn):
    name = f"beta_{unique}"
    _s3_rule(aws, name, "SELECT {'a': 1} AS o FROM 'x'", "b", role_arn, "beta")
    assert aws("iot").get_topic_rule(ruleName=name)["rule"]["awsIotSqlVersion"] == "beta"


def test_unknown_version_is_refused(aws, rules, unique, role_arn):
    with pytest.raises(ClientError) as caught:
        _s3_rule(aws, f"badv_{unique}", "SELECT * FROM 'x'", "b", role_arn, "2020-01-01")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "2015-10-08, 2016-03-23, beta" in caught.value.response["Error"]["Message"]
