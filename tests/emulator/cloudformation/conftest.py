"""Fixtures for the CloudFormation tests: an artifacts bucket, and the project's template
packaged into it."""

from __future__ import annotations

import json

import pytest

from pipeline.paths import TEMPLATE


@pytest.fixture(scope="session")
def artifacts_bucket(aws):
    name = "cfn-test-artifacts"
    aws("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def packaged_template(aws, artifacts_bucket) -> dict:
    """The project's template.yaml with its CodeUri uploaded (pipeline.stack.package_template)."""
    from pipeline.stack import package_template

    return package_template(TEMPLATE, artifacts_bucket, aws("s3"))


@pytest.fixture(scope="session")
def packaged_body(packaged_template) -> str:
    return json.dumps(packaged_template)


@pytest.fixture
def stack_events(aws):
    """stack_events(stack_name) -> the stack's events, oldest first."""
    cfn = aws("cloudformation")
    return lambda stack_name: cfn.describe_stack_events(StackName=stack_name)["StackEvents"][::-1]
