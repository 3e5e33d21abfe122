"""Properties that must hold for any input: the IoT SQL evaluator against small reference
implementations (MQTT topic filter matching, WHERE comparisons, nested field selection, integer
arithmetic), and the batch writer/reader round trip of `pipeline.batches`.

tests/unit/test_iot_sql_properties.py already covers `SELECT *` returning the payload and
`topic(n)`; nothing here repeats those."""

from __future__ import annotations

import base64
import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from emulator.rules.sql import MessageContext, compile_sql
from emulator.rules.topics import topic_matcher
from pipeline import batches

CONTEXT = MessageContext(topic="t")

# ---------------------------------------------------------------------------- topic filters
levels = st.sampled_from(["a", "b", "c", "", "dev-1"])
topics = st.lists(levels, min_size=1, max_size=5).map("/".join).filter(lambda t: t != "")
filter_levels = st.sampled_from(["a", "b", "c", "", "+", "dev-1"])


@st.composite
def topic_filters(draw) -> str:
    parts = draw(st.lists(filter_levels, min_size=1, max_size=5))
    if draw(st.booleans()):
        parts.append("#")
    return "/".join(parts)


def reference_match(topic_filter: str, topic: str) -> bool:
    """MQTT 3.1.1 section 4.7: `+` matches one whole level, a final `#` every level below; in a
    rule's FROM, `#` needs at least one level: 'a/#' does not match 'a' (IoT developer guide,
    "FROM clause"), where MQTT subscriptions would also match the parent."""
    f, t = topic_filter.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return len(t) > i
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


@given(topic_filters(), topics)
def test_topic_filter_matching_follows_mqtt_wildcards(topic_filter, topic):
    # given any filter of literal, `+` and trailing `#` levels and any topic
    # when the rule's FROM matcher is asked, then it agrees with the MQTT specification
    assert topic_matcher(topic_filter)(topic) == reference_match(topic_filter, topic)


# ---------------------------------------------------------------------------- WHERE
small_ints = st.integers(-1000, 1000)
OPERATORS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
}
WHERE = {op: compile_sql(f"SELECT * FROM '#' WHERE n {op} 0") for op in OPERATORS}


@given(st.sampled_from(sorted(OPERATORS)), small_ints, small_ints)
def test_where_comparison_selects_exactly_what_python_would(op, n, k):
    # given a payload {"n": n} and a rule WHERE n <op> k
    rule = compile_sql(f"SELECT * FROM '#' WHERE n {op} {k}")
    # when it is evaluated, then the message passes iff the comparison holds
    result = rule.evaluate(json.dumps({"n": n}).encode(), CONTEXT)
    assert (result is not None) == OPERATORS[op](n, k)


ORDERING = sorted(op for op in OPERATORS if op not in ("=", "<>"))


@given(st.sampled_from(ORDERING), st.text(alphabet="xyz", max_size=5) | st.none() | st.booleans())
def test_where_on_a_missing_or_non_numeric_field_never_passes_an_ordering(op, value):
    # given a payload whose `n` is missing, a non-numeric string, null or a boolean
    for payload in (b"{}", json.dumps({"n": value}).encode()):
        # when WHERE n <op> 0 is evaluated, then the comparison is Undefined (not true), so the
        # message does not pass (IoT SQL reference, "Operators": other operand types give
        # Undefined)
        assert WHERE[op].evaluate(payload, CONTEXT) is None, (payload, op)


# ---------------------------------------------------------------------------- SELECT fields
names = st.text(alphabet="abcdefxyz", min_size=1, max_size=4)
scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=6)
NESTED = compile_sql("SELECT a.b AS x, c AS y FROM '#'")


@given(
    st.dictionaries(
        st.sampled_from(["a", "c", "d"]),
        scalars | st.dictionaries(st.sampled_from(["b", "e"]), scalars, max_size=2),
        max_size=3,
    )
)
def test_nested_field_selection_omits_what_is_undefined(payload):
    # given any object that may or may not hold `a.b` and `c`
    result = NESTED.evaluate(json.dumps(payload).encode(), CONTEXT)
    # when `SELECT a.b AS x, c AS y` is evaluated, then present values are copied and undefined
    # ones are left out of the output object (IoT SQL reference, "Undefined")
    expected = {}
    a = payload.get("a")
    if isinstance(a, dict) and "b" in a:
        expected["x"] = a["b"]
    if "c" in payload:
        expected["y"] = payload["c"]
    assert json.loads(result.to_bytes()) == expected


SUM = compile_sql("SELECT VALUE a + b FROM '#'")


@given(st.integers(-(2**31), 2**31), st.integers(-(2**31), 2**31))
def test_integer_addition_is_exact(a, b):
    # given two integers; when `a + b` is evaluated, then it is their exact integer sum
    result = SUM.evaluate(json.dumps({"a": a, "b": b}).encode(), CONTEXT)
    assert json.loads(result.to_bytes()) == a + b


# ---------------------------------------------------------------------------- batches
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3),
    max_leaves=10,
)
records = st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=5), max_size=20)


@settings(max_examples=60)
@given(records, st.booleans())
def test_batch_write_then_read_gives_back_every_record_in_order(rows, compress):
    # given any JSON objects; when they are written as one batch object and read back
    data = batches.write_batch(rows, compress=compress)
    read = list(batches.iter_batch_records(data))
    # then every line is good, numbered from 1, and holds the same object, in order
    assert [line.value for line in read] == rows
    assert [line.line for line in read] == list(range(1, len(rows) + 1))
    assert all(line.ok for line in read)
    assert (data[:2] == batches.GZIP_MAGIC) == compress


line_bytes = st.binary(max_size=40).filter(lambda b: b"\n" not in b)


@given(st.lists(line_bytes, max_size=20), st.booleans())
def test_split_lines_inverts_write_batch_for_any_bytes(lines, compress):
    # given any byte lines without separators, written as a batch
    data = batches.write_batch(lines, compress=compress)
    # (the reader tells gzip by the start of a gzip header, `batches.is_gzip`: plain bytes that
    # begin like one, 1f 8b 08 and no reserved flag, are read as gzip; JSON lines never do)
    assume(compress or not batches.is_gzip(data))
    # then split_lines gives them back, and a missing final separator changes nothing
    assert batches.split_lines(data) == lines
    plain = batches.decompress(data)
    if lines and lines[-1] != b"":  # (an empty last line is nothing but its separator)
        assert batches.split_lines(plain.removesuffix(b"\n")) == lines


@given(st.lists(st.tuples(st.binary(max_size=60), st.integers(1, 4)), max_size=10))
def test_processing_failed_records_round_trip_their_raw_data(items):
    # given processing-failed error records as Firehose writes them (rawData base64)
    documents = [
        {
            "attemptsMade": attempts,
            "arrivalTimestamp": 1_795_000_000_000,
            "errorCode": "Lambda.FunctionError",
            "errorMessage": "failed",
            "attemptEndingTimestamp": 1_795_000_000_500,
            "rawData": base64.b64encode(raw).decode(),
            "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        }
        for raw, attempts in items
    ]
    # when the object is read back
    read = list(batches.iter_processing_failed(batches.write_batch(documents)))
    # then each record's raw bytes and attempts are what was written
    assert [(r.raw_data, r.attempts_made) for r in read] == items
