"""Writing Firehose objects to S3 through the emulator's own endpoint, as Firehose would.

Objects go through boto3 against `emulator.endpoint_url`, so a missing bucket is the same
error it is on AWS. Failures carry the error codes Firehose logs for S3 destinations (guide:
"monitoring-with-cloudwatch-logs", Amazon S3 data delivery errors), e.g. `S3.NoSuchBucket`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from emulator.firehose import compression as compression_codecs

S3_ERROR_MESSAGES = {
    "S3.NoSuchBucket": "The specified bucket does not exist. Create the bucket or use a "
    "different bucket that does exist.",
    "S3.AccessDenied": "Access was denied. Ensure that the trust policy for the provided IAM "
    "role allows Firehose to assume the role, and the access policy allows access to the S3 "
    "bucket.",
}
INTERNAL_ERROR = (
    "InternalError",
    "An internal error occurred while attempting to deliver data. Delivery will be retried; if "
    "the error persists, then it will be reported to AWS for resolution.",
)


class DeliveryError(Exception):
    def __init__(self, code: str, message: str, denial: dict | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        # For an IAM denial: the role, action, resource and deciding statements (Decision.as_dict)
        self.denial = denial


class UnsupportedCompression(DeliveryError):
    pass


def encode(data: bytes, compression: str) -> tuple[bytes, str | None]:
    """The object body and its Content-Encoding for a CompressionFormat (`compression.py`)."""
    try:
        return compression_codecs.encode(data, compression)
    except compression_codecs.UnknownCompression as exc:
        # CreateDeliveryStream / UpdateDestination refuse such a format; a stream that has one
        # anyway keeps its records spooled rather than writing them in another shape.
        raise UnsupportedCompression("Emulator.UnsupportedCompression", str(exc)) from exc


class S3Writer:
    def __init__(self, endpoint_url: Callable[[], str]) -> None:
        self._endpoint_url = endpoint_url
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()

    def _client(self, region: str):
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self._endpoint_url(),
                    region_name=region,
                    aws_access_key_id="firehose",
                    aws_secret_access_key="firehose",
                    # Firehose's own retry loop decides; botocore should fail fast.
                    config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60),
                )
                self._clients[region] = client
            return client

    def put(
        self, region: str, bucket: str, key: str, body: bytes, content_encoding: str | None
    ) -> None:
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        try:
            self._client(region).put_object(Bucket=bucket, Key=key, Body=body, **extra)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = f"S3.{error.get('Code', 'Unknown')}"
            message = S3_ERROR_MESSAGES.get(code, error.get("Message", str(exc)))
            raise DeliveryError(code, f"{message} (bucket {bucket!r})") from exc
        except BotoCoreError as exc:
            raise DeliveryError(INTERNAL_ERROR[0], f"{INTERNAL_ERROR[1]} ({exc})") from exc
