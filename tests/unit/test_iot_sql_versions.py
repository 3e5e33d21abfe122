"""SQL versions 2015-10-08, 2016-03-23 and beta, and the Decimal type's precision.

Each test names the AWS IoT developer guide page it follows:
https://docs.aws.amazon.com/iot/latest/developerguide/<page>.html
"""

from __future__ import annotations

import json

import pytest
from support.iot_sql import refusal

from emulator.rules.sql import (
    DEFAULT_VERSION,
    MessageContext,
    SqlError,
    SqlEvaluationError,
    compile_sql,
)

V1, V2 = "2015-10-08", "2016-03-23"
CTX = MessageContext(topic="topic/subtopic", client_id="c1", timestamp_ms=1481825251155)


def _out(sql: str, payload: object, version: str) -> str:
    result = compile_sql(sql, version).evaluate(json.dumps(payload).encode(), CTX)
    assert result is not None
    return result.to_bytes().decode()


def test_default_version_is_2015_10_08():
    # iot-rule-sql-version / AWS::IoT::TopicRule TopicRulePayload: AwsIotSqlVersion defaults
    # to 2015-10-08, the version a rule created without one runs with
    assert DEFAULT_VERSION == V1


# iot-sql-data-types: "With SQL V2 (2016-03-23), numeric values that are whole numbers, such as
# 10.0, are processed as an Int value (10) ... use SQL V1 (2015-10-08)" to keep the Decimal.
@pytest.mark.parametrize(
    ("sql", "payload", "v1", "v2"),
    [
        ("SELECT t FROM 'topic/subtopic'", {"t": 10.0}, '{"t":10.0}', '{"t":10}'),
        ("SELECT * FROM 'topic/subtopic'", {"t": 10.0}, '{"t":10.0}', '{"t":10}'),
        ("SELECT VALUE 10.0 FROM 'topic/subtopic'", {}, "10.0", "10"),
        ("SELECT VALUE t * 2 FROM 'topic/subtopic'", {"t": 2.5}, "5.0", "5"),
        # iot-sql-functions cast(): Double casts to a Decimal with double precision
        ("SELECT VALUE cast('10.0' AS Double) FROM 'topic/subtopic'", {}, "10.0", "10"),
        # a whole-number Decimal processed as an Int divides as an Int in V2
        ("SELECT VALUE 7 / 2.0 FROM 'topic/subtopic'", {}, "3.5", "3"),
        # iot-sql-functions power(2, 5) = 32.0 (the page prints the V1 result)
        ("SELECT VALUE power(2, 5) FROM 'topic/subtopic'", {}, "32.0", "32"),
        ("SELECT VALUE sql_version() FROM 'topic/subtopic'", {}, '"2015-10-08"', '"2016-03-23"'),
    ],
)
def test_whole_number_decimals_stay_decimals_only_in_2015_10_08(sql, payload, v1, v2):
    assert _out(sql, payload, V1) == v1
    assert _out(sql, payload, V2) == v2


# iot-rule-sql-version "What's new in 2016-03-23": nested object queries, literals, arrays as
# the top-level output, encode(); "iot-sql-literals": literals need 2016-03-23 or later;
# "iot-sql-functions": functions "Supported by SQL version 2016-03-23 and later".
@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("SELECT (SELECT VALUE n FROM e) AS s FROM 'topic/subtopic'", "A nested query"),
        ("SELECT {'a': 1} AS o FROM 'topic/subtopic'", "An object literal"),
        ("SELECT [1, 2] AS a FROM 'topic/subtopic'", "An array literal"),
        ("SELECT encode(*, 'base64') AS e FROM 'topic/subtopic'", "encode()"),
        ("SELECT decode(e, 'base64') AS d FROM 'topic/subtopic'", "decode()"),
        ("SELECT indexof(a, 'b') AS i FROM 'topic/subtopic'", "indexof()"),
        ("SELECT isUndefined(a) AS u FROM 'topic/subtopic'", "isUndefined()"),
        ("SELECT length(a) AS n FROM 'topic/subtopic'", "length()"),
        ("SELECT numbytes(a) AS n FROM 'topic/subtopic'", "numbytes()"),
        ("SELECT parse_time('yyyy', 0) AS y FROM 'topic/subtopic'", "parse_time()"),
        ("SELECT time_to_epoch('2015', 'yyyy') AS t FROM 'topic/subtopic'", "time_to_epoch()"),
        ("SELECT transform('enrichArray', a, b) AS t FROM 'topic/subtopic'", "transform()"),
        # iot-sql-functions cast(): Decimal, Bool and Boolean are 2016-03-23 keywords
        ("SELECT cast(a AS Decimal) AS d FROM 'topic/subtopic'", "cast("),
        ("SELECT cast(a AS Boolean) AS b FROM 'topic/subtopic'", "cast("),
        # "Fixes for selecting nested JSON objects" / "Fixes for array queries": the old
        # behaviour is not documented, so the emulator refuses rather than guesses
        ("SELECT state.reported.t FROM 'topic/subtopic'", "nested field"),
        ("SELECT a[0] AS first FROM 'topic/subtopic'", "array element"),
    ],
)
def test_2016_03_23_features_are_refused_in_2015_10_08(sql, what):
    reason = refusal(sql, V1)
    assert what in reason
    assert "requires SQL version 2016-03-23" in reason
    assert "iot-rule-sql-version" in reason
    compile_sql(sql, V2)  # and the same statement is accepted with 2016-03-23


