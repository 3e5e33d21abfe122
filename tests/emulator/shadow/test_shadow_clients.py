"""The shadow REST API through the AWS CLI (the developer guide's own commands), and optimistic
locking under concurrent updates through boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

AWS = str(Path(sys.executable).with_name("aws"))


def cli(emulator, tmp_path: Path, *args: str) -> dict:
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_DEFAULT_REGION": emulator.region,
        "AWS_ACCESS_KEY_ID": "cli",
        "AWS_SECRET_ACCESS_KEY": "cli",
    }
    out = tmp_path / "out.json"
    done = subprocess.run(
        [AWS, *args, str(out)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_the_guides_cli_commands(emulator, tmp_path, unique):
    # using-device-shadows.html, AWS CLI v1 form (awscli from PyPI sends the blob text as is)
    thing = f"mySimulatedThing-{unique}"
    payload = '{"state":{"desired":{"ColorRGB":[255,255,0]}},"clientToken":"21b21b21"}'
    accepted = cli(
        emulator,
        tmp_path,
        "iot-data",
        "update-thing-shadow",
        "--thing-name",
        thing,
        "--shadow-name",
        "simShadow1",
        "--payload",
        payload,
    )
    assert accepted["state"] == {"desired": {"ColorRGB": [255, 255, 0]}}
    assert len(accepted["metadata"]["desired"]["ColorRGB"]) == 3
    assert accepted["clientToken"] == "21b21b21" and accepted["version"] == 1
    got = cli(
        emulator,
        tmp_path,
        "iot-data",
        "get-thing-shadow",
        "--thing-name",
        thing,
        "--shadow-name",
        "simShadow1",
    )
    assert got["state"]["delta"] == {"ColorRGB": [255, 255, 0]} and got["version"] == 1


def test_concurrent_updates_with_the_same_version_let_exactly_one_win(aws, unique):
    data = aws("iot-data")
    thing = f"race-{unique}"
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"n":0}}}')

    def attempt(i: int) -> str:
        client = aws("iot-data")
        body = json.dumps({"state": {"desired": {"n": i}}, "version": 1})
        try:
            client.update_thing_shadow(thingName=thing, payload=body)
            return "accepted"
        except client.exceptions.ConflictException:
            return "conflict"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(1, 9)))
    assert outcomes.count("accepted") == 1 and outcomes.count("conflict") == 7
    assert json.loads(data.get_thing_shadow(thingName=thing)["payload"].read())["version"] == 2
