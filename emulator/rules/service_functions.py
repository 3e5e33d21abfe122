"""IoT SQL functions that call other services: aws_lambda, get_dynamodb, get_secret,
get_thing_shadow and get_registry_data, against the emulator's own Lambda runtime, shadows and
moto's DynamoDB, Secrets Manager and IoT registry.

Source: AWS IoT developer guide, "iot-sql-functions"
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html).

Each function takes the message's context first (`MessageContext.services`, `region`,
`account_id`, `rule_name`), then the evaluated arguments. Arguments of the wrong type give
Undefined, like every IoT SQL function; a call the service refuses or cannot answer (no such
table, secret, function or thing; a role that may not be assumed or lacks the permission; a
function that fails or answers no JSON) raises `SqlEvaluationError`: the rule runs no action
and no errorAction, and the failure goes to AWS IoT logging (`iotlogging.py`), as for any SQL
evaluation failure.

Permissions, as the reference lists them:
- aws_lambda: the function's resource policy must allow `iot.amazonaws.com`
  `lambda:InvokeFunction` (the rule's ARN as aws:SourceArn, its account as aws:SourceAccount);
- the others act with the `roleArn` argument, whose trust policy must let `iot.amazonaws.com`
  assume it: `dynamodb:GetItem` on the table, `secretsmanager:GetSecretValue` and
  `secretsmanager:DescribeSecret` on the secret, `iot:GetThingShadow` on the thing,
  `iot:DescribeThing` / `iot:ListThingGroupsForThing` on the thing.
With IAM enforcement off (`emulator.iam_enforced` false) every call is allowed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from decimal import Decimal
from typing import Any

from emulator.iam.authorizer import NoEvaluator, enforcing
from emulator.rules.values import (
    UNDEFINED,
    SqlEvaluationError,
    dumps,
    is_number,
    normalize,
    parse_json,
    to_string,
)

IOT_PRINCIPAL = "iot.amazonaws.com"
# The role session name the rules engine's calls appear under (in denial messages).
SESSION = "AWSIotRulesEngine"
# "iot-sql-functions" aws_lambda(): "Lambda function calls from rules should be completed within
# 2000 milliseconds."
LAMBDA_TIME_LIMIT_S = 2.0
# "iot-sql-functions" get_dynamodb(): "If get_dynamodb() returns more than 8 KB of data, the
# rule's action may not be invoked." Here it never is: the evaluation fails, named.
DYNAMODB_RESULT_LIMIT_BYTES = 8 * 1024
# get_registry_data(registryAPI, ...): the registry APIs the guide names ("search-things").
REGISTRY_APIS = ("DescribeThing", "ListThingGroupsForThing")
SECRET_TYPES = ("SecretString", "SecretBinary")
# Functions with a documented per-statement call limit ("iot-sql-functions" get_dynamodb():
# "a maximum of one time per SQL statement ... causes the rule to terminate without invoking
# any actions").
CALLS_PER_STATEMENT = {"get_dynamodb": 1}
# Amazon Machine Learning no longer exists to call.
MACHINE_LEARNING_RETIRED = (
    "calls Amazon Machine Learning, which AWS has retired (no Amazon ML models can be created "
    "or called), so the local emulator cannot evaluate it; call a model behind a Lambda "
    "function with aws_lambda() instead"
)


class ServiceCalls:
    """What the service functions reach of the emulator (`MessageContext.services`): its
    components, found at call time, and the IAM checks."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.lambda_time_limit_s = LAMBDA_TIME_LIMIT_S
        # Synchronous Lambda calls run here so the 2 s limit can be applied to the wait.
        self._lambda_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sql-lambda")

    def close(self) -> None:
        self._lambda_pool.shutdown(wait=False, cancel_futures=True)

    def _iam(self) -> Any | None:
        try:
            return enforcing(self.emulator)
        except NoEvaluator as exc:
            raise SqlEvaluationError(str(exc)) from None

    def check_role(
        self,
        function: str,
        context: Any,
        role_arn: str,
        actions: tuple[str, ...],
        resource: str,
        resource_policy: str | None = None,
    ) -> None:
        """The rules engine assumes `role_arn` (trust for iot.amazonaws.com) and needs every
        action on `resource` (whose own policy, if any, applies too); raise
        SqlEvaluationError naming the denial."""
        iam = self._iam()
        if iam is None:
            return
        from emulator.iam.authorizer import source_context

        trust = iam.can_assume(role_arn, IOT_PRINCIPAL, source_context(_rule_arn(context)))
        if not trust.allowed:
            raise SqlEvaluationError(
                f"{function}(): AWS IoT cannot assume the role {role_arn}: {trust.message()}"
            )
        for action in actions:
            decision = iam.authorize(
                role_arn,
                action,
                resource,
                resource_policy=resource_policy,
                resource_policy_id=f"resource policy of {resource}",
                session=SESSION,
            )
            if not decision.allowed:
                raise SqlEvaluationError(f"{function}(): {decision.message()}")

    def service_denial(
        self, context: Any, action: str, resource: str, policy: str | None, policy_id: str
    ) -> Any | None:
        """May IoT Core (a service principal, allowed only by the resource's own policy) perform
        `action` on `resource` for this rule? The denying Decision, or None when allowed."""
        iam = self._iam()
        if iam is None:
            return None
        from emulator.iam.authorizer import source_context

        decision = iam.authorize_service(
            IOT_PRINCIPAL,
            action,
            resource,
            policy,
            source_context(_rule_arn(context)),
            resource_policy_id=policy_id,
        )
        return None if decision.allowed else decision

    def check_function_policy(self, context: Any, function_arn: str, policy: str | None) -> None:
        """May IoT Core invoke the function for this rule (its resource policy)?"""
        denial = self.service_denial(
            context,
            "lambda:InvokeFunction",
            function_arn,
            policy,
            f"resource policy of {function_arn}",
        )
        if denial is not None:
            raise SqlEvaluationError(
                f"aws_lambda(): {denial.message()}; grant it with aws lambda add-permission "
                f"--principal {IOT_PRINCIPAL} --action lambda:InvokeFunction --source-arn "
                f"{_rule_arn(context)}"
            )

    def invoke_lambda(self, context: Any, function_arn: str, payload: bytes) -> Any:
        lambdas = self.emulator.find("lambdas")
        if lambdas is None:
            raise SqlEvaluationError("aws_lambda(): Lambda is not available in this emulator")
        future = self._lambda_pool.submit(
            lambdas.invoke, context.account_id, context.region, function_arn, payload
        )
        try:
            return future.result(timeout=self.lambda_time_limit_s)
        except FutureTimeout:
            raise SqlEvaluationError(
                f"aws_lambda(): {function_arn} did not answer within "
                f"{int(self.lambda_time_limit_s * 1000)} ms, the rules engine's limit for "
                "Lambda calls"
            ) from None


