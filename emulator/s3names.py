"""S3 bucket names as AWS accepts them, checked at CreateBucket before moto sees the request.

moto checks only a name's length, and takes a path-style bucket name from the raw, still
percent-encoded URL: `PUT /%2e%2e` made a bucket called `%2e%2e`. AWS refuses every name outside
its naming rules with `InvalidBucketName` (400), so nothing downstream (persistence, Firehose
destinations, IAM resource ARNs) ever sees such a name.

Rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
(general purpose buckets; the pre-2018 us-east-1 "legacy" names with capitals and underscores
can no longer be created). Error: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from xml.sax.saxutils import escape

MIN_LENGTH, MAX_LENGTH = 3, 63
_CHARACTERS = re.compile(r"[a-z0-9.-]+")
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")  # "sthree-configurator" included
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Which naming rule `name` breaks (a sentence for the error message), or None."""
    if not MIN_LENGTH <= len(name) <= MAX_LENGTH:
        return f"bucket names must be between {MIN_LENGTH} and {MAX_LENGTH} characters long"
    if not _CHARACTERS.fullmatch(name):
        return (
            "bucket names can consist only of lowercase letters, numbers, periods (.) and "
            "hyphens (-)"
        )
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "bucket names must begin and end with a letter or number"
    if ".." in name:
        return "bucket names must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        return "bucket names must not be formatted as an IP address"
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"bucket names must not start with the reserved prefix {prefix}"
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"bucket names must not end with the reserved suffix {suffix}"
    return None


def invalid_bucket_name(name: str, problem: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """S3's `InvalidBucketName` error: (status line, headers, XML body)."""
    request_id = uuid.uuid4().hex[:16].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>InvalidBucketName</Code>"
        f"<Message>The specified bucket is not valid: {escape(problem)}.</Message>"
        f"<BucketName>{escape(name)}</BucketName>"
        f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("Content-Length", str(len(body))),
        ("x-amz-request-id", request_id),
    ]
    return "400 Bad Request", headers, body
