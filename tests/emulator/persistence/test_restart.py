"""The emulator keeps what it was told across a clean stop and across `kill -9`.

Every resource kind the pipeline uses is created through boto3 against an emulator process;
the process is stopped (SIGTERM) or killed (SIGKILL) right after the last answer, started again
on the same data directory, and everything is read back, S3 bodies compared by SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile

from boto3.s3.transfer import TransferConfig
from iam_roles import lambda_trust

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}],
}
TRUST = lambda_trust()
# A plain template (no transform) of types moto knows, with outputs.
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {
        "Archive": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": "persist-stack-bucket"},
        },
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/persist/stack"}},
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Archive"}},
        "BucketArn": {"Value": {"Fn::GetAtt": ["Archive", "Arn"]}},
    },
}
HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clients(emu) -> tuple:
    """IoT, S3, IAM, Firehose, Lambda, Logs and CloudFormation clients of `emu`."""
    return tuple(
        emu.client(service)
        for service in ("iot", "s3", "iam", "firehose", "lambda", "logs", "cloudformation")
    )


def populate(emu) -> dict:
    """Create one or more of every kind; return what must be found again."""
    iot, s3, iam, firehose, lam, logs, cfn = clients(emu)
    expected: dict = {"objects": {}}

    cfn.create_stack(StackName="persist-stack", TemplateBody=json.dumps(TEMPLATE))
    cfn.get_waiter("stack_create_complete").wait(
        StackName="persist-stack", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120}
    )

    iot.create_thing(thingName="sensor-1", attributePayload={"attributes": {"site": "lab"}})
    iot.create_thing(thingName="sensor-2")
    iot.create_policy(policyName="device-policy", policyDocument=json.dumps(POLICY))
    active = iot.create_keys_and_certificate(setAsActive=True)
    inactive = iot.create_keys_and_certificate(setAsActive=False)
    iot.attach_policy(policyName="device-policy", target=active["certificateArn"])
    iot.attach_thing_principal(thingName="sensor-1", principal=active["certificateArn"])
    expected["active_cert"] = active["certificateId"]
    expected["inactive_cert"] = inactive["certificateId"]
    expected["active_pem"] = active["certificatePem"]

    role = iam.create_role(RoleName="persist-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    expected["role_arn"] = role["Role"]["Arn"]

    s3.create_bucket(Bucket="persist-data")
    s3.put_bucket_tagging(
        Bucket="persist-data", Tagging={"TagSet": [{"Key": "project", "Value": "pipeline"}]}
    )
    bodies = {
        "small.txt": b"hello, persistence",
        "dir/ünïcode + space.json": json.dumps({"k": "v"}).encode(),
        "spilled.bin": os.urandom(6 * 1024 * 1024),  # above moto's 5 MiB in-memory buffer
    }
    for key, body in bodies.items():
        s3.put_object(Bucket="persist-data", Key=key, Body=body)
    s3.put_object_tagging(
        Bucket="persist-data", Key="small.txt", Tagging={"TagSet": [{"Key": "kind", "Value": "t"}]}
    )
    multipart = os.urandom(11 * 1024 * 1024)
    s3.upload_fileobj(
        io.BytesIO(multipart),
        "persist-data",
        "multipart.bin",
        Config=TransferConfig(
            multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
        ),
    )
    bodies["multipart.bin"] = multipart
    s3.put_object(Bucket="persist-data", Key="overwritten", Body=b"first")
    s3.put_object(Bucket="persist-data", Key="overwritten", Body=b"second")
    bodies["overwritten"] = b"second"
    s3.put_object(Bucket="persist-data", Key="deleted", Body=b"gone")
    s3.delete_object(Bucket="persist-data", Key="deleted")
    s3.put_object(Bucket="persist-data", Key="batch-deleted", Body=b"gone too")
    s3.delete_objects(Bucket="persist-data", Delete={"Objects": [{"Key": "batch-deleted"}]})
    expected["objects"] = {k: sha256(v) for k, v in bodies.items()}

    firehose.create_delivery_stream(
        DeliveryStreamName="persist-stream",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": expected["role_arn"],
            "BucketARN": "arn:aws:s3:::persist-data",
            "Prefix": "raw/",
        },
    )
    described = firehose.describe_delivery_stream(DeliveryStreamName="persist-stream")
    expected["stream_version"] = described["DeliveryStreamDescription"]["VersionId"]

    lam.create_function(
        FunctionName="persist-fn",
        Runtime="python3.11",
        Role=expected["role_arn"],
        Handler="app.handler",
        Code={"ZipFile": lambda_zip()},
    )
    expected["code_sha"] = lam.get_function(FunctionName="persist-fn")["Configuration"][
        "CodeSha256"
    ]

    iot.create_topic_rule(
        ruleName="persist_rule",
        topicRulePayload={
            "sql": "SELECT * FROM 'devices/+/telemetry'",
            "actions": [
                {
                    "firehose": {
                        "roleArn": expected["role_arn"],
                        "deliveryStreamName": "persist-stream",
                    }
                }
            ],
        },
    )

    logs.create_log_group(logGroupName="/persist/app")
    logs.create_log_stream(logGroupName="/persist/app", logStreamName="s1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/persist/app",
        logStreamName="s1",
        logEvents=[{"timestamp": now, "message": "one"}, {"timestamp": now + 1, "message": "two"}],
    )
    return expected


def check(emu, expected: dict) -> None:
    """Everything `populate` created is there, with its attributes and links."""
    iot, s3, iam, firehose, lam, logs, cfn = clients(emu)
    stack = cfn.describe_stacks(StackName="persist-stack")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["BucketName"] == "persist-stack-bucket"
    assert outputs["BucketArn"] == "arn:aws:s3:::persist-stack-bucket"
    s3.head_bucket(Bucket="persist-stack-bucket")

    assert iot.describe_thing(thingName="sensor-1")["attributes"] == {"site": "lab"}
    assert {t["thingName"] for t in iot.list_things()["things"]} >= {"sensor-1", "sensor-2"}
    assert json.loads(iot.get_policy(policyName="device-policy")["policyDocument"]) == POLICY
    active = iot.describe_certificate(certificateId=expected["active_cert"])
    assert active["certificateDescription"]["status"] == "ACTIVE"
    assert active["certificateDescription"]["certificatePem"] == expected["active_pem"]
    inactive = iot.describe_certificate(certificateId=expected["inactive_cert"])
    assert inactive["certificateDescription"]["status"] == "INACTIVE"
    cert_arn = active["certificateDescription"]["certificateArn"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=cert_arn)["policies"]] == [
        "device-policy"
    ]
    assert iot.list_thing_principals(thingName="sensor-1")["principals"] == [cert_arn]
    rule = iot.get_topic_rule(ruleName="persist_rule")["rule"]
    assert rule["sql"] == "SELECT * FROM 'devices/+/telemetry'"
    assert rule["actions"][0]["firehose"]["deliveryStreamName"] == "persist-stream"

    assert iam.get_role(RoleName="persist-role")["Role"]["Arn"] == expected["role_arn"]

    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="persist-data").get("Contents", [])}
    assert listed == set(expected["objects"])
    for key, digest in expected["objects"].items():
        assert sha256(s3.get_object(Bucket="persist-data", Key=key)["Body"].read()) == digest, key
    bucket_tags = s3.get_bucket_tagging(Bucket="persist-data")["TagSet"]
    assert bucket_tags == [{"Key": "project", "Value": "pipeline"}]
    tags = s3.get_object_tagging(Bucket="persist-data", Key="small.txt")["TagSet"]
    assert tags == [{"Key": "kind", "Value": "t"}]

    stream = firehose.describe_delivery_stream(DeliveryStreamName="persist-stream")[
        "DeliveryStreamDescription"
    ]
    assert stream["VersionId"] == expected["stream_version"]
    assert stream["Destinations"][0]["ExtendedS3DestinationDescription"]["Prefix"] == "raw/"

    function = lam.get_function(FunctionName="persist-fn")["Configuration"]
    assert function["CodeSha256"] == expected["code_sha"]
    assert function["Handler"] == "app.handler"

    events = logs.get_log_events(logGroupName="/persist/app", logStreamName="s1")["events"]
    assert [e["message"] for e in events] == ["one", "two"]
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert {"/persist/app", "/persist/stack"} <= groups


def test_a_clean_stop_keeps_every_kind_of_resource(emulators):
    # Given an emulator holding one of every kind
    first = emulators()
    expected = populate(first)
    # When it is stopped cleanly and started again on the same data directory
    assert first.stop() == 0
    second = emulators()
    # Then everything is there, S3 bodies byte-identical
    check(second, expected)


def test_kill_9_keeps_every_answered_change(emulators):
    # Given an emulator holding one of every kind, the last change just answered
    first = emulators()
    expected = populate(first)
    # When it is killed without warning and started again
    first.kill9()
    second = emulators()
    # Then nothing that was answered is lost
    check(second, expected)


def test_kill_9_right_after_a_stack_and_a_certificate(emulators):
    # Given a deployed stack and then a new certificate (the acceptance scenario of persistence)
    first = emulators()
    cfn, iot = first.client("cloudformation"), first.client("iot")
    cfn.create_stack(StackName="deployed", TemplateBody=json.dumps(TEMPLATE))
    cfn.get_waiter("stack_create_complete").wait(
        StackName="deployed", WaiterConfig={"Delay": 0.5, "MaxAttempts": 120}
    )
    iot.create_thing(thingName="device")
    iot.create_policy(policyName="policy", policyDocument=json.dumps(POLICY))
    cert = iot.create_keys_and_certificate(setAsActive=True)
    # When the process is killed right after the certificate was answered
    first.kill9()
    second = emulators()
    # Then the stack, thing, policy and certificate are there
    iot = second.client("iot")
    status = second.client("cloudformation").describe_stacks(StackName="deployed")["Stacks"][0]
    assert status["StackStatus"] == "CREATE_COMPLETE"
    iot.describe_thing(thingName="device")
    iot.get_policy(policyName="policy")
    described = iot.describe_certificate(certificateId=cert["certificateId"])
    assert described["certificateDescription"]["status"] == "ACTIVE"


def test_changes_after_a_restart_are_kept_too(emulators):
    # Given a state that was restored once and then changed
    first = emulators()
    first.client("s3").create_bucket(Bucket="twice")
    first.client("s3").put_object(Bucket="twice", Key="a", Body=b"1")
    first.kill9()
    second = emulators()
    second.client("s3").put_object(Bucket="twice", Key="b", Body=b"2")
    second.client("s3").delete_object(Bucket="twice", Key="a")
    second.client("iot").create_thing(thingName="later")
    # When it is killed and restarted again
    second.kill9()
    third = emulators()
    # Then the second run's changes are there and the deleted object stays deleted
    s3 = third.client("s3")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="twice")["Contents"]] == ["b"]
    assert s3.get_object(Bucket="twice", Key="b")["Body"].read() == b"2"
    third.client("iot").describe_thing(thingName="later")


def test_versions_of_an_object_survive(emulators):
    # Given a versioned bucket with two versions and a delete marker
    first = emulators()
    s3 = first.client("s3")
    s3.create_bucket(Bucket="versions")
    s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="versions", Key="k", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket="versions", Key="k", Body=b"v2")["VersionId"]
    s3.delete_object(Bucket="versions", Key="k")
    # When the process is killed and restarted
    first.kill9()
    s3 = emulators().client("s3")
    # Then both versions and the delete marker are listed, and each body reads back
    listed = s3.list_object_versions(Bucket="versions")
    assert {v["VersionId"] for v in listed["Versions"]} == {v1, v2}
    assert len(listed["DeleteMarkers"]) == 1
    assert s3.get_object(Bucket="versions", Key="k", VersionId=v1)["Body"].read() == b"v1"


def test_kill_9_in_the_middle_of_concurrent_changes_loses_nothing_answered(emulators):
    # Given clients that keep creating things and objects from several threads
    first = emulators()
    first.client("s3").create_bucket(Bucket="busy")
    answered_things: list[str] = []
    answered_objects: dict[str, str] = {}
    stop = threading.Event()

    def things(worker: int) -> None:
        iot = first.client("iot")
        for i in range(10_000):
            if stop.is_set():
                return
            try:
                iot.create_thing(thingName=f"busy-{worker}-{i}")
            except Exception:
                return  # the process was killed mid-call: not answered
            answered_things.append(f"busy-{worker}-{i}")

    def objects(worker: int) -> None:
        s3 = first.client("s3")
        for i in range(10_000):
            if stop.is_set():
                return
            body = os.urandom(100 + i)
            try:
                s3.put_object(Bucket="busy", Key=f"{worker}/{i}", Body=body)
            except Exception:
                return
            answered_objects[f"{worker}/{i}"] = sha256(body)

    workers = [threading.Thread(target=things, args=(w,)) for w in range(2)]
    workers += [threading.Thread(target=objects, args=(w,)) for w in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(3)
    # When the process is killed while requests are in flight
    first.kill9()
    stop.set()
    for worker in workers:
        worker.join(timeout=60)
    assert answered_things and answered_objects
    # Then it starts again, and every answered change is there
    second = emulators()
    iot, s3 = second.client("iot"), second.client("s3")
    listed = set()
    for page in iot.get_paginator("list_things").paginate():
        listed |= {t["thingName"] for t in page["things"]}
    assert set(answered_things) <= listed
    for key, digest in answered_objects.items():
        assert sha256(s3.get_object(Bucket="busy", Key=key)["Body"].read()) == digest, key
