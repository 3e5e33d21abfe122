"""A function's logs are written with its execution role, as on AWS: without
logs:CreateLogStream / logs:PutLogEvents (or when the role does not trust lambda.amazonaws.com)
the function still runs, but nothing appears in CloudWatch Logs. Roles are made with boto3."""

from __future__ import annotations

import io
import json
import zipfile

from iam_roles import lambda_trust, logs_policy

LAMBDA_TRUST = lambda_trust()
CODE = 'def handler(event, context):\n    print("marker", event["marker"])\n    return "ok"\n'


def function_with_role(aws, name: str, trust: dict, policy: dict | None) -> str:
    iam = aws("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="logs", PolicyDocument=json.dumps(policy))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", CODE)
    aws("lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=role["Arn"],
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=5,
    )
    return name


def invoke_and_read_logs(aws, lambdas, name: str, marker: str) -> list[str]:
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"marker": marker}))
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == "ok"
    assert lambdas.flush_logs(timeout=10)
    logs = aws("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [e["message"] for e in events]


def test_role_without_logs_permissions_runs_but_logs_nothing(aws, lambdas, unique):
    # Given a function whose role has no permissions at all
    name = function_with_role(aws, f"nologs-{unique}", LAMBDA_TRUST, None)

    # When it is invoked, it runs, and its logs do not appear
    assert invoke_and_read_logs(aws, lambdas, name, "first") == []

    # When the role is given the logs permissions, the next invocation's logs appear
    aws("iam").put_role_policy(
        RoleName=name, PolicyName="logs", PolicyDocument=json.dumps(logs_policy())
    )
    messages = invoke_and_read_logs(aws, lambdas, name, "second")
    assert "marker second" in messages
    assert "marker first" not in messages


def test_logs_permission_for_another_group_does_not_count(aws, lambdas, unique):
    # Given a role allowed to log to another function's group only
    other = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/someone-else:*"
    name = function_with_role(aws, f"otherlogs-{unique}", LAMBDA_TRUST, logs_policy(other))

    # Then the function runs and nothing is logged
    assert invoke_and_read_logs(aws, lambdas, name, "x") == []


def test_role_that_lambda_cannot_assume_logs_nothing(aws, lambdas, unique):
    # Given a role with the logs permissions whose trust policy names another service (changed
    # after CreateFunction, which refuses a role Lambda cannot assume)
    name = function_with_role(aws, f"untrusted-{unique}", LAMBDA_TRUST, logs_policy())
    trust = json.loads(json.dumps(LAMBDA_TRUST))
    trust["Statement"][0]["Principal"] = {"Service": "firehose.amazonaws.com"}
    aws("iam").update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))

    # Then nothing is logged
    assert invoke_and_read_logs(aws, lambdas, name, "x") == []


def test_role_with_logs_permissions_for_its_group_logs(aws, lambdas, unique):
    # Given a role allowed exactly the function's own group (as the guide's examples scope it)
    name = f"ownlogs-{unique}"
    own = f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/{name}:*"
    policy = logs_policy(own)
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Action": "logs:CreateLogGroup",
            "Resource": "arn:aws:logs:us-east-1:123456789012:*",
        }
    )
    function_with_role(aws, name, LAMBDA_TRUST, policy)

    # Then its output is in CloudWatch Logs
    assert "marker y" in invoke_and_read_logs(aws, lambdas, name, "y")
