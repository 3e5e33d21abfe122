"""The broker hand-off of the Device Shadow service: `ShadowService.handle(topic, payload)` returns
exactly the messages IoT Core publishes on the reserved topics (device-shadow-mqtt.html)."""

from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import pytest

from emulator.gateway import Gateway
from emulator.shadow.messages import is_shadow_request
from emulator.shadow.service import ShadowService, parse_topic

NOW = 1_700_000_000


@pytest.fixture
def service(tmp_path):
    emulator = SimpleNamespace(
        gateway=Gateway(moto_app=None), data_dir=tmp_path / "state", ephemeral=False
    )
    return ShadowService(emulator, clock=lambda: NOW).start()


def answer(service, topic, document=None, raw=None):
    payload = raw if raw is not None else json.dumps(document or {}).encode()
    return [(m.topic, json.loads(m.payload)) for m in service.handle(topic, payload, "dev-1")]


def test_update_answers_accepted_delta_and_documents_in_that_order(service):
    base = "$aws/things/lamp/shadow"
    out = answer(
        service, f"{base}/update", {"state": {"desired": {"power": "on"}}, "clientToken": "c1"}
    )
    assert [topic for topic, _ in out] == [
        f"{base}/update/accepted",
        f"{base}/update/delta",
        f"{base}/update/documents",
    ]
    accepted, delta, documents = (doc for _, doc in out)
    assert accepted == {
        "state": {"desired": {"power": "on"}},
        "metadata": {"desired": {"power": {"timestamp": NOW}}},
        "version": 1,
        "timestamp": NOW,
        "clientToken": "c1",
    }
    assert delta == {
        "version": 1,
        "timestamp": NOW,
        "state": {"power": "on"},
        "metadata": {"power": {"timestamp": NOW}},
        "clientToken": "c1",
    }
    assert documents["current"]["state"] == {"desired": {"power": "on"}}
    # A report that matches desired: accepted and documents, no delta.
    out = answer(service, f"{base}/update", {"state": {"reported": {"power": "on"}}})
    assert [topic for topic, _ in out] == [f"{base}/update/accepted", f"{base}/update/documents"]


def test_named_shadow_get_and_delete_echo_the_client_token(service):
    base = "$aws/things/lamp/shadow/name/cfg"
    answer(service, f"{base}/update", {"state": {"reported": {"interval": 5}}})
    [(topic, doc)] = answer(service, f"{base}/get", {"clientToken": "g1"})
    assert topic == f"{base}/get/accepted"
    assert doc["state"] == {"reported": {"interval": 5}} and doc["clientToken"] == "g1"
    [(topic, doc)] = answer(service, f"{base}/delete", raw=b"")
    assert (topic, doc) == (f"{base}/delete/accepted", {"version": 1, "timestamp": NOW})
    [(topic, doc)] = answer(service, f"{base}/get", {"clientToken": "g2"})
    assert topic == f"{base}/get/rejected"
    assert doc == {
        "code": 404,
        "message": "No shadow exists with name: 'lamp~cfg'",
        "timestamp": NOW,
        "clientToken": "g2",
    }
    # The classic shadow of the same thing is another shadow.
    [(topic, _)] = answer(service, "$aws/things/lamp/shadow/get")
    assert topic == "$aws/things/lamp/shadow/get/rejected"


def test_rejections_go_to_the_rejected_topic_with_the_error_document(service):
    base = "$aws/things/lamp/shadow"
    [(topic, doc)] = answer(service, f"{base}/update", raw=b"{oops")
    assert topic == f"{base}/update/rejected"
    assert doc == {"code": 400, "message": "Invalid JSON", "timestamp": NOW}
    [(_, doc)] = answer(service, f"{base}/update", {"state": {"desired": 5}, "clientToken": "x"})
    assert doc["message"] == "Desired node must be an object" and doc["clientToken"] == "x"
    answer(service, f"{base}/update", {"state": {"desired": {"a": 1}}})
    [(_, doc)] = answer(service, f"{base}/update", {"state": {"desired": {"a": 2}}, "version": 7})
    assert (doc["code"], doc["message"]) == (409, "Version conflict")
    [(_, doc)] = answer(service, f"{base}/update", raw=b"\xff\xfe")
    assert doc["code"] == 415


def test_topics_that_are_not_requests_are_left_to_the_broker(service):
    for topic in (
        "$aws/things/lamp/shadow/update/accepted",
        "$aws/things/lamp/shadow/name/cfg/update/delta",
        "$aws/things/lamp/shadow/name/update",
        "$aws/things/lamp/shadows/update",
        "devices/lamp/shadow/update",
    ):
        assert service.handle(topic, b"{}", "dev-1") is None
        assert parse_topic(topic) is None
    assert not is_shadow_request("telemetry/lamp")
    assert is_shadow_request("$aws/things/lamp/shadow/update")


def test_an_invalid_shadow_name_is_rejected_not_stored(service):
    [(topic, doc)] = answer(service, "$aws/things/lamp/shadow/name/bad name/update", {"state": {}})
    assert topic.endswith("/update/rejected") and doc["code"] == 400
    assert service.named_shadows("lamp") == []


def test_http_changes_reach_the_publisher_and_nothing_without_one(service):
    from emulator.gateway import AwsRequest

    def request(method, body=b""):
        return AwsRequest(
            "iot-data",
            None,
            "us-east-1",
            "123456789012",
            method,
            "/things/lamp/shadow",
            {},
            {},
            body,
            {"thingName": "lamp"},
        )

    # Without a publisher the update is answered and nothing fails.
    assert service._http_update(request("POST", b'{"state":{"desired":{"a":1}}}')).status == 200
    published = []
    service.set_publisher(published.extend)
    response = service._http_update(request("POST", b'{"state":{"desired":{"a":2}}}'))
    assert response.status == 200
    topics = [m.topic for m in published]
    assert topics == [
        "$aws/things/lamp/shadow/update/accepted",
        "$aws/things/lamp/shadow/update/delta",
        "$aws/things/lamp/shadow/update/documents",
    ]
    assert json.loads(published[0].payload) == json.loads(response.body)


def test_shadow_files_are_private_and_named_by_hash(service, tmp_path):
    answer(service, "$aws/things/lamp/shadow/name/cfg/update", {"state": {"reported": {"a": 1}}})
    directory = tmp_path / "state" / "shadow"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    files = list(directory.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert "lamp" not in files[0].name and "cfg" not in files[0].name
