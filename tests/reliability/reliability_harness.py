"""The reliability suite's harness (a module of its own, not conftest.py: several test folders
have a conftest.py, so `from conftest import` is ambiguous): the whole pipeline (topic rule ->
Firehose with a Lambda processor and S3 backup -> two buckets, errorAction to S3) created with
boto3 on an emulator, real devices (paho-mqtt over mutual TLS, one thing and certificate each),
and the zero-loss accounting every test ends with:

    acknowledged == raw lines + rule errors        raw lines == parsed rows + processing-failed

The resources mirror template.yaml (same SQL, separator, prefixes, GZIP, backup) but are made
directly, so that a test can swap the Lambda for a faulty one or leave a bucket out.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iam_roles import ensure_pipeline_role, ensure_role, lambda_trust, service_trust
from support.certs import csr_pem, ec_key, key_pem, write_pair
from support.streams import processing, processor

from pipeline.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/reliability"
DATA_PREFIX = "data/"
# As in template.yaml: the error output type and the hour in the error prefix.
ERROR_PREFIX = "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
FAILED_PREFIX = "errors/processing-failed/"
RULE_ERRORS_PREFIX = "errors/iot-rule/"
IOT_LOG_GROUP = "AWSIotLogsV2"

# Thing policy variables (IoT developer guide, "Thing policy variables"): each device may only
# connect as its own thing and publish under its own name.
THING = "${iot:Connection.Thing.ThingName}"


def fleet_policy(topic_root: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": f"arn:aws:iot:*:*:client/{THING}",
            },
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"arn:aws:iot:*:*:topic/{topic_root}/{THING}",
            },
        ],
    }


# ------------------------------------------------------------------------------ the Lambda
@functools.cache
def pipeline_zip() -> bytes:
    """The project's Lambda package (pipeline/ at the zip's root), built once per session."""
    from pipeline import package

    with tempfile.TemporaryDirectory(prefix="reliability-lambda-") as folder:
        return package.lambda_zip(package.build_lambda(Path(folder) / "lambda"))


FAULTY_SOURCE = """
import time

def raises(event, context):
    raise RuntimeError("transform exploded on purpose")

def sleeps(event, context):
    time.sleep(30)

def malformed(event, context):
    return {"records": [{"recordId": "not-one-of-yours", "result": "Ok", "data": ""}]}
"""


def faulty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("faulty.py", FAULTY_SOURCE)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ devices
@dataclass
class DeviceFiles:
    thing_name: str
    cert_path: Path
    key_path: Path
    certificate_id: str


def new_device(iot: Any, thing_name: str, policy_name: str, folder: Path) -> DeviceFiles:
    """A thing with a certificate signed from its own P-256 key's CSR (fast to generate)."""
    key = ec_key()
    answer = iot.create_certificate_from_csr(
        certificateSigningRequest=csr_pem(thing_name, key), setAsActive=True
    )
    iot.create_thing(thingName=thing_name)
    iot.attach_thing_principal(thingName=thing_name, principal=answer["certificateArn"])
    iot.attach_policy(policyName=policy_name, target=answer["certificateArn"])
    cert_path, key_path = write_pair(folder, thing_name, answer["certificatePem"], key_pem(key))
    return DeviceFiles(thing_name, cert_path, key_path, answer["certificateId"])


class Publisher:
    """A paho-mqtt device: counts each QoS 1 publish as acknowledged only when its PUBACK came."""

    def __init__(self, device: DeviceFiles, ca_path: str, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.device = device
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device.thing_name, clean_session=True
        )
        self.client.tls_set(ca_path, str(device.cert_path), str(device.key_path))
        self.client.max_inflight_messages_set(100)  # IoT Core's in-flight quota
        self.client.max_queued_messages_set(0)
        self.sent: dict[int, bytes] = {}
        self.acked: list[bytes] = []
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._early: set[int] = set()
        self.connack: Any = None
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(15):
            self.client.loop_stop()
            raise ConnectionRefusedError(f"{device.thing_name}: no CONNACK within 15 s")
        if self.connack.is_failure:
            self.client.loop_stop()
            raise ConnectionRefusedError(f"{device.thing_name}: CONNACK {self.connack}")

    def _on_connect(self, _client, _userdata, _flags, reason, _properties) -> None:
        self.connack = reason
        self.connected.set()

    # paho calls on_publish while holding its own out-message mutex, which client.publish takes
    # too: holding self._lock across client.publish would deadlock (AB/BA). So publish outside
    # the lock, and remember PUBACKs that arrive before their mid is recorded.
    def _on_publish(self, _client, _userdata, mid, _reason, _properties) -> None:
        with self._lock:
            payload = self.sent.pop(mid, None)
            if payload is not None:
                self.acked.append(payload)
            else:
                self._early.add(mid)

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                self.acked.append(payload)
            else:
                self.sent[info.mid] = payload

    def wait_acked(self, count: int, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acked) >= count or self.disconnected.is_set():
                return len(self.acked) >= count
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def message(thing: str, seq: int) -> bytes:
    return json.dumps(
        {"device_id": thing, "timestamp": int(time.time() * 1000), "sequence": seq, "t": 21.5},
        separators=(",", ":"),
    ).encode()


