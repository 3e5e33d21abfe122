"""Templates that would exhaust the emulator are refused quickly with CloudFormation's
ValidationError: a YAML alias bomb, a TemplateBody over 51,200 bytes, deeply nested JSON."""

from __future__ import annotations

import resource
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120)

# Nine levels of nine aliases: a few hundred bytes that stand for 9**9 (387 million) strings.
ALIAS_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{name}: &{name} [{','.join(['*' + prev] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "Resources:\n  T:\n    Type: AWS::IoT::Thing\n    Properties:\n      ThingName: bomb\n"
)

BUCKET = '{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Metadata": {"Filler": "%s"}}}}'


def _error(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]


def test_a_yaml_alias_bomb_is_refused_in_a_moment(aws, unique):
    cfn = aws("cloudformation", config=NO_RETRIES)
    assert len(ALIAS_BOMB) < 700
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    error = _error(lambda: cfn.create_stack(StackName=f"bomb-{unique}", TemplateBody=ALIAS_BOMB))
    assert time.monotonic() - started < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB
    assert error["Code"] == "ValidationError"
    assert "aliases" in error["Message"]


def test_a_few_aliases_are_still_accepted(aws):
    template = (
        "Resources:\n"
        "  T:\n    Type: AWS::IoT::Thing\n    Properties: &props\n      ThingName: aliased\n"
        "Outputs:\n  Copy:\n    Value: !Ref T\n"
    )
    answer = aws("cloudformation").validate_template(TemplateBody=template)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(
    "operation", ["create_stack", "update_stack", "create_change_set", "validate_template"]
)
def test_a_template_body_over_51200_bytes_is_refused(aws, unique, operation):
    cfn = aws("cloudformation", config=NO_RETRIES)
    body = BUCKET % ("x" * 51_200)
    kwargs = {"TemplateBody": body}
    if operation != "validate_template":
        kwargs["StackName"] = f"long-{unique}"
    if operation == "create_change_set":
        kwargs.update(ChangeSetName="c1", ChangeSetType="CREATE")
    error = _error(lambda: getattr(cfn, operation)(**kwargs))
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("1 validation error detected: Value '")
    assert error["Message"].endswith(
        "at 'templateBody' failed to satisfy constraint: "
        "Member must have length less than or equal to 51200"
    )


def test_a_template_body_of_exactly_51200_bytes_is_accepted(aws):
    body = BUCKET % ""
    body = BUCKET % ("x" * (51_200 - len(body)))
    assert len(body.encode()) == 51_200
    answer = aws("cloudformation").validate_template(TemplateBody=body)
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(
    "body",
    [
        '{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Metadata": %s}}}'
        % ('{"a":' * 500 + "1" + "}" * 500),
        "[" * 20_000 + "]" * 20_000,  # JSON past Python's recursion limit
        "Resources: " + "[" * 20_000 + "]" * 20_000,  # YAML flow style, likewise
    ],
    ids=["json-500-levels", "json-20000-levels", "yaml-20000-levels"],
)
def test_deeply_nested_templates_are_refused_cleanly(aws, unique, body):
    assert len(body.encode()) <= 51_200
    cfn = aws("cloudformation", config=NO_RETRIES)
    error = _error(lambda: cfn.create_stack(StackName=f"deep-{unique}", TemplateBody=body))
    assert error["Code"] == "ValidationError"
    assert "nests deeper than 100 levels" in error["Message"]
