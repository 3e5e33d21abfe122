"""The template's two rules over the workbook's sample: every message reaches Firehose exactly
once. TopicRule's `SELECT topic() AS topic, *` cannot evaluate a payload that is not a JSON object
(binary-payloads), and on AWS such a failure runs no action and no errorAction
(rule-error-handling); NotJsonTopicRule must take exactly those, and no other message."""

from __future__ import annotations

import pytest
from test_template import load_template

from emulator.rules.sql import MessageContext, SqlEvaluationError, compile_sql
from pipeline import publish

TOPIC_ROOT = "iot-test-topic"


@pytest.fixture(scope="module")
def rules() -> dict:
    template = load_template()
    compiled = {}
    for name in ("TopicRule", "NotJsonTopicRule"):
        payload = template["Resources"][name]["Properties"]["TopicRulePayload"]
        sql = payload["Sql"]["Fn::Sub"].replace("${IotTopicName}", TOPIC_ROOT)
        compiled[name] = compile_sql(sql, payload["AwsIotSqlVersion"])
    return compiled


def outputs(rules: dict, payload: bytes, equipment: str) -> list[str]:
    """The rules that deliver `payload` (published to `<root>/<equipment>`) to their action."""
    context = MessageContext(topic=f"{TOPIC_ROOT}/{equipment}")
    delivered = []
    for name, rule in rules.items():
        assert rule.matches(context.topic)
        try:
            if rule.evaluate(payload, context) is not None:
                delivered.append(name)
        except SqlEvaluationError:
            pass  # on AWS: no action, no errorAction, only an AWS IoT log entry
    return delivered


def test_every_sample_message_reaches_firehose_through_exactly_one_rule(rules):
    messages = publish.load_messages()
    routes = {}
    for message in messages:
        payload = publish.payload_at(message, 1_795_000_000_000, run_id="r")
        routes[message.payload] = outputs(rules, payload, message.equipment)
    assert all(len(delivered) == 1 for delivered in routes.values()), routes
    # and the payloads that are not JSON objects (four in the sample) take the second rule
    not_json = [m.payload for m in messages if not m.is_json]
    assert len(not_json) == publish.not_json_objects(messages) == 4
    assert all(routes[p] == ["NotJsonTopicRule"] for p in not_json)


def test_without_the_second_rule_the_not_json_payloads_would_vanish(rules):
    # the bucket a PUBACK hides: TopicRule alone delivers none of them
    only_first = {"TopicRule": rules["TopicRule"]}
    for message in publish.load_messages():
        if not message.is_json:
            assert outputs(only_first, message.payload, message.equipment) == []
