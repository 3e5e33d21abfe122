"""IAM roles the tests hand to services, created with boto3 as a user would: a Firehose
delivery role (trust for firehose.amazonaws.com with the account as sts:ExternalId, and the
permissions of the guide's "Grant Firehose access to an Amazon S3 destination") and a Lambda
execution role allowed what AWSLambdaBasicExecutionRole allows. With IAM enforced (the
default) a stream whose RoleARN lacks these delivers nothing, so fixtures that test something
else use these roles."""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"
# Role names the Firehose tests put in RoleARN (firehose_helpers.ROLE, test_aws_cli, ...).
FIREHOSE_ROLE_NAMES = ("firehose-delivery", "firehose")


def logs_policy(resource: str = "*") -> dict[str, Any]:
    """What AWSLambdaBasicExecutionRole allows, on `resource` (moto attaches no managed policy)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": resource,
            }
        ],
    }


LAMBDA_LOGS_POLICY = logs_policy()


# What the rule actions' pages list under "Requirements" (firehose, republish, cloudwatchLogs;
# s3:PutObject is in firehose_delivery_policy).
IOT_RULE_ACTIONS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "firehose:PutRecord",
                "firehose:PutRecordBatch",
                "iot:Publish",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
                "s3:PutObject",
                "sqs:SendMessage",
                "sns:Publish",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "kinesis:PutRecord",
                "states:StartExecution",
                "cloudwatch:PutMetricData",
                "cloudwatch:SetAlarmState",
            ],
            "Resource": "*",
        }
    ],
}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    """An IAM (or IoT) policy document of `statements`."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def statement(
    effect: str,
    action: str | list[str],
    resource: str | list[str],
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One policy statement: `effect` ("Allow" or "Deny") of `action` on `resource` (under
    `condition`)."""
    result = {"Effect": effect, "Action": action, "Resource": resource}
    return result | {"Condition": condition} if condition else result


def service_trust(service: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    """A trust policy letting `service` assume the role (under `condition`)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def iot_trust(account: str = ACCOUNT, rule: str = "*") -> dict[str, Any]:
    """A trust policy for AWS IoT rules, with the confused-deputy conditions
    (https://docs.aws.amazon.com/iot/latest/developerguide/cross-service-confused-deputy-prevention.html)."""
    return service_trust(
        "iot.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:aws:iot:*:{account}:rule/{rule}"},
        },
    )


def firehose_trust(account: str = ACCOUNT) -> dict[str, Any]:
    """The trust policy of the guide's "Allow Firehose to assume an IAM role"."""
    return service_trust("firehose.amazonaws.com", {"StringEquals": {"sts:ExternalId": account}})


def lambda_trust() -> dict[str, Any]:
    return service_trust("lambda.amazonaws.com")


def firehose_delivery_policy(
    buckets: str | list[str] = "*", functions: str = "*", log_groups: str = "*"
) -> dict[str, Any]:
    """S3 writes to the buckets, the Lambda processor, the error log (guide: controlling-access)."""
    names = [buckets] if isinstance(buckets, str) else buckets
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:AbortMultipartUpload",
                    "s3:GetBucketLocation",
                    "s3:GetObject",
                    "s3:ListBucket",
                    "s3:ListBucketMultipartUploads",
                    "s3:PutObject",
                ],
                "Resource": [
                    a for n in names for a in (f"arn:aws:s3:::{n}", f"arn:aws:s3:::{n}/*")
                ],
            },
            {
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                "Resource": functions,
            },
            {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": log_groups},
        ],
    }


def ensure_role(iam: Any, name: str, trust: dict[str, Any], policy: dict[str, Any] | None) -> str:
    """Create the role (or reuse it), with `policy` as its inline policy "access"."""
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(policy))
    return arn


def ensure_firehose_role(iam: Any, name: str) -> str:
    return ensure_role(iam, name, firehose_trust(), firehose_delivery_policy())


def ensure_lambda_role(iam: Any, name: str) -> str:
    return ensure_role(iam, name, lambda_trust(), LAMBDA_LOGS_POLICY)


def create_shared_roles(iam: Any) -> None:
    """The roles the suite's stream fixtures name, on a fresh emulator."""
    for name in FIREHOSE_ROLE_NAMES:
        ensure_firehose_role(iam, name)
    ensure_pipeline_role(iam, "iot-rules")


def ensure_pipeline_role(iam: Any, name: str) -> str:
    """A role for both a topic rule's actions and the delivery stream they feed: it trusts IoT
    and Firehose, and allows what each needs."""
    trust = firehose_trust()
    trust["Statement"] += service_trust("iot.amazonaws.com")["Statement"]
    policy = firehose_delivery_policy()
    policy["Statement"] += IOT_RULE_ACTIONS_POLICY["Statement"]
    return ensure_role(iam, name, trust, policy)