# --------------------------------------------------------------------------------------------
def _services(context: Any, function: str) -> ServiceCalls:
    services = getattr(context, "services", None)
    if services is None:
        # Outside the rules engine (compile_sql(...).evaluate in a notebook) there is nothing
        # to call: refuse rather than answer Undefined.
        raise SqlEvaluationError(
            f"{function}() calls another service: evaluate it in the rules engine (publish a "
            "message to a topic rule), not with a bare MessageContext"
        )
    return services


def _rule_arn(context: Any) -> str:
    return f"arn:aws:iot:{context.region}:{context.account_id}:rule/{context.rule_name}"


def _failed(function: str, error: Exception) -> SqlEvaluationError:
    code = getattr(error, "error_type", None) or getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    return SqlEvaluationError(f"{function}(): {code or type(error).__name__}: {message}")


def _calling(function: str, call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`: a service's (or moto's) error becomes the SQL error of `function`()."""
    try:
        return call(*args)
    except SqlEvaluationError:
        raise
    except Exception as error:
        raise _failed(function, error) from None


_ABSENT: Any = object()


def _padded(args: tuple[Any, ...], count: int) -> tuple[Any, ...]:
    """`count` arguments: the optional ones left out (they come before roleArn, the last)
    as `_ABSENT`."""
    return (*args[:-1], *([_ABSENT] * (count - len(args))), args[-1])


def _strings(*values: Any) -> bool:
    return all(type(v) is str and v for v in values)


def _from_json(data: Any) -> Any:
    """Plain JSON (from a service) as IoT SQL values (Decimals, Ints)."""
    return parse_json(json.dumps(data, default=str))


def aws_lambda(context: Any, function_arn: Any, input_json: Any) -> Any:
    """aws_lambda(functionArn, inputJson): the function's JSON answer (synchronous invoke)."""
    if type(function_arn) is not str or input_json is UNDEFINED:
        return UNDEFINED
    services = _services(context, "aws_lambda")
    from moto.awslambda.models import lambda_backends

    fn = _calling(
        "aws_lambda",
        lambda: lambda_backends[context.account_id][context.region].get_function(function_arn),
    )
    policy = json.dumps(fn.policy.get_policy()["Policy"]) if fn.policy.statements else None
    services.check_function_policy(context, fn.function_arn, policy)
    result = _calling(
        "aws_lambda",
        lambda: services.invoke_lambda(context, function_arn, dumps(input_json).encode("utf-8")),
    )
    if result.function_error:
        raise SqlEvaluationError(
            f"aws_lambda(): {function_arn} failed ({result.function_error}): "
            f"{result.payload.decode('utf-8', 'replace')[:1000]}"
        )
    try:
        return parse_json(result.payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SqlEvaluationError(
            f"aws_lambda(): {function_arn} did not return JSON data, which the rules engine "
            "requires of a function called from SQL"
        ) from None


def _key_value(value: Any, key_type: str) -> dict[str, str] | None:
    """A key value typed for GetItem as the table declares it (S, N or B); None: no match."""
    if key_type == "S":
        text = to_string(value) if type(value) is not bool else UNDEFINED
        return None if text is UNDEFINED or value is None else {"S": text}
    if key_type == "N":
        if type(value) is bool or not (is_number(value) or type(value) is str):
            return None
        return {"N": str(value)}
    if key_type == "B" and type(value) is str:
        return {"B": value}
    return None


def _plain(typed: dict[str, Any]) -> Any:
    """A DynamoDB attribute value ({"S": ...}, {"N": ...}, {"M": ...}, ...) as an IoT SQL value."""
    (kind, value), *_ = typed.items()
    if kind == "N":
        return normalize(Decimal(value)) if any(c in value for c in ".eE") else int(value)
    if kind == "NS":
        return [_plain({"N": v}) for v in value]
    if kind in ("S", "B", "SS", "BS"):
        return value  # binary values are base64 text, as in the DynamoDB JSON API
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    raise SqlEvaluationError(f"get_dynamodb(): unknown DynamoDB attribute type {kind!r}")


def get_dynamodb(context: Any, *args: Any) -> Any:
    """get_dynamodb(tableName, partitionKeyName, partitionKeyValue[, sortKeyName,
    sortKeyValue], roleArn): the item as an Object, Undefined when there is none."""
    table_name, hash_name, hash_value, range_name, range_value, role_arn = _padded(args, 6)
    if range_name is not _ABSENT and (
        type(range_name) is not str or range_value is UNDEFINED or range_value is None
    ):
        return UNDEFINED
    if not _strings(table_name, hash_name, role_arn) or hash_value in (UNDEFINED, None):
        return UNDEFINED
    services = _services(context, "get_dynamodb")
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[context.account_id][context.region]
    table = _calling("get_dynamodb", backend.get_table, table_name)
    services.check_role("get_dynamodb", context, role_arn, ("dynamodb:GetItem",), table.table_arn)
    keys = {}
    for name, value, attr, kind in (
        (hash_name, hash_value, table.hash_key_attr, table.hash_key_type),
        (range_name, range_value, table.range_key_attr, table.range_key_type),
    ):
        if name is _ABSENT:
            continue
        typed = _key_value(value, kind or "") if name == attr else None
        if typed is None:
            raise SqlEvaluationError(
                f"get_dynamodb(): ValidationException: The provided key element does not match "
                f"the schema of table {table_name} (key {table.hash_key_attr} "
                f"{table.hash_key_type}"
                + (
                    f", sort key {table.range_key_attr} {table.range_key_type}"
                    if table.range_key_attr
                    else ""
                )
                + ")"
            )
        keys[name] = typed
    item = _calling("get_dynamodb", backend.get_item, table.name, keys)
    if item is None:
        return UNDEFINED
    attributes = item.to_json()["Attributes"]
    result = {name: _plain(value) for name, value in attributes.items()}
    size = len(dumps(result).encode("utf-8"))
    if size > DYNAMODB_RESULT_LIMIT_BYTES:
        raise SqlEvaluationError(
            f"get_dynamodb(): the item is {size} bytes; the rules engine does not invoke the "
            f"actions for more than {DYNAMODB_RESULT_LIMIT_BYTES} bytes (8 KB)"
        )
    return result


def get_secret(context: Any, *args: Any) -> Any:
    """get_secret(secretId, secretType[, key], roleArn): the AWSCURRENT value."""
    secret_id, secret_type, key, role_arn = _padded(args, 4)
    if key is not _ABSENT and type(key) is not str:
        return UNDEFINED
    if not _strings(secret_id, secret_type, role_arn):
        return UNDEFINED
    if secret_type not in SECRET_TYPES:
        raise SqlEvaluationError(
            f"get_secret(): secretType must be SecretString or SecretBinary, not {secret_type!r}"
        )
    services = _services(context, "get_secret")
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[context.account_id][context.region]
    secret = _calling("get_secret", backend.describe_secret, secret_id)
    services.check_role(
        "get_secret",
        context,
        role_arn,
        ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
        secret.arn,
        getattr(secret, "policy", None),
    )
    value = _calling("get_secret", backend.get_secret_value, secret_id, None, "AWSCURRENT")
    if secret_type == "SecretBinary":
        if key is not _ABSENT:
            raise SqlEvaluationError("get_secret(): a key cannot be given with SecretBinary")
        if "SecretBinary" not in value:
            raise SqlEvaluationError(f"get_secret(): the secret {secret_id} has no SecretBinary")
        binary = value["SecretBinary"]
        # The API's JSON carries binary values base64-encoded; moto keeps that text.
        return binary if isinstance(binary, str) else base64.b64encode(binary).decode("ascii")
    if "SecretString" not in value:
        raise SqlEvaluationError(f"get_secret(): the secret {secret_id} has no SecretString")
    text = value["SecretString"]
    try:
        document = parse_json(text)
    except (ValueError, RecursionError):
        document = UNDEFINED
    if key is _ABSENT:
        return document if type(document) is dict else text
    if type(document) is not dict:
        raise SqlEvaluationError(
            f"get_secret(): the key {key!r} was given but the SecretString of {secret_id} is "
            "not a JSON object"
        )
    return document.get(key, UNDEFINED)


def get_thing_shadow(context: Any, *args: Any) -> Any:
    """get_thing_shadow(thingName[, shadowName], roleArn): the shadow document (GetThingShadow)."""
    thing, shadow_name, role_arn = _padded(args, 3)
    if shadow_name is _ABSENT:
        shadow_name = ""  # the classic shadow
    elif not _strings(shadow_name):
        return UNDEFINED
    if not _strings(thing, role_arn):
        return UNDEFINED
    services = _services(context, "get_thing_shadow")
    from emulator.shadow.model import SHADOW_NAME, THING_NAME, ShadowError

    # GetThingShadow's name patterns (iot-data API reference); a name never becomes a path.
    if not THING_NAME.fullmatch(thing) or (shadow_name and not SHADOW_NAME.fullmatch(shadow_name)):
        raise SqlEvaluationError(
            f"get_thing_shadow(): InvalidRequestException: invalid thing or shadow name "
            f"{thing!r} {shadow_name!r}"
        )
    thing_arn = f"arn:aws:iot:{context.region}:{context.account_id}:thing/{thing}"
    services.check_role("get_thing_shadow", context, role_arn, ("iot:GetThingShadow",), thing_arn)
    shadow = services.emulator.find("shadow")
    if shadow is None:
        raise SqlEvaluationError("get_thing_shadow(): Device Shadow is not in this emulator")
    try:
        document = shadow.get(thing, shadow_name)
    except ShadowError as error:
        if error.code == 404:
            return UNDEFINED  # no such shadow: nothing to read, like a missing field
        raise SqlEvaluationError(f"get_thing_shadow(): {error.message}") from None
    return _from_json(document)


def get_registry_data(context: Any, api: Any, thing: Any, role_arn: Any) -> Any:
    """get_registry_data(registryAPI, thingName, roleArn): DescribeThing's or
    ListThingGroupsForThing's answer for the thing."""
    if not _strings(api, thing, role_arn):
        return UNDEFINED
    if api not in REGISTRY_APIS:
        raise SqlEvaluationError(
            f"get_registry_data(): registryAPI must be DescribeThing or "
            f"ListThingGroupsForThing, not {api!r}"
        )
    services = _services(context, "get_registry_data")
    thing_arn = f"arn:aws:iot:{context.region}:{context.account_id}:thing/{thing}"
    services.check_role("get_registry_data", context, role_arn, (f"iot:{api}",), thing_arn)
    from moto.iot.models import iot_backends

    backend = iot_backends[context.account_id][context.region]
    try:
        if api == "DescribeThing":
            answer = backend.describe_thing(thing).to_dict(
                include_default_client_id=True, include_thing_id=True
            )
        else:
            answer = {"thingGroups": backend.list_thing_groups_for_thing(thing)}
    except Exception as error:
        raise _failed("get_registry_data", error) from None
    return _from_json(answer)


def _service_function(fn: Callable[..., Any], *arities: int) -> Callable[..., Any]:
    """Mark `fn` as taking the message context first; `arities` are its documented argument
    counts (checked when the statement is compiled)."""
    fn.with_context = True  # type: ignore[attr-defined]
    fn.arities = arities  # type: ignore[attr-defined]
    return fn


SERVICE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "aws_lambda": _service_function(aws_lambda, 2),
    "get_dynamodb": _service_function(get_dynamodb, 4, 6),
    "get_secret": _service_function(get_secret, 3, 4),
    "get_thing_shadow": _service_function(get_thing_shadow, 2, 3),
    "get_registry_data": _service_function(get_registry_data, 3),
}
