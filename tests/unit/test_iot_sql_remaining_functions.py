"""IoT SQL functions that read the message's MQTT context, get_or_default, and the SET clause.

Pages of the AWS IoT developer guide: "iot-sql-functions" (get_or_default, get_user_properties,
sourceip, get_mqtt_property) and "iot-sql-set" (the SET clause and its variables).
"""

from __future__ import annotations

import json

import pytest
from support.iot_sql import refusal

from emulator.rules.sql import MessageContext, SqlError, compile_sql
from emulator.rules.templates import check_templates, compile_template

V1, V2 = "2015-10-08", "2016-03-23"
MQTT5 = MessageContext(
    topic="device/data",
    client_id="sensor-1",
    user_properties=(("partnerId", "p1"), ("region", "eu"), ("partnerId", "p2")),
    source_ip="203.0.113.7",
    mqtt_properties=(
        ("content_type", "application/json"),
        ("format_indicator", 1),
        ("response_topic", "reply/sensor-1"),
        ("correlation_data", b"\x00\xffid-42"),
    ),
)
# A message published with MQTT 3.1.1 (no properties) or over HTTP (no client IP here).
BARE = MessageContext(topic="device/data")


def output(sql: str, payload: object = None, context: MessageContext = MQTT5, version=V2):
    """The rule's output as JSON, or None when WHERE is not true."""
    raw = b"" if payload is None else json.dumps(payload).encode()
    result = compile_sql(sql, version).evaluate(raw, context)
    return None if result is None else json.loads(result.to_bytes())


# get_or_default (iot-sql-functions) ------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "default"),  # Undefined
        ({"v": None}, "default"),  # Null
        ({"v": False}, False),
        ({"v": 0}, 0),
        ({"v": ""}, ""),
        ({"v": [1]}, [1]),
        ({"v": {"a": 1}}, {"a": 1}),
    ],
)
def test_get_or_default_gives_the_default_only_for_undefined_or_null(payload, expected):
    sql = "SELECT get_or_default(v, 'default') AS r FROM 'device/data'"
    assert output(sql, payload) == {"r": expected}


def test_get_or_default_default_is_an_expression_and_may_be_undefined():
    sql = "SELECT get_or_default(v, w * 2) AS r, get_or_default(v, nope) AS u FROM 'device/data'"
    assert output(sql, {"w": 21}) == {"r": 42}


# get_user_properties (iot-sql-functions) -------------------------------------------------
def test_get_user_properties_without_a_key_lists_every_property_in_order():
    sql = "SELECT get_user_properties() AS all FROM 'device/data'"
    assert output(sql, {}) == {"all": [{"partnerId": "p1"}, {"region": "eu"}, {"partnerId": "p2"}]}


def test_get_user_properties_with_a_key_keeps_every_value_of_a_repeated_key():
    sql = (
        "SELECT get_user_properties('partnerId') AS p, "
        "get(get_user_properties('partnerId'), 0) AS first FROM 'device/data'"
    )
    assert output(sql, {}) == {"p": ["p1", "p2"], "first": "p1"}


def test_get_user_properties_is_undefined_without_user_properties():
    sql = "SELECT get_user_properties() AS a, get_user_properties('k') AS k FROM 'device/data'"
    assert output(sql, {}, BARE) == {}


def test_get_user_properties_takes_at_most_one_argument():
    assert "at most one argument" in refusal("SELECT get_user_properties('a', 'b') FROM 't'")


# sourceip (iot-sql-functions) ------------------------------------------------------------
def test_sourceip_is_the_publishing_clients_address():
    assert output("SELECT sourceip() AS ip FROM 'device/data'", {}) == {"ip": "203.0.113.7"}


def test_sourceip_is_undefined_when_the_address_is_unknown():
    assert output("SELECT sourceip() AS ip FROM 'device/data'", {}, BARE) == {}


def test_sourceip_needs_sql_version_2016_03_23():
    assert "requires SQL version 2016-03-23" in refusal("SELECT sourceip() AS ip FROM 't'", V1)


# get_mqtt_property (iot-sql-functions) ---------------------------------------------------
def test_get_mqtt_property_reads_each_documented_publish_property():
    sql = (
        "SELECT get_mqtt_property('content_type') AS ct, "
        "get_mqtt_property('format_indicator') AS fi, "
        "get_mqtt_property('response_topic') AS rt, "
        "get_mqtt_property('correlation_data') AS cd FROM 'device/data'"
    )
    assert output(sql, {}) == {
        "ct": "application/json",
        "fi": "UTF8_DATA",
        "rt": "reply/sensor-1",
        "cd": "AP9pZC00Mg==",  # base64 of the correlation data's bytes
    }


def test_get_mqtt_property_without_the_properties():
    # MQTT 5.0 section 3.3.2.3.2: no Payload Format Indicator means unspecified bytes; the
    # other properties are Undefined, so their fields are left out.
    sql = (
        "SELECT get_mqtt_property('content_type') AS ct, "
        "get_mqtt_property('format_indicator') AS fi, "
        "get_mqtt_property('correlation_data') AS cd FROM 'device/data'"
    )
    assert output(sql, {}, BARE) == {"fi": "UNSPECIFIED_BYTES"}


