"""Fixtures shared by every test: an in-process emulator on ephemeral ports, and AWS clients
pointed at it. Nothing here may reach beyond 127.0.0.1."""

from __future__ import annotations

import logging
import os
import uuid

import boto3
import pytest

# Never let a test find real credentials or a real region.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
# One line per HTTP request drowns a failure's report; the emulator's own loggers stay.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

# The session emulator, once a test asked for it (see _delivery_streams_deleted_after_module).
_session: dict[str, object] = {}


@pytest.fixture(scope="session")
def emulator():
    """One emulator for the session: moto's state is process-global, so tests use unique names."""
    from emulator.app import build_emulator

    emu = build_emulator(port=0, mqtt_port=0, ephemeral=True)
    emu.start()
    # IAM is enforced: the delivery roles the stream fixtures name exist with their permissions.
    from iam_roles import create_shared_roles

    create_shared_roles(boto3.client("iam", endpoint_url=emu.endpoint_url, region_name=emu.region))
    _session["emulator"] = emu
    yield emu
    _session.clear()
    emu.stop()


def _delivery_streams(emu) -> tuple[object, set[str]]:
    client = boto3.client("firehose", endpoint_url=emu.endpoint_url, region_name=emu.region)
    names: list[str] = []
    while True:
        start = {"ExclusiveStartDeliveryStreamName": names[-1]} if names else {}
        page = client.list_delivery_streams(Limit=50, **start)
        names += page["DeliveryStreamNames"]
        if not page["HasMoreDeliveryStreams"]:
            return client, set(names)


@pytest.fixture(autouse=True, scope="module")
def _delivery_streams_deleted_after_module():
    """The session emulator keeps AWS's default quota of 50 delivery streams per region
    (https://docs.aws.amazon.com/firehose/latest/dev/limits.html), as AWS does: each test
    module deletes the streams it created there, as a test on AWS would."""
    emu = _session.get("emulator")
    before = _delivery_streams(emu)[1] if emu else set()
    yield
    emu = _session.get("emulator")
    if emu is None:
        return
    client, now = _delivery_streams(emu)
    for name in now - before:
        client.delete_delivery_stream(DeliveryStreamName=name, AllowForceDelete=True)


@pytest.fixture(scope="session")
def aws(emulator):
    """A factory of boto3 clients bound to the emulator's endpoint."""

    def client(service: str, **kwargs):
        return boto3.client(
            service, endpoint_url=emulator.endpoint_url, region_name=emulator.region, **kwargs
        )

    return client


@pytest.fixture
def unique():
    """A short unique suffix for resource names in the shared emulator."""
    return uuid.uuid4().hex[:8]
