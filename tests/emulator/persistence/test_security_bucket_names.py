"""Names from requests never become paths: S3 bucket names are checked as AWS checks them, and
the saved state's files are named by hashes, so no bucket or key name can reach another file."""

from __future__ import annotations

import hashlib
import http.client
import os
import xml.etree.ElementTree as ET

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

HEX = set("0123456789abcdef")


def signed(port: int, method: str, raw_path: str, body: bytes = b"") -> tuple[int, bytes]:
    """An S3 request sent as-is (no client-side name checks, path not re-encoded), SigV4-signed."""
    request = AWSRequest(method=method, url=f"http://127.0.0.1:{port}{raw_path}", data=body)
    request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    SigV4Auth(Credentials("testing", "testing"), "s3", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, raw_path, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def error_code(body: bytes) -> str | None:
    return ET.fromstring(body).findtext("Code")


def files_under(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names
    )


def test_a_dot_dot_bucket_is_refused_and_wipes_nothing(data_dir, emulators):
    # Given an emulator holding an object
    emu = emulators()
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="kept")
    s3.put_object(Bucket="kept", Key="precious", Body=b"do not lose me")
    # When a bucket named by an encoded `..` is created, then deleted
    created = signed(emu.port, "PUT", "/%2e%2e")
    deleted = signed(emu.port, "DELETE", "/%2e%2e")
    # Then the creation is refused as on AWS, and there was nothing to delete
    assert created[0] == 400 and error_code(created[1]) == "InvalidBucketName", created
    assert b"lowercase letters" in created[1]
    assert deleted[0] == 404 and error_code(deleted[1]) == "NoSuchBucket", deleted
    # And the object is still there, also after a restart
    assert emu.stop() == 0
    again = emulators()
    assert again.client("s3").get_object(Bucket="kept", Key="precious")["Body"].read() == (
        b"do not lose me"
    )


@pytest.mark.parametrize(
    "raw_path",
    ["/%2e%2e", "/abc%25", "/%41bc", "/ab%00c", "/%2e%2e%2e", "/general--x-s3"],
)
def test_raw_bucket_names_outside_aws_rules_are_refused(emulator, raw_path):
    # Given / When a path-style CreateBucket that no SDK would send: a name moto takes from the
    # still-encoded path (`%` included), or a directory bucket's suffix (boto3 reroutes those)
    status, body = signed(emulator.port, "PUT", raw_path)
    # Then it is refused with S3's error, and no such bucket exists
    assert status == 400 and error_code(body) == "InvalidBucketName", body
    names = [b["Name"] for b in _s3(emulator).list_buckets()["Buckets"]]
    assert raw_path[1:] not in names


def _s3(emulator):
    import boto3

    return boto3.client("s3", endpoint_url=emulator.endpoint_url, region_name="us-east-1")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Uppercase-{u}", "lowercase letters"),
        ("under_score-{u}", "lowercase letters"),
        ("ab", "between 3 and 63"),
        ("x" * 64, "between 3 and 63"),
        ("-starts-{u}", "begin and end"),
        ("ends-{u}.", "begin and end"),
        ("two..dots-{u}", "two adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("xn--{u}", "prefix xn--"),
        ("sthree-{u}", "prefix sthree-"),
        ("amzn-s3-demo-{u}", "prefix amzn-s3-demo-"),
        ("x{u}-s3alias", "suffix -s3alias"),
        ("x{u}--ol-s3", "suffix --ol-s3"),
        ("x{u}.mrap", "suffix .mrap"),
        ("x{u}--table-s3", "suffix --table-s3"),
    ],
)
def test_bucket_names_outside_aws_rules_are_refused(aws, unique, name, rule):
    # Given a bucket name that breaks one of S3's naming rules
    bucket = name.format(u=unique)
    # When it is created with boto3
    with pytest.raises(ClientError) as refused:
        aws("s3").create_bucket(Bucket=bucket)
    # Then S3's error says which rule
    error = refused.value.response["Error"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "InvalidBucketName"
    assert rule in error["Message"]


@pytest.mark.parametrize("name", ["abc-{u}", "a.b-c.{u}", "{u}" + "9" * 55, "my.bucket.{u}"])
def test_bucket_names_within_aws_rules_are_created(aws, unique, name):
    # Given / When a valid name is created / Then it exists
    bucket = name.format(u=unique)
    aws("s3").create_bucket(Bucket=bucket)
    aws("s3").put_bucket_versioning(  # a bucket sub-resource PUT is not a CreateBucket
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    assert aws("s3").head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


KEYS = ["../../../escaped", "..", "../", "a/../../b", "%2e%2e/%2e%2e/x", "/abs", "ü/日本", "."]


def test_keys_that_look_like_paths_stay_inside_the_store(data_dir, emulators):
    # Given objects whose keys look like relative paths, uploaded raw and with boto3
    emu = emulators()
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="paths")
    for key in KEYS:
        s3.put_object(Bucket="paths", Key=key, Body=key.encode())
    status, _ = signed(emu.port, "PUT", "/paths/../../raw-escape", b"raw")
    assert status in (200, 400, 404)
    before = files_under(data_dir.parent)
    # When the emulator restarts
    assert emu.stop() == 0
    again = emulators().client("s3")
    # Then every object reads back
    for key in KEYS:
        assert again.get_object(Bucket="paths", Key=key)["Body"].read() == key.encode(), key
    # And the state's files are only hashes and UUIDs under moto/s3, nothing named by a key
    records = files_under(data_dir / "moto" / "s3" / "objects")
    assert len(records) == len(KEYS) + (status == 200)
    for record in records:
        folder, name = record.split(os.sep)
        assert set(folder) <= HEX and len(folder) == 64
        assert name.endswith(".pkl") and set(name[:-4]) <= HEX and len(name) == 68
    outside = [p for p in before if not p.startswith(data_dir.name + os.sep)]
    assert all(p.startswith(f"{data_dir.name}-emulator.log") for p in outside), outside


def test_a_data_dir_in_the_older_layout_is_read_and_renamed(data_dir, emulators):
    # Given a saved state in the older layout: the records' folder named after the bucket and
    # each record after the SHA-1 of its key
    emu = emulators()
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="older")
    for key in ("a", "b/c"):
        s3.put_object(Bucket="older", Key=key, Body=key.encode())
    assert emu.stop() == 0
    objects = data_dir / "moto" / "s3" / "objects"
    hashed = objects / hashlib.sha256(b"older").hexdigest()
    for key in ("a", "b/c"):
        os.replace(
            hashed / f"{hashlib.sha256(key.encode()).hexdigest()}.pkl",
            hashed / f"{hashlib.sha1(key.encode()).hexdigest()}.pkl",
        )
    os.replace(hashed, objects / "older")
    # When an emulator starts on it
    again = emulators().client("s3")
    # Then every object reads back, and the files now have their hashed names
    for key in ("a", "b/c"):
        assert again.get_object(Bucket="older", Key=key)["Body"].read() == key.encode()
    assert sorted(p.name for p in objects.iterdir()) == [hashed.name]
    assert sorted(p.name for p in hashed.iterdir()) == sorted(
        f"{hashlib.sha256(k.encode()).hexdigest()}.pkl" for k in ("a", "b/c")
    )
