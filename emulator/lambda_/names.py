"""Request validation that Lambda does before anything else and moto skips: the `FunctionName`
of every operation against its pattern and length, and the size of a deployment package at
CreateFunction / UpdateFunctionCode.

The patterns and lengths are botocore's copy of Lambda's API model (the shapes FunctionName,
NamespacedFunctionName, UnqualifiedFunctionName, FunctionUrlFunctionName), so they follow the
API reference, e.g. https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html
("Length Constraints: Minimum length of 1. Maximum length of 140. Pattern: ..."). A name that
passed never holds "/" (the name part is [a-zA-Z0-9-_]), which is what keeps names out of paths.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error
from emulator.lambda_.code import DeploymentPackageError, check_package
from emulator.members import Member, constraint_errors, members_named, validation_message

# "If you specify only the function name, it is limited to 64 characters in length."
# (API reference, CreateFunction, FunctionName).
MAX_NAME_LENGTH = 64
# The request limit Lambda answers with RequestEntityTooLargeException for a direct upload
# (a 50 MB .zip is about 67 MB in base64; https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
# "Deployment package (.zip file archive) size: 50 MB (zipped, when uploaded through the
# Lambda API or SDKs)").
MAX_CODE_REQUEST_BYTES = 70_167_211
# A function's name as stored: what every path derived from a name must satisfy.
STORED_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _function_name_members() -> dict[str, Member]:
    """Operation -> its FunctionName member, from Lambda's service model."""
    return members_named("lambda", "FunctionName", "functionName")


def name_part(function: str) -> str:
    """The function name inside a name, partial ARN or ARN, without a qualifier."""
    rest = function.split(":function:", 1)[-1]
    if rest.startswith("function:"):
        rest = rest[len("function:") :]
    parts = rest.split(":")
    if len(parts) > 1 and re.fullmatch(r"\d{12}", parts[0]):
        parts = parts[1:]  # "123456789012:my-function"
    return parts[0]


def _function_name(request: AwsRequest, member: Member) -> str | None:
    if member.location == "uri":
        return request.path_params.get(member.wire_name)
    try:
        body = request.json()
    except ValueError:
        return None  # moto answers a malformed body itself
    value = body.get(member.wire_name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def check_function_name(request: AwsRequest) -> AwsResponse | None:
    """ValidationException for a FunctionName outside Lambda's pattern or lengths."""
    member = _function_name_members().get(request.operation or "")
    if member is None:
        return None
    value = _function_name(request, member)
    if value is None:
        return None
    problems = constraint_errors(value, member)
    if problems:
        return json_error("ValidationException", validation_message(value, member.label, problems))
    if request.operation == "CreateFunction" and len(name_part(value)) > MAX_NAME_LENGTH:
        # The model's 140 is for ARNs; Lambda checks the name itself and answers this one
        # with InvalidParameterValueException, in the validation wording.
        problem = f"Member must have length less than or equal to {MAX_NAME_LENGTH}"
        return json_error(
            "InvalidParameterValueException", validation_message(value, member.label, [problem])
        )
    return None


def _code_bytes(request: AwsRequest, account_id: str) -> bytes | None:
    """The .zip a CreateFunction / UpdateFunctionCode request deploys (inline or from S3)."""
    body = request.json()
    code: Any = body.get("Code") if request.operation == "CreateFunction" else body
    if not isinstance(code, dict):
        return None
    if isinstance(code.get("ZipFile"), str):
        try:
            return base64.b64decode(code["ZipFile"], validate=True)
        except (binascii.Error, ValueError):
            return None  # moto refuses it in its own words
    bucket, key = code.get("S3Bucket"), code.get("S3Key")
    if isinstance(bucket, str) and isinstance(key, str):
        return _s3_object(account_id, bucket, key, code.get("S3ObjectVersion"))
    return None


def _s3_object(account_id: str, bucket: str, key: str, version: Any) -> bytes | None:
    from moto.s3.models import s3_backends

    try:
        obj = s3_backends[account_id]["aws"].get_object(
            bucket, key, version_id=version if isinstance(version, str) else None
        )
    except Exception:  # missing bucket/key: moto answers with Lambda's error for it
        return None
    return obj.value if obj is not None else None


def check_code(request: AwsRequest) -> AwsResponse | None:
    """Lambda's package limits: the request size, then the unzipped size and the entries."""
    if len(request.body) > MAX_CODE_REQUEST_BYTES:
        return json_error(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {MAX_CODE_REQUEST_BYTES} bytes for the "
            f"{request.operation} operation",
            413,
        )
    try:
        code = _code_bytes(request, request.account_id)
    except ValueError:
        return None
    if code is None:
        return None
    try:
        check_package(code)
    except DeploymentPackageError as exc:
        return json_error("InvalidParameterValueException", str(exc))
    return None


def register(gateway: Gateway) -> None:
    for operation in _function_name_members():
        gateway.on("lambda", operation, check_function_name)
    for operation in ("CreateFunction", "UpdateFunctionCode"):
        gateway.on("lambda", operation, check_code)
