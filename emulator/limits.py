"""Request body caps per service, decided from the request line and headers alone.

The HTTP server (`emulator.httpserver`) asks `body_refusal` before it reads a body, so that an
oversized request is refused from its `Content-Length` without the body ever being read; the
gateway applies the same cap while it reads a chunked body, and stops at the cap.

Each cap is the largest HTTP body a request AWS accepts can have: the documented limit of what
the request carries, times the growth of its encoding on the wire (base64 in JSON for Firehose
records and Lambda zips, JSON string escaping for log messages, form encoding for the query
protocol). The exact per-field rules (record count, per-record size, ...) stay with the service
components; this is the guard that keeps a body out of memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from emulator.constants import IOT_MESSAGE_MAX_BYTES
from emulator.gateway import (
    AwsResponse,
    addressed_service,
    json_error,
    query_error,
    s3_error,
)

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# S3: "Upload an object in a single operation by using the AWS SDKs, REST API, or AWS CLI: ...
# you can upload a single object up to 5 GB"; a multipart part is at most 5 GiB too.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html
S3_MAX = 5 * GIB
# IoT Core message broker: "Message size: 128 KB" (Publish's payload is the raw body).
IOT_DATA_MAX = IOT_MESSAGE_MAX_BYTES
# Lambda quotas: "Invocation payload (request and response): 6 MB each for synchronous"; the
# API answers "Request must be smaller than 6291456 bytes for the InvokeFunction operation".
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_INVOKE_MAX = 6_291_456
# Lambda quotas: "50 MB (zipped, when uploading through the Lambda API or SDKs)"; the zip travels
# base64-encoded in JSON and the API refuses bodies from "Request must be smaller than 70167211
# bytes for the CreateFunction operation" (the same figure for UpdateFunctionCode).
LAMBDA_API_MAX = 70_167_211
# Firehose PutRecordBatch: "up to a limit of 4 MB for the entire request" of record data, which
# travels base64-encoded in JSON (4/3). The firehose component answers a batch over 4 MiB with
# its own InvalidArgumentException; this door cap (three times a maximal batch: 12 MiB of data,
# base64-encoded, plus framing) only keeps bodies of a size no batch comes near out of memory.
# https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html
FIREHOSE_MAX = 3 * 4 * MIB * 4 // 3 + 64 * KIB
# PutLogEvents: "The maximum batch size is 1,048,576 bytes" of UTF-8 messages (+26 bytes per
# event); a JSON string escapes a control character as \\u00XX (6 bytes for 1).
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
LOGS_MAX = 1_048_576 * 6 + 64 * KIB
# Services without a documented request size (IoT control plane, IAM, STS, CloudFormation, whose
# largest inline field is a 51,200-byte TemplateBody, three times that form-encoded, plus up to
# 200 parameters): a bound of the emulator's own, well above any valid request.
DEFAULT_MAX = 4 * MIB

_LAMBDA_INVOKE_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/functions/[^/]+/invocations/?$")
_LAMBDA_OPERATIONS = (
    (re.compile(r"^/20\d\d-\d\d-\d\d/functions/?$"), "CreateFunction"),
    (re.compile(r"^/20\d\d-\d\d-\d\d/functions/[^/]+/code/?$"), "UpdateFunctionCode"),
)

Refusal = Callable[[int], AwsResponse]


def _too_large_json(code: str, what: str) -> Refusal:
    def refuse(limit: int) -> AwsResponse:
        return json_error(code, f"Request must be smaller than {limit} bytes for {what}", 413)

    return refuse


def cap_for(
    service: str | None, method: str, path: str, headers: Mapping[str, str]
) -> tuple[int, Refusal]:
    """The body cap for a request and how to refuse a larger one, in the service's own shape.

    `service` is the one whose protocol the request speaks (`gateway.addressed_service`)."""
    if service == "s3":
        return S3_MAX, lambda limit: s3_error(
            "EntityTooLarge",
            f"Your proposed upload exceeds the maximum allowed size ({limit} bytes)",
            400,
        )
    if service == "iot-data":
        return IOT_DATA_MAX, lambda limit: json_error(
            "RequestEntityTooLargeException",
            f"The payload exceeds the maximum size allowed ({limit} bytes)",
            413,
        )
    if service == "lambda":
        if method == "POST" and _LAMBDA_INVOKE_PATH.match(path):
            return LAMBDA_INVOKE_MAX, _too_large_json(
                "RequestTooLargeException", "the InvokeFunction operation"
            )
        operation = next((op for rx, op in _LAMBDA_OPERATIONS if rx.match(path)), None)
        what = f"the {operation} operation" if operation else "a Lambda API request"
        return LAMBDA_API_MAX, _too_large_json("RequestEntityTooLargeException", what)
    if service == "firehose":
        return FIREHOSE_MAX, _too_large_json(
            "RequestEntityTooLargeException", "a Firehose request (4 MiB of record data)"
        )
    if service == "logs":
        return LOGS_MAX, _too_large_json(
            "RequestEntityTooLargeException", "a CloudWatch Logs request"
        )
    if service in ("cloudformation", "iam", "sts"):
        return DEFAULT_MAX, lambda limit: query_error(
            "RequestEntityTooLarge", f"Request must be smaller than {limit} bytes", 413
        )
    return DEFAULT_MAX, _too_large_json("RequestEntityTooLargeException", "this API")


def body_refusal(
    method: str, path: str, query: str, headers: Mapping[str, str], length: int
) -> AwsResponse | None:
    """The error for a request whose declared body is over its service's cap; None if within.

    `headers` are lower-cased names; `length` is the declared Content-Length."""
    service = addressed_service(
        headers.get("authorization", ""), query, path, bool(headers.get("x-amz-target"))
    )
    limit, refuse = cap_for(service, method, path, headers)
    return refuse(limit) if length > limit else None
