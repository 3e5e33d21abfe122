"""The firehose and lambda rule actions: records as AWS builds them, and the real Firehose path."""

from __future__ import annotations

import json
import time

import pytest
from support.rules import create_rule, error_message, inbound, new_bucket, s3_action

_message = inbound  # a message as the broker hands it to the engine


@pytest.mark.parametrize(
    ("separator", "suffix"), [(None, b""), ("\n", b"\n"), (",", b","), ("\r\n", b"\r\n")]
)
def test_firehose_record_is_the_output_plus_the_separator(
    emulator, rules, aws, unique, role_arn, recording_firehose, separator, suffix
):
    # given the pipeline's rule: SELECT topic() AS topic, * with a firehose action
    params = {"deliveryStreamName": f"s-{unique}", "roleArn": role_arn}
    if separator is not None:
        params["separator"] = separator
    name = f"fh_{unique}_{len(suffix)}{suffix[:1].hex()}"
    create_rule(
        aws("iot"), name, f"SELECT topic() AS topic, * FROM 'fh/{unique}/+'", [{"firehose": params}]
    )
    # when the broker hands a message to the engine
    rules.accept(_message(emulator, f"fh/{unique}/m1", b'{"t": 20.5}'))
    # then one record went to put_records before accept returned
    [(account, region, stream, records)] = recording_firehose.calls
    assert (account, region, stream) == (emulator.account_id, emulator.region, f"s-{unique}")
    assert records == [b'{"topic":"fh/' + unique.encode() + b'/m1","t":20.5}' + suffix]
    aws("iot").delete_topic_rule(ruleName=name)


def test_firehose_batch_mode_sends_one_record_per_array_element(
    emulator, rules, aws, unique, role_arn, recording_firehose
):
    create_rule(
        aws("iot"),
        f"fhb_{unique}",
        f"SELECT VALUE readings FROM 'fhb/{unique}'",
        [
            {
                "firehose": {
                    "deliveryStreamName": f"s-{unique}",
                    "roleArn": role_arn,
                    "batchMode": True,
                    "separator": "\n",
                }
            }
        ],
    )
    payload = json.dumps({"readings": [{"v": 1}, {"v": 2}, 3]}).encode()
    rules.accept(_message(emulator, f"fhb/{unique}", payload))
    [(_, _, _, records)] = recording_firehose.calls
    assert records == [b'{"v":1}\n', b'{"v":2}\n', b"3\n"]


def test_firehose_batch_mode_over_500_records_fails_to_the_error_action(
    emulator, rules, unique, role_arn, recording_firehose, topic_rule, rule_bucket
):
    bucket, s3 = rule_bucket("fhb")
    batch = {"firehose": {"deliveryStreamName": "s", "roleArn": role_arn, "batchMode": True}}
    sql = f"SELECT VALUE readings FROM 'fhx/{unique}'"
    topic_rule("fhx", sql, [batch], error_action=s3_action(bucket, "e", role_arn))
    rules.accept(_message(emulator, f"fhx/{unique}", json.dumps({"readings": [0] * 501}).encode()))
    assert rules.drain(10)
    assert recording_firehose.calls == []
    [failure] = error_message(s3, bucket, "e")["failures"]
    assert failure["failedAction"] == "FirehoseAction"
    assert "500" in failure["errorMessage"]


def test_firehose_error_goes_to_the_error_action_with_client_id(
    emulator, rules, unique, role_arn, recording_firehose, topic_rule, rule_bucket
):
    from emulator.firehose.service import FirehoseError

    # given Firehose answering ResourceNotFoundException
    recording_firehose.fail_with = FirehoseError(
        "ResourceNotFoundException", f"Firehose nope-{unique} under account 123456789012 not found."
    )
    bucket, s3 = rule_bucket("fhe")
    missing = {"firehose": {"deliveryStreamName": f"nope-{unique}", "roleArn": role_arn}}
    error_action = s3_action(bucket, "${clientid()}", role_arn)
    topic_rule("fhe", f"SELECT * FROM 'fhe/{unique}'", [missing], error_action=error_action)
    # when a device's message arrives, then accept still returns (the failure is the rule's)
    rules.accept(_message(emulator, f"fhe/{unique}", b"{}", client_id="dev-9"))
    assert rules.drain(10)
    message = error_message(s3, bucket, "dev-9")
    assert message["clientId"] == "dev-9"
    [failure] = message["failures"]
    assert failure["failedAction"] == "FirehoseAction"
    assert failure["failedResource"] == f"nope-{unique}"
    assert "ResourceNotFoundException" in failure["errorMessage"]


def test_firehose_failure_that_is_not_an_aws_error_refuses_the_message(
    emulator, rules, aws, unique, role_arn, recording_firehose
):
    # given a spool that cannot write (not an API error): the broker must not acknowledge
    recording_firehose.fail_with = OSError(28, "No space left on device")
    create_rule(
        aws("iot"),
        f"fho_{unique}",
        f"SELECT * FROM 'fho/{unique}'",
        [{"firehose": {"deliveryStreamName": "s", "roleArn": role_arn}}],
    )
    with pytest.raises(OSError):
        rules.accept(_message(emulator, f"fho/{unique}", b"{}"))


def test_lambda_action_invokes_asynchronously(emulator, rules, unique, topic_rule):
    # given a stand-in with the Lambda runtime's invoke signature
    calls = []

    class RecordingLambdas:
        def invoke(self, account_id, region, function, payload, invocation_type="RequestResponse"):
            calls.append((function, payload, invocation_type))

    previous = emulator.lambdas
    emulator.lambdas = RecordingLambdas()
    try:
        arn = f"arn:aws:lambda:{emulator.region}:{emulator.account_id}:function:f-{unique}"
        sql = f"SELECT encode(*, 'base64') AS data FROM 'lam/{unique}'"
        topic_rule("lam", sql, [{"lambda": {"functionArn": arn}}])
        rules.accept(_message(emulator, f"lam/{unique}", b"\x00\x01"))
        assert rules.drain(10)
    finally:
        emulator.lambdas = previous
    # then Lambda got an Event (asynchronous) invocation with the rule's output
    assert calls == [(arn, b'{"data":"AAE="}', "Event")]


def test_real_firehose_delivers_the_rule_output_to_s3(emulator, rules, aws, unique, role_arn):
    # given a real delivery stream (the FirehoseService component) with a newline separator rule
    firehose = emulator.firehose
    bucket = f"rules-real-fh-{unique}"
    s3 = new_bucket(aws, bucket)
    stream = f"rules-{unique}"
    aws("firehose").create_delivery_stream(
        DeliveryStreamName=stream,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": role_arn,
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    )
    create_rule(
        aws("iot"),
        f"realfh_{unique}",
        f"SELECT topic() AS topic, * FROM 'real/{unique}/+'",
        [{"firehose": {"deliveryStreamName": stream, "roleArn": role_arn, "separator": "\n"}}],
    )
    # when two messages arrive and the buffers are flushed
    rules.accept(_message(emulator, f"real/{unique}/a", b'{"n": 1}'))
    rules.accept(_message(emulator, f"real/{unique}/b", b'{"n": 2}'))
    assert firehose.flush_pending(timeout=30, stream_name=stream)
    # then S3 holds both records, newline separated
    deadline = time.monotonic() + 15
    contents = []
    while time.monotonic() < deadline and not contents:
        contents = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        time.sleep(0.1)
    body = b"".join(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in contents)
    assert sorted(body.splitlines()) == [
        f'{{"topic":"real/{unique}/a","n":1}}'.encode(),
        f'{{"topic":"real/{unique}/b","n":2}}'.encode(),
    ]
