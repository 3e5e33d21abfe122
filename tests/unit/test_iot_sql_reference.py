"""IoT SQL statements and payloads from AWS's IoT SQL reference, with the documented outputs.

Each case names the AWS IoT developer guide page it comes from. Where a page shows a function
example on its own (`abs(-5)` returns 5), the case wraps it as `SELECT VALUE <expr>`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest

from emulator.rules.sql import MessageContext, compile_sql

CTX = MessageContext(
    topic="topic/subtopic",
    client_id="iotconsole-1511213971966-0",
    principal="ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373",
    timestamp_ms=1481825251155,
    account_id="123456789012",
    user_properties=(("key1", "value1"),),
    source_ip="198.51.100.4",
    mqtt_properties=(("content_type", "text/plain"), ("format_indicator", 1)),
)
RED_50 = {"color": "red", "temperature": 50}
SENSORS = {
    "e": [
        {"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
        {"n": "light", "u": "lm", "t": 1235, "v": 135},
        {"n": "acidity", "u": "pH", "t": 1235, "v": 7},
    ]
}
NO_OUTPUT = object()

# (page, sql, payload, expected output)
CASES = [
    # iot-sql-select
    ("iot-sql-select", "SELECT * FROM 'topic/subtopic'", RED_50, RED_50),
    ("iot-sql-select", "SELECT color FROM 'topic/subtopic'", RED_50, {"color": "red"}),
    (
        "iot-sql-select",
        "SELECT color AS my_color FROM 'topic/subtopic'",
        RED_50,
        {"my_color": "red"},
    ),
    (
        "iot-sql-select",
        "SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'",
        RED_50,
        {"my_color": "red", "fahrenheit": 50},
    ),
    (
        "iot-sql-select",
        "SELECT *, 15 as speed FROM 'topic/subtopic'",
        RED_50,
        {"color": "red", "temperature": 50, "speed": 15},
    ),
    ("iot-sql-select", "SELECT VALUE color FROM 'topic/subtopic'", RED_50, "red"),
    (
        "iot-sql-select",
        "SELECT color.red as red_value FROM 'topic/subtopic'",
        {"color": {"red": 255, "green": 0, "blue": 0}, "temperature": 50},
        {"red_value": 255},
    ),
    (
        "iot-sql-select",
        "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color "
        "FROM 'topic/subtopic'",
        RED_50,
        {"celsius": 10, "my_color": "RED"},
    ),
    # iot-sql-from
    (
        "iot-sql-from",
        "SELECT temperature AS t FROM 'topic/subtopic'",
        {"temperature": 50},
        {"t": 50},
    ),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/#'", {"temperature": 60}, {"t": 60}),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/+'", {"temperature": 50}, {"t": 50}),
    # iot-sql-where
    (
        "iot-sql-where",
        "SELECT color AS my_color FROM 'topic/subtopic' WHERE temperature > 50 AND color <> 'red'",
        {"color": "red", "temperature": 40},
        NO_OUTPUT,
    ),
    # iot-sql-case
    (
        "iot-sql-case",
        "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' "
        "WHEN 'red' THEN 'stop' ELSE 'you are not at a stop light' END as instructions "
        "FROM 'topic/subtopic'",
        {"color": "yellow"},
        {"instructions": "caution"},
    ),
    # iot-sql-literals
    (
        "iot-sql-literals",
        "SELECT {'latitude': get(lat_long, 0),'longitude':get(lat_long, 1)} as lat_long "
        "FROM 'topic/subtopic'",
        {"lat_long": [47.606, -122.332]},
        {"lat_long": {"latitude": 47.606, "longitude": -122.332}},
    ),
    (
        "iot-sql-literals",
        "SELECT [lat,long] as lat_long FROM 'topic/subtopic'",
        {"lat": 47.606, "long": -122.332},
        {"lat_long": [47.606, -122.332]},
    ),
    (
        "iot-sql-data-types",
        "SELECT NULL AS n FROM 'topic/subtopic'",
        {},
        {"n": None},
    ),
    # iot-sql-json
    (
        "iot-sql-json",
        "SELECT * from 'topic/subtopic' WHERE "
        'get(get(get(mydata,"item2"),"0"),"my-key") = "myValue"',
        {"mydata": {"item2": {"0": {"my-key": "myValue"}}}},
        {"mydata": {"item2": {"0": {"my-key": "myValue"}}}},
    ),
    (
        "iot-sql-json",
        "SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'",
        {"deviceid": "iot123", "temp": 54.98, "humidity": 32.43},
        {"temp": 54.98, "hashed_id": "e37f81fb397e595c4aeb5645b8cbbbd1"},
    ),
    # iot-sql-nested-queries
    (
        "iot-sql-nested-queries",
        "SELECT (SELECT VALUE n FROM e) as sensors FROM 'topic/subtopic'",
        SENSORS,
        {"sensors": ["temperature", "light", "acidity"]},
    ),
    (
        "iot-sql-nested-queries",
        "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'topic/subtopic'",
        SENSORS,
        {"temperature": [{"v": 22.5}]},
    ),
    (
        "iot-sql-nested-queries",
        "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature "
        "FROM 'topic/subtopic'",
        SENSORS,
        {"temperature": 22.5},
    ),
    # iot-rule-sql-version
    (
        "iot-rule-sql-version",
        "SELECT VALUE arr FROM 'topic/subtopic'",
        {"a": {"b": "c"}, "arr": [1, 2, 3, 4]},
        [1, 2, 3, 4],
    ),
    # iot-sql-functions (function examples, wrapped in SELECT VALUE)
    ("iot-sql-functions abs", "SELECT VALUE abs(-5) FROM 'topic/subtopic'", {}, 5),
    (
        "iot-sql-functions accountid",
        "SELECT VALUE accountid() FROM 'topic/subtopic'",
        {},
        "123456789012",
    ),
    ("iot-sql-functions cast", "SELECT VALUE cast(true as Int) FROM 'topic/subtopic'", {}, 1),
    ("iot-sql-functions ceil", "SELECT VALUE ceil(1.2) FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions ceil", "SELECT VALUE ceil(-1.2) FROM 'topic/subtopic'", {}, -1),
    ("iot-sql-functions chr", "SELECT VALUE chr(65) FROM 'topic/subtopic'", {}, "A"),
    (
        "iot-sql-functions clientid",
        "SELECT VALUE clientid() FROM 'topic/subtopic'",
        {},
        "iotconsole-1511213971966-0",
    ),
    ("iot-sql-functions concat", "SELECT VALUE concat(1) FROM 'topic/subtopic'", {}, 1),
    (
        "iot-sql-functions concat",
        "SELECT VALUE concat([1, 2, 3], 4) FROM 'topic/subtopic'",
        {},
        [1, 2, 3, 4],
    ),
    (
        "iot-sql-functions concat",
        "SELECT VALUE concat([1, 2, 3], 'hello', [4, 5, 6]) FROM 'topic/subtopic'",
        {},
        [1, 2, 3, "hello", 4, 5, 6],
    ),
    (
        "iot-sql-functions concat",
        "SELECT VALUE concat(1, 'hello') FROM 'topic/subtopic'",
        {},
        "1hello",
    ),
    (
        "iot-sql-functions concat",
        "SELECT VALUE concat('he','is','man') FROM 'topic/subtopic'",
        {},
        "heisman",
    ),
    (
        "iot-sql-functions decode",
        "SELECT decode(encoded_temp,'base64').temperature AS temp from 'topic/subtopic'",
        {"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="},
        {"temp": 33},
    ),
    (
        "iot-sql-functions endswith",
        "SELECT VALUE endswith('cat','at') FROM 'topic/subtopic'",
        {},
        True,
    ),
    ("iot-sql-functions floor", "SELECT VALUE floor(1.2) FROM 'topic/subtopic'", {}, 1),
    ("iot-sql-functions floor", "SELECT VALUE floor(-1.2) FROM 'topic/subtopic'", {}, -2),
    (
        "iot-sql-functions get",
        "SELECT VALUE get(['a', 'b', 'c'], 1) FROM 'topic/subtopic'",
        {},
        "b",
    ),
    ("iot-sql-functions get", "SELECT VALUE get({'a':'b'}, 'a') FROM 'topic/subtopic'", {}, "b"),
    (
        "iot-sql-functions md5",
        "SELECT VALUE md5('hello') FROM 'topic/subtopic'",
        {},
        "5d41402abc4b2a76b9719d911017c592",
    ),
    (
        "iot-sql-functions indexof",
        "SELECT VALUE indexof('abcd', 'bc') FROM 'topic/subtopic'",
        {},
        1,
    ),
    ("iot-sql-functions isNull", "SELECT VALUE isNull(5) FROM 'topic/subtopic'", {}, False),
    ("iot-sql-functions isNull", "SELECT VALUE isNull(Null) FROM 'topic/subtopic'", {}, True),
    (
        "iot-sql-functions isUndefined",
        "SELECT VALUE isUndefined(5) FROM 'topic/subtopic'",
        {},
        False,
    ),
    (
        "iot-sql-functions isUndefined",
        "SELECT VALUE isUndefined(floor([1,2,3])) FROM 'topic/subtopic'",
        {},
        True,
    ),
    ("iot-sql-functions length", "SELECT VALUE length('hi') FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions length", "SELECT VALUE length(false) FROM 'topic/subtopic'", {}, 5),
    ("iot-sql-functions lower", "SELECT VALUE lower('HELLO') FROM 'topic/subtopic'", {}, "hello"),
    (
        "iot-sql-functions lower",
        "SELECT VALUE lower(['HELLO']) FROM 'topic/subtopic'",
        {},
        '["hello"]',
    ),
    (
        "iot-sql-functions lpad",
        "SELECT VALUE lpad('hello', 2) FROM 'topic/subtopic'",
        {},
        "  hello",
    ),
    ("iot-sql-functions lpad", "SELECT VALUE lpad(1, 3) FROM 'topic/subtopic'", {}, "   1"),
    ("iot-sql-functions mod", "SELECT VALUE mod(8, 3) FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions nanvl", "SELECT VALUE nanvl(8, 3) FROM 'topic/subtopic'", {}, 8),
    ("iot-sql-functions numbytes", "SELECT VALUE numbytes('hi') FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions numbytes", "SELECT VALUE numbytes('€') FROM 'topic/subtopic'", {}, 3),
    (
        "iot-sql-functions parse_time",
        "SELECT parse_time('yyyy.MM.dd G ''at'' HH:mm:ss z', 100000000, 'America/Belize') as ts "
        "FROM 'topic/subtopic'",
        {},
        {"ts": "1970.01.01 AD at 21:46:40 CST"},
    ),
    # SQL V2 processes whole-number Decimals as Ints ("iot-sql-data-types"): 32.0 -> 32.
    ("iot-sql-functions power", "SELECT VALUE power(2, 5) FROM 'topic/subtopic'", {}, 32),
    (
        "iot-sql-functions principal",
        "SELECT VALUE principal() FROM 'topic/subtopic'",
        {},
        "ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373",
    ),
    ("iot-sql-functions remainder", "SELECT VALUE remainder(8, 3) FROM 'topic/subtopic'", {}, 2),
    (
        "iot-sql-functions replace",
        "SELECT VALUE replace('abcd', 'bc', 'x') FROM 'topic/subtopic'",
        {},
        "axd",
    ),
    (
        "iot-sql-functions replace",
        "SELECT VALUE replace('abcdabcd', 'b', 'x') FROM 'topic/subtopic'",
        {},
        "axcdaxcd",
    ),
    (
        "iot-sql-functions rpad",
        "SELECT VALUE rpad('hello', 2) FROM 'topic/subtopic'",
        {},
        "hello  ",
    ),
    ("iot-sql-functions round", "SELECT VALUE Round(1.2) FROM 'topic/subtopic'", {}, 1),
    ("iot-sql-functions round", "SELECT VALUE Round(1.5) FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions round", "SELECT VALUE Round(-1.1) FROM 'topic/subtopic'", {}, -1),
    ("iot-sql-functions round", "SELECT VALUE Round(-1.5) FROM 'topic/subtopic'", {}, -2),
    ("iot-sql-functions rtrim", "SELECT VALUE rtrim(' h i ') FROM 'topic/subtopic'", {}, " h i"),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', 2) FROM 'topic/subtopic'",
        {},
        "2345",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', 2.745) FROM 'topic/subtopic'",
        {},
        "2345",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring(123, 2) FROM 'topic/subtopic'",
        {},
        "3",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', -1) FROM 'topic/subtopic'",
        {},
        "012345",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring(true, 1.2) FROM 'topic/subtopic'",
        {},
        "rue",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', 1, 3) FROM 'topic/subtopic'",
        {},
        "12",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', -50, 50) FROM 'topic/subtopic'",
        {},
        "012345",
    ),
    (
        "iot-sql-functions substring",
        "SELECT VALUE substring('012345', 3, 1) FROM 'topic/subtopic'",
        {},
        "",
    ),
    (
        "iot-sql-functions sql_version",
        "SELECT VALUE sql_version() FROM 'topic/subtopic'",
        {},
        "2016-03-23",
    ),
    ("iot-sql-functions sqrt", "SELECT VALUE sqrt(9) FROM 'topic/subtopic'", {}, 3),
    (
        "iot-sql-functions startswith",
        "SELECT VALUE startswith('ranger','ran') FROM 'topic/subtopic'",
        {},
        True,
    ),
    (
        "iot-sql-functions timestamp",
        "SELECT VALUE timestamp() FROM 'topic/subtopic'",
        {},
        1481825251155,
    ),
    ("iot-sql-functions topic", "SELECT VALUE topic() FROM 'topic/subtopic'", {}, "topic/subtopic"),
    ("iot-sql-functions topic", "SELECT VALUE topic(1) FROM 'topic/subtopic'", {}, "topic"),
    ("iot-sql-functions trim", "SELECT VALUE Trim(' hi ') FROM 'topic/subtopic'", {}, "hi"),
    ("iot-sql-functions trunc", "SELECT VALUE trunc(2.3, 0) FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions trunc", "SELECT VALUE trunc(2.3123, 2) FROM 'topic/subtopic'", {}, 2.31),
    ("iot-sql-functions trunc", "SELECT VALUE trunc(2.888, 2) FROM 'topic/subtopic'", {}, 2.88),
    ("iot-sql-functions trunc", "SELECT VALUE trunc(2.00, 5) FROM 'topic/subtopic'", {}, 2),
    ("iot-sql-functions upper", "SELECT VALUE upper('hello') FROM 'topic/subtopic'", {}, "HELLO"),
    (
        "iot-sql-functions upper",
        "SELECT VALUE upper(['hello']) FROM 'topic/subtopic'",
        {},
        '["HELLO"]',
    ),
    (
        "iot-sql-functions get_user_properties",
        "SELECT get(get_user_properties('key1'), 0) AS p, get_user_properties('key1') AS all, "
        "get_user_properties('none') AS none FROM 'topic/subtopic'",
        {},
        {"p": "value1", "all": ["value1"]},
    ),
    # iot-sql-data-types conversions: abs("-5.123") is treated as abs(-5.123)
    ("iot-sql-data-types", "SELECT VALUE abs('-5.123') FROM 'topic/subtopic'", {}, 5.123),
    # iot-sql-operators
    ("iot-sql-operators +", "SELECT VALUE 'a' + 1 FROM 'topic/subtopic'", {}, "a1"),
    ("iot-sql-operators +", "SELECT VALUE 1 + 2 FROM 'topic/subtopic'", {}, 3),
    ("iot-sql-operators -", "SELECT VALUE '10' - 4 FROM 'topic/subtopic'", {}, 6),
    ("iot-sql-operators >", "SELECT VALUE '10' > 9 FROM 'topic/subtopic'", {}, True),
    ("iot-sql-operators =", "SELECT VALUE '1' = 1 FROM 'topic/subtopic'", {}, False),
    ("iot-sql-operators AND", "SELECT VALUE 'TRUE' AND true FROM 'topic/subtopic'", {}, True),
    ("iot-sql-operators NOT", "SELECT VALUE NOT 'false' FROM 'topic/subtopic'", {}, True),
    ("iot-sql-operators %", "SELECT VALUE 8 % 3 FROM 'topic/subtopic'", {}, 2),
    (
        "iot-sql-operators = (Object)",
        "SELECT VALUE a = {'y': 2, 'x': 1} FROM 'topic/subtopic'",
        {"a": {"x": 1, "y": 2}},
        True,
    ),
    (
        "iot-sql-operators IN",
        "SELECT * FROM 'topic/subtopic' WHERE 3 in arr",
        {"arr": [1, 2, 3, "three", 5.7, None]},
        {"arr": [1, 2, 3, "three", 5.7, None]},
    ),
    (
        "iot-sql-operators IN",
        "SELECT * FROM 'topic/subtopic' WHERE 4 in arr",
        {"arr": [1, 2, 3, "three", 5.7, None]},
        NO_OUTPUT,
    ),
    # iot-sql-operators: Undefined propagates, so a missing field makes WHERE not true.
    (
        "iot-sql-operators =",
        "SELECT * FROM 'topic/subtopic' WHERE missing = 1 OR true",
        {"a": 1},
        NO_OUTPUT,
    ),
    # iot-sql-data-types: Undefined members are omitted from the output object.
    ("iot-sql-data-types", "SELECT a, bar FROM 'topic/subtopic'", {"a": None}, {"a": None}),
    # iot-sql-set: a variable holding an embedded object, its members read with JSON extensions
    (
        "iot-sql-set",
        "SET @device_sensor_data = device1.deviceData.sensors "
        "SELECT @device_sensor_data.temp_fahrenheit AS temp_fahrenheit, "
        "@device_sensor_data.humidity AS humidity FROM 'topic/subtopic'",
        {"device1": {"deviceData": {"sensors": {"temp_fahrenheit": 75, "humidity": 60}}}},
        {"temp_fahrenheit": 75, "humidity": 60},
    ),
]


@pytest.mark.parametrize(
    ("page", "sql", "payload", "expected"),
    CASES,
    ids=[f"{i:02d}-{c[0]}" for i, c in enumerate(CASES)],
)
def test_reference_example(page, sql, payload, expected):
    # given the documented statement, compiled once
    rule = compile_sql(sql)
    # when the documented payload arrives
    result = rule.evaluate(json.dumps(payload).encode(), CTX)
    # then the output is the documented one (compact JSON, as the rules engine emits it)
    if expected is NO_OUTPUT:
        assert result is None
    else:
        assert result is not None
        assert json.loads(result.to_bytes()) == expected


def test_reference_has_at_least_forty_cases():
    assert len(CASES) >= 40


# binary-payloads ------------------------------------------------------------------------------
BINARY = bytes(range(256))


def test_binary_payload_select_star_is_the_raw_bytes():
    # given SELECT * (binary-payloads) and a non-JSON payload
    rule = compile_sql("SELECT * FROM 'topic/subtopic'")
    # when it is evaluated, then the output is the payload, byte for byte
    assert rule.evaluate(BINARY, CTX).to_bytes() == BINARY


def test_binary_payload_can_be_base64_encoded_with_a_timestamp():
    # binary-payloads: SELECT encode(*, 'base64') AS data, timestamp() AS ts
    rule = compile_sql(
        "SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'topic/subtopic'"
    )
    out = json.loads(rule.evaluate(BINARY, CTX).to_bytes())
    assert base64.b64decode(out["data"]) == BINARY
    assert out["ts"] == CTX.timestamp_ms


def test_binary_payload_field_in_where_is_undefined_so_no_output():
    # binary-payloads: WHERE device_type = 'thermostat' is supported; the field is Undefined
    rule = compile_sql("SELECT * FROM 'topic/subtopic' WHERE device_type = 'thermostat'")
    assert rule.evaluate(BINARY, CTX) is None


def test_binary_payload_where_on_timestamp_keeps_the_raw_bytes():
    # binary-payloads: SELECT * FROM 'topic/subtopic' WHERE timestamp() % 12 = 0
    rule = compile_sql("SELECT * FROM 'topic/subtopic' WHERE timestamp() % 12 = 0")
    ctx = MessageContext(topic="topic/subtopic", timestamp_ms=1200)
    assert rule.evaluate(BINARY, ctx).to_bytes() == BINARY


# Every function of the reference page ---------------------------------------------------------
# https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html
# (anchor, SQL version, expression, payload, the output's exact JSON text, "" for Undefined).
# The page's examples print double-precision results as SQL V1 does (power(2, 5) = 32.0), so
# those run with 2015-10-08; with 2016-03-23 the same whole numbers are Ints (see
# tests/unit/test_iot_sql_versions.py).
V1, V2 = "2015-10-08", "2016-03-23"
FUNCTION_CASES = [
    ("iot-func-abs", V2, "abs(-5)", {}, "5"),
    ("iot-func-abs", V2, "abs(-5.25)", {}, "5.25"),
    ("iot-func-abs", V2, "abs('-5.123')", {}, "5.123"),
    ("iot-func-abs", V2, "abs(true)", {}, ""),
    ("iot-func-abs", V2, "abs(null)", {}, ""),
    ("iot-sql-function-accountid", V2, "accountid()", {}, '"123456789012"'),
    ("iot-func-acos", V1, "acos(0)", {}, "1.5707963267948966"),
    ("iot-func-acos", V1, "acos('x')", {}, ""),
    ("iot-func-asin", V1, "asin(0)", {}, "0.0"),
    ("iot-func-atan", V1, "atan(0)", {}, "0.0"),
    ("iot-func-atan2", V1, "atan2(1, 0)", {}, "1.5707963267948966"),
    ("iot-func-bitand", V2, "bitand(13, 5)", {}, "5"),
    ("iot-func-bitand", V2, "bitand(13.9, '5.7')", {}, "5"),  # rounded down
    ("iot-func-bitand", V2, "bitand(13, 'x')", {}, ""),
    ("iot-func-bitor", V2, "bitor(8, 5)", {}, "13"),
    ("iot-func-xbitor", V2, "bitxor(13, 5)", {}, "8"),
    ("iot-func-bitnot", V2, "bitnot(13)", {}, "-14"),
    ("iot-sql-function-cast", V2, "cast(true as Int)", {}, "1"),
    ("iot-sql-function-cast", V2, "cast(2.9 as Int)", {}, "2"),
    ("iot-sql-function-cast", V2, "cast('-1.2' as Int)", {}, "-2"),  # rounded down
    ("iot-sql-function-cast", V2, "cast(0 as Boolean)", {}, "false"),
    ("iot-sql-function-cast", V2, "cast(2.5 as Bool)", {}, "true"),
    ("iot-sql-function-cast", V2, "cast(12 as String)", {}, '"12"'),
    ("iot-sql-function-cast", V2, "cast('5E-12' as Decimal)", {}, "5E-12"),
    ("iot-sql-function-cast", V1, "cast(true as Double)", {}, "1.0"),
    ("iot-sql-function-cast", V2, "cast(null as Int)", {}, ""),
    ("iot-func-ceil", V2, "ceil(1.2)", {}, "2"),
    ("iot-func-ceil", V2, "ceil(-1.2)", {}, "-1"),
    ("iot-func-ceil", V2, "ceil('1.2')", {}, "2"),
    ("iot-func-chr", V2, "chr(65)", {}, '"A"'),
    ("iot-func-chr", V2, "chr(49)", {}, '"1"'),
    ("iot-func-chr", V2, "chr(65.9)", {}, '"A"'),
    ("iot-func-chr", V2, "chr(true)", {}, ""),
    ("iot-sql-function-clientid", V2, "clientid()", {}, '"iotconsole-1511213971966-0"'),
    ("iot-func-concat", V2, "concat()", {}, ""),
    ("iot-func-concat", V2, "concat([1, 2, 3], 'hello')", {}, '[1,2,3,"hello"]'),
    ("iot-func-concat", V2, "concat('con', 'cat')", {}, '"concat"'),
    # 2+ arguments with neither an Array nor a String: no result in the table, so Undefined
    ("iot-func-concat", V2, "concat(1, 2)", {}, ""),
    ("iot-func-cos", V1, "cos(0)", {}, "1.0"),
    ("iot-func-cosh", V1, "cosh(2.3)", {}, "5.037220649268761"),
    ("iot-sql-decode-base64", V2, "decode('aGk=', 'base64')", {}, '"hi"'),
    ("iot-sql-decode-base64", V2, "decode('not base64!', 'base64')", {}, "null"),
    ("iot-sql-encode-payload", V2, "encode('hi', 'base64')", {}, '"aGk="'),
    ("iot-func-endswith", V2, "endswith('cat', 'at')", {}, "true"),
    ("iot-func-endswith", V2, "endswith(null, 'at')", {}, ""),
    ("iot-func-exp", V1, "exp(1)", {}, "2.718281828459045"),
    ("iot-func-floor", V2, "floor(-1.2)", {}, "-2"),
    ("iot-sql-function-get", V2, "get(['a', 'b', 'c'], 1)", {}, '"b"'),
    ("iot-sql-function-get", V2, "get({'a': 'b'}, 'a')", {}, '"b"'),
    ("iot-sql-function-get", V2, "get(['a', 'b', 'c'], 3)", {}, ""),
    # The page's get("abc", 1) = "a" contradicts its own table ("the character at the
    # 0-based index"); the table is followed.
    ("iot-sql-function-get", V2, "get('abc', 1)", {}, '"b"'),
    ("iot-sql-function-hash", V2, "md2('hello')", {}, '"a9046c73e00331af68917d3804f70655"'),
    ("iot-sql-function-hash", V2, "md5('hello')", {}, '"5d41402abc4b2a76b9719d911017c592"'),
    (
        "iot-sql-function-hash",
        V2,
        "sha1('hello')",
        {},
        '"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"',
    ),
    # "Standard string conversions apply to non-string arguments": md2(1) is md2("1").
    ("iot-sql-function-hash", V2, "md2(1) = md2('1')", {}, "true"),
    *[
        ("iot-sql-function-hash", V2, f"{name}(1)", {}, f'"{hashlib.new(name, b"1").hexdigest()}"')
        for name in ("sha224", "sha256", "sha384", "sha512")
    ],
    ("iot-sql-function-indexof", V2, "indexof('abcd', 'bc')", {}, "1"),
    ("iot-sql-function-isNull", V2, "isNull(missing)", {}, "false"),
    ("iot-sql-function-isUndefined", V2, "isUndefined(floor([1,2,3]))", {}, "true"),
    ("iot-sql-function-length", V2, "length(false)", {}, "5"),
    ("iot-func-nln", V1, "ln(1)", {}, "0.0"),
    ("iot-func-log", V1, "log(100)", {}, "2.0"),
    ("iot-func-lower", V2, "lower(['HELLO'])", {}, '"[\\"hello\\"]"'),
    ("iot-func-lpad", V2, "lpad('hello', 2)", {}, '"  hello"'),
    ("iot-func-lpad", V2, "lpad('a', 1.9)", {}, '" a"'),
    ("iot-func-lpad", V2, "lpad('a', -3)", {}, '"a"'),
    # The page prints Ltrim(" h i ") = "hi ", but describes removing leading white space only.
    ("iot-func-ltrim", V2, "ltrim(' h i ')", {}, '"h i "'),
    ("iot-func-mod", V2, "mod(8, 3)", {}, "2"),
    ("iot-func-mod", V2, "mod(-8, 3)", {}, "-2"),
    ("iot-func-mod", V2, "mod(8.5, '3')", {}, "2.5"),
    ("iot-func-mod", V2, "mod(8, 0)", {}, ""),
    ("iot-func-nanvl", V2, "nanvl(8, 3)", {}, "8"),
    ("iot-func-nanvl", V2, "nanvl(missing, 3)", {}, "3"),
    ("iot-func-nanvl", V2, "nanvl(null, 3)", {}, "3"),
    ("iot-func-nanvl", V2, "nanvl('x', 3)", {}, '"x"'),
    ("iot-sql-function-numbytes", V2, "numbytes('€')", {}, "3"),
    (
        "iot-sql-function-parse-time",
        V2,
        "parse_time('yyyy', 1481825251155, 'UTC')",
        {},
        '"2016"',
    ),
    (
        "iot-sql-function-parse-time",
        V2,
        "parse_time('yyyy-MM-dd HH:mm:ss.SSS Z', 1481825251155, 'America/Los_Angeles')",
        {},
        '"2016-12-15 10:07:31.155 -0800"',
    ),
    ("iot-sql-function-parse-time", V2, "parse_time('yyyy', 0, 'Not/AZone')", {}, ""),
    ("iot-func-power", V1, "power(2, 5)", {}, "32.0"),
    ("iot-func-power", V2, "power(2, 5)", {}, "32"),
    ("iot-func-regex-matches", V2, "regexp_matches('aaaa', 'a{2,}')", {}, "true"),
    ("iot-func-regex-matches", V2, "regexp_matches('aaaa', 'b')", {}, "false"),
    ("iot-func-regex-matches", V2, "regexp_matches('aaaa', '(')", {}, ""),
    ("iot-func-regex-replace", V2, "regexp_replace('abcd', 'bc', 'x')", {}, '"axd"'),
    ("iot-func-regex-replace", V2, "regexp_replace('abcd', 'b(.*)d', '$1')", {}, '"ac"'),
    ("iot-func-regex-substr", V2, "regexp_substr('hihihello', 'hi')", {}, '"hi"'),
    ("iot-func-regex-substr", V2, "regexp_substr('hihihello', '(hi)*')", {}, '"hihi"'),
    ("iot-func-remainder", V2, "remainder(8, 3)", {}, "2"),
    ("iot-func-replace", V2, "replace('abcdabcd', 'b', 'x')", {}, '"axcdaxcd"'),
    ("iot-func-rpad", V2, "rpad(1, 3)", {}, '"1   "'),
    ("iot-func-round", V2, "Round(1.7)", {}, "2"),
    ("iot-func-round", V2, "Round(-1.5)", {}, "-2"),
    ("iot-func-sign", V2, "sign(-7)", {}, "-1"),
    ("iot-func-sign", V2, "sign(0)", {}, "0"),
    ("iot-func-sign", V2, "sign(13)", {}, "1"),
    ("iot-func-sign", V2, "sign('-0.5')", {}, "-1"),
    ("iot-func-sign", V2, "sign('x')", {}, ""),
    ("iot-func-sin", V1, "sin(0)", {}, "0.0"),
    ("iot-func-sinh", V1, "sinh(2.3)", {}, "4.936961805545957"),
    ("iot-func-substring", V2, "substring('012345', 0)", {}, '"012345"'),
    ("iot-func-substring", V2, "substring(false, -2.411E247)", {}, '"false"'),
    ("iot-sql-function-sql-version", V1, "sql_version()", {}, '"2015-10-08"'),
    ("iot-func-sqrt", V1, "sqrt(9)", {}, "3.0"),
    ("iot-func-sqrt", V2, "sqrt(-1)", {}, ""),
    ("iot-func-startswith", V2, "startswith('ranger', 'ran')", {}, "true"),
    ("iot-func-tan", V1, "tan(3)", {}, "-0.1425465430742778"),
    ("iot-func-tanh", V1, "tanh(2.3)", {}, "0.9800963962661914"),
    (
        "iot-sql-function-time-to-epoch",
        V2,
        "time_to_epoch('2020-04-03 09:45:18 UTC+01:00', 'yyyy-MM-dd HH:mm:ss VV')",
        {},
        "1585903518000",
    ),
    (
        "iot-sql-function-time-to-epoch",
        V2,
        "time_to_epoch('18 December 2015', 'dd MMMM yyyy')",
        {},
        "1450396800000",
    ),
    (
        "iot-sql-function-time-to-epoch",
        V2,
        "time_to_epoch('2007-12-03 10:15:30.592 America/Los_Angeles', 'yyyy-MM-dd HH:mm:ss.SSS z')",
        {},
        "1196705730592",
    ),
    ("iot-sql-function-time-to-epoch", V2, "time_to_epoch('18 Dec', 'dd MMMM yyyy')", {}, ""),
    ("iot-sql-function-time-to-epoch", V2, "time_to_epoch(12, 'yyyy')", {}, ""),
    ("iot-function-timestamp", V2, "timestamp()", {}, "1481825251155"),
    ("iot-function-topic", V2, "topic(2)", {}, '"subtopic"'),
    ("iot-function-topic", V2, "topic(3)", {}, ""),
    ("iot-func-trim", V2, "trim(' hi ')", {}, '"hi"'),
    ("iot-func-trunc", V2, "trunc(2.3123, 2)", {}, "2.31"),
    ("iot-func-trunc", V2, "trunc(2.888, '2.9')", {}, "2.88"),  # places rounded down
    ("iot-func-trunc", V2, "trunc(2.888, -1)", {}, "2"),  # below zero: zero
    ("iot-func-trunc", V2, "trunc(7, 2)", {}, "7"),
    ("iot-func-trunc", V2, "trunc('x', 2)", {}, ""),
    ("iot-sql-function-upper", V2, "upper(['hello'])", {}, '"[\\"HELLO\\"]"'),
    # transform(): the page's three examples and "Any other value ... Undefined".
    (
        "iot-func-transform",
        V2,
        "transform('enrichArray', attributes, values)",
        {"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]},
        '[{"a":3,"data1":1,"data2":2},{"b":4,"data1":1,"data2":2},{"c":5,"data1":1,"data2":2}]',
    ),
    (
        "iot-func-transform",
        V2,
        "transform('enrichArray', {'key': attributes.data1}, values)",
        {"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]},
        '[{"a":3,"key":1},{"b":4,"key":1},{"c":5,"key":1}]',
    ),
    (
        "iot-func-transform",
        V2,
        "transform('enrichArray', (select a, b from data2), (select value c from data2))",
        {
            "data1": "example",
            "data2": {
                "a": "first attribute",
                "b": "second attribute",
                "c": [
                    {"x": {"someInt": 5, "someString": "hello"}, "y": True},
                    {"x": {"someInt": 10, "someString": "world"}, "y": False},
                ],
            },
        },
        '[{"x":{"someInt":5,"someString":"hello"},"y":true,'
        '"a":"first attribute","b":"second attribute"},'
        '{"x":{"someInt":10,"someString":"world"},"y":false,'
        '"a":"first attribute","b":"second attribute"}]',
    ),
    ("iot-func-transform", V2, "transform('other', {'k': 1}, [{'a': 1}])", {}, ""),
    ("iot-func-transform", V2, "transform('enrichArray', 5, [{'a': 1}])", {}, ""),
    ("iot-func-transform", V2, "transform('enrichArray', {'k': 1}, 'x')", {}, ""),
    ("iot-sql-function-get-or-default", V2, "get_or_default(missing, 'd')", {}, '"d"'),
    ("iot-sql-function-get-or-default", V2, "get_or_default(v, 'd')", {"v": None}, '"d"'),
    ("iot-sql-function-get-or-default", V2, "get_or_default(v, 'd')", {"v": 3}, "3"),
    (
        "iot-sql-function-get-user-properties",
        V2,
        "get_user_properties()",
        {},
        '[{"key1":"value1"}]',
    ),
    ("iot-sql-function-get-user-properties", V2, "get_user_properties('key1')", {}, '["value1"]'),
    ("iot-sql-function-sourceip", V2, "sourceip()", {}, '"198.51.100.4"'),
    (
        "iot-sql-function-get-mqtt-property",
        V2,
        "get_mqtt_property('content_type')",
        {},
        '"text/plain"',
    ),
    (
        "iot-sql-function-get-mqtt-property",
        V2,
        "get_mqtt_property('format_indicator')",
        {},
        '"UTF8_DATA"',
    ),
    ("iot-sql-function-get-mqtt-property", V2, "get_mqtt_property('response_topic')", {}, ""),
]

# Functions of the page that call other AWS services: tests/unit/test_iot_sql_service_functions.py
# and tests/emulator/rules/test_sql_service_functions.py. Functions whose result is random or
# per message are checked by shape.
OTHER_SERVICE_FUNCTIONS = {
    "aws_lambda",
    "get_dynamodb",
    "get_secret",
    "get_thing_shadow",
    "get_registry_data",
    "machinelearning_predict",
}
# The function headings of the reference page, lower-cased.
REFERENCE_FUNCTIONS = {
    *("abs accountid acos asin atan atan2 aws_lambda bitand bitor bitxor bitnot cast ceil chr"
      " clientid concat cos cosh decode encode endswith exp floor get get_dynamodb get_secret"
      " get_mqtt_property get_or_default get_user_properties sourceip"
      " get_thing_shadow md2 md5 sha1 sha224 sha256 sha384 sha512 indexof isnull isundefined"
      " length ln log lower lpad ltrim machinelearning_predict mod nanvl newuuid numbytes"
      " parse_time power principal rand regexp_matches regexp_replace regexp_substr remainder"
      " replace rpad round rtrim sign sin sinh substring sql_version sqrt startswith tan tanh"
      " time_to_epoch timestamp topic traceid transform trim trunc upper").split()
}  # fmt: skip
SHAPE_CHECKED = {"newuuid", "rand", "traceid", "principal"}


def _function_output(version, expression, payload):
    rule = compile_sql(f"SELECT VALUE {expression} FROM 'topic/subtopic'", version)
    result = rule.evaluate(json.dumps(payload).encode(), CTX)
    return result.to_bytes().decode()


@pytest.mark.parametrize(
    ("anchor", "version", "expression", "payload", "expected"),
    FUNCTION_CASES,
    ids=[f"{i:03d}-{c[0]}-{c[2][:30]}" for i, c in enumerate(FUNCTION_CASES)],
)
def test_function_reference(anchor, version, expression, payload, expected):
    # given a documented function call, when it is evaluated with the page's SQL version,
    # then the output is the documented value, printed exactly as the rules engine emits it
    assert _function_output(version, expression, payload) == expected


def test_every_function_of_the_reference_page_is_covered():
    covered = {c[2].split("(")[0].lower() for c in FUNCTION_CASES}
    covered |= {c[1].split("VALUE ")[-1].split("(")[0].lower() for c in CASES}
    missing = REFERENCE_FUNCTIONS - covered - OTHER_SERVICE_FUNCTIONS - SHAPE_CHECKED
    assert not missing


def test_functions_with_random_or_per_message_results_have_the_documented_shape():
    # newuuid(): a random 16-byte UUID; rand(): a double in [0, 1); traceid(): the MQTT
    # message's trace id (a UUID), Undefined when the message did not come over MQTT.
    out = json.loads(_function_output(V2, "[newuuid(), rand(), traceid(), principal()]", {}))
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", out[0])
    assert 0 <= out[1] < 1
    assert re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", out[2])
    assert out[3] == CTX.principal
    http = MessageContext(topic="topic/subtopic")  # clientid() is "n/a" over HTTP
    rule = compile_sql("SELECT traceid() AS t, clientid() AS c FROM 'topic/subtopic'")
    assert json.loads(rule.evaluate(b"{}", http).to_bytes()) == {"c": "n/a"}


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        # RFC 1319, A.5 test suite
        ("", "8350e5a3e24c153df2275c9f80692773"),
        ("a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"),
        ("abc", "da853b0d3f88d99b30283a69e6ded6bb"),
        ("message digest", "ab4f496bfb2a530b219ff33031fe06b0"),
        ("abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "d5976f79d83d3a0dc9806c3c66f3efd8",
        ),
    ],
)
def test_md2_matches_the_rfc_1319_test_suite(text, digest):
    assert _function_output(V2, f"md2('{text}')", {}) == f'"{digest}"'
