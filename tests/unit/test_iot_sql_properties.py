"""Properties of the IoT SQL evaluator that must hold for any payload or topic."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from emulator.rules.sql import MessageContext, compile_sql

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)
levels = st.text(alphabet="abcxyz019-_", min_size=1, max_size=6)
topics = st.lists(levels, min_size=1, max_size=7).map("/".join)

SELECT_ALL = compile_sql("SELECT * FROM '#'")
TOPIC_LEVELS = compile_sql("SELECT VALUE [topic(1), topic(2), topic(3), topic(8)] FROM '#'")


@given(objects, topics)
def test_select_star_returns_the_payload_object_unchanged(payload, topic):
    # given any JSON object published on any topic
    raw = json.dumps(payload).encode()
    # when SELECT * FROM '#' evaluates it
    result = SELECT_ALL.evaluate(raw, MessageContext(topic=topic))
    # then the output is the same object
    assert SELECT_ALL.matches(topic)
    assert json.loads(result.to_bytes()) == payload


@given(topics)
def test_topic_n_is_the_nth_level_of_the_topic(topic):
    # when topic(n) is evaluated, then it is split('/')[n-1], and Undefined (omitted) past the end
    result = TOPIC_LEVELS.evaluate(b"{}", MessageContext(topic=topic))
    parts = topic.split("/")
    assert json.loads(result.to_bytes()) == [parts[i] for i in (0, 1, 2, 7) if i < len(parts)]
