"""The original project's deploy path, with the real AWS SAM CLI against the emulator
(AWS_ENDPOINT_URL): `sam build`, `sam deploy` as `sam deploy --guided` leaves it configured
(samconfig.toml with `resolve_s3 = true`), a second deploy without and with a change,
`sam list stack-outputs`, `sam list resources`, `sam logs`, `sam delete`.

`sam build` builds a python function with the local interpreter of the runtime's version
(aws-lambda-builders checks `python3.12` is on PATH for `Runtime: python3.12`), not in Docker.
The test puts a python3.12 on PATH when the machine has one; otherwise it builds a copy of
the template whose Runtime names the running interpreter's version, and says so.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from pipeline.package import build_lambda
from pipeline.paths import TEMPLATE

TEMPLATE_RUNTIME = "python3.12"


def _python_for(runtime: str) -> Path | None:
    """A working interpreter for `runtime` (python3.X), from PATH or a pyenv install."""
    name = runtime  # python3.12
    candidates = [shutil.which(name)] + sorted(
        glob.glob(os.path.expanduser(f"~/.pyenv/versions/{runtime[6:]}*/bin/{name}"))
    )
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run([candidate, "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return Path(candidate)
    return None


def _samconfig(stack: str, region: str, parameters: str) -> str:
    """What `sam deploy --guided` writes (confirm_changeset answered "N" for a test)."""
    return (
        "version = 0.1\n\n[default.deploy.parameters]\n"
        f'stack_name = "{stack}"\n'
        "resolve_s3 = true\n"
        f's3_prefix = "{stack}"\n'
        f'region = "{region}"\n'
        "confirm_changeset = false\n"
        'capabilities = "CAPABILITY_IAM"\n'
        f'parameter_overrides = "{parameters}"\n'
        "image_repositories = []\n"
    )


class SamApp:
    """A clean clone's layout in a temporary directory (template.yaml next to build/lambda, as
    `python -m pipeline.package` leaves it) and a runner of the real `sam` in it."""

    def __init__(self, sam_cli: Path, sam_env: dict[str, str], root: Path) -> None:
        self.sam_cli = sam_cli
        self.dir = root / "app"
        self.dir.mkdir()
        self.template_text = TEMPLATE.read_text()
        self.env = dict(sam_env)
        python = _python_for(TEMPLATE_RUNTIME)
        if python is not None:
            self.env["PATH"] = f"{python.parent}{os.pathsep}{self.env['PATH']}"
        else:  # no python3.12 here: build for the running interpreter's version instead
            local = f"python{sys.version_info.major}.{sys.version_info.minor}"
            self.template_text = self.template_text.replace(
                f"Runtime: {TEMPLATE_RUNTIME}", f"Runtime: {local}"
            )
        (self.dir / "template.yaml").write_text(self.template_text)
        build_lambda(self.dir / "build" / "lambda")

    def __call__(
        self, *args: str, check: bool = True, answers: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [str(self.sam_cli), *args],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            input=answers if answers is not None else "",
            check=False,
        )
        if check and run.returncode != 0:
            pytest.fail(
                f"sam {' '.join(args)} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
            )
        return run


@pytest.mark.timeout(900)
def test_sam_cli_build_deploy_redeploy_list_logs_delete(sam_cli, sam_env, aws, emulator, tmp_path):
    suffix = uuid.uuid4().hex[:6]
    stack = f"sam-app-{suffix}"
    sam = SamApp(sam_cli, sam_env, tmp_path)
    app, template_text = sam.dir, sam.template_text
    (app / "samconfig.toml").write_text(
        _samconfig(
            stack,
            emulator.region,
            f"Environment=s{suffix} IotTopicName=sam-{suffix} BucketNamePrefix=sam-{suffix}",
        )
    )

    cfn = aws("cloudformation")
    # sam build: local python, no container
    sam("build")
    built = app / ".aws-sam" / "build"
    assert (built / "template.yaml").exists()
    assert (built / "TransformFunction" / "pipeline" / "handler.py").exists()

    # sam deploy (samconfig.toml as --guided writes it): managed artifacts stack + change set
    first = sam("deploy")
    assert "Successfully created/updated stack" in first.stdout + first.stderr
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    managed = cfn.describe_stacks(StackName="aws-sam-cli-managed-default")["Stacks"][0]
    assert managed["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    artifacts = next(o for o in managed["Outputs"] if o["OutputKey"] == "SourceBucket")
    policy = json.loads(aws("s3").get_bucket_policy(Bucket=artifacts["OutputValue"])["Policy"])
    assert any(s["Effect"] == "Deny" for s in policy["Statement"])

    # A second deploy without changes: "No changes to deploy", as on AWS
    same = sam("deploy", "--no-fail-on-empty-changeset")
    assert "No changes to deploy" in same.stdout + same.stderr
    # ... and without --no-fail-on-empty-changeset it is an error, as on AWS
    failing = sam("deploy", check=False)
    assert failing.returncode != 0
    assert "No changes to deploy" in failing.stdout + failing.stderr

    # A second deploy with a change: the function's timeout
    assert "Timeout: 60" in template_text
    (app / "template.yaml").write_text(template_text.replace("Timeout: 60", "Timeout: 30"))
    sam("build")
    changed = sam("deploy")
    assert "Successfully created/updated stack" in changed.stdout + changed.stderr
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    function = aws("lambda").get_function_configuration(FunctionName=f"{stack}-transform")
    assert function["Timeout"] == 30

    # sam list stack-outputs / resources
    outputs = json.loads(
        sam("list", "stack-outputs", "--stack-name", stack, "--output", "json").stdout
    )
    by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    assert by_key["FunctionName"] == f"{stack}-transform"
    assert by_key["TopicName"] == f"sam-{suffix}"
    listed = json.loads(sam("list", "resources", "--stack-name", stack, "--output", "json").stdout)
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in listed}
    assert physical["TransformFunction"] == f"{stack}-transform"
    assert physical["ParsedBucket"] == by_key["ParsedBucketName"]

    # sam logs for the transform, after one invocation with a Firehose-shaped event
    record = base64.b64encode(json.dumps({"device": "d1", "temperature": 21.5}).encode()).decode()
    event = {
        "invocationId": str(uuid.uuid4()),
        "deliveryStreamArn": by_key["DeliveryStreamArn"],
        "region": emulator.region,
        "records": [
            {"recordId": "r1", "approximateArrivalTimestamp": 1_700_000_000_000, "data": record}
        ],
    }
    invoked = aws("lambda").invoke(FunctionName=f"{stack}-transform", Payload=json.dumps(event))
    assert "FunctionError" not in invoked
    logs = sam(
        "logs", "--name", "TransformFunction", "--stack-name", stack, "--start-time", "10min ago"
    )
    assert re.search(r"START RequestId|REPORT RequestId", logs.stdout), logs.stdout + logs.stderr

    # sam delete: the stack and its resources are gone
    sam("delete", "--stack-name", stack, "--no-prompts", "--region", emulator.region)
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName=stack)
    with pytest.raises(ClientError):
        aws("lambda").get_function(FunctionName=f"{stack}-transform")
    with pytest.raises(ClientError):
        aws("s3").head_bucket(Bucket=by_key["ParsedBucketName"])


@pytest.mark.timeout(900)
def test_sam_deploy_guided_answers_prompts_and_saves_samconfig(
    sam_cli, sam_env, aws, emulator, tmp_path
):
    # The interactive path a new user takes: `sam deploy --guided`, answering on stdin.
    suffix = uuid.uuid4().hex[:6]
    stack = f"sam-guided-{suffix}"
    sam = SamApp(sam_cli, sam_env, tmp_path)
    sam("build")
    answers = [
        stack,  # Stack Name
        emulator.region,  # AWS Region
        f"g{suffix}",  # Parameter Environment
        f"guided-{suffix}",  # Parameter IotTopicName
        f"guided-{suffix}",  # Parameter BucketNamePrefix
        "", "", "", "", "", "", "",  # buffering, parsed buffer, retention, HotPathTable: defaults
        "N",  # Confirm changes before deploy
        "Y",  # Allow SAM CLI IAM role creation
        "N",  # Disable rollback
        "Y",  # Save arguments to configuration file
        "",  # SAM configuration file [samconfig.toml]
        "",  # SAM configuration environment [default]
    ]  # fmt: skip
    run = sam("deploy", "--guided", answers="\n".join(answers) + "\n")
    assert "Successfully created/updated stack" in run.stdout + run.stderr
    cfn = aws("cloudformation")
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    with open(sam.dir / "samconfig.toml", "rb") as handle:
        saved = tomllib.load(handle)["default"]["deploy"]["parameters"]
    assert saved["stack_name"] == stack
    assert saved["resolve_s3"] is True
    assert saved["capabilities"] == "CAPABILITY_IAM"
    # the saved configuration deploys again without questions: nothing changed
    again = sam("deploy", "--no-fail-on-empty-changeset")
    assert "No changes to deploy" in again.stdout + again.stderr
    sam("delete", "--stack-name", stack, "--no-prompts", "--region", emulator.region)
    with pytest.raises(ClientError):
        cfn.describe_stacks(StackName=stack)
