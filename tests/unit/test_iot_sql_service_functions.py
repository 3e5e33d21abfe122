"""IoT SQL functions that call other services, checked without a running emulator: what is
refused when the rule is created, what gives Undefined, what fails the evaluation, and the
substitution templates' SQL version ("iot-sql-functions", "iot-substitution-templates")."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.iot_sql import refusal

from emulator.rules.service_functions import _plain
from emulator.rules.sql import V1, V2, MessageContext, SqlError, SqlEvaluationError, compile_sql
from emulator.rules.templates import check_templates, compile_template

CTX = MessageContext(topic="t/1", client_id="c", timestamp_ms=1)
ROLE = "arn:aws:iam::123456789012:role/r"
FN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def _evaluate(sql: str, payload: bytes = b"{}", context: MessageContext = CTX, version=V2):
    return compile_sql(sql, version).evaluate(payload, context)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (f"SELECT aws_lambda('{FN}') AS x FROM 'a'", "aws_lambda() takes 2 arguments, not 1"),
        ("SELECT get_dynamodb('t', 'k', 'v', 'a', 'b') AS x FROM 'a'", "takes 4 or 6"),
        ("SELECT get_secret('s', 'r') AS x FROM 'a'", "get_secret() takes 3 or 4"),
        ("SELECT get_thing_shadow('t') AS x FROM 'a'", "get_thing_shadow() takes 2 or 3"),
        ("SELECT get_registry_data('DescribeThing', 't') AS x FROM 'a'", "takes 3 arguments"),
        ("SELECT machinelearning_predict('m', 'r', *) AS p FROM 'a'", "AWS has retired"),
    ],
)
def test_calls_with_an_undocumented_argument_count_are_refused_at_creation(sql, reason):
    assert reason in refusal(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT get_dynamodb('t', 'k', id, 'r') AS d FROM 'a'",
        "SELECT get_thing_shadow('t', 'r') AS s FROM 'a'",
    ],
)
def test_functions_documented_since_2016_03_23_are_refused_in_2015_10_08(sql):
    with pytest.raises(SqlError, match="requires SQL version 2016-03-23"):
        compile_sql(sql, V1)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT aws_lambda(1, *) AS x FROM 'a'",
        f"SELECT aws_lambda('{FN}', missing) AS x FROM 'a'",
        f"SELECT get_dynamodb('t', 'k', missing, '{ROLE}') AS x FROM 'a'",
        f"SELECT get_dynamodb('t', 'k', null, '{ROLE}') AS x FROM 'a'",
        f"SELECT get_dynamodb(5, 'k', 'v', '{ROLE}') AS x FROM 'a'",
        f"SELECT get_dynamodb('t', 'k', 'v', 3, 'v', '{ROLE}') AS x FROM 'a'",
        f"SELECT get_secret('s', 'SecretString', 7, '{ROLE}') AS x FROM 'a'",
        "SELECT get_secret('s', 'SecretString', true) AS x FROM 'a'",
        f"SELECT get_thing_shadow(missing, '{ROLE}') AS x FROM 'a'",
        f"SELECT get_thing_shadow('t', 1, '{ROLE}') AS x FROM 'a'",
        f"SELECT get_registry_data('DescribeThing', '', '{ROLE}') AS x FROM 'a'",
    ],
)
def test_arguments_of_the_wrong_type_give_undefined_without_calling(sql):
    # "iot-sql-data-types": functions called with invalid arguments return Undefined; nothing
    # is called, so a bare context (no services) is enough
    assert _evaluate(sql).value == {}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (f"SELECT get_secret('s', 'Binary', '{ROLE}') AS x FROM 'a'", "SecretString or"),
        (f"SELECT get_registry_data('ListThings', 't', '{ROLE}') AS x FROM 'a'", "registryAPI"),
        (f"SELECT get_dynamodb('t', 'k', 'v', '{ROLE}') AS x FROM 'a'", "rules engine"),
        (f"SELECT VALUE 1 FROM 'a' WHERE aws_lambda('{FN}', *).ok", "rules engine"),
    ],
)
def test_calls_that_cannot_be_made_fail_the_evaluation(sql, reason):
    # a documented value it cannot take, or no services to call (outside the rules engine):
    # the rule's evaluation fails (no action), it is not a silent Undefined
    with pytest.raises(SqlEvaluationError, match=reason):
        _evaluate(sql)


def test_star_as_an_argument_needs_a_json_payload():
    # "iot-sql-functions" aws_lambda(): '*' passes the full payload, which must be JSON
    rule = compile_sql(f"SELECT aws_lambda('{FN}', *) AS out FROM 'a'")
    with pytest.raises(SqlEvaluationError, match="payload is not JSON"):
        rule.evaluate(b"\x00\x01binary", CTX)


def test_get_dynamodb_twice_compiles_but_every_evaluation_fails():
    # "iot-sql-functions": "Calling get_dynamodb() multiple times in a single SQL statement
    # causes the rule to terminate without invoking any actions"
    rule = compile_sql(
        f"SELECT get_dynamodb('t', 'k', a, '{ROLE}') AS x FROM 'a' "
        f"WHERE get_dynamodb('t', 'k', b, '{ROLE}').ok = true"
    )
    with pytest.raises(SqlEvaluationError, match="at most 1 time"):
        rule.evaluate(b'{"a": 1}', CTX)


@pytest.mark.parametrize(
    "function",
    [
        f"aws_lambda('{FN}', {{'a': 1}})",
        f"get_dynamodb('t', 'k', 'v', '{ROLE}')",
        f"get_secret('s', 'SecretString', '{ROLE}')",
        f"get_thing_shadow('t', '{ROLE}')",
        f"get_registry_data('DescribeThing', 't', '{ROLE}')",
    ],
)
def test_service_functions_are_refused_in_substitution_templates(function):
    with pytest.raises(SqlError, match="only in the SELECT and WHERE clauses"):
        compile_template("key-${" + function + "}")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ({"S": "x"}, "x"),
        ({"N": "12"}, 12),
        ({"N": "1.50"}, Decimal("1.50")),
        ({"BOOL": True}, True),
        ({"NULL": True}, None),
        ({"B": "AAE="}, "AAE="),
        ({"SS": ["a", "b"]}, ["a", "b"]),
        ({"NS": ["1", "2.5"]}, [1, Decimal("2.5")]),
        ({"L": [{"S": "a"}, {"N": "1"}]}, ["a", 1]),
        ({"M": {"loc": {"S": "lab"}, "n": {"N": "3"}}}, {"loc": "lab", "n": 3}),
    ],
)
def test_dynamodb_attribute_values_become_iot_sql_values(typed, expected):
    assert _plain(typed) == expected


def test_templates_are_evaluated_with_the_rules_sql_version():
    # "iot-sql-data-types": 2016-03-23 processes the whole-number Decimal 2.0 as the Int 2,
    # 2015-10-08 keeps 2.0; a template is IoT SQL of the rule's version
    template = compile_template("out-${2.0}")
    assert template(b"{}", MessageContext(topic="a", sql_version=V1)) == "out-2.0"
    assert template(b"{}", MessageContext(topic="a", sql_version=V2)) == "out-2"
    assert template(b"{}", MessageContext(topic="a")) == "out-2"


def test_template_checks_use_the_rules_version():
    templated = {"s3": ("bucketName", "key")}
    action = {"s3": {"bucketName": "b", "key": "${a.b}", "roleArn": ROLE}}
    check_templates(action, templated, V2)
    with pytest.raises(SqlError, match="requires SQL version 2016-03-23"):
        check_templates(action, templated, V1)


def test_each_rule_sees_its_name_and_version_and_the_message_keeps_one_trace_id():
    from emulator.rules.engine import _Context

    message = _Context(None, topic="a", trace_id=None)
    first = message.for_rule("r1", V1)
    second = message.for_rule("r2", V2)
    assert (first.rule_name, first.sql_version) == ("r1", V1)
    assert (second.rule_name, second.sql_version) == ("r2", V2)
    assert first.trace_id == second.trace_id  # drawn once, for the message


def test_an_undefined_sort_key_value_gives_undefined():
    sql = f"SELECT get_dynamodb('t', 'k', 'v', 'n', missing, '{ROLE}') AS x FROM 'a'"
    assert _evaluate(sql).value == {}
