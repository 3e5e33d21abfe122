"""Topic rule actions into other moto-backed services: SQS, SNS, DynamoDB (both actions),
Kinesis Data Streams, Step Functions, CloudWatch metrics and alarms; and the HTTP action, to
confirmed local destinations only (destinations.py).

Each action is built to its page of the AWS IoT developer guide (the page name is in each
runner's comment, under https://docs.aws.amazon.com/iot/latest/developerguide/). Writes go
through boto3 against the emulator's own endpoint, as a client's would. The tables below have
the shape of actions.py's and are merged into them there; `PERMISSIONS` names the
(IAM action, resource ARN) pairs AWS checks against each action's roleArn.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from emulator.rules.actions import ActionFailure, ActionRun, _describe
from emulator.rules.destinations import url_problem
from emulator.rules.sql import Result
from emulator.rules.templates import compile_template
from emulator.rules.values import UNDEFINED, parse_json

# The name of each action in error-action messages (its API type name).
ACTION_NAMES = {
    "sqs": "SqsAction",
    "sns": "SnsAction",
    "dynamoDB": "DynamoDBAction",
    "dynamoDBv2": "DynamoDBv2Action",
    "kinesis": "KinesisAction",
    "stepFunctions": "StepFunctionsAction",
    "cloudwatchMetric": "CloudwatchMetricAction",
    "cloudwatchAlarm": "CloudwatchAlarmAction",
    "http": "HttpAction",
}
# Parameters that take substitution templates ("Supports substitution templates: Yes" or
# "API and AWS CLI only" on each action's page; every request here comes through the API).
TEMPLATED = {
    "sqs": ("queueUrl",),
    "sns": (),
    "dynamoDB": (
        "tableName",
        "hashKeyField",
        "hashKeyValue",
        "rangeKeyField",
        "rangeKeyValue",
        "operation",
        "payloadField",
    ),
    "dynamoDBv2": (),  # putItem.tableName is nested: see _dynamodb_v2_table
    "kinesis": ("streamName", "partitionKey"),
    "stepFunctions": ("stateMachineName", "executionNamePrefix"),
    "cloudwatchMetric": (
        "metricName",
        "metricNamespace",
        "metricUnit",
        "metricValue",
        "metricTimestamp",
    ),
    "cloudwatchAlarm": ("alarmName", "stateReason", "stateValue"),
    "http": ("url", "confirmationUrl"),  # and each header's value: see http()
}
# Required members (the IoT API reference's "Required: Yes").
REQUIRED = {
    "sqs": ("queueUrl", "roleArn"),
    "sns": ("targetArn", "roleArn"),
    "dynamoDB": ("tableName", "hashKeyField", "hashKeyValue", "roleArn"),
    "dynamoDBv2": ("putItem", "roleArn"),
    "kinesis": ("streamName", "roleArn"),
    "stepFunctions": ("stateMachineName", "roleArn"),
    "cloudwatchMetric": ("metricName", "metricNamespace", "metricUnit", "metricValue", "roleArn"),
    "cloudwatchAlarm": ("alarmName", "stateReason", "stateValue", "roleArn"),
    "http": ("url",),
}

KEY_TYPES = ("STRING", "NUMBER")  # hashKeyType / rangeKeyType (API_DynamoDBAction)
DYNAMO_OPERATIONS = ("INSERT", "UPDATE", "DELETE")  # operation (API_DynamoDBAction)
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")  # stateValue (API_CloudwatchAlarmAction)
SNS_FORMATS = ("RAW", "JSON")  # messageFormat (API_SnsAction)
# Step Functions execution names are 1-80 characters (StartExecution, "name").
EXECUTION_NAME_LIMIT = 80
HTTP_HEADER_LIMIT = 100  # headers: "Maximum number of 100 items" (API_HttpAction)


def check(kind: str, params: dict[str, Any]) -> str | None:
    """What CreateTopicRule refuses for these actions beyond the required members, or None.
    Templates are compiled by the caller (actions.check_action)."""
    if kind == "dynamoDB":
        for member in ("hashKeyType", "rangeKeyType"):
            value = params.get(member)
            if value is not None and value not in KEY_TYPES:
                return f"dynamoDB {member} {value!r} is not valid: use STRING or NUMBER"
        operation = params.get("operation")
        if operation and "${" not in str(operation) and operation not in DYNAMO_OPERATIONS:
            return f"dynamoDB operation {operation!r} is not valid: use INSERT, UPDATE or DELETE"
        if bool(params.get("rangeKeyField")) != bool(params.get("rangeKeyValue")):
            return "dynamoDB rangeKeyField and rangeKeyValue must be given together"
    if kind == "dynamoDBv2":
        put_item = params.get("putItem")
        if not isinstance(put_item, dict) or not put_item.get("tableName"):
            return "dynamoDBv2 action is missing putItem.tableName"
        compile_template(str(put_item["tableName"]))  # raises SqlError for a bad ${...}
    if kind == "sns" and params.get("messageFormat", "RAW") not in SNS_FORMATS:
        return f"sns messageFormat {params['messageFormat']!r} is not valid: use RAW or JSON"
    if kind == "http":
        return _check_http(params)
    if kind == "cloudwatchAlarm":
        state = str(params["stateValue"])
        if "${" not in state and state not in ALARM_STATES:
            return (
                f"cloudwatchAlarm stateValue {state!r} is not valid: use OK, ALARM or "
                "INSUFFICIENT_DATA"
            )
    return None


def _check_http(params: dict[str, Any]) -> str | None:
    """ "https-rule-action": url and confirmationUrl (a prefix of url, required when url has a
    template), headers with templated values. What the emulator cannot do is refused."""
    for member in ("auth", "batchConfig"):
        if params.get(member):
            return f"http {member} is not supported by the local emulator: remove it"
    if params.get("enableBatching") in (True, "true", "True"):
        return "http enableBatching is not supported by the local emulator: remove it"
    url = str(params["url"])
    confirmation = params.get("confirmationUrl")
    if "${" in url and not confirmation:
        return "http url uses a substitution template: confirmationUrl is required"
    if confirmation is not None and not url.startswith(str(confirmation)):
        return f"http confirmationUrl {confirmation!r} must be a prefix of url {url!r}"
    for member, value in (("url", url), ("confirmationUrl", confirmation)):
        if value is not None and "${" not in str(value):
            problem = url_problem(str(value), f"http {member}")
            if problem:
                return problem
    headers = params.get("headers") or []
    if not isinstance(headers, list) or len(headers) > HTTP_HEADER_LIMIT:
        return f"http headers must be a list of at most {HTTP_HEADER_LIMIT} {{key, value}}"
    for header in headers:
        if not isinstance(header, dict) or not header.get("key") or "value" not in header:
            return "each http header needs a key and a value"
        compile_template(str(header["value"]))  # raises SqlError for a bad ${...}
    return None


# ARNs ----------------------------------------------------------------------------------------
def _arn(run: ActionRun, service: str, resource: str, region: str | None = None) -> str:
    region = region or run.message.region
    from moto.utilities.utils import get_partition  # here: emulator.rules imports without moto

    return f"arn:{get_partition(region)}:{service}:{region}:{run.message.account_id}:{resource}"


def _queue(url: str, run: ActionRun) -> tuple[str, str, str]:
    """(region, account, name) of a queue URL: `.../<account>/<name>`; the region of
    `sqs.<region>.amazonaws.com`, else the rule's ("sqs-rule-action": the queue's region need
    not be the rule's)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    host = (parts.hostname or "").split(".")
    region = host[1] if len(host) > 2 and host[0] == "sqs" else run.message.region
    account = segments[0] if len(segments) == 2 else run.message.account_id
    name = segments[-1] if segments else ""
    return region, account, name


