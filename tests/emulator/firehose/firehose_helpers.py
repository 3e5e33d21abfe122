"""Small helpers shared by the Firehose tests: create a bucket and a delivery stream, deploy a
processor function, wait for objects."""

from __future__ import annotations

import gzip
import io
import json
import time
import zipfile

from iam_roles import lambda_trust
from support.streams import (  # noqa: F401 (the Firehose tests import them from here)
    IMMEDIATE,
    ROLE,
    create_stream,
    error_log,
    error_log_events,
    make_stream,
    processing,
    processor,
)

# <prefix><stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid><ext>  (guide: "s3-object-name")
KEY_SUFFIX = r"{stream}-{version}-\d{{4}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-\d{{2}}-[0-9a-f-]{{36}}"
TIME_PATH = r"\d{4}/\d{2}/\d{2}/\d{2}/"


def deploy_functions(aws, name: str, module: str, source: str, handlers=("handler",)) -> dict:
    """Real functions in the emulator's Lambda runtime, `<name>-<handler>` each running
    `<module>.<handler>` from `source`, under a role Lambda may assume; their ARNs by handler."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{module}.py", source)
    trust = json.dumps(lambda_trust())
    role = aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    return {
        handler: aws("lambda").create_function(
            FunctionName=f"{name}-{handler}",
            Runtime="python3.11",
            Role=role["Role"]["Arn"],
            Handler=f"{module}.{handler}",
            Code={"ZipFile": buffer.getvalue()},
            Timeout=10,
        )["FunctionArn"]
        for handler in handlers
    }


def lambda_processing(arn: str, retries: int = 3) -> dict:
    """ProcessingConfiguration with one Lambda processor (NumberOfRetries: AWS's default 3)."""
    return processing(processor("Lambda", LambdaArn=arn, NumberOfRetries=str(retries)))


def wait_for_objects(s3, bucket: str, count: int = 1, prefix: str = "", timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    contents: list[dict] = []
    while time.monotonic() < deadline:
        contents = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        if len(contents) >= count:
            return sorted(contents, key=lambda o: o["Key"])
        time.sleep(0.1)
    raise AssertionError(f"expected {count} objects in s3://{bucket}/{prefix}, found {contents}")


def read_object(s3, bucket: str, key: str) -> tuple[bytes, dict]:
    response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"].read()
    if response.get("ContentEncoding") == "gzip":
        body = gzip.decompress(body)
    return body, response


def wait_for_deliveries(firehose, stream: str, count: int = 1, timeout: float = 10.0) -> list:
    """The delivery log entries of `stream`; an entry is added just after its object is written,
    so a test that saw the object waits a moment for the entry."""
    deadline = time.monotonic() + timeout
    while len(firehose.deliveries(stream)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return firehose.deliveries(stream)
