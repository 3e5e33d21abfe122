"""Topic rule actions run with the role their `roleArn` names, as AWS IoT runs them: the trust
policy must let iot.amazonaws.com assume the role (with aws:SourceAccount / aws:SourceArn), the
role's policies (and boundary) must allow the action's operation on its resource, and the lambda
action needs the function's resource-based policy. Everything is made with boto3 against the
session emulator (IAM enforced); a denial reaches the errorAction like any failing action."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest
from iam_roles import ensure_lambda_role, ensure_role, iot_trust, lambda_trust
from support.packages import function_zip
from support.rules import create_rule, error_documents, inbound
from support.waiting import wait_until

SHARED_ROLE = "arn:aws:iam::123456789012:role/iot-rules"  # allowed everything the actions need


def _allow(action: str, resource: str, effect: str = "Allow", sid: str | None = None) -> dict:
    statement = {"Effect": effect, "Action": action, "Resource": resource}
    if sid:
        statement["Sid"] = sid
    return statement


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@pytest.fixture
def buckets(aws, unique):
    """(s3 client, output bucket, error bucket)."""
    s3 = aws("s3")
    out, err = f"out-{unique}", f"err-{unique}"
    for name in (out, err):
        s3.create_bucket(Bucket=name)
    return s3, out, err


@pytest.fixture
def s3_rule(aws, rules, emulator, unique, buckets):
    """s3_rule(role_arn) -> publish(): a rule writing to the output bucket with that role and an
    errorAction writing to the error bucket with the shared role; publish() runs one message."""
    _s3, out, err = buckets

    def make(role_arn: str, error_role: str = SHARED_ROLE, name: str | None = None):
        rule = name or f"roles_{unique}"
        create_rule(
            aws("iot"),
            rule,
            f"SELECT * FROM 'roles/{unique}'",
            [{"s3": {"bucketName": out, "key": "out/${newuuid()}", "roleArn": role_arn}}],
            {"s3": {"bucketName": err, "key": "${newuuid()}", "roleArn": error_role}},
        )

        def publish(payload: bytes = b'{"t": 1}') -> None:
            rules.accept(inbound(emulator, f"roles/{unique}", payload))
            assert rules.drain(10)

        return publish

    return make


def _role(aws, unique, policy: dict | None, trust: dict | None = None, **kwargs) -> str:
    iam = aws("iam")
    name = f"rule-role-{unique}"
    arn = ensure_role(iam, name, trust or iot_trust(), policy)
    if kwargs.get("boundary"):
        iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=kwargs["boundary"])
    return arn


def _objects(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _only_failure(s3, err: str) -> dict:
    docs = error_documents(s3, err)
    assert len(docs) == 1, docs
    (failure,) = docs[0]["failures"]
    return failure


def test_role_without_a_policy_is_denied_and_the_error_action_names_it(
    aws, unique, buckets, s3_rule
):
    s3, out, err = buckets
    role = _role(aws, unique, None)
    s3_rule(role)()
    assert _objects(s3, out) == []
    failure = _only_failure(s3, err)
    assert failure["failedAction"] == "S3Action"
    assert failure["failedResource"] == out
    message = failure["errorMessage"]
    assert message.startswith("Failed to put S3 object. The error received was User: ")
    assert f"assumed-role/rule-role-{unique}/" in message
    assert f"s3:PutObject on resource: arn:aws:s3:::{out}/out/" in message
    assert "because no identity-based policy allows the s3:PutObject action" in message
    assert "Error Code: AccessDenied" in message


def test_policy_on_another_resource_arn_is_denied(aws, unique, buckets, s3_rule):
    s3, out, err = buckets
    role = _role(aws, unique, _policy(_allow("s3:PutObject", f"arn:aws:s3:::{out}-other/*")))
    s3_rule(role)()
    assert _objects(s3, out) == []
    assert "no identity-based policy allows" in _only_failure(s3, err)["errorMessage"]


def test_explicit_deny_beats_allow_and_the_denying_statement_is_named(
    aws, unique, buckets, s3_rule, emulator
):
    s3, out, err = buckets
    role = _role(
        aws,
        unique,
        _policy(
            _allow("s3:*", "*"),
            _allow("s3:PutObject", f"arn:aws:s3:::{out}/out/*", "Deny", "NoOutput"),
        ),
    )
    s3_rule(role)()
    assert _objects(s3, out) == []
    message = _only_failure(s3, err)["errorMessage"]
    assert "with an explicit deny in an identity-based policy" in message
    assert "NoOutput" in message
    # The activity view names the role, the IAM action, the resource and the statement.
    with urllib.request.urlopen(f"{emulator.endpoint_url}/_emulator/activity") as answer:
        events = json.load(answer)["events"]
    denied = [e for e in events if e["event"] == "RULE_ACTION_DENIED" and e["principal"] == role]
    assert denied, events[-5:]
    assert denied[-1]["action"] == "s3:PutObject"
    assert denied[-1]["resource"].startswith(f"arn:aws:s3:::{out}/out/")
    assert denied[-1]["policyDecision"] == "explicitDeny"
    assert "NoOutput" in denied[-1]["reason"]


def test_permissions_boundary_limits_what_the_role_allows(aws, unique, buckets, s3_rule):
    s3, out, err = buckets
    boundary = aws("iam").create_policy(
        PolicyName=f"boundary-{unique}",
        PolicyDocument=json.dumps(_policy(_allow("logs:*", "*"))),
    )["Policy"]["Arn"]
    role = _role(aws, unique, _policy(_allow("s3:PutObject", "*")), boundary=boundary)
    s3_rule(role)()
    assert _objects(s3, out) == []
    assert (
        "no permissions boundary allows the s3:PutObject" in _only_failure(s3, err)["errorMessage"]
    )


@pytest.mark.parametrize("case", ["principal", "source-arn"])
def test_role_iot_may_not_assume_is_denied(aws, unique, buckets, s3_rule, case):
    s3, out, err = buckets
    # a role for Lambda, or one whose trust names another rule (confused-deputy condition)
    trust = lambda_trust() if case == "principal" else iot_trust(rule="some_other_rule")
    role = _role(aws, unique, _policy(_allow("s3:PutObject", "*")), trust)
    s3_rule(role)()
    assert _objects(s3, out) == []
    message = _only_failure(s3, err)["errorMessage"]
    assert "User: iot.amazonaws.com is not authorized to perform: sts:AssumeRole" in message
    assert f"on resource: {role}" in message
    assert "because no trust policy allows the sts:AssumeRole action" in message


def test_restoring_the_permission_resumes_delivery(aws, unique, buckets, s3_rule):
    s3, out, err = buckets
    iam = aws("iam")
    role = _role(aws, unique, None)
    publish = s3_rule(role)
    publish()
    assert _objects(s3, out) == [] and len(error_documents(s3, err)) == 1
    # when the permission is granted (a changed policy is a new decision, nothing cached wins)
    iam.put_role_policy(
        RoleName=f"rule-role-{unique}",
        PolicyName="access",
        PolicyDocument=json.dumps(_policy(_allow("s3:PutObject", f"arn:aws:s3:::{out}/*"))),
    )
    publish(b'{"t": 2}')
    publish(b'{"t": 3}')
    bodies = sorted(s3.get_object(Bucket=out, Key=k)["Body"].read() for k in _objects(s3, out))
    assert bodies == [b'{"t":2}', b'{"t":3}']
    assert len(error_documents(s3, err)) == 1  # no new failure


def test_denied_error_action_is_logged_and_dropped(aws, unique, buckets, s3_rule, rules, caplog):
    s3, out, err = buckets
    nothing = _role(aws, unique, None)
    caplog.set_level(logging.WARNING, logger="emulator.rules")
    s3_rule(nothing, error_role=nothing)()
    assert _objects(s3, out) == [] and _objects(s3, err) == []
    stages = {f.stage: f for f in rules.rule_failures(f"roles_{unique}")}
    assert set(stages) == {"action", "errorAction"}
    dropped = stages["errorAction"]
    assert dropped.failures[0]["failedAction"] == "S3Action"
    assert dropped.denials[0]["role"] == nothing
    assert dropped.denials[0]["action"] == "s3:PutObject"
    assert dropped.denials[0]["resource"].startswith(f"arn:aws:s3:::{err}/")
    assert any(
        "errorAction" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records
    )


def test_firehose_and_republish_actions_are_checked_too(
    aws, unique, rules, emulator, buckets, recording_firehose
):
    s3, _out, err = buckets
    role = _role(aws, unique, _policy(_allow("iot:Publish", f"arn:aws:iot:*:*:topic/ok/{unique}")))
    create_rule(
        aws("iot"),
        f"fh_{unique}",
        f"SELECT * FROM 'fh/{unique}'",
        [
            {"firehose": {"deliveryStreamName": f"s-{unique}", "roleArn": role}},
            {"republish": {"topic": f"ok/{unique}", "roleArn": role}},
            {"republish": {"topic": f"no/{unique}", "roleArn": role}},
        ],
        {"s3": {"bucketName": err, "key": "${newuuid()}", "roleArn": SHARED_ROLE}},
    )
    rules.accept(inbound(emulator, f"fh/{unique}", b"{}"))
    assert rules.drain(10)
    assert recording_firehose.calls == []
    failures = _only_failures(s3, err)
    assert [f["failedAction"] for f in failures] == ["FirehoseAction", "RepublishAction"]
    assert "firehose:PutRecord on resource: arn:aws:firehose:" in failures[0]["errorMessage"]
    assert f"deliverystream/s-{unique}" in failures[0]["errorMessage"]
    assert f"iot:Publish on resource: arn:aws:iot:{emulator.region}:" in failures[1]["errorMessage"]
    assert failures[1]["failedResource"] == f"no/{unique}"


def _only_failures(s3, err: str) -> list[dict]:
    docs = error_documents(s3, err)
    assert len(docs) == 1, docs
    return docs[0]["failures"]


def test_lambda_action_needs_the_functions_resource_policy(aws, unique, emulator, rules, buckets):
    s3, _out, err = buckets
    lam, name = aws("lambda"), f"rule-fn-{unique}"
    code = "def handler(event, context):\n    print('got', event['n'])\n"
    fn = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=ensure_lambda_role(aws("iam"), f"fn-role-{unique}"),
        Handler="index.handler",
        Code={"ZipFile": function_zip({"index.py": code})},
    )
    rule_arn = create_rule(
        aws("iot"),
        f"lam_{unique}",
        f"SELECT * FROM 'lam/{unique}'",
        [{"lambda": {"functionArn": fn["FunctionArn"]}}],
        {"s3": {"bucketName": err, "key": "${newuuid()}", "roleArn": SHARED_ROLE}},
    )
    rules.accept(inbound(emulator, f"lam/{unique}", b'{"n": 1}'))
    assert rules.drain(10)
    (failure,) = _only_failures(s3, err)
    assert failure["failedAction"] == "LambdaAction"
    assert (
        "User: iot.amazonaws.com is not authorized to perform: lambda:InvokeFunction"
        in (failure["errorMessage"])
    )
    assert "because no resource-based policy allows" in failure["errorMessage"]
    # when the function's policy lets IoT invoke it for this rule (lambda-rule-action page)
    lam.add_permission(
        FunctionName=name,
        StatementId="iot",
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=rule_arn,
        SourceAccount=emulator.account_id,
    )
    rules.accept(inbound(emulator, f"lam/{unique}", b'{"n": 2}'))
    assert rules.drain(10)
    logs = aws("logs")

    def printed() -> list[str]:
        emulator.lambdas.flush_logs(timeout=5)
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"].strip() for e in events if e["message"].startswith("got")]

    # then the function ran once, for the second message only
    assert wait_until(printed, 20) == ["got 2"]
    assert len(error_documents(s3, err)) == 1


def test_denial_through_mqtt_publish_reaches_the_error_action(
    aws, unique, buckets, s3_rule, device_client, rules
):
    s3, out, err = buckets
    role = _role(aws, unique, None)
    s3_rule(role)
    client = device_client(f"dev-{unique}")
    client.publish(f"roles/{unique}", b'{"via": "mqtt"}', qos=1).wait_for_publish(10)
    assert wait_until(lambda: rules.drain(1) and _objects(s3, err), 10)
    assert _objects(s3, out) == []
    assert "s3:PutObject" in _only_failure(s3, err)["errorMessage"]


def test_bucket_policy_deny_beats_the_roles_allow(aws, unique, buckets, s3_rule):
    s3, out, err = buckets
    role = _role(aws, unique, _policy(_allow("s3:PutObject", "*")))
    deny = {
        "Sid": "NoRuleWrites",
        "Effect": "Deny",
        "Principal": {"AWS": role},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{out}/*",
    }
    s3.put_bucket_policy(Bucket=out, Policy=json.dumps(_policy(deny)))
    s3_rule(role)()
    assert _objects(s3, out) == []
    message = _only_failure(s3, err)["errorMessage"]
    assert "with an explicit deny in a resource-based policy" in message
    assert "NoRuleWrites" in message


def test_actions_into_other_services_are_checked_with_their_role(
    aws, unique, rules, emulator, buckets
):
    # given a role allowed to send to one queue only, and rules sending to it, to another queue
    # and to a DynamoDB table
    s3, _out, err = buckets
    sqs = aws("sqs")
    allowed = sqs.create_queue(QueueName=f"ok-{unique}")["QueueUrl"]
    other = sqs.create_queue(QueueName=f"no-{unique}")["QueueUrl"]
    allowed_arn = f"arn:aws:sqs:{emulator.region}:123456789012:ok-{unique}"
    role = _role(aws, unique, _policy(_allow("sqs:SendMessage", allowed_arn)))
    create_rule(
        aws("iot"),
        f"svc_{unique}",
        f"SELECT * FROM 'svc/{unique}'",
        [
            {"sqs": {"queueUrl": allowed, "roleArn": role}},
            {"sqs": {"queueUrl": other, "roleArn": role}},
            {"dynamoDBv2": {"putItem": {"tableName": f"t-{unique}"}, "roleArn": role}},
        ],
        {"s3": {"bucketName": err, "key": "${newuuid()}", "roleArn": SHARED_ROLE}},
    )
    # when a message arrives
    rules.accept(inbound(emulator, f"svc/{unique}", b'{"t": 1}'))
    assert rules.drain(10)
    # then only the allowed queue has it, and the two denials reach the errorAction by name
    assert sqs.receive_message(QueueUrl=allowed, WaitTimeSeconds=1).get("Messages")
    assert not sqs.receive_message(QueueUrl=other, WaitTimeSeconds=0).get("Messages")
    failures = _only_failures(s3, err)
    assert [f["failedAction"] for f in failures] == ["SqsAction", "DynamoDBv2Action"]
    assert (
        f"sqs:SendMessage on resource: arn:aws:sqs:{emulator.region}:"
        in failures[0]["errorMessage"]
    )
    assert (
        f"dynamodb:PutItem on resource: arn:aws:dynamodb:{emulator.region}:"
        in failures[1]["errorMessage"]
    )