def _queue_arn(region: str, account: str, name: str) -> str:
    from moto.utilities.utils import get_partition

    return f"arn:{get_partition(region)}:sqs:{region}:{account}:{name}"


def _dynamodb_v2_table(run: ActionRun) -> str:
    return _render(run, str(run.params["putItem"]["tableName"]))


def _render(run: ActionRun, value: str) -> str:
    if "${" not in value:
        return value
    return compile_template(value)(run.message.payload, run.context)


def _state_machine_arn(run: ActionRun) -> str:
    return _arn(run, "states", f"stateMachine:{run.param('stateMachineName')}")


def _dynamodb_operation(run: ActionRun) -> str:
    return run.param("operation").upper() if run.params.get("operation") else "INSERT"


PERMISSIONS: dict[str, Callable[[ActionRun], list[tuple[str, str]]]] = {
    "sqs": lambda run: [
        (
            "sqs:SendMessage",
            _queue_arn(*_queue(run.param("queueUrl"), run)),
        )
    ],
    "sns": lambda run: [("sns:Publish", run.param("targetArn"))],
    "dynamoDB": lambda run: [
        (
            {
                "INSERT": "dynamodb:PutItem",
                "UPDATE": "dynamodb:UpdateItem",
                "DELETE": "dynamodb:DeleteItem",
            }.get(_dynamodb_operation(run), "dynamodb:PutItem"),
            _arn(run, "dynamodb", f"table/{run.param('tableName')}"),
        )
    ],
    "dynamoDBv2": lambda run: [
        ("dynamodb:PutItem", _arn(run, "dynamodb", f"table/{_dynamodb_v2_table(run)}"))
    ],
    "kinesis": lambda run: [
        ("kinesis:PutRecord", _arn(run, "kinesis", f"stream/{run.param('streamName')}"))
    ],
    "stepFunctions": lambda run: [("states:StartExecution", _state_machine_arn(run))],
    # PutMetricData has no resource-level permissions: "*".
    "cloudwatchMetric": lambda run: [("cloudwatch:PutMetricData", "*")],
    "cloudwatchAlarm": lambda run: [
        ("cloudwatch:SetAlarmState", _arn(run, "cloudwatch", f"alarm:{run.param('alarmName')}"))
    ],
    # No role: the emulator refuses `auth` (SigV4 signing with a role) at CreateTopicRule.
    "http": lambda run: [],
}