# ------------------------------------------------------------------------------ pipeline
@dataclass
class Accounting:
    raw: list[bytes] = field(default_factory=list)  # raw lines (what the rule sent)
    rule_errors: list[dict] = field(default_factory=list)  # errorAction messages
    parsed: list[dict] = field(default_factory=list)  # parsed rows
    failed: list[dict] = field(default_factory=list)  # processing-failed error records
    # AWSIotLogsV2 entries of messages the rule's SQL could not evaluate (no action ran, no
    # errorAction: AWS IoT logging is their only trace, "rule-error-handling")
    dropped: list[dict] = field(default_factory=list)

    def ledger(self) -> Ledger:
        return Ledger(
            raw_lines=len(self.raw),
            rule_errors=len(self.rule_errors),
            parsed_rows=len(self.parsed),
            processing_failed=len(self.failed),
            dropped=len(self.dropped),
        )

    def complete_for(self, acknowledged: int) -> bool:
        return self.ledger().complete(acknowledged)

    def summary(self) -> dict[str, int]:
        return {
            "raw lines": len(self.raw),
            "rule errors": len(self.rule_errors),
            "dropped by the rules engine (logged)": len(self.dropped),
            "parsed rows": len(self.parsed),
            "processing-failed": len(self.failed),
        }


class Pipeline:
    """One pipeline on an emulator reached through `client(service)`; names end in `suffix`."""

    def __init__(self, client: Any, suffix: str) -> None:
        self.client = client
        self.suffix = suffix
        self.topic_root = f"rel-{suffix}"
        self.stream = f"rel-stream-{suffix}"
        self.raw_bucket = f"rel-raw-{suffix}"
        self.parsed_bucket = f"rel-parsed-{suffix}"
        self.function = f"rel-transform-{suffix}"
        self.rule = f"rel_rule_{suffix}"
        self.policy = f"rel-fleet-{suffix}"

    # Resources --------------------------------------------------------------------------
    def lambda_role(self) -> str:
        """The transform's execution role (Lambda checks that it trusts lambda.amazonaws.com)."""
        return ensure_role(self.client("iam"), "reliability-transform", lambda_trust(), None)

    def create(
        self,
        handler: str = "pipeline.handler.lambda_handler",
        code: bytes | None = None,
        function_timeout: int = 30,
        retries: int = 3,
        buffer_interval: int = 1,
        create_parsed_bucket: bool = True,
    ) -> Pipeline:
        role = self.lambda_role()
        # The rule's actions and Firehose act with ROLE: it trusts both and allows what each needs.
        ensure_pipeline_role(self.client("iam"), ROLE.rsplit("/", 1)[-1])
        s3 = self.client("s3")
        s3.create_bucket(Bucket=self.raw_bucket)
        if create_parsed_bucket:
            s3.create_bucket(Bucket=self.parsed_bucket)
        function_arn = self.client("lambda").create_function(
            FunctionName=self.function,
            Runtime="python3.12",
            Role=role,
            Handler=handler,
            Code={"ZipFile": code or pipeline_zip()},
            Timeout=function_timeout,
            MemorySize=256,
        )["FunctionArn"]
        hints = {"IntervalInSeconds": buffer_interval, "SizeInMBs": 1}
        self.client("firehose").create_delivery_stream(
            DeliveryStreamName=self.stream,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE,
                "BucketARN": f"arn:aws:s3:::{self.parsed_bucket}",
                "Prefix": DATA_PREFIX,
                "ErrorOutputPrefix": ERROR_PREFIX,
                "BufferingHints": hints,
                "CompressionFormat": "GZIP",
                "ProcessingConfiguration": processing(
                    processor(
                        "Lambda",
                        LambdaArn=function_arn,
                        NumberOfRetries=str(retries),
                        BufferIntervalInSeconds="1",
                        BufferSizeInMBs="1",
                    )
                ),
                "S3BackupMode": "Enabled",
                "S3BackupConfiguration": {
                    "RoleARN": ROLE,
                    "BucketARN": f"arn:aws:s3:::{self.raw_bucket}",
                    "Prefix": DATA_PREFIX,
                    "ErrorOutputPrefix": ERROR_PREFIX,
                    "BufferingHints": hints,
                    "CompressionFormat": "GZIP",
                },
            },
        )
        self.client("iot").create_topic_rule(
            ruleName=self.rule,
            topicRulePayload={
                "sql": f"SELECT topic() AS topic, * FROM '{self.topic_root}/+'",
                "awsIotSqlVersion": "2016-03-23",
                "ruleDisabled": False,
                "actions": [
                    {
                        "firehose": {
                            "roleArn": ROLE,
                            "deliveryStreamName": self.stream,
                            "separator": "\n",
                        }
                    }
                ],
                "errorAction": {
                    "s3": {
                        "roleArn": ROLE,
                        "bucketName": self.raw_bucket,
                        "key": RULE_ERRORS_PREFIX + "${topic()}/${timestamp()}-${newuuid()}.json",
                    }
                },
            },
        )
        self.client("iot").create_policy(
            policyName=self.policy, policyDocument=json.dumps(fleet_policy(self.topic_root))
        )
        return self

    def enable_iot_logging(self) -> None:
        """AWS IoT v2 logging at ERROR with a role IoT can assume (account-wide), so that a
        message the rule's SQL cannot evaluate leaves an entry in AWSIotLogsV2."""
        trust = service_trust("iot.amazonaws.com")
        role = ensure_role(self.client("iam"), "reliability-iot-logging", trust, None)
        self.client("iot").set_v2_logging_options(roleArn=role, defaultLogLevel="ERROR")

    def device(self, index: int, folder: Path) -> DeviceFiles:
        return new_device(self.client("iot"), f"rel-{self.suffix}-{index:03d}", self.policy, folder)

    def topic(self, device: DeviceFiles) -> str:
        return f"{self.topic_root}/{device.thing_name}"

    # Accounting -------------------------------------------------------------------------
    def _bodies(self, bucket: str, prefix: str) -> list[bytes]:
        s3 = self.client("s3")
        try:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        except s3.exceptions.NoSuchBucket:
            return []
        return [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys]

    def account(self) -> Accounting:
        from pipeline import batches

        found = Accounting()
        for body in self._bodies(self.raw_bucket, DATA_PREFIX):
            found.raw.extend(batches.split_lines(body))
        for body in self._bodies(self.raw_bucket, RULE_ERRORS_PREFIX):
            found.rule_errors.append(json.loads(body))
        for body in self._bodies(self.parsed_bucket, DATA_PREFIX):
            found.parsed.extend(json.loads(line) for line in batches.split_lines(body))
        for body in self._bodies(self.parsed_bucket, FAILED_PREFIX):
            found.failed.extend(
                json.loads(line)
                for line in batches.split_lines(
                    gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
                )
            )
        logs = self.client("logs")
        try:
            pages = logs.get_paginator("filter_log_events").paginate(logGroupName=IOT_LOG_GROUP)
            entries = [json.loads(e["message"]) for page in pages for e in page["events"]]
        except logs.exceptions.ResourceNotFoundException:
            entries = []
        found.dropped = [
            e for e in entries if e.get("ruleName") == self.rule and e.get("status") == "Failure"
        ]
        return found

    def wait_accounted(self, acknowledged: int, timeout: float = 30) -> Accounting:
        deadline = time.monotonic() + timeout
        while True:
            found = self.account()
            if found.complete_for(acknowledged) or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def assert_every_acknowledged_message_accounted(
    found: Accounting, acknowledged: list[bytes]
) -> None:
    """Each acknowledged payload is in a raw line (with the rule's topic added) or in a rule error,
    and each raw line is a parsed row or a processing-failed record: nothing lost, nothing extra."""
    import base64

    raw_payloads = []
    for line in found.raw:
        try:
            doc = json.loads(line)
            doc.pop("topic", None)
            raw_payloads.append(json.dumps(doc, separators=(",", ":")).encode())
        except ValueError:
            raw_payloads.append(line)
    errored = [base64.b64decode(e["base64OriginalPayload"]) for e in found.rule_errors]
    # A logged drop does not carry the payload (AWS's entries do not): the acknowledged payloads
    # found nowhere else must be as many as the drops, and each one a payload the rule's
    # `SELECT topic() AS topic, *` cannot evaluate (not a JSON object).
    missing = list(acknowledged)
    for payload in raw_payloads + errored:
        assert payload in missing, f"delivered but never acknowledged: {payload[:80]!r}"
        missing.remove(payload)
    assert len(missing) == len(found.dropped), found.summary()
    assert all(not _is_json_object(payload) for payload in missing), missing
    assert found.ledger().missing_before_parsed() == 0, found.summary()
    parsed_sequences = sorted((row.get("device_id"), row.get("sequence")) for row in found.parsed)
    assert len(set(parsed_sequences)) == len(parsed_sequences), "a row was delivered twice"


def _is_json_object(payload: bytes) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