def test_functions_documented_for_2015_10_08_work_there():
    # iot-sql-functions: e.g. concat(), get(), substring(), md2() are "Supported by SQL
    # version 2015-10-08 and later"
    sql = (
        "SELECT concat(a, 'x') AS c, get(a, 0) AS g, substring(a, 1) AS s, md5(a) AS h, "
        "cast(a AS Int) AS i FROM 'topic/subtopic' WHERE startswith(a, '4')"
    )
    out = json.loads(_out(sql, {"a": "42"}, V1))
    assert out == {
        "c": "42x",
        "g": "4",
        "s": "2",
        "h": "a1d0c6e83f027327d8461063f4ac58a6",
        "i": 42,
    }


def test_top_level_array_output_fails_in_2015_10_08():
    # iot-rule-sql-version: "Support to output an array as a top-level object" is new in
    # 2016-03-23 (example: SELECT VALUE arr gives [1,2,3,4])
    payload = json.dumps({"a": {"b": "c"}, "arr": [1, 2, 3, 4]}).encode()
    assert _out("SELECT VALUE arr FROM 'topic/subtopic'", json.loads(payload), V2) == "[1,2,3,4]"
    rule = compile_sql("SELECT VALUE arr FROM 'topic/subtopic'", V1)
    with pytest.raises(SqlEvaluationError, match="top-level"):
        rule.evaluate(payload, CTX)
    # SELECT * of a payload that is an array is the same case
    with pytest.raises(SqlEvaluationError, match="top-level"):
        compile_sql("SELECT * FROM 'topic/subtopic'", V1).evaluate(b"[1,2]", CTX)


def test_beta_is_accepted_and_runs_as_the_newest_documented_version():
    # iot-rule-sql-version: beta is "The most recent beta SQL version"
    assert _out("SELECT VALUE [10.0, sql_version()] FROM 'topic/subtopic'", {}, "beta") == (
        '[10,"beta"]'
    )


def test_unknown_version_names_the_known_ones():
    with pytest.raises(SqlError, match="2015-10-08, 2016-03-23, beta"):
        compile_sql("SELECT * FROM 'topic/subtopic'", "2016-03-24")


# iot-sql-data-types: Decimal has "a precision of 34 digits, with a minimum non-zero magnitude
# of 1E-999 and a maximum magnitude 9.999...E999".
@pytest.mark.parametrize(
    ("sql", "payload", "expected"),
    [
        ("SELECT VALUE 0.1 + 0.2 FROM 'topic/subtopic'", {}, "0.3"),
        ("SELECT VALUE a + b FROM 'topic/subtopic'", {"a": 0.1, "b": 0.2}, "0.3"),
        ("SELECT VALUE 1 / 3.5 FROM 'topic/subtopic'", {}, "0.2857142857142857142857142857142857"),
        # 34 significant digits in a payload survive SELECT * (a double keeps ~17)
        (
            "SELECT * FROM 'topic/subtopic'",
            {"v": "RAW"},
            '{"v":1234567890.123456789012345678901234}',
        ),
        # more digits are rounded to 34, half-even
        (
            "SELECT VALUE 1.00000000000000000000000000000000005 FROM 'topic/subtopic'",
            {},
            "1.000000000000000000000000000000000",
        ),
        ("SELECT VALUE 9E999 * 10 FROM 'topic/subtopic'", {}, ""),  # beyond the range
        ("SELECT VALUE '0.1' + 0.2 FROM 'topic/subtopic'", {}, '"0.10.2"'),  # String + : concat
        ("SELECT VALUE '0.1' - 0.2 FROM 'topic/subtopic'", {}, "-0.1"),
    ],
)
def test_decimals_keep_34_digits(sql, payload, expected):
    raw = json.dumps(payload).replace('"RAW"', "1234567890.123456789012345678901234")
    result = compile_sql(sql, V1).evaluate(raw.encode(), CTX)
    assert result is not None
    assert result.to_bytes().decode() == expected
