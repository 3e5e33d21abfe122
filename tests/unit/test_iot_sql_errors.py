"""Statements the rules engine cannot run are refused at compile time, with position and reason."""

from __future__ import annotations

import pytest

from emulator.rules.sql import SqlError, compile_sql
from emulator.rules.topics import topic_matcher


@pytest.mark.parametrize(
    ("sql", "reason", "line", "column"),
    [
        ("SELECT * FROM topic/#", "single quotes", 1, 15),
        ("SELECT foo(x) FROM 'a'", "foo() is not a known", 1, 8),
        ("SELECT a,\n  nope(1) AS x FROM 'a'", "nope()", 2, 3),
        ("SELECT * FROM 'a' GROUP BY x", "GROUP BY", 1, 28),
        ("SELECT * FROM 'a/#/b'", "'#' must be a whole level", 1, 15),
        ("SELECT a || b AS c FROM 'a'", "'||'", 1, 8),
        ("SELECT DISTINCT a FROM 'a'", "DISTINCT", 1, 8),
        # iot-sql-functions: functions that call other services take their documented
        # argument counts; Amazon ML is retired
        ("SELECT aws_lambda('arn') FROM 'a'", "takes 2 arguments, not 1", 1, 8),
        ("SELECT get_dynamodb('t', 'k', 'arn') AS d FROM 'a'", "takes 4 or 6 arguments", 1, 8),
        ("SELECT machinelearning_predict('m', 'r', *) AS p FROM 'a'", "retired", 1, 8),
        ("SELECT sourceip(1) AS ip FROM 'a'", "takes no arguments", 1, 8),
        ("SELECT get_mqtt_property('qos') AS c FROM 'a'", "does not know 'qos'", 1, 8),
        ("SELECT get_user_property('k') AS k FROM 'a'", "get_user_properties('key')", 1, 8),
        ("SELECT decode(a, 'proto') AS d FROM 'a'", "only the 'base64' scheme", 1, 8),
        ("SELECT a FROM 'a' WHERE", "Incomplete", 1, 23),
        ("SELECT encode(a, 'hex') AS e FROM 'a'", "only the 'base64'", 1, 8),
        # iot-sql-reference: comments are not supported
        ("SELECT * -- all\nFROM 'a'", "Comments are not supported", 1, 8),
    ],
)
def test_unsupported_sql_is_refused_with_its_position(sql, reason, line, column):
    # when the statement is compiled, then SqlError names the reason and where it is
    with pytest.raises(SqlError) as caught:
        compile_sql(sql)
    assert reason in caught.value.reason
    assert caught.value.position == (line, column)
    assert f"line {line}, column {column}" in str(caught.value)


def test_unknown_sql_version_is_refused():
    # iot-rule-sql-version: AWS knows 2016-03-23, 2015-10-08 and beta only
    with pytest.raises(SqlError, match="2015-10-08, 2016-03-23, beta"):
        compile_sql("SELECT * FROM 'a'", version="2017-01-01")


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        # iot-sql-from examples
        ("topic/subtopic", "topic/subtopic", True),
        ("topic/subtopic", "topic/subtopic-2", False),
        ("topic/#", "topic/subtopic", True),
        ("topic/#", "topic/subtopic-3/details", True),
        ("topic/#", "topic-2/subtopic-x", False),
        ("topic/#", "topic", False),
        ("topic/+", "topic/subtopic-2", True),
        ("topic/+", "topic/subtopic-3/details", False),
        ("topic/+", "topic-2/subtopic-x", False),
        ("+/b", "$aws/b", False),
        ("#", "a/b/c", True),
    ],
)
def test_topic_filter_matching(topic_filter, topic, expected):
    assert topic_matcher(topic_filter)(topic) is expected


def test_json_nested_beyond_the_parser_limit_is_treated_as_not_json():
    from emulator.rules.sql import MessageContext, SqlEvaluationError, compile_sql

    # given the pipeline's rule and a payload nested 5,000 levels deep
    rule = compile_sql("SELECT topic() AS topic, * FROM 't/+'")
    payload = b'{"a":' * 5000 + b"1" + b"}" * 5000
    # when it is evaluated, then it fails as a non-JSON payload does (an evaluation error that
    # the engine sends to the errorAction), not with a RecursionError
    try:
        rule.evaluate(payload, MessageContext(topic="t/x"))
    except SqlEvaluationError as exc:
        assert "not a JSON object" in str(exc)
    else:
        raise AssertionError("a non-JSON payload cannot be merged with topic()")