# Runners -------------------------------------------------------------------------------------
def _fail(run: ActionRun, resource: str, what: str, exc: Exception, service: str) -> None:
    raise ActionFailure(
        run.kind,
        resource,
        f"{what}. The error received was {_describe(exc, service)}. "
        f"Message arrived on: {run.message.topic}, Action: {run.kind}, Resource: {resource}.",
    ) from None


def _json_value(run: ActionRun, result: Result, resource: str, why: str) -> Any:
    """The rule's output as a JSON value (Decimals kept); binary output fails the action."""
    if result.raw is not None:
        raise ActionFailure(run.kind, resource, f"{why}: the rule's output is binary, not JSON")
    return parse_json(result.to_bytes())


def sqs(run: ActionRun, result: Result) -> None:
    """ "sqs-rule-action": the output is the message body; useBase64 encodes it first."""
    url = run.param("queueUrl")
    body = result.to_bytes()
    if run.params.get("useBase64") in (True, "true", "True"):
        text = base64.b64encode(body).decode("ascii")
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ActionFailure(
                "sqs",
                url,
                "The message is binary: SQS message bodies are text; set useBase64 to true",
            ) from None
    region = _queue(url, run)[0]
    try:
        run.services.client("sqs", region).send_message(QueueUrl=url, MessageBody=text)
    except Exception as exc:
        _fail(run, url, "Failed to send message to SQS queue", exc, "AmazonSQS")


def sns(run: ActionRun, result: Result) -> None:
    """ "sns-rule-action": messageFormat JSON lets SNS pick per-protocol messages."""
    target = run.param("targetArn")
    extra = {"MessageStructure": "json"} if run.params.get("messageFormat") == "JSON" else {}
    region = target.split(":")[3] if target.count(":") >= 5 else run.message.region
    try:
        run.services.client("sns", region).publish(
            TargetArn=target, Message=result.to_bytes().decode("utf-8", "replace"), **extra
        )
    except Exception as exc:
        _fail(run, target, "Failed to publish to SNS topic", exc, "AmazonSNS")


def _key(value: str, key_type: str | None) -> dict[str, str]:
    return {"N": value} if key_type == "NUMBER" else {"S": value}


