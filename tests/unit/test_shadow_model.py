"""The Device Shadow rules (emulator/shadow/model.py), checked against the developer guide's
documents: https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-document.html"""

from __future__ import annotations

import json

import pytest

from emulator.shadow import model
from emulator.shadow.model import ShadowError

T0 = 1_591_140_517


def update(shadow, request, now=T0, thing="lamp", name=""):
    return model.apply_update(shadow, thing, name, request, now)


def rejected(shadow, request, now=T0) -> ShadowError:
    with pytest.raises(ShadowError) as info:
        update(shadow, request, now)
    return info.value


def test_first_update_answers_the_accepted_delta_and_documents_of_the_guide():
    request = {"state": {"desired": {"ColorRGB": [255, 255, 0]}}, "clientToken": "21b21b21"}
    result = update(None, request)
    ts = {"timestamp": T0}
    assert result.accepted == {
        "state": {"desired": {"ColorRGB": [255, 255, 0]}},
        "metadata": {"desired": {"ColorRGB": [ts, ts, ts]}},
        "version": 1,
        "timestamp": T0,
        "clientToken": "21b21b21",
    }
    assert result.delta == {
        "version": 1,
        "timestamp": T0,
        "state": {"ColorRGB": [255, 255, 0]},
        "metadata": {"ColorRGB": [ts, ts, ts]},
        "clientToken": "21b21b21",
    }
    assert result.documents["current"]["version"] == 1
    assert "previous" not in result.documents


