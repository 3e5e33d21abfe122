"""A handler cannot reach the emulator's secrets, and nothing it starts outlives a timeout.

The first test runs `python -m emulator` as its own process with a marker in its environment,
as a user would start it; the others use the session emulator. The uid-based isolation needs
root (what CI runs as); as another user the limits are those of `emulator.lambda_.isolation`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from iam_roles import lambda_trust

from emulator import process
from emulator.lambda_ import isolation

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="workers change uid only under root")


@pytest.fixture
def isolated(lambdas):
    """Skip where the machine cannot give workers a uid of their own (the reason is shown)."""
    mode = lambdas.isolation()
    if not mode["separate_uid"]:
        pytest.skip(f"workers are not isolated here: {mode['limit']}")
    return mode


PROBE_SOURCE = r'''
import os
import subprocess
import sys
import time


def ancestors(event, context):
    """Walk from the parent up to pid 1, reading each process's environment."""
    seen = []
    pid = os.getppid()
    while pid > 0:
        entry = {"pid": pid}
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                entry["environ"] = handle.read().decode("utf-8", "replace")
        except OSError as exc:
            entry["error"] = type(exc).__name__
        seen.append(entry)
        try:
            with open(f"/proc/{pid}/status") as handle:
                pid = int(next(l for l in handle if l.startswith("PPid:")).split()[1])
        except (OSError, StopIteration):
            break
    return seen


def read_file(event, context):
    try:
        with open(event["path"], "rb") as handle:
            return {"read": len(handle.read())}
    except OSError as exc:
        return {"error": type(exc).__name__}


def escape(event, context):
    """Double fork a setsid child that sleeps, write its pid, then outlive the timeout."""
    code = (
        "import os, sys, time\n"
        "if os.fork():\n    os._exit(0)\n"
        "os.setsid()\n"
        "if os.fork():\n    os._exit(0)\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
        "time.sleep(600)\n"
    )
    subprocess.Popen([sys.executable, "-c", code, event["pid_file"]]).wait()
    time.sleep(600)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead; only its parent has not collected it yet


def _deploy(client, role: str, name: str, handler: str, package: bytes, timeout: int = 3) -> None:
    client.create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler=handler,
        Code={"ZipFile": package},
        Timeout=timeout,
    )


@pytest.fixture
def probe_package():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("probe.py", PROBE_SOURCE)
    return buffer.getvalue()


@needs_root
def test_handler_finds_no_emulator_secret_in_its_ancestors(
    tmp_path, monkeypatch, probe_package, isolated
):
    # Given an emulator process started with a secret in its environment
    secret = f"emulator-secret-{os.urandom(8).hex()}"
    monkeypatch.setenv("EMULATOR_TEST_SECRET", secret)
    info = process.ensure_running(port=0, mqtt_port=0, data_dir=tmp_path)
    try:
        assert secret in Path(f"/proc/{info.pid}/environ").read_text(errors="replace")
        session = boto3.session.Session(region_name="us-east-1")
        iam = session.client("iam", endpoint_url=info.endpoint_url)
        role = iam.create_role(
            RoleName="probe", AssumeRolePolicyDocument=json.dumps(lambda_trust())
        )["Role"]["Arn"]
        client = session.client("lambda", endpoint_url=info.endpoint_url)
        _deploy(client, role, "probe-ancestors", "probe.ancestors", probe_package)

        # When a handler walks up its ancestors reading /proc/<pid>/environ
        response = client.invoke(FunctionName="probe-ancestors", Payload=b"{}")
        chain = json.loads(response["Payload"].read())

        # Then it passed through the emulator, and could read no secret anywhere on the way
        assert "FunctionError" not in response, chain
        assert info.pid in [entry["pid"] for entry in chain]
        for entry in chain:
            assert secret not in entry.get("environ", ""), entry["pid"]
        assert next(e for e in chain if e["pid"] == info.pid).get("error") == "PermissionError"
    finally:
        process.stop(info)


@needs_root
def test_handler_cannot_read_the_ca_key(
    aws, lambda_role, lambdas, emulator, unique, probe_package, isolated
):
    # Given the root CA's private key in the emulator's data directory
    key = Path(emulator.info()["root_ca_path"]).with_name("root-ca.key")
    assert key.read_bytes().startswith(b"-----BEGIN")
    name = f"probe-key-{unique}"
    _deploy(aws("lambda"), lambda_role, name, "probe.read_file", probe_package)

    # When a handler opens it
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"path": str(key)}))

    # Then it gets PermissionError (the worker runs under a uid of its own)
    assert json.loads(response["Payload"].read()) == {"error": "PermissionError"}


def test_double_forked_setsid_child_dies_at_the_timeout(
    aws, lambda_role, lambdas, unique, probe_package, tmp_path
):
    # Given a handler that leaves a setsid grandchild behind and then sleeps past its timeout
    name = f"probe-escape-{unique}"
    _deploy(aws("lambda"), lambda_role, name, "probe.escape", probe_package, timeout=2)
    pid_file = Path("/tmp") / f"lambda-escape-{unique}.pid"

    # When it is invoked and times out
    try:
        response = aws("lambda").invoke(
            FunctionName=name, Payload=json.dumps({"pid_file": str(pid_file)})
        )
        assert response.get("FunctionError") == "Unhandled"
        assert "Task timed out" in response["Payload"].read().decode()
        escaped = int(pid_file.read_text())

        # Then the grandchild, in its own session, is gone too
        deadline = time.monotonic() + 5
        while _alive(escaped) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(escaped)
    finally:
        pid_file.unlink(missing_ok=True)


def test_marked_processes_are_swept(tmp_path):
    # Given a process that left its parent's session but carries a worker's marker (what the
    # sweep relies on when workers cannot have a uid of their own)
    token = os.urandom(8).hex()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={isolation.MARKER: token},
        start_new_session=True,
    )
    try:
        # When the sweep for that marker runs
        isolation.kill_marked(token)

        # Then the process is killed
        assert child.wait(timeout=5) == -9
    finally:
        child.kill()
