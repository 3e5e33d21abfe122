"""Notebook 07's broken-permission experiment on the emulator, with the workbook's own calls:
the deployed template.yaml, a device from a CSR over mutual TLS, an explicit Deny of s3:PutObject
added to the Firehose role. While it is there nothing reaches S3, Firehose logs S3.AccessDenied
to the stack's log group and holds the records; once removed, every record is delivered."""

from __future__ import annotations

import time

import pytest
from support.targets import deployed_with_device

from pipeline import experiments, publish, runs, workbook

pytestmark = pytest.mark.timeout(180)

ENV = "brk"


@pytest.fixture(scope="module")
def deployed(emulator, tmp_path_factory):
    stack_name = "broken-permission"
    secrets = tmp_path_factory.mktemp("secrets")
    with deployed_with_device(emulator, stack_name, ENV, secrets) as (target, out, device):
        yield target, stack_name, out, device
        experiments.restore_s3_writes(target, stack_name)


def test_a_denied_s3_write_holds_records_back_until_the_permission_is_restored(deployed):
    target, stack_name, out, credentials = deployed
    since_ms = int(time.time() * 1000)
    broken = experiments.break_s3_writes(target, stack_name, out)
    assert broken["role"] == experiments.firehose_role(target, stack_name)

    device = publish.Device.for_target(target, credentials, client_id=out["ThingName"])
    device.connect()
    try:
        report = device.publish_all(
            out["TopicName"], publish.load_messages(limit=12), run_id=runs.new_run_id()
        )
    finally:
        device.disconnect()
    scope = experiments.scope_of(report)
    assert report.acknowledged == 12

    # Firehose tried, was denied, logged it and kept the records
    lines = experiments.firehose_error_lines(target, out, since_ms, timeout=30)
    assert lines and {line["errorCode"] for line in lines} == {"S3.AccessDenied"}
    held = experiments.held_back(target, out, ENV, scope, report.acknowledged)
    assert held["in the raw bucket"] == 0 and held["held back (not in S3 yet)"] == 12
    # and the emulator says which statement decided
    why = experiments.why_denied(target, out)
    assert why and why[-1]["action"] == "s3:PutObject" and why[-1]["decision"] == "explicitDeny"
    assert experiments.BREAK_SID in why[-1]["decided by"]
    assert f"assumed-role/{broken['role']}/" in why[-1]["role"]

    restored = experiments.restore_s3_writes(target, stack_name)
    assert restored["removed"] == experiments.BREAK_POLICY
    assert experiments.BREAK_POLICY not in restored["inline policies"]
    done = workbook.wait_delivered(target, out, ENV, scope, report.acknowledged, timeout=60)
    assert done["raw side"] == 12 and done["parsed side"] == 12, done
    after = experiments.held_back(target, out, ENV, scope, report.acknowledged)
    assert after["held back (not in S3 yet)"] == 0
