"""Pure parts of persistence: which requests save what, the versioned file format, body files."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.persistence.blobs import BlobStore
from emulator.persistence.fileformat import (
    StateFormatError,
    private_dir,
    read_checked,
    write_atomic,
)
from emulator.persistence.logjournal import LogJournals, journal_name
from emulator.persistence.middleware import PersistenceMiddleware, Plan

AUTH = "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/{service}/aws4_request, Signed..."


def environ(service: str, method: str, path: str, query: str = "", body: bytes = b"", **extra):
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "RAW_URI": path + (f"?{query}" if query else ""),
        "QUERY_STRING": query,
        "HTTP_HOST": "127.0.0.1:4566",
        "HTTP_AUTHORIZATION": AUTH.format(service=service),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    env.update(extra)
    return env


plan = PersistenceMiddleware(app=None, persistence=None).plan  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env",
    [
        environ("iot", "GET", "/things/t1"),  # DescribeThing
        environ("iot", "GET", "/things"),  # ListThings
        environ("iot", "POST", "/attached-policies/arn%3Aaws"),  # ListAttachedPolicies (POST)
        environ("firehose", "POST", "/", HTTP_X_AMZ_TARGET="Firehose_20150804.ListDeliveryStreams"),
        environ("lambda", "POST", "/2015-03-31/functions/f/invocations"),  # Invoke
        environ("firehose", "POST", "/", HTTP_X_AMZ_TARGET="Firehose.PutRecordBatch"),  # own spool
        environ(
            "cloudformation", "POST", "/", body=b"Action=DescribeStacks&Version=2010-05-15",
            CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
        ),
        environ("s3", "GET", "/bucket/key"),
        environ("s3", "HEAD", "/bucket/key"),
        environ("s3", "PUT", "/bucket/key", "partNumber=1&uploadId=u"),  # UploadPart
        environ("s3", "POST", "/bucket/key", "uploads"),  # CreateMultipartUpload
        environ("emulator", "GET", "/_emulator/health"),
    ],
)  # fmt: skip
def test_reads_save_nothing(env):
    # Given a read-only request / When it is planned / Then nothing is saved
    assert plan(env) is None


@pytest.mark.parametrize(
    "env",
    [
        environ("iot", "POST", "/things/t1"),  # CreateThing
        environ("iot", "PUT", "/certificates/abc", "newStatus=INACTIVE"),  # UpdateCertificate
        environ("iot", "POST", "/keys-and-certificate", "setAsActive=true"),
        environ("firehose", "POST", "/", HTTP_X_AMZ_TARGET="Firehose.CreateDeliveryStream"),
        environ("logs", "POST", "/", HTTP_X_AMZ_TARGET="Logs_20140328.PutLogEvents"),
        environ(
            "cloudformation", "POST", "/", body=b"Action=CreateStack&StackName=s",
            CONTENT_TYPE="application/x-www-form-urlencoded",
        ),
        environ("s3", "PUT", "/bucket"),  # CreateBucket
        environ("s3", "PUT", "/bucket", "versioning"),
    ],
)  # fmt: skip
def test_changes_save_the_snapshot(env):
    # Given a state-changing request that is not an S3 object write
    # When it is planned / Then the snapshot is saved
    assert plan(env).snapshot


def test_object_writes_save_only_their_record():
    # Given PutObject, CompleteMultipartUpload, DeleteObject and PutObjectTagging requests
    put = environ("s3", "PUT", "/bucket/raw/2026/%C3%BC%20x.json")
    complete = environ("s3", "POST", "/bucket/big.bin", "uploadId=abc")
    delete = environ("s3", "DELETE", "/bucket/a/b")
    tagging = environ("s3", "PUT", "/bucket/k", "tagging")
    # When they are planned / Then each saves its key's record, decoded as moto decodes it
    assert plan(put) == Plan(bucket="bucket", keys=["raw/2026/ü x.json"])
    assert plan(complete) == Plan(bucket="bucket", keys=["big.bin"])
    assert plan(delete) == Plan(bucket="bucket", keys=["a/b"])
    assert plan(tagging) == Plan(bucket="bucket", keys=["k"])


def test_virtual_host_addressing_names_the_bucket():
    # Given a virtual-hosted-style PutObject
    env = environ("s3", "PUT", "/key.txt", HTTP_HOST="mybucket.localhost:4566")
    # When planned / Then the bucket comes from the host
    assert plan(env) == Plan(bucket="mybucket", keys=["key.txt"])


def test_delete_objects_saves_the_listed_keys_and_keeps_the_body_readable():
    # Given a DeleteObjects request
    body = (
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>a</Key></Object><Object><Key>b/c</Key></Object></Delete>"
    )
    env = environ("s3", "POST", "/bucket", "delete", body=body)
    # When planned
    result = plan(env)
    # Then the listed keys are saved and moto can still read the body
    assert result == Plan(bucket="bucket", keys=["a", "b/c"])
    assert env["wsgi.input"].read() == body


def test_delete_bucket_resynchronises_the_bucket_but_deleting_its_tags_does_not():
    # Given DeleteBucket and DeleteBucketTagging / When planned
    delete_bucket = plan(environ("s3", "DELETE", "/bucket"))
    delete_tags = plan(environ("s3", "DELETE", "/bucket", "tagging"))
    # Then only DeleteBucket drops the bucket's records
    assert delete_bucket.whole_bucket and delete_bucket.snapshot
    assert not delete_tags.whole_bucket and delete_tags.snapshot


def test_a_file_round_trips_and_another_version_is_refused(tmp_path):
    # Given a state file
    path = tmp_path / "state.pkl"
    write_atomic(path, "moto-state", lambda out: out.write(b"payload"))
    # When read back / Then the payload is returned
    assert read_checked(path, "moto-state", tmp_path, lambda src: src.read()) == b"payload"
    # Given the same file claiming another format version
    header, _, rest = path.read_bytes().partition(b"\n")
    fields = json.loads(header)
    fields["format"] = 99
    path.write_bytes(json.dumps(fields).encode() + b"\n" + rest)
    # When read / Then it is refused with the versions and the way out
    with pytest.raises(StateFormatError, match=r"format 99 .* --reset"):
        read_checked(path, "moto-state", tmp_path, lambda src: src.read())


def test_a_file_of_another_kind_is_refused(tmp_path):
    # Given an object record / When read as the snapshot / Then refused
    path = tmp_path / "x.pkl"
    write_atomic(path, "s3-object", lambda out: out.write(b"{}"))
    with pytest.raises(StateFormatError, match="expected 'moto-state'"):
        read_checked(path, "moto-state", tmp_path, lambda src: src.read())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.binary(max_size=64)),
        st.tuples(st.just("seek"), st.integers(0, 80)),
        st.tuples(st.just("read"), st.integers(-1, 80)),
        st.tuples(st.just("truncate"), st.none()),
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_a_body_file_behaves_like_the_spooled_file_it_replaces(tmp_path_factory, ops):
    # Given a body file and an in-memory file
    store = BlobStore(tmp_path_factory.mktemp("blobs"))
    blob, reference = store.new(), io.BytesIO()
    # When the same calls are made on both (the calls moto's FakeKey makes)
    for name, arg in ops:
        if name == "write":
            assert blob.write(arg) == reference.write(arg)
        elif name == "seek":
            assert blob.seek(arg) == reference.seek(arg)
        elif name == "read":
            assert blob.read(arg) == reference.read(arg)
        else:
            assert blob.truncate() == reference.truncate()
        # Then they agree on every answer and position
        assert blob.tell() == reference.tell()
    blob.seek(0)
    assert blob.read() == reference.getvalue()


def test_a_closed_body_is_deleted_only_after_the_state_was_saved(tmp_path):
    # Given a body file of a key that moto disposed of
    store = BlobStore(tmp_path)
    blob = store.new()
    blob.write(b"data")
    blob.close()
    # Then the file stays until the state without it is saved (collect)
    assert blob.path.exists()
    store.collect()
    assert not blob.path.exists()


class FakeStream:
    """The two attributes of moto's LogStream that a journal reads."""

    def __init__(self, arn: str) -> None:
        self.arn = arn
        self.events: list = []


