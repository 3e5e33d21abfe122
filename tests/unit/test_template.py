"""template.yaml, checked offline: cfn-lint is clean, aws-sam-translator translates it, and the
pieces that must agree do agree (the IoT policy and the rule's FROM filter, IAM ARNs and the
buckets, Firehose prefixes and their documented rules, buffering hints and the parameters).

The intrinsic functions (!Ref, !Sub, !GetAtt) are loaded by cfn-lint's own decoder. Where a value
must be compared with a concrete topic or ARN, `resolve_sub` fills Fn::Sub with sample values.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

# Sample values for pseudo parameters and names that CloudFormation fills in at deploy time.
SAMPLE = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "iot-core-pipeline-dev",
}


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain dicts and lists, intrinsics in long form ({"Fn::Sub": ...})."""
    from cfnlint.decode.cfn_yaml import loads

    # cfn-lint's nodes carry line marks; a JSON round trip leaves plain Python values.
    return json.loads(json.dumps(loads(path.read_text())))


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """aws-sam-translator's CloudFormation output for `template`, computed offline.

    A local CodeUri is replaced by an S3 URI first, as `aws cloudformation package` /
    `sam deploy` do before the transform runs; the explicit IAM roles need no managed policy
    lookup, so the policy loader answers with an empty map. The translator needs a region (for
    the partition); it is given here rather than read from the environment.
    """
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    packaged = copy.deepcopy(template)
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://packaging-bucket/transform.zip"
    with pytest.MonkeyPatch.context() as patch:
        # The pseudo parameters come from a boto3 session (environment), the partition from
        # ArnGenerator's class attribute; both are restored on exit.
        patch.setenv("AWS_DEFAULT_REGION", SAMPLE["AWS::Region"])
        patch.setattr(ArnGenerator, "BOTO_SESSION_REGION_NAME", SAMPLE["AWS::Region"])
        return transform(packaged, {}, NoManagedPolicies())


def parameter_defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(body.get("Default")) for name, body in template["Parameters"].items()}


def resolve_sub(value: Any, names: dict[str, str]) -> str:
    """A string, or an Fn::Sub string, with ${Name} and ${Name.Attr} replaced from `names`."""
    if isinstance(value, str):
        return value
    ((function, argument),) = value.items()
    assert function == "Fn::Sub", f"expected a string or Fn::Sub, got {value!r}"
    assert isinstance(argument, str), "Fn::Sub with a variable map is not used in this template"

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in names, f"no sample value for ${{{name}}}"
        return names[name]

    return re.sub(r"\$\{([^}!]+)\}", replace, argument)


def iam_wildcard_match(pattern: str, value: str) -> bool:
    """IAM-style resource matching as IoT policies use it: `*` any run of characters (across
    `/`), `?` exactly one character; MQTT `+` and `#` are literal (IoT developer guide,
    "Publish/Subscribe policy examples")."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def mqtt_filter_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic filter matching: `+` exactly one level (possibly empty), `#` the rest."""
    levels, wanted = topic.split("/"), topic_filter.split("/")
    for i, level in enumerate(wanted):
        if level == "#":
            return True
        if i >= len(levels) or (level != "+" and level != levels[i]):
            return False
    return len(levels) == len(wanted)