def dynamodb(run: ActionRun, result: Result) -> None:
    """ "dynamodb-rule-action": the hash (and range) key from their templates, the rule's output
    in `payloadField` (default `payload`; a JSON object is written as a map)."""
    from boto3.dynamodb.types import Binary, TypeSerializer

    table = run.param("tableName")
    operation = _dynamodb_operation(run)
    if operation not in DYNAMO_OPERATIONS:
        raise ActionFailure(
            "dynamoDB", table, f"operation {operation!r} is not one of INSERT, UPDATE, DELETE"
        )
    key = {
        run.param("hashKeyField"): _key(run.param("hashKeyValue"), run.params.get("hashKeyType"))
    }
    if run.params.get("rangeKeyField"):
        key[run.param("rangeKeyField")] = _key(
            run.param("rangeKeyValue"), run.params.get("rangeKeyType")
        )
    field = run.param("payloadField") if run.params.get("payloadField") else "payload"
    if result.raw is not None:
        payload = TypeSerializer().serialize(Binary(result.raw))
    else:
        payload = TypeSerializer().serialize(parse_json(result.to_bytes()))
    client = run.services.client("dynamodb", run.message.region)
    try:
        if operation == "INSERT":
            client.put_item(TableName=table, Item={**key, field: payload})
        elif operation == "UPDATE":
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #p = :p",
                ExpressionAttributeNames={"#p": field},
                ExpressionAttributeValues={":p": payload},
            )
        else:
            client.delete_item(TableName=table, Key=key)
    except Exception as exc:
        _fail(run, table, "Failed to write to DynamoDB table", exc, "AmazonDynamoDBv2")


def dynamodb_v2(run: ActionRun, result: Result) -> None:
    """ "dynamodb-v2-rule-action": each top-level attribute of the output is its own column; it
    must hold the table's key attributes."""
    from boto3.dynamodb.types import TypeSerializer

    table = _dynamodb_v2_table(run)
    value = _json_value(run, result, table, "dynamoDBv2 writes a JSON object")
    if not isinstance(value, dict):
        raise ActionFailure(
            "dynamoDBv2",
            table,
            "dynamoDBv2 writes each attribute of a JSON object to its own column: the rule's "
            "output is not an object",
        )
    serializer = TypeSerializer()
    item = {name: serializer.serialize(v) for name, v in value.items() if v is not UNDEFINED}
    try:
        run.services.client("dynamodb", run.message.region).put_item(TableName=table, Item=item)
    except Exception as exc:
        _fail(run, table, "Failed to write to DynamoDB table", exc, "AmazonDynamoDBv2")


def kinesis(run: ActionRun, result: Result) -> None:
    """ "kinesis-rule-action": PutRecord with the templated partition key."""
    stream = run.param("streamName")
    # partitionKey is optional in the API and AWS does not say what it uses without one: a
    # random key spreads records over the shards.
    key = run.param("partitionKey") if run.params.get("partitionKey") else str(uuid.uuid4())
    try:
        run.services.client("kinesis", run.message.region).put_record(
            StreamName=stream, Data=result.to_bytes(), PartitionKey=key
        )
    except Exception as exc:
        _fail(run, stream, "Failed to put record to Kinesis stream", exc, "AmazonKinesis")


def step_functions(run: ActionRun, result: Result) -> None:
    """ "stepfunctions-rule-action": StartExecution with the output as input; the execution's
    name is executionNamePrefix followed by a UUID."""
    arn = _state_machine_arn(run)
    _json_value(run, result, arn, "Step Functions input must be JSON")
    extra = {}
    if run.params.get("executionNamePrefix"):
        name = f"{run.param('executionNamePrefix')}{uuid.uuid4()}"
        if len(name) > EXECUTION_NAME_LIMIT:
            raise ActionFailure(
                "stepFunctions",
                arn,
                f"execution name {name!r} is longer than {EXECUTION_NAME_LIMIT} characters: "
                f"shorten executionNamePrefix (a 36-character UUID follows it)",
            )
        extra["name"] = name
    try:
        run.services.client("stepfunctions", run.message.region).start_execution(
            stateMachineArn=arn, input=result.to_bytes().decode("utf-8"), **extra
        )
    except Exception as exc:
        _fail(run, arn, "Failed to start Step Functions execution", exc, "AWSStepFunctions")


