"""iot-data's shadow operations over HTTP through boto3 (and raw http.client for malformed input),
against the running emulator: the REST API of
https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-rest-api.html"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlparse

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@pytest.fixture
def data(aws):
    return aws("iot-data")


def doc(response) -> dict:
    return json.loads(response["payload"].read())


def test_update_get_delete_round_trip_with_client_token_echo(data, unique):
    thing = f"lamp-{unique}"
    accepted = doc(
        data.update_thing_shadow(
            thingName=thing,
            payload=json.dumps({"state": {"desired": {"color": "RED"}}, "clientToken": "tok-1"}),
        )
    )
    assert accepted["clientToken"] == "tok-1" and accepted["version"] == 1
    assert accepted["state"] == {"desired": {"color": "RED"}}
    assert set(accepted["metadata"]["desired"]["color"]) == {"timestamp"}

    data.update_thing_shadow(
        thingName=thing, payload=json.dumps({"state": {"reported": {"color": "GREEN"}}})
    )
    got = doc(data.get_thing_shadow(thingName=thing))
    assert got["state"] == {
        "desired": {"color": "RED"},
        "reported": {"color": "GREEN"},
        "delta": {"color": "RED"},
    }
    assert got["version"] == 2

    deleted = doc(data.delete_thing_shadow(thingName=thing))
    assert deleted["version"] == 2 and isinstance(deleted["timestamp"], int)
    with pytest.raises(data.exceptions.ResourceNotFoundException) as info:
        data.get_thing_shadow(thingName=thing)
    assert f"No shadow exists with name: '{thing}'" in str(info.value)


def test_null_removes_the_desired_section(data, unique):
    thing = f"lamp-{unique}"
    data.update_thing_shadow(
        thingName=thing, payload=b'{"state":{"desired":{"a":1},"reported":{"a":0}}}'
    )
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":null}}')
    got = doc(data.get_thing_shadow(thingName=thing))
    assert got["state"] == {"reported": {"a": 0}}
    assert "desired" not in got["metadata"]


@pytest.mark.parametrize(
    "payload, error, message",
    [
        (b'{"desired": 5}', "InvalidRequestException", "Missing required node: state"),
        (b'{"state": {"desired": 5}}', "InvalidRequestException", "Desired node must be an object"),
        (b"{not json", "InvalidRequestException", "Invalid JSON"),
        (
            json.dumps({"state": {"desired": {"a": 1}}, "clientToken": "x" * 65}).encode(),
            "InvalidRequestException",
            "Invalid clientToken",
        ),
        (
            json.dumps({"state": {"reported": {"a": "x" * 9000}}}).encode(),
            "RequestEntityTooLargeException",
            "The payload exceeds the maximum size allowed",
        ),
    ],
)
def test_rejected_updates_raise_the_iot_data_exception(data, unique, payload, error, message):
    with pytest.raises(getattr(data.exceptions, error)) as info:
        data.update_thing_shadow(thingName=f"lamp-{unique}", payload=payload)
    assert info.value.response["Error"]["Message"] == message


def test_version_conflict_is_409(data, unique):
    thing = f"lamp-{unique}"
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"desired":{"a":1}}}')
    with pytest.raises(data.exceptions.ConflictException) as info:
        data.update_thing_shadow(
            thingName=thing, payload=b'{"state":{"desired":{"a":2}},"version":5}'
        )
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    ok = doc(
        data.update_thing_shadow(
            thingName=thing, payload=b'{"state":{"desired":{"a":2}},"version":1}'
        )
    )
    assert ok["version"] == 2


def test_named_shadows_are_listed_in_pages(data, unique):
    thing = f"lamp-{unique}"
    names = [f"s{i:02d}" for i in range(7)]
    for name in names:
        data.update_thing_shadow(
            thingName=thing, shadowName=name, payload=b'{"state":{"reported":{"on":true}}}'
        )
    data.update_thing_shadow(thingName=thing, payload=b'{"state":{"reported":{"on":true}}}')
    data.delete_thing_shadow(thingName=thing, shadowName="s03")
    seen, token, pages = [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = data.list_named_shadows_for_thing(thingName=thing, pageSize=3, **kwargs)
        pages += 1
        assert len(page["results"]) <= 3 and isinstance(page["timestamp"], int)
        seen += page["results"]
        token = page.get("nextToken")
        if not token:
            break
    # The classic shadow and deleted shadows are not listed.
    assert seen == [n for n in names if n != "s03"] and pages == 2
    empty = data.list_named_shadows_for_thing(thingName=f"nothing-{unique}")
    assert empty["results"] == [] and "nextToken" not in empty
    with pytest.raises(data.exceptions.InvalidRequestException):
        data.list_named_shadows_for_thing(thingName=thing, nextToken="garbage!")


def test_a_named_shadow_is_separate_from_the_classic_one(data, unique):
    thing = f"lamp-{unique}"
    data.update_thing_shadow(
        thingName=thing, shadowName="cfg", payload=b'{"state":{"desired":{"interval":5}}}'
    )
    with pytest.raises(data.exceptions.ResourceNotFoundException):
        data.get_thing_shadow(thingName=thing)
    got = doc(data.get_thing_shadow(thingName=thing, shadowName="cfg"))
    assert got["state"]["desired"] == {"interval": 5}
    with pytest.raises(data.exceptions.ResourceNotFoundException) as info:
        data.delete_thing_shadow(thingName=thing, shadowName="other")
    assert f"'{thing}~other'" in str(info.value)


def test_http_updates_are_handed_to_the_broker_publisher(emulator, data, unique):
    thing = f"lamp-{unique}"
    published = []
    broker_publisher = emulator.shadow.publisher  # the session's broker: restored below
    emulator.shadow.set_publisher(published.extend)
    try:
        accepted = doc(
            data.update_thing_shadow(
                thingName=thing, payload=b'{"state":{"desired":{"t":21}},"clientToken":"h1"}'
            )
        )
        data.delete_thing_shadow(thingName=thing)
    finally:
        emulator.shadow.set_publisher(broker_publisher)
    prefix = f"$aws/things/{thing}/shadow"
    assert [m.topic for m in published] == [
        f"{prefix}/update/accepted",
        f"{prefix}/update/delta",
        f"{prefix}/update/documents",
        f"{prefix}/delete/accepted",
    ]
    assert json.loads(published[0].payload) == accepted
    assert json.loads(published[1].payload)["state"] == {"t": 21}


def raw_request(emulator, method: str, path: str, body: bytes) -> tuple[int, dict, dict]:
    """A SigV4-signed iot-data request with an arbitrary body, over http.client."""
    url = f"{emulator.endpoint_url}{path}"
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials("testing", "testing"), "iotdata", emulator.region).add_auth(request)
    parsed = urlparse(emulator.endpoint_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(request.headers))
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_malformed_bodies_over_raw_http(emulator, unique):
    path = f"/things/raw-{unique}/shadow"
    status, headers, body = raw_request(emulator, "POST", path, '{"a":"é"}'.encode("latin-1"))
    assert status == 415
    assert headers["x-amzn-ErrorType"] == "UnsupportedDocumentEncodingException"
    status, headers, body = raw_request(emulator, "POST", path, b"x" * (128 * 1024 + 1))
    assert status == 413 and headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    status, _, body = raw_request(emulator, "POST", f"{path}?name=bad%20name", b"{}")
    assert status == 400 and "shadow name" in body["message"]
    status, _, body = raw_request(
        emulator, "GET", f"/api/things/shadow/ListNamedShadowsForThing/raw-{unique}?pageSize=0", b""
    )
    assert status == 400 and "pageSize" in body["message"]