def test_get_mqtt_property_with_a_name_from_the_payload():
    sql = "SELECT get_mqtt_property(p) AS v FROM 'device/data'"
    assert output(sql, {"p": "response_topic"}) == {"v": "reply/sensor-1"}
    assert output(sql, {"p": "qos"}) == {}  # not a documented name: Undefined
    assert output(sql, {"p": 5}) == {}


def test_get_mqtt_property_refuses_an_unknown_literal_name_and_sql_v1():
    assert "does not know 'qos'" in refusal("SELECT get_mqtt_property('qos') AS q FROM 't'")
    assert "requires SQL version 2016-03-23" in refusal(
        "SELECT get_mqtt_property('content_type') AS c FROM 't'", V1
    )


# SET clause (iot-sql-set) ------------------------------------------------------------------
def test_set_example_accessing_members_of_an_embedded_object():
    sql = (
        "SET @device_sensor_data = device1.deviceData.sensors "
        "SELECT @device_sensor_data.temp_fahrenheit AS temp_fahrenheit, "
        "@device_sensor_data.humidity AS humidity FROM 'device/data'"
    )
    payload = {
        "device1": {
            "deviceId": "weather_sensor",
            "deviceData": {
                "sensors": {"temp_fahrenheit": 75, "humidity": 60},
                "location": [47.606, -122.332],
            },
        }
    }
    assert output(sql, payload) == {"temp_fahrenheit": 75, "humidity": 60}


def test_set_variables_in_where_in_later_variables_and_in_nested_queries():
    sql = (
        "SET @limit = 50, @next = @limit + 1 "
        "SELECT @next AS next, (SELECT VALUE v FROM readings WHERE v > @limit) AS high "
        "FROM 'device/data' WHERE t > @limit"
    )
    payload = {"t": 60, "readings": [{"v": 10}, {"v": 70}]}
    assert output(sql, payload) == {"next": 51, "high": [70]}
    assert output(sql, {"t": 10}) is None


def test_set_variable_is_evaluated_once_per_message():
    # newuuid() differs at each call: two uses of one variable show one evaluation.
    result = output("SET @id = newuuid() SELECT @id AS a, @id AS b FROM 'device/data'", {})
    assert result["a"] == result["b"]
    assert len(result["a"]) == 36


def test_set_variable_with_an_undefined_value_is_left_out():
    assert output("SET @u = missing SELECT @u AS u, 1 AS one FROM 'device/data'", {}) == {"one": 1}


def test_set_variable_keeps_the_message_context_functions():
    sql = (
        "SET @ip = sourceip(), @p = get_user_properties('region') "
        "SELECT @ip AS ip, @p AS p FROM 'a'"
    )
    assert output(sql, {}) == {"ip": "203.0.113.7", "p": ["eu"]}


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT @x AS a FROM 't'", "Variable @x is not defined"),
        ("SET @a = 1, @a = 2 SELECT @a AS a FROM 't'", "assigned twice"),
        ("SET @a = @a SELECT @a AS a FROM 't'", "Variable @a is not defined"),
        ("SET @b = @a, @a = 1 SELECT @b AS b FROM 't'", "Variable @a is not defined"),
        ("SET a = 1 SELECT 1 AS a FROM 't'", "SET @name = expression"),
        ("SET @a = 1", "must be followed by a SELECT clause"),
        ("SET @a = 1 SET @b = 2 SELECT 1 AS x FROM 't'", "only once per statement"),
        ("SELECT 1 AS x FROM 't' SET @a = 1", "must come first"),
        ("SET @" + "a" * 65 + " = 1 SELECT 1 AS x FROM 't'", "at most 64 characters"),
    ],
)
def test_set_clause_refusals(sql, reason):
    assert reason in refusal(sql)


def test_a_field_named_set_is_still_a_field():
    sql = "SELECT set, a.set AS inner FROM 'device/data'"
    assert output(sql, {"set": 1, "a": {"set": 2}}) == {"set": 1, "inner": 2}


def test_set_variable_name_of_64_characters_is_accepted():
    name = "v" * 64
    assert output(f"SET @{name} = 7 SELECT @{name} AS v FROM 'device/data'", {}) == {"v": 7}


def test_set_variables_reach_the_rules_substitution_templates():
    # "iot-sql-set": variables can be used in action and error action substitution templates;
    # the rule's evaluation leaves its values in the message context the actions render with.
    context = MessageContext(topic="device/data")
    rule = compile_sql("SET @room = upper(room) SELECT v FROM 'device/data'")
    rule.evaluate(b'{"room": "lab", "v": 1}', context)
    assert compile_template("rooms/${@room}/${@room + '-' + v}", V2)(b'{"v": 1}', context) == (
        "rooms/LAB/LAB-1"
    )
    # a rule without SET clears what an earlier rule of the message left
    compile_sql("SELECT v FROM 'device/data'").evaluate(b'{"v": 1}', context)
    assert compile_template("rooms/${@room}", V2)(b"{}", context) == "rooms/"


def test_a_template_reading_a_variable_the_set_clause_does_not_define_is_refused():
    action = {"s3": {"bucketName": "b", "key": "${@room}/${@floor}", "roleArn": "r"}}
    templated = {"s3": ("key",)}
    check_templates(action, templated, V2, frozenset({"room", "floor"}))
    with pytest.raises(SqlError, match="reads @floor, which the rule's SET clause"):
        check_templates(action, templated, V2, frozenset({"room"}))