def test_a_log_journal_appends_and_drops_a_torn_last_frame(tmp_path):
    # Given a stream whose events were journaled in two syncs
    journals = LogJournals(tmp_path / "logs", tmp_path)
    stream = FakeStream("arn:aws:logs:us-east-1:1:log-group:g:log-stream:s")
    stream.events += ["one", "two"]
    journals._sync_stream(stream)
    stream.events += ["three"]
    journals._sync_stream(stream)
    path = tmp_path / "logs" / journal_name(stream)
    complete_size = path.stat().st_size
    # And a crash in the middle of a third append
    with open(path, "ab") as out:
        out.write(b"\x00\x00\x00\x00\x00\x00\x01\x00partial")
    # When the journal is loaded by a new process
    loaded = LogJournals(tmp_path / "logs", tmp_path).load(journal_name(stream), FakeStream("x"))
    # Then the answered events are there, and the torn frame is gone from the file
    assert loaded == ["one", "two", "three"]
    assert path.stat().st_size == complete_size


def test_a_new_stream_with_a_reused_name_starts_a_new_journal(tmp_path):
    # Given a journaled stream that is deleted and created again under the same name
    journals = LogJournals(tmp_path / "logs", tmp_path)
    old = FakeStream("arn:aws:logs:us-east-1:1:log-group:g:log-stream:s")
    old.events += ["old"]
    journals._sync_stream(old)
    new = FakeStream(old.arn)
    new.events += ["new"]
    # When the new stream is journaled
    journals._sync_stream(new)
    # Then its journal holds only its own events
    fresh = LogJournals(tmp_path / "logs", tmp_path)
    assert fresh.load(journal_name(new), FakeStream("x")) == ["new"]


def test_a_private_dir_and_every_parent_it_creates_are_0700_whatever_the_umask(tmp_path):
    # given an existing folder left 0755, and the usual umask
    (tmp_path / "kept").mkdir(mode=0o755)
    old_umask = os.umask(0o022)
    try:
        # when a folder three levels below it is made private
        private_dir(tmp_path / "kept" / "a" / "b" / "c")
    finally:
        os.umask(old_umask)
    # then it and the two parents created for it are 0700; the folder that existed is left
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in (tmp_path / "kept", *(tmp_path / "kept").rglob("*"))
    }
    assert modes == {"kept": 0o755, "a": 0o700, "b": 0o700, "c": 0o700}