def test_documents_hold_previous_and_current_state_with_metadata():
    first = update(
        None, {"state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}}}
    )
    second = update(first.shadow, {"state": {"desired": {"ColorRGB": [255, 255, 0]}}}, T0 + 5)
    third = update(
        second.shadow,
        {"state": {"reported": {"ColorRGB": [255, 255, 0]}}, "clientToken": "a4dc"},
        T0 + 9,
    )
    docs = third.documents
    assert docs["previous"]["version"] == 2 and docs["current"]["version"] == 3
    assert docs["previous"]["state"]["reported"]["ColorRGB"] == [128, 128, 128]
    assert docs["current"]["state"] == {
        "desired": {"ColorRGB": [255, 255, 0]},
        "reported": {"ID": "SmartLamp21", "ColorRGB": [255, 255, 0]},
    }
    # Untouched attributes keep their timestamps; updated ones get the new one.
    assert docs["current"]["metadata"]["reported"]["ID"] == {"timestamp": T0}
    assert docs["current"]["metadata"]["reported"]["ColorRGB"][0] == {"timestamp": T0 + 9}
    assert docs["clientToken"] == "a4dc" and docs["timestamp"] == T0 + 9
    # Desired and reported now agree: no delta is published.
    assert third.delta is None


def test_delta_is_the_guide_example():
    shadow = update(None, {"state": {"reported": {"color": "GREEN", "engine": "ON"}}}).shadow
    shadow = update(shadow, {"state": {"desired": {"color": "RED", "state": "STOP"}}}).shadow
    doc = model.get_document(shadow, "lamp", "", T0 + 1)
    assert doc["state"]["delta"] == {"color": "RED", "state": "STOP"}
    assert doc["metadata"]["delta"] == {"color": {"timestamp": T0}, "state": {"timestamp": T0}}
    assert doc["version"] == 2 and doc["timestamp"] == T0 + 1


def test_nested_delta_keeps_the_path_to_the_root():
    reported = {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}
    desired = {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}
    shadow = update(None, {"state": {"reported": reported}}).shadow
    result = update(shadow, {"state": {"desired": desired}})
    assert result.delta["state"] == {"lights": {"color": {"g": 255}}}
    assert result.delta["metadata"] == {"lights": {"color": {"g": {"timestamp": T0}}}}


def test_delta_compares_arrays_whole_and_booleans_apart_from_numbers():
    shadow = update(None, {"state": {"reported": {"a": [1, 2], "on": 1, "x": 1.0}}}).shadow
    result = update(shadow, {"state": {"desired": {"a": [1, 2, 3], "on": True, "x": 1}}})
    assert result.delta["state"] == {"a": [1, 2, 3], "on": True}


def test_a_reported_attribute_deleted_while_desired_brings_the_delta_back():
    shadow = update(None, {"state": {"desired": {"fan": 2}, "reported": {"fan": 2}}}).shadow
    result = update(shadow, {"state": {"reported": {"fan": None}}})
    assert result.delta["state"] == {"fan": 2}


def test_null_deletes_a_key_and_a_whole_section():
    shadow = update(None, {"state": {"desired": {"a": 1, "b": {"c": 2}}, "reported": {"a": 0}}})
    result = update(shadow.shadow, {"state": {"desired": {"b": {"c": None}}}})
    assert result.shadow.state == {"desired": {"a": 1}, "reported": {"a": 0}}
    assert result.shadow.metadata["desired"] == {"a": {"timestamp": T0}}
    # The accepted document echoes the request, nulls included.
    assert result.accepted["state"] == {"desired": {"b": {"c": None}}}
    result = update(result.shadow, {"state": {"desired": None}})
    assert result.shadow.state == {"reported": {"a": 0}}
    assert "desired" not in result.shadow.metadata
    assert result.accepted["metadata"] == {"desired": {"timestamp": T0}}


def test_null_state_clears_the_shadow_but_keeps_it_and_its_version():
    shadow = update(None, {"state": {"desired": {"a": 1}}}).shadow
    result = update(shadow, {"state": None})
    assert result.shadow.state == {} and result.shadow.version == 2
    doc = model.get_document(result.shadow, "lamp", "", T0)
    assert doc["state"] == {} and doc["metadata"] == {} and doc["version"] == 2


def test_arrays_replace_and_may_not_hold_null():
    shadow = update(None, {"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}}).shadow
    shadow = update(shadow, {"state": {"desired": {"colors": ["RED"]}}}).shadow
    assert shadow.state == {"desired": {"colors": ["RED"]}}
    error = rejected(shadow, {"state": {"desired": {"colors": [None, "RED"]}}})
    assert (error.code, error.message) == (400, "State contains an invalid node")


def test_version_increments_and_a_stale_version_is_a_conflict():
    shadow = update(None, {"state": {"desired": {"colors": ["RED", "GREEN"]}}}).shadow
    for _ in range(9):
        shadow = update(shadow, {"state": {"desired": {"n": 1}}}).shadow
    assert shadow.version == 10
    error = rejected(
        shadow, {"state": {"desired": {"colors": ["BLUE"]}}, "version": 9, "clientToken": "426b"}
    )
    assert error.document(T0) == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": T0,
        "clientToken": "426b",
    }
    accepted = update(shadow, {"state": {"desired": {"colors": ["BLUE"]}}, "version": 10})
    assert accepted.shadow.version == 11


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"desired": {"a": 1}}, "Missing required node: state"),
        ({"state": 5}, "State node must be an object"),
        ({"state": {"desired": 5}}, "Desired node must be an object"),
        ({"state": {"reported": [1]}}, "Reported node must be an object"),
        ({"state": {"delta": {"a": 1}}}, "State contains an invalid node"),
        ({"state": {"desired": {"a": 1}}, "version": "3"}, "Invalid version"),
        ({"state": {"desired": {"a": 1}}, "version": True}, "Invalid version"),
        ({"state": {"desired": {"a": 1}}, "clientToken": 7}, "Invalid clientToken"),
        ([1, 2], "Invalid JSON"),
    ],
)
def test_malformed_requests_are_rejected_with_the_documented_messages(request_, message):
    error = rejected(None, request_)
    assert (error.code, error.message) == (400, message)


