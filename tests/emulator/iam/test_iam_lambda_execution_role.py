"""CreateFunction and UpdateFunctionConfiguration refuse an execution role Lambda cannot assume,
as Lambda does: InvalidParameterValueException "The role defined for the function cannot be
assumed by Lambda." (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
Roles are made with boto3 against the session emulator (IAM enforced)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from iam_roles import ensure_firehose_role, ensure_lambda_role
from support.packages import function_zip

ECHO = "def handler(event, context):\n    return event\n"
MESSAGE = "The role defined for the function cannot be assumed by Lambda."


def _create(aws, name: str, role: str):
    return aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": function_zip({"app.py": ECHO})},
    )


@pytest.mark.parametrize("which", ["another service's role", "no such role"])
def test_create_function_refuses_a_role_lambda_cannot_assume(aws, unique, which):
    iam = aws("iam")
    if which == "no such role":
        role = f"arn:aws:iam::123456789012:role/missing-{unique}"
    else:
        role = ensure_firehose_role(iam, f"fh-{unique}")  # trusts firehose.amazonaws.com only
    with pytest.raises(ClientError) as caught:
        _create(aws, f"fn-{unique}", role)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("InvalidParameterValueException", MESSAGE)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        aws("lambda").get_function(FunctionName=f"fn-{unique}")


def test_update_function_configuration_refuses_it_too(aws, unique):
    iam = aws("iam")
    good = ensure_lambda_role(iam, f"exec-{unique}")
    _create(aws, f"fn-{unique}", good)
    bad = ensure_firehose_role(iam, f"fh-{unique}")
    with pytest.raises(ClientError) as caught:
        aws("lambda").update_function_configuration(FunctionName=f"fn-{unique}", Role=bad)
    assert caught.value.response["Error"]["Message"] == MESSAGE
    config = aws("lambda").get_function_configuration(FunctionName=f"fn-{unique}")
    assert config["Role"] == good
    # a change that keeps a role Lambda may assume goes through
    aws("lambda").update_function_configuration(FunctionName=f"fn-{unique}", Timeout=7)
