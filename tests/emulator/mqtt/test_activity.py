"""The activity log: bounded, filtered by client id and time, served at /_emulator/activity."""

from __future__ import annotations

import json
import time
import urllib.request
from types import SimpleNamespace

from emulator.mqtt.activity import ActivityLog


def test_events_are_bounded_and_filtered():
    # given a log holding at most three events
    log = ActivityLog(SimpleNamespace(gateway=None), capacity=3)
    for i in range(4):
        log.record("CONNECT", f"dev-{i % 2}")
    middle = time.time()
    log.record("PUBLISH_DENIED", "dev-1", "not authorized", "iot:Publish", "arn:x", "no statement")
    # then the oldest were dropped, and filters apply
    assert len(log.events()) == 3
    assert [e["event"] for e in log.events("dev-1")] == ["CONNECT", "PUBLISH_DENIED"]
    (recent,) = log.events(since=middle)
    assert recent["policyDecision"] == "no statement"
    assert recent["time"].endswith("+00:00")


def test_activity_endpoint_serves_json(iot_emulator):
    # given the broker's log, registered on the emulator's gateway
    log = iot_emulator.activity
    log.record(
        "CONNECT_DENIED",
        "dev-endpoint",
        "not authorized",
        "iot:Connect",
        "arn:aws:iot:r:a:client/dev-endpoint",
    )
    # when read over HTTP for that client id
    url = f"{iot_emulator.endpoint_url}/_emulator/activity?clientId=dev-endpoint"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    # then only its events are returned
    assert [e["event"] for e in body["events"]] == ["CONNECT_DENIED"]
    assert body["events"][0]["clientId"] == "dev-endpoint"