def test_client_token_is_limited_to_64_bytes():
    assert (
        update(None, {"state": {"desired": {"a": 1}}, "clientToken": "é" * 32}).accepted[
            "clientToken"
        ]
        == "é" * 32
    )
    error = rejected(None, {"state": {"desired": {"a": 1}}, "clientToken": "é" * 32 + "x"})
    assert (error.code, error.message, error.client_token) == (400, "Invalid clientToken", None)


def nested(levels: int) -> dict:
    value: object = 1
    for _ in range(levels):
        value = {"k": value}
    return value  # type: ignore[return-value]


def test_six_levels_of_nesting_are_accepted_seven_are_not():
    assert update(None, {"state": {"reported": nested(6)}}).shadow.version == 1
    error = rejected(None, {"state": {"reported": nested(7)}})
    assert (error.code, error.message) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


def test_state_over_8_kb_is_413_and_metadata_does_not_count():
    overhead = model.state_bytes({"reported": {"a": ""}})
    fits = {"state": {"reported": {"a": "x" * (8192 - overhead)}}}
    shadow = update(None, fits).shadow
    assert model.state_bytes(shadow.state) == 8192
    error = rejected(None, {"state": {"reported": {"a": "x" * (8193 - overhead)}}})
    assert (error.code, error.message) == (413, "The payload exceeds the maximum size allowed")
    # The limit applies to the merged shadow, not only to one request.
    error = rejected(shadow, {"state": {"desired": {"b": 1}}})
    assert error.code == 413


def test_invalid_json_and_encoding():
    with pytest.raises(ShadowError) as info:
        model.parse_json(b"{not json")
    assert (info.value.code, info.value.message) == (400, "Invalid JSON")
    with pytest.raises(ShadowError) as info:
        model.parse_json(b'{"state": NaN}')
    assert info.value.code == 400
    with pytest.raises(ShadowError) as info:
        model.parse_json(b'{"state": {"reported": {"big": 1e400}}}')
    assert (info.value.code, info.value.message) == (400, "Invalid JSON")
    with pytest.raises(ShadowError) as info:
        model.parse_json('{"state": {"reported": {"a": "é"}}}'.encode("latin-1"))
    assert info.value.code == 415


def test_get_and_delete_of_a_missing_shadow_are_404_named_as_aws_names_them():
    with pytest.raises(ShadowError) as info:
        model.get_document(None, "lamp", "", T0)
    assert (info.value.code, info.value.message) == (404, "No shadow exists with name: 'lamp'")
    with pytest.raises(ShadowError) as info:
        model.delete(None, "lamp", "cfg", T0, "tok")
    assert info.value.message == "No shadow exists with name: 'lamp~cfg'"
    assert info.value.document(T0)["clientToken"] == "tok"


def test_delete_keeps_the_version_for_48_hours():
    shadow = update(None, {"state": {"desired": {"a": 1}}}).shadow
    shadow = update(shadow, {"state": {"desired": {"a": 2}}}).shadow
    tombstone, doc = model.delete(shadow, "lamp", "", T0 + 10, "t")
    assert doc == {"version": 2, "timestamp": T0 + 10, "clientToken": "t"}
    with pytest.raises(ShadowError):
        model.get_document(tombstone, "lamp", "", T0 + 11)
    again = update(tombstone, {"state": {"reported": {"b": 1}}}, T0 + 20)
    assert again.shadow.version == 3 and again.shadow.state == {"reported": {"b": 1}}
    assert "previous" not in again.documents
    later = T0 + 10 + model.VERSION_MEMORY_SECONDS + 1
    assert update(tombstone, {"state": {"reported": {"b": 1}}}, later).shadow.version == 1


def test_records_round_trip_through_json():
    shadow = update(None, {"state": {"desired": {"a": [1, {"b": 2}]}}}).shadow
    back = model.Shadow.from_record(json.loads(json.dumps(shadow.to_record())))
    assert back == shadow
