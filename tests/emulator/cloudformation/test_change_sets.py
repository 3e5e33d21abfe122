"""Stacks made through change sets, as `aws cloudformation deploy` makes them: outputs are
resolved (moto alone leaves them None), and the AWS CLI packages and deploys template.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.paths import ROOT, TEMPLATE

AWS_CLI = Path(sys.executable).with_name("aws")
EXPECTED_OUTPUTS = {
    "ThingName",
    "PolicyName",
    "TopicName",
    "TopicRuleName",
    "TopicRuleArn",
    "DeliveryStreamName",
    "DeliveryStreamArn",
    "RawBucketName",
    "ParsedBucketName",
    "FunctionName",
    "FunctionArn",
    "FunctionLogGroupName",
    "FirehoseLogGroupName",
    "GlueDatabaseName",
    "ParsedTableName",
}


def test_change_set_stack_has_outputs(aws, unique, packaged_body):
    # Given a CREATE change set of the packaged template
    cfn = aws("cloudformation")
    stack_name = f"changeset-{unique}"
    cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName="initial",
        ChangeSetType="CREATE",
        TemplateBody=packaged_body,
        Parameters=[{"ParameterKey": "Environment", "ParameterValue": f"c{unique[:7]}"}],
        Capabilities=["CAPABILITY_IAM"],
    )
    cfn.get_waiter("change_set_create_complete").wait(
        StackName=stack_name, ChangeSetName="initial", WaiterConfig={"Delay": 1}
    )
    changes = cfn.describe_change_set(StackName=stack_name, ChangeSetName="initial")["Changes"]
    # When it is executed
    cfn.execute_change_set(StackName=stack_name, ChangeSetName="initial")
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    # Then the stack is complete with every output resolved
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert set(outputs) == EXPECTED_OUTPUTS
    assert outputs["ThingName"] == f"{stack_name}-device"
    assert len(changes) == 18  # the translated template's resources, all "Add"
    assert {c["ResourceChange"]["Action"] for c in changes} == {"Add"}
    cfn.delete_stack(StackName=stack_name)


@pytest.fixture
def cli_env(emulator):
    """The AWS CLI's environment: dummy credentials, every client on the emulator."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        # The global endpoint (botocore >= 1.31): `deploy` makes its own S3 client for the
        # template upload, which --endpoint-url would not reach.
        AWS_ENDPOINT_URL=emulator.endpoint_url,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return env


def _aws(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AWS_CLI), *args], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_aws_cli_package_and_deploy(aws, unique, artifacts_bucket, cli_env, tmp_path):
    # Given template.yaml packaged by the AWS CLI itself (after the project's build step)
    from pipeline.package import build_lambda

    build_lambda()
    packaged = tmp_path / "packaged.yaml"
    package = _aws(
        cli_env,
        "cloudformation", "package",
        "--template-file", str(TEMPLATE),
        "--s3-bucket", artifacts_bucket,
        "--output-template-file", str(packaged),
    )  # fmt: skip
    assert package.returncode == 0, package.stderr
    assert f"s3://{artifacts_bucket}/" in packaged.read_text()
    stack_name = f"cli-{unique}"
    deploy_args = (
        "cloudformation", "deploy",
        "--template-file", str(packaged),
        "--stack-name", stack_name,
        "--capabilities", "CAPABILITY_IAM",
        # The template is uploaded to S3 and passed as TemplateURL, as for big templates.
        "--s3-bucket", artifacts_bucket,
        "--no-fail-on-empty-changeset",
        "--parameter-overrides", f"Environment=d{unique[:7]}", "BufferIntervalSeconds=1",
    )  # fmt: skip
    # When the CLI deploys it
    deploy = _aws(cli_env, *deploy_args)
    # Then the stack is complete with its outputs, and the function exists
    assert deploy.returncode == 0, deploy.stderr + deploy.stdout
    assert f"Successfully created/updated stack - {stack_name}" in deploy.stdout
    cfn = aws("cloudformation")
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert set(outputs) == EXPECTED_OUTPUTS
    function = aws("lambda").get_function(FunctionName=outputs["FunctionName"])
    assert function["Configuration"]["Handler"] == "pipeline.handler.lambda_handler"
    # And deploying the same template again changes nothing
    again = _aws(cli_env, *deploy_args)
    assert again.returncode == 0, again.stderr
    assert "No changes to deploy" in again.stdout
    # And the CLI's describe-stacks shows the outputs too
    described = _aws(cli_env, "cloudformation", "describe-stacks", "--stack-name", stack_name)
    assert json.loads(described.stdout)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    cfn.delete_stack(StackName=stack_name)