def policy_allows(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IoT policy evaluation for one action: an explicit Deny wins, otherwise any Allow."""
    matching = [
        s["Effect"]
        for s in statements
        if action in _as_list(s["Action"])
        and any(iam_wildcard_match(r, resource) for r in s["_resources"])
    ]
    return "Allow" in matching and "Deny" not in matching


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    return translate(template)


@pytest.fixture(scope="module")
def names(template: dict[str, Any]) -> dict[str, str]:
    """Sample values for every ${...} a Sub in the template may use, defaults for parameters."""
    values = dict(SAMPLE) | parameter_defaults(template)
    values["IotThing"] = f"{SAMPLE['AWS::StackName']}-device"
    for bucket in ("RawBucket", "ParsedBucket"):
        body = template["Resources"][bucket]["Properties"]["BucketName"]
        values[f"{bucket}.Arn"] = "arn:aws:s3:::" + resolve_sub(body, values)
    return values


# ------------------------------------------------------------------ cfn-lint and the transform


def test_cfn_lint_reports_nothing_in_any_region_with_every_rule() -> None:
    # given the template and cfn-lint with informational and experimental rules, all regions
    from cfnlint.api import lint_all

    # when it is linted
    findings = lint_all(TEMPLATE.read_text())

    # then there is no error, warning or informational finding
    assert [str(f) for f in findings] == []


def test_cfn_lint_harness_does_report_a_broken_template() -> None:
    # given the template with a runtime Lambda no longer accepts (proves the check can fail)
    from cfnlint.api import lint

    broken = TEMPLATE.read_text().replace("Runtime: python3.12", "Runtime: python2.7")

    # when it is linted
    findings = lint(broken)

    # then cfn-lint names the deprecated runtime
    assert any(f.rule.id == "E2533" for f in findings)


def test_sam_translator_produces_every_resource_type_offline(translated: dict) -> None:
    # given the translated template (fixture: aws-sam-translator, no network)
    types = {body["Type"] for body in translated["Resources"].values()}

    # then every part of the pipeline is a plain CloudFormation resource
    assert "AWS::Serverless::Function" not in types
    assert {
        "AWS::IoT::Thing",
        "AWS::IoT::Policy",
        "AWS::IoT::TopicRule",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::Lambda::Function",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::Logs::LogStream",
        "AWS::S3::Bucket",
    } <= types
    assert "Transform" not in translated


def test_transform_function_keeps_its_handler_code_and_explicit_role(translated: dict) -> None:
    # given the Lambda function after translation
    function = translated["Resources"]["TransformFunction"]["Properties"]

    # then the handler path is the package path, the code is the packaged zip, the role ours
    assert function["Handler"] == "pipeline.handler.lambda_handler"
    assert function["Runtime"] == "python3.12"
    assert function["Code"] == {"S3Bucket": "packaging-bucket", "S3Key": "transform.zip"}
    assert function["Role"] == {"Fn::GetAtt": ["TransformFunctionRole", "Arn"]}
    # and SAM added no role of its own (least privilege stays the template's choice)
    roles = {n for n, body in translated["Resources"].items() if body["Type"] == "AWS::IAM::Role"}
    assert roles == {
        "TopicRuleFirehoseRole",
        "TopicRuleErrorRole",
        "FirehoseRole",
        "TransformFunctionRole",
        "HotPathRuleRole",  # only with HotPathTable=true (Condition HotPathOn)
    }


def test_handler_path_names_a_function_in_the_pipeline_package(template: dict) -> None:
    # given the function's Handler, `<module path>.<function>`, relative to the code root
    handler = template["Resources"]["TransformFunction"]["Properties"]["Handler"]
    module, _, function = handler.rpartition(".")

    # when the module is looked up in the source tree the build step copies from
    source = TEMPLATE.parent.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())

    # then it defines that function at module level, taking Lambda's two arguments
    (definition,) = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function
    ]
    assert len(definition.args.args) == 2  # (event, context)


def test_function_code_comes_from_the_build_folder(template: dict) -> None:
    # given the SAM function as written
    function = template["Resources"]["TransformFunction"]["Properties"]

    # then its code is build/lambda (which holds pipeline/), and its name is fixed
    assert function["CodeUri"] == "build/lambda"
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-transform"}
    # and Firehose may wait up to 5 minutes for one invocation
    assert 1 <= function["Timeout"] <= 300


# ------------------------------------------------------------------ IoT policy vs topic rule


def _rule_topic_filter(template: dict, names: dict[str, str]) -> str:
    sql = resolve_sub(
        template["Resources"]["TopicRule"]["Properties"]["TopicRulePayload"]["Sql"], names
    )
    match = re.search(r"\bFROM\s+'([^']+)'", sql)
    assert match, f"no FROM '<topic filter>' in {sql!r}"
    return match.group(1)


def _policy_statements(template: dict, names: dict[str, str]) -> list[dict[str, Any]]:
    statements = template["Resources"]["IotPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return [
        s | {"_resources": [resolve_sub(r, names) for r in _as_list(s["Resource"])]}
        for s in statements
    ]


def _topic_arn(names: dict[str, str], kind: str, topic: str) -> str:
    return f"arn:aws:iot:{names['AWS::Region']}:{names['AWS::AccountId']}:{kind}/{topic}"


def test_rule_reads_one_level_below_the_topic_root(template: dict, names: dict) -> None:
    # given the rule's SQL with the default topic root
    payload = template["Resources"]["TopicRule"]["Properties"]["TopicRulePayload"]

    # when its FROM filter is read
    topic_filter = _rule_topic_filter(template, names)

    # then it is <root>/+ with the 2016-03-23 SQL version and the topic added to each record
    assert topic_filter == f"{names['IotTopicName']}/+"
    assert payload["Sql"] == {"Fn::Sub": "SELECT topic() AS topic, * FROM '${IotTopicName}/+'"}
    assert payload["AwsIotSqlVersion"] == "2016-03-23"
    assert payload["RuleDisabled"] is False


@pytest.mark.parametrize(
    ("topic", "allowed"),
    [
        ("iot-test-topic/device-1", True),
        ("iot-test-topic/", True),  # `+` matches an empty level too
        ("iot-test-topic", False),  # the seed allowed this; the rule never reads it
        ("iot-test-topic/a/b", False),  # the seed allowed this too
        ("iot-test-topic/a/", False),
        ("iot-test-topicX/a", False),
        ("other/a", False),
    ],
)
def test_policy_publish_examples(template: dict, names: dict, topic: str, allowed: bool) -> None:
    # given the device policy and the rule's filter
    statements = _policy_statements(template, names)
    topic_filter = _rule_topic_filter(template, names)

    # when a publish to `topic` is evaluated
    verdict = policy_allows(statements, "iot:Publish", _topic_arn(names, "topic", topic))

    # then it is allowed exactly when the rule reads the topic
    assert verdict is allowed
    assert mqtt_filter_matches(topic_filter, topic) is allowed


_LEVEL = st.sampled_from(["", "iot-test-topic", "a", "device-1", "+", "#", "*", "x/y"])


@settings(max_examples=300, deadline=None)
@given(levels=st.lists(_LEVEL, min_size=1, max_size=5))
def test_policy_allows_publish_exactly_where_the_rule_reads(
    template: dict, names: dict, levels: list[str]
) -> None:
    # given the device policy, the rule's filter, and any topic built from sample levels
    statements = _policy_statements(template, names)
    topic_filter = _rule_topic_filter(template, names)
    topic = "/".join(levels)
    if "+" in topic or "#" in topic:
        return  # not a topic name: MQTT forbids wildcards in PUBLISH topics

    # when the policy decides on a publish to it
    verdict = policy_allows(statements, "iot:Publish", _topic_arn(names, "topic", topic))

    # then the policy allows it if and only if the rule's FROM filter matches it
    assert verdict == mqtt_filter_matches(topic_filter, topic), topic


def test_policy_connects_only_as_the_thing(template: dict, names: dict) -> None:
    # given the device policy
    statements = _policy_statements(template, names)
    thing = names["IotThing"]

    # when client ids are evaluated for iot:Connect
    def connect(client_id: str) -> bool:
        return policy_allows(statements, "iot:Connect", _topic_arn(names, "client", client_id))

    # then only the thing's name is accepted, and the thing resource is what names it
    assert connect(thing)
    assert not connect(thing + "-2")
    assert not connect("someone-else")
    assert template["Resources"]["IotThing"]["Properties"]["ThingName"] == {
        "Fn::Sub": "${AWS::StackName}-device"
    }


def test_policy_lets_the_device_watch_its_topic_subtree(template: dict, names: dict) -> None:
    # given the device policy (the notebooks' test subscriber uses the device's connection)
    statements = _policy_statements(template, names)
    root = names["IotTopicName"]

    # then subscribing to <root>/+ or <root>/# and receiving from <root>/x is allowed
    assert policy_allows(statements, "iot:Subscribe", _topic_arn(names, "topicfilter", root + "/+"))
    assert policy_allows(statements, "iot:Subscribe", _topic_arn(names, "topicfilter", root + "/#"))
    assert policy_allows(statements, "iot:Receive", _topic_arn(names, "topic", root + "/x"))
    # and nothing outside the subtree
    assert not policy_allows(statements, "iot:Subscribe", _topic_arn(names, "topicfilter", "#"))
    assert not policy_allows(statements, "iot:Receive", _topic_arn(names, "topic", "other/x"))
    assert not policy_allows(statements, "iot:Publish", _topic_arn(names, "topic", "other/x"))


# ------------------------------------------------------------------ rule actions


def test_rule_sends_newline_separated_records_to_the_stream(template: dict) -> None:
    # given the rule's actions
    actions = template["Resources"]["TopicRule"]["Properties"]["TopicRulePayload"]["Actions"]

    # then its one action puts records into our delivery stream with a "\n" separator
    assert len(actions) == 1
    firehose = actions[0]["Firehose"]
    assert firehose["DeliveryStreamName"] == {"Ref": "DeliveryStream"}
    assert firehose["Separator"] == "\n"
    assert firehose["RoleArn"] == {"Fn::GetAtt": ["TopicRuleFirehoseRole", "Arn"]}


def test_rule_error_action_writes_one_unique_object_per_failure(
    template: dict, names: dict
) -> None:
    # given the rule's error action and the role it uses
    payload = template["Resources"]["TopicRule"]["Properties"]["TopicRulePayload"]
    s3 = payload["ErrorAction"]["S3"]
    statement = _role_statements(template, "TopicRuleErrorRole")[0]

    # then it writes to the raw bucket under errors/iot-rule/ with a per-message unique key
    assert s3["BucketName"] == {"Ref": "RawBucket"}
    assert s3["Key"].startswith("errors/iot-rule/")
    assert "${newuuid()}" in s3["Key"]
    assert "${timestamp()}" in s3["Key"]
    # and the role may put exactly there: a sample evaluated key matches its resource
    sample_key = (
        s3["Key"]
        .replace("${topic()}", "iot-test-topic/device-1")
        .replace("${timestamp()}", "1700000000000")
        .replace("${newuuid()}", "u-u-i-d")
    )
    resource = resolve_sub(statement["Resource"], names)
    assert statement["Action"] == "s3:PutObject"
    assert iam_wildcard_match(resource, f"{names['RawBucket.Arn']}/{sample_key}")
    assert not iam_wildcard_match(resource, f"{names['RawBucket.Arn']}/dev/data/x.gz")


def test_rule_firehose_role_puts_records_into_our_stream_only(template: dict) -> None:
    # given the rule's Firehose role
    (statement,) = _role_statements(template, "TopicRuleFirehoseRole")

    # then it allows PutRecord and PutRecordBatch on the delivery stream and nothing else
    assert sorted(statement["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert statement["Resource"] == {"Fn::GetAtt": ["DeliveryStream", "Arn"]}


# ------------------------------------------------------------------ Firehose


def _destination(template: dict) -> dict[str, Any]:
    props = template["Resources"]["DeliveryStream"]["Properties"]
    return props["ExtendedS3DestinationConfiguration"]


def test_buffering_hints_come_from_the_parameters(template: dict) -> None:
    # given the stream's destination and backup configurations and the parameters
    destination = _destination(template)
    params = template["Parameters"]
    expected = {
        "IntervalInSeconds": {"Ref": "BufferIntervalSeconds"},
        "SizeInMBs": {"Ref": "BufferSizeMBs"},
    }

    # then both use the parameters, whose bounds are Firehose's (0-900 s, 1-128 MiB; with
    # record format conversion at least 64 MiB for the Parquet destination)
    assert destination["BufferingHints"] == {
        **expected,
        "SizeInMBs": {"Ref": "ParsedBufferSizeMBs"},
    }
    assert destination["S3BackupConfiguration"]["BufferingHints"] == expected
    parsed = params["ParsedBufferSizeMBs"]
    assert (parsed["Default"], parsed["MinValue"], parsed["MaxValue"]) == (64, 64, 128)
    assert (params["BufferIntervalSeconds"]["Default"], params["BufferSizeMBs"]["Default"]) == (
        60,
        1,
    )
    assert (
        params["BufferIntervalSeconds"]["MinValue"],
        params["BufferIntervalSeconds"]["MaxValue"],
    ) == (0, 900)
    assert (params["BufferSizeMBs"]["MinValue"], params["BufferSizeMBs"]["MaxValue"]) == (1, 128)


def test_stream_is_direct_put_gzip_to_parsed_with_raw_backup(template: dict) -> None:
    # given the delivery stream
    props = template["Resources"]["DeliveryStream"]["Properties"]
    destination = _destination(template)
    backup = destination["S3BackupConfiguration"]

    # then devices' records arrive by DirectPut, parsed output and raw backup are both gzip
    assert props["DeliveryStreamType"] == "DirectPut"
    assert destination["BucketARN"] == {"Fn::GetAtt": ["ParsedBucket", "Arn"]}
    # Parquet compresses inside the file: the object is UNCOMPRESSED (record format conversion)
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["S3BackupMode"] == "Enabled"
    assert backup["BucketARN"] == {"Fn::GetAtt": ["RawBucket", "Arn"]}
    assert backup["CompressionFormat"] == "GZIP"
    # and both log to the declared log group, each to a declared stream
    for config, stream in (
        (destination, "FirehoseDestinationLogStream"),
        (backup, "FirehoseBackupLogStream"),
    ):
        assert config["CloudWatchLoggingOptions"] == {
            "Enabled": True,
            "LogGroupName": {"Ref": "FirehoseLogGroup"},
            "LogStreamName": {"Ref": stream},
        }


@pytest.mark.parametrize("where", ["destination", "backup"])
def test_prefixes_follow_the_firehose_prefix_rules(template: dict, names: dict, where: str) -> None:
    # given a prefix pair (Firehose developer guide, "Custom prefixes for Amazon S3 objects")
    config = _destination(template)
    if where == "backup":
        config = config["S3BackupConfiguration"]
    prefix = resolve_sub(config["Prefix"], names)
    error_prefix = resolve_sub(config["ErrorOutputPrefix"], names)

    # then the raw backup's Prefix has no expression, so Firehose appends yyyy/MM/dd/HH/ to
    # <env>/data/; the parsed destination's is Hive-style, by equipment (the transform's
    # partition key) and arrival day
    if where == "backup":
        assert prefix == f"{names['Environment']}/data/"
        assert "!{" not in prefix
    else:
        assert prefix == (
            f"{names['Environment']}/data/equipment_id=!{{partitionKeyFromLambda:equipment_id}}"
            "/dt=!{timestamp:yyyy-MM-dd}/"
        )
    # and ErrorOutputPrefix, which has expressions, includes the error output type
    assert "!{firehose:error-output-type}" in error_prefix
    # and every `!{` opens a namespace:value expression of a namespace Firehose knows
    for expression in re.findall(r"!\{([^}]*)\}", error_prefix):
        namespace, _, value = expression.partition(":")
        assert namespace in {"firehose", "timestamp"} and value, expression
    assert error_prefix.count("!{") == len(re.findall(r"!\{[^}]*\}", error_prefix))


def test_lambda_processor_invokes_the_transform_function(template: dict) -> None:
    # given the stream's processing configuration
    processing = _destination(template)["ProcessingConfiguration"]
    (processor,) = processing["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}

    # then it is a Lambda processor on the function's ARN with retries and invocation buffering
    assert processing["Enabled"] is True
    assert processor["Type"] == "Lambda"
    assert parameters["LambdaArn"] == {"Fn::GetAtt": ["TransformFunction", "Arn"]}
    assert parameters["NumberOfRetries"] == "3"
    assert parameters["BufferSizeInMBs"] == {"Ref": "ProcessorBufferSizeMBs"}
    assert parameters["BufferIntervalInSeconds"] == {"Ref": "ProcessorBufferIntervalSeconds"}


# ------------------------------------------------------------------ IAM


def _role_statements(template: dict, role: str) -> list[dict[str, Any]]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _all_role_statements(translated: dict) -> list[dict[str, Any]]:
    return [
        s
        for body in translated["Resources"].values()
        if body["Type"] == "AWS::IAM::Role"
        for p in body["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
    ]


def test_no_s3_resource_ends_with_a_bare_slash(translated: dict, names: dict) -> None:
    # given every IAM statement of the translated stack, with GetAtt bucket ARNs resolved
    def arn(resource: Any) -> str:
        if isinstance(resource, dict) and "Fn::GetAtt" in resource:
            return (
                names[".".join(resource["Fn::GetAtt"])]
                if resource["Fn::GetAtt"][0] in ("RawBucket", "ParsedBucket")
                else "(not s3)"
            )
        return resolve_sub(resource, names)

    s3_resources = [
        (s["Action"], arn(r))
        for s in _all_role_statements(translated)
        if any(a.startswith("s3:") for a in _as_list(s["Action"]))
        for r in _as_list(s["Resource"])
    ]

    # then there are S3 resources, none ends with `/`, and each is a bucket or objects in it
    assert s3_resources
    for actions, resource in s3_resources:
        assert not resource.endswith("/"), resource
        assert re.fullmatch(r"arn:aws:s3:::[a-z0-9.-]+(/.*\*)?", resource), resource
        bucket_level = {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}
        if set(_as_list(actions)) <= bucket_level:
            assert "/" not in resource.removeprefix("arn:aws:s3:::"), resource
        else:
            assert resource.endswith("*"), resource


def test_firehose_role_covers_what_firehose_does(template: dict) -> None:
    # given the Firehose role's statements by Sid
    statements = {s["Sid"]: s for s in _role_statements(template, "FirehoseRole")}

    # then it reaches both buckets, the transform function and its own log group
    bucket_arns = [{"Fn::GetAtt": ["ParsedBucket", "Arn"]}, {"Fn::GetAtt": ["RawBucket", "Arn"]}]
    assert statements["Buckets"]["Resource"] == bucket_arns
    assert "s3:ListBucket" in statements["Buckets"]["Action"]
    assert statements["Objects"]["Resource"] == [
        {"Fn::Sub": "${ParsedBucket.Arn}/*"},
        {"Fn::Sub": "${RawBucket.Arn}/*"},
    ]
    assert {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"} <= set(
        statements["Objects"]["Action"]
    )
    assert sorted(statements["Transform"]["Action"]) == [
        "lambda:GetFunctionConfiguration",
        "lambda:InvokeFunction",
    ]
    assert statements["Transform"]["Resource"] == {"Fn::GetAtt": ["TransformFunction", "Arn"]}
    assert statements["Logs"] == {
        "Sid": "Logs",
        "Effect": "Allow",
        "Action": "logs:PutLogEvents",
        "Resource": {"Fn::GetAtt": ["FirehoseLogGroup", "Arn"]},
    }


def test_no_statement_allows_every_resource_or_action(translated: dict) -> None:
    # given every IAM statement of the translated stack
    statements = _all_role_statements(translated)

    # then none uses a bare "*" resource or a service-wide "svc:*" action
    assert statements
    for statement in statements:
        assert "*" not in _as_list(statement["Resource"]), statement
        assert not any(a.endswith(":*") for a in _as_list(statement["Action"])), statement


def test_function_logs_only_to_its_own_log_group(template: dict, names: dict) -> None:
    # given the transform's role, its log group and its function name
    (statement,) = _role_statements(template, "TransformFunctionRole")
    resources = template["Resources"]
    log_group = resolve_sub(resources["TransformLogGroup"]["Properties"]["LogGroupName"], names)
    function = resolve_sub(resources["TransformFunction"]["Properties"]["FunctionName"], names)

    # then the log group is the one Lambda writes to, and the role can write only there
    assert log_group == f"/aws/lambda/{function}"
    assert statement["Resource"] == {"Fn::GetAtt": ["TransformLogGroup", "Arn"]}
    assert sorted(statement["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert resources["TransformLogGroup"]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }


# ------------------------------------------------------------------ S3


@pytest.mark.parametrize("bucket", ["RawBucket", "ParsedBucket"])
def test_buckets_are_private_encrypted_and_deletable(template: dict, bucket: str) -> None:
    # given a bucket
    resource = template["Resources"][bucket]
    props = resource["Properties"]

    # then it is SSE-S3 encrypted, blocks all public access, has ACLs disabled
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # and the stack deletes it (notebook 06 empties it first)
    assert resource["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("bucket", ["RawBucket", "ParsedBucket"])
def test_longest_bucket_names_stay_within_the_s3_limit(template: dict, bucket: str) -> None:
    # given the longest values the parameters allow and the longest region name
    longest = dict(SAMPLE) | {
        "AWS::Region": "ap-southeast-5",
        "BucketNamePrefix": "p" * 16,
        "Environment": "e" * 8,
    }
    for name in ("BucketNamePrefix", "Environment"):
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, longest[name])
        assert not re.fullmatch(pattern, longest[name] + "x"), f"{name} allows longer values"

    # when the bucket name is built
    name = resolve_sub(template["Resources"][bucket]["Properties"]["BucketName"], longest)

    # then it is a valid S3 bucket name of at most 63 characters
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name)


# ------------------------------------------------------------------ parameters and outputs


def test_parameter_defaults_satisfy_their_own_constraints(template: dict) -> None:
    # given each parameter
    for name, body in template["Parameters"].items():
        default = body["Default"]
        # then its default passes its pattern, bounds and allowed values
        if "AllowedPattern" in body:
            assert re.fullmatch(body["AllowedPattern"], str(default)), name
        if "MinValue" in body:
            assert body["MinValue"] <= default <= body["MaxValue"], name
        if "AllowedValues" in body:
            assert default in body["AllowedValues"], name
    assert template["Parameters"]["Environment"]["Default"] == "dev"
    assert template["Parameters"]["IotTopicName"]["Default"] == "iot-test-topic"


def test_topic_parameter_refuses_wildcards(template: dict) -> None:
    # given the topic root's pattern
    pattern = template["Parameters"]["IotTopicName"]["AllowedPattern"]

    # then MQTT and IoT policy wildcards, empty levels and reserved topics are refused
    for bad in ["a/+", "a/#", "a*", "a?", "$aws/things", "a//b", "/a", "a/", "1/2/3/4/5/6/7"]:
        assert not re.fullmatch(pattern, bad), bad
    assert re.fullmatch(pattern, "factory-1/line_2/sensors")


def test_outputs_name_every_part_the_notebooks_use(template: dict) -> None:
    # given the outputs
    outputs = template["Outputs"]

    # then each part is there, from the resource that creates it
    expected = {
        "ThingName": {"Ref": "IotThing"},
        "PolicyName": {"Ref": "IotPolicy"},
        "TopicName": {"Ref": "IotTopicName"},
        "TopicRuleName": {"Ref": "TopicRule"},
        "DeliveryStreamName": {"Ref": "DeliveryStream"},
        "RawBucketName": {"Ref": "RawBucket"},
        "ParsedBucketName": {"Ref": "ParsedBucket"},
        "FunctionName": {"Ref": "TransformFunction"},
        "DeliveryStreamArn": {"Fn::GetAtt": ["DeliveryStream", "Arn"]},
        "FunctionArn": {"Fn::GetAtt": ["TransformFunction", "Arn"]},
        "TopicRuleArn": {"Fn::GetAtt": ["TopicRule", "Arn"]},
    }
    assert {name: outputs[name]["Value"] for name in expected} == expected
