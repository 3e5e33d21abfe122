"""decode(*, 'proto', ...) in a topic rule, end to end: the FileDescriptorSet uploaded with boto3
to the emulator's S3 with a bucket policy for iot.amazonaws.com, a device publishing a binary
protobuf payload with paho-mqtt over mutual TLS, the decoded JSON read back from S3
("binary-payloads", "Decoding protobuf message payloads";
https://docs.aws.amazon.com/iot/latest/developerguide/binary-payloads.html).
"""

from __future__ import annotations

from botocore.exceptions import ClientError
from support.protobuf import iot_read_policy, person_bytes, person_descriptor_set

SQL = (
    "SELECT VALUE decode(*, 'proto', '{bucket}', 'schemas/person.desc', 'person', 'Person') "
    "FROM 'proto/{unique}/+'"
)


def _descriptor_bucket(aws, emulator, unique, rule_name: str | None) -> str:
    """A bucket holding the descriptor; with `rule_name`, a policy letting IoT Core read it for
    that rule (the page's policy, with the confused-deputy aws:SourceArn condition)."""
    s3 = aws("s3")
    bucket = f"proto-desc-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket, Key="schemas/person.desc", Body=person_descriptor_set().SerializeToString()
    )
    if rule_name is not None:
        rule_arn = f"arn:aws:iot:{emulator.region}:123456789012:rule/{rule_name}"
        s3.put_bucket_policy(Bucket=bucket, Policy=iot_read_policy(bucket, rule_arn))
    return bucket


def _publish(rules, device_client, unique, payload: bytes) -> None:
    device = device_client(f"proto-{unique}")
    info = device.publish(f"proto/{unique}/m1", payload, qos=1)
    info.wait_for_publish(10)
    assert info.is_published()
    assert rules.drain(10)


def test_a_protobuf_payload_is_decoded_to_json_in_s3(
    rules, aws, emulator, unique, s3_rule, device_client
):
    # given the descriptor in a bucket whose policy lets IoT Core read it for this rule
    bucket = _descriptor_bucket(aws, emulator, unique, f"proto_{unique}")
    stored = s3_rule("proto", SQL.format(bucket=bucket, unique=unique), "2016-03-23")
    # when a device publishes a binary demo.Person message
    payload = person_bytes(full_name="Ada", id=7, big_count=2**40, kind=1, phones=["555"])
    _publish(rules, device_client, unique, payload)
    # then the S3 action wrote it in protobuf's JSON mapping
    assert stored("m1") == {
        "fullName": "Ada",
        "id": 7,
        "bigCount": str(2**40),
        "kind": "KIND_HOME",
        "phones": [{"number": "555"}],
    }


def test_without_a_bucket_policy_for_iot_the_rule_runs_no_action(
    rules, aws, emulator, unique, s3_rule, device_client
):
    # given the descriptor in a bucket with no policy for iot.amazonaws.com
    bucket = _descriptor_bucket(aws, emulator, unique, None)
    stored = s3_rule("proto", SQL.format(bucket=bucket, unique=unique), "2016-03-23")
    # when a device publishes a protobuf payload
    _publish(rules, device_client, unique, person_bytes(id=1))
    # then the SQL evaluation failed, naming the permission, and no output was written
    failures = [f for f in rules.rule_failures(f"proto_{unique}") if f.stage == "sql"]
    assert failures
    message = failures[-1].failures[0]["errorMessage"]
    assert "s3:GetObject" in message and "iot.amazonaws.com" in message
    try:
        stored("m1")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchKey"
    else:
        raise AssertionError("the rule wrote an output although the descriptor was not readable")