def cloudwatch_metric(run: ActionRun, result: Result) -> None:
    """ "cloudwatch-metrics-rule-action": one datum; metricTimestamp is Unix epoch seconds and
    defaults to now."""
    namespace = run.param("metricNamespace")
    value = run.param("metricValue")
    if not _numeric(value):
        raise ActionFailure("cloudwatchMetric", namespace, f"metricValue {value!r} is not a number")
    stamp = run.param("metricTimestamp") if run.params.get("metricTimestamp") else ""
    try:
        seconds = float(stamp) if stamp else time.time()
    except ValueError:
        raise ActionFailure(
            "cloudwatchMetric",
            namespace,
            f"metricTimestamp {stamp!r} is not Unix epoch seconds",
        ) from None
    datum = {
        "MetricName": run.param("metricName"),
        "Value": float(value),
        "Unit": run.param("metricUnit"),
        "Timestamp": seconds,
    }
    try:
        run.services.client("cloudwatch", run.message.region).put_metric_data(
            Namespace=namespace, MetricData=[datum]
        )
    except Exception as exc:
        _fail(run, namespace, "Failed to put metric data", exc, "AmazonCloudWatch")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def cloudwatch_alarm(run: ActionRun, result: Result) -> None:
    """ "cloudwatch-alarms-rule-action": SetAlarmState with the rendered reason and state."""
    alarm = run.param("alarmName")
    state = run.param("stateValue")
    if state not in ALARM_STATES:
        raise ActionFailure(
            "cloudwatchAlarm",
            alarm,
            f"stateValue {state!r} is not one of OK, ALARM, INSUFFICIENT_DATA",
        )
    try:
        run.services.client("cloudwatch", run.message.region).set_alarm_state(
            AlarmName=alarm, StateValue=state, StateReason=run.param("stateReason")
        )
    except Exception as exc:
        _fail(run, alarm, "Failed to set alarm state", exc, "AmazonCloudWatch")


def http(run: ActionRun, result: Result) -> None:
    """ "https-rule-action": POST the output to url, only through an ENABLED (confirmed) topic
    rule destination whose confirmation URL prefixes it. Content-Type defaults to
    application/json for JSON output, application/octet-stream otherwise."""
    url = run.param("url")
    problem = url_problem(url, "url")
    if problem:  # a template rendered to a URL the emulator does not send to: fail closed
        raise ActionFailure("http", url, problem)
    destinations = run.services.destinations
    if destinations is None:
        raise ActionFailure("http", url, "topic rule destinations are not available")
    account, region = run.message.account_id, run.message.region
    status = destinations.status_for(account, region, url)
    if status != "ENABLED":
        raise ActionFailure(
            "http",
            url,
            f"HttpAction failed: no ENABLED topic rule destination for {url} "
            f"(status: {status or 'none'}); create and confirm one (CreateTopicRuleDestination, "
            "ConfirmTopicRuleDestination with the token of its confirmation request)",
        )
    headers = {h["key"]: _render(run, str(h["value"])) for h in run.params.get("headers") or []}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = (
            "application/octet-stream" if result.raw is not None else "application/json"
        )
    try:
        answer = destinations.post(url, result.to_bytes(), headers)
    except Exception as exc:
        raise ActionFailure(
            "http",
            url,
            "HttpAction failed to make a request to the specified endpoint. "
            f"{type(exc).__name__}: {exc}",
        ) from None
    if not 200 <= answer < 300:
        raise ActionFailure(
            "http",
            url,
            f"HttpAction failed to make a request to the specified endpoint. "
            f"The endpoint answered with HTTP status {answer}",
        )


RUNNERS: dict[str, Callable[[ActionRun, Result], None]] = {
    "sqs": sqs,
    "sns": sns,
    "dynamoDB": dynamodb,
    "dynamoDBv2": dynamodb_v2,
    "kinesis": kinesis,
    "stepFunctions": step_functions,
    "cloudwatchMetric": cloudwatch_metric,
    "cloudwatchAlarm": cloudwatch_alarm,
    "http": http,
}
