"""The workbook's `Target` for the session emulator, and a stack deployed with short buffering
(with its device, for the tests that publish)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from pipeline import certificates, workbook
from pipeline.target import LOCAL_CREDENTIALS, Target


def local_target(emulator: Any) -> Target:
    """What `pipeline.target.open_target("local")` gives, for the in-process emulator."""
    session = boto3.Session(region_name=emulator.region, **LOCAL_CREDENTIALS)
    return Target(
        "local",
        emulator.region,
        emulator.endpoint_url,
        "localhost",
        emulator.mqtt_port,
        str(emulator.iot.root_ca_path),
        session,
    )


def deploy_fast(target: Target, stack_name: str, environment: str) -> dict[str, str]:
    """template.yaml deployed with 1 s buffering (Firehose and its processor); the outputs."""
    return workbook.deploy(
        target,
        stack_name,
        {
            "Environment": environment,
            "BufferIntervalSeconds": 1,
            "BufferSizeMBs": 1,
            "ProcessorBufferIntervalSeconds": 1,
        },
    )


@contextmanager
def deployed_with_device(
    emulator: Any, stack_name: str, environment: str, secrets_dir: Any
) -> Iterator[tuple[Target, dict[str, str], Any]]:
    """The session emulator's target, template.yaml deployed with short buffering (its outputs)
    and the stack's device with a certificate from its CSR (secrets in `secrets_dir`); the
    stack is torn down on leaving."""
    target = local_target(emulator)
    out = deploy_fast(target, stack_name, environment)
    device = certificates.create_from_csr(
        target.client("iot"), out["ThingName"], out["PolicyName"], secrets_dir=secrets_dir
    )
    try:
        yield target, out, device
    finally:
        workbook.teardown(target, stack_name)
