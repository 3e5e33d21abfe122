"""Shadows survive a clean stop and `kill -9` of the emulator process: an answered update is on
disk before its answer (temp file + fsync + rename under <data_dir>/shadow/)."""

from __future__ import annotations

import json
import os
import stat

import pytest


def get(emu, thing: str, **kwargs) -> dict:
    return json.loads(
        emu.client("iot-data").get_thing_shadow(thingName=thing, **kwargs)["payload"].read()
    )


def test_kill_9_keeps_every_answered_shadow_change(shadow_emulators):
    first = shadow_emulators()
    data = first.client("iot-data")
    data.update_thing_shadow(thingName="lamp", payload=b'{"state":{"desired":{"t":21}}}')
    data.update_thing_shadow(thingName="lamp", payload=b'{"state":{"reported":{"t":19}}}')
    data.update_thing_shadow(
        thingName="lamp", shadowName="cfg", payload=b'{"state":{"desired":{"interval":5}}}'
    )
    data.update_thing_shadow(thingName="gone", payload=b'{"state":{"reported":{"a":1}}}')
    data.update_thing_shadow(thingName="gone", payload=b'{"state":{"reported":{"a":2}}}')
    data.delete_thing_shadow(thingName="gone")
    before = get(first, "lamp")
    first.kill9()

    second = shadow_emulators()
    after = get(second, "lamp")
    assert after["state"] == before["state"] and after["metadata"] == before["metadata"]
    assert after["version"] == 2 and after["state"]["delta"] == {"t": 21}
    assert get(second, "lamp", shadowName="cfg")["state"]["desired"] == {"interval": 5}
    names = second.client("iot-data").list_named_shadows_for_thing(thingName="lamp")["results"]
    assert names == ["cfg"]
    # The deleted shadow stays deleted, and its version continues when it is created again.
    data = second.client("iot-data")
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.get_thing_shadow(thingName="gone")
    again = json.loads(
        data.update_thing_shadow(thingName="gone", payload=b'{"state":{"reported":{"a":3}}}')[
            "payload"
        ].read()
    )
    assert again["version"] == 3

    directory = second.data_dir / "shadow"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert "lamp" not in path.name and "gone" not in path.name


def test_a_clean_stop_keeps_shadows_and_further_changes_version_on(shadow_emulators):
    first = shadow_emulators()
    first.client("iot-data").update_thing_shadow(
        thingName="fan", payload=b'{"state":{"desired":{"speed":2}},"clientToken":"c"}'
    )
    assert first.stop() == 0
    second = shadow_emulators()
    accepted = json.loads(
        second.client("iot-data")
        .update_thing_shadow(thingName="fan", payload=b'{"state":{"desired":{"speed":3}}}')[
            "payload"
        ]
        .read()
    )
    assert accepted["version"] == 2
    assert get(second, "fan")["state"]["desired"] == {"speed": 3}
