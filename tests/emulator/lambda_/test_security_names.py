"""Function names are checked against the API's pattern and lengths before
moto sees them: a name that could become a path ("../x", "a/b", "..") is refused."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from support.lambdas import create_function

FUNCTION_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)


@pytest.mark.parametrize("name", ["../escaped", "..", "a/b", "../../../tmp/x", "fn.name"])
def test_create_function_refuses_a_name_outside_the_pattern(aws, lambda_role, app_package, name):
    # When a function is created with a name that is not [a-zA-Z0-9-_]
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, name, app_package())

    # Then Lambda's ValidationException names the value, the member and the pattern
    error = raised.value.response["Error"]
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        f"1 validation error detected: Value '{name}' at 'functionName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {FUNCTION_PATTERN}"
    )
    # and no function exists whose code could be extracted under that name
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    assert name not in names


def test_function_name_lengths(aws, lambda_role, app_package, unique):
    # Given names of 64 and 65 characters
    ok, too_long = f"n{unique}".ljust(64, "x"), f"n{unique}".ljust(65, "x")

    # When both are created
    create_function(aws, lambda_role, ok, app_package())
    with pytest.raises(ClientError) as raised:
        create_function(aws, lambda_role, too_long, app_package())

    # Then only the 64-character name is accepted (the API allows 64 for a bare name)
    assert raised.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": f"1 validation error detected: Value '{too_long}' at 'functionName' failed "
        "to satisfy constraint: Member must have length less than or equal to 64",
    }
    assert aws("lambda").get_function(FunctionName=ok)["Configuration"]["FunctionName"] == ok


@pytest.mark.parametrize("operation", ["invoke", "get_function", "update_function_code"])
def test_other_operations_check_the_name_too(aws, app_package, operation):
    # When an operation that takes a FunctionName gets one holding "/"
    client = aws("lambda")
    kwargs = {"FunctionName": "a/b"}
    if operation == "update_function_code":
        kwargs["ZipFile"] = app_package()
    with pytest.raises(ClientError) as raised:
        getattr(client, operation)(**kwargs)

    # Then it is refused as a validation error, not looked up
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'functionName' failed to satisfy constraint" in str(raised.value)


def test_arn_forms_are_still_accepted(aws, deploy):
    # Given a function
    name = deploy("app.echo")
    arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    # When it is addressed by ARN, partial ARN and with a qualifier
    client = aws("lambda")
    for form in (arn, f"123456789012:function:{name}", f"{name}:$LATEST"):
        # Then the name check lets them through
        assert client.invoke(FunctionName=form, Payload=b"{}")["StatusCode"] == 200
