"""IoT SQL statements and payloads from AWS's IoT SQL reference, with the documented outputs.

Each case names the AWS IoT developer guide page it comes from. Where a page shows a function
example on its own (`abs(-5)` returns 5), the case wraps it as `SELECT VALUE <expr>`.
"""

from __future__ import annotations

import base64
import json

import pytest

from emulator.rules.sql import MessageContext, compile_sql

CTX = MessageContext(
    topic="topic/subtopic",
    client_id="iotconsole-1511213971966-0",
    principal="ba67293af50bf2506f5f93469686da660c7c844e7b3950bfb16813e0d31e9373",
    timestamp_ms=1481825251155,
    account_id="123456789012",
    user_properties=(("key1", "value1"),),
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
        "iot-sql-functions get_user_property",
        "SELECT get_user_property('key1') AS p FROM 'topic/subtopic'",
        {},
        {"p": "value1"},
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
