"""pipeline/shadow.py's pure parts: the device's merge of a delta and the notebook's tables of a
shadow document (the developer guide's response state document shape)."""

from __future__ import annotations

from pipeline import shadow

# device-shadow-document.html, "Response state document" shape, with a nested attribute.
DOCUMENT = {
    "state": {
        "desired": {"color": "green", "light": {"level": 80}},
        "reported": {"color": "red", "light": {"on": True, "level": 40}, "rgb": [255, 0, 0]},
        "delta": {"color": "green", "light": {"level": 80}},
    },
    "metadata": {
        "desired": {"color": {"timestamp": 1700000010}, "light": {"level": {"timestamp": 1}}},
        "reported": {
            "color": {"timestamp": 1700000000},
            "light": {"on": {"timestamp": 2}, "level": {"timestamp": 2}},
            "rgb": [{"timestamp": 1700000003}, {"timestamp": 1700000004}, {"timestamp": 3}],
        },
    },
    "version": 7,
    "timestamp": 1700000020,
}


def test_merge_applies_a_delta_as_the_shadow_does():
    # given the device's settings, nested
    state = {"interval": 60, "light": {"on": True, "level": 40}, "mode": "eco"}
    # when a delta changes a nested value, replaces an array and removes a key with null
    shadow.merge(state, {"light": {"level": 80}, "interval": [1, 2], "mode": None})
    # then only those change
    assert state == {"interval": [1, 2], "light": {"on": True, "level": 80}}


def test_state_table_has_one_row_per_attribute_with_json_values_and_times():
    rows = {row["attribute"]: row for row in shadow.state_table(DOCUMENT)}
    assert list(rows) == ["color", "light.level", "light.on", "rgb"]
    assert rows["color"] == {
        "attribute": "color",
        "desired": '"green"',
        "reported": '"red"',
        "delta": '"green"',
        "desired at (UTC)": "22:13:30",
        "reported at (UTC)": "22:13:20",
    }
    # a value present in one section only is empty in the others
    assert rows["light.on"]["desired"] == "" and rows["light.on"]["reported"] == "true"
    # and an array's time is its latest element's
    assert (
        rows["rgb"]["reported"] == "[255, 0, 0]" and rows["rgb"]["reported at (UTC)"] == "22:13:24"
    )
    assert shadow.state_table(None) == []


def test_summary_row_says_whether_desired_and_reported_agree():
    assert shadow.summary_row(DOCUMENT) == {
        "exists": True,
        "version": 7,
        "timestamp (UTC)": "22:13:40",
        "in sync": False,
    }
    in_sync = {"state": {"desired": {"a": 1}, "reported": {"a": 1}}, "version": 2}
    assert shadow.summary_row(in_sync)["in sync"] is True
    assert shadow.summary_row(None) == {"exists": False}
