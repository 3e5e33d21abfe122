"""What CloudFormation refuses: requests it rejects (ValidationError, capabilities) and stacks
that fail (CREATE_FAILED with a reason, rolled back to ROLLBACK_COMPLETE). Nothing is skipped."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, WaiterError
from support.templates import resource


def _create_and_wait_for_failure(cfn, stack_name: str, template: dict) -> dict:
    cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_create_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
    return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]


def _failed_events(events: list[dict]) -> dict[str, str]:
    return {
        e["LogicalResourceId"]: e.get("ResourceStatusReason", "")
        for e in events
        if e["ResourceStatus"] == "CREATE_FAILED"
    }


def _rolled_back_reason(cfn, stack_events, stack_name: str, template: dict, resource: str) -> str:
    """Create the stack, check that it was rolled back, and return `resource`'s failure reason."""
    stack = _create_and_wait_for_failure(cfn, stack_name, template)
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    return _failed_events(stack_events(stack_name))[resource]


def _rule_template(sql: str, version: str | None = None, **properties) -> dict:
    """A template of one topic rule `Rule` republishing to `out` (AwsIotSqlVersion left out when
    `version` is None)."""
    payload = {
        "Sql": sql,
        "Actions": [
            {"Republish": {"Topic": "out", "RoleArn": "arn:aws:iam::123456789012:role/republish"}}
        ],
    }
    if version is not None:
        payload["AwsIotSqlVersion"] = version
    rule = {
        "Type": "AWS::IoT::TopicRule",
        "Properties": {**properties, "TopicRulePayload": payload},
    }
    return {"Resources": {"Rule": rule}}


def test_unsupported_resource_type_fails_the_stack_before_creating_anything(
    aws, unique, stack_events
):
    # Given a template with a type the emulator does not implement, next to one it does
    cfn, logs = aws("cloudformation"), aws("logs")
    group = f"/test/cfn/{unique}"
    template = {
        "Resources": {
            "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}},
            "Queue": {"Type": "AWS::AppSync::GraphQLApi", "Properties": {}},
        }
    }
    # When the stack is created
    stack = _create_and_wait_for_failure(cfn, f"unsupported-{unique}", template)
    # Then it is rolled back, the queue's reason names the type, and nothing was created
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    failed = _failed_events(stack_events(f"unsupported-{unique}"))
    assert (
        "Resource type AWS::AppSync::GraphQLApi is not supported by the local emulator"
        in failed["Queue"]
    )
    assert "The following resource(s) failed to create: [Queue]" in failed[f"unsupported-{unique}"]
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    assert (
        cfn.list_stack_resources(StackName=f"unsupported-{unique}")["StackResourceSummaries"] == []
    )
    assert "Outputs" not in stack


def test_unsupported_property_fails_the_stack_with_its_path(aws, unique, stack_events):
    # Given a bucket with a property the emulator does not honour
    cfn = aws("cloudformation")
    template = {
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketName": f"cfn-prop-{unique}",
                    "NotificationConfiguration": {"TopicConfigurations": []},
                },
            }
        }
    }
    # When the stack is created
    stack = _create_and_wait_for_failure(cfn, f"property-{unique}", template)
    # Then the reason names the property, and the bucket does not exist
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reason = _failed_events(stack_events(f"property-{unique}"))["Bucket"]
    assert "Properties validation failed for resource Bucket" in reason
    assert "key [NotificationConfiguration] is not supported" in reason
    with pytest.raises(ClientError):
        aws("s3").head_bucket(Bucket=f"cfn-prop-{unique}")


def test_failed_resource_rolls_back_what_was_created(aws, unique, stack_events):
    # Given a log group that CloudWatch Logs refuses (13 days is not a retention value),
    # created after a bucket it depends on
    cfn = aws("cloudformation")
    bucket = f"cfn-rollback-{unique}"
    template = {
        "Resources": {
            "Bucket": resource("AWS::S3::Bucket", {"BucketName": bucket}),
            "Group": resource("AWS::Logs::LogGroup", {"RetentionInDays": 13}, DependsOn="Bucket"),
        }
    }
    # When the stack is created
    stack = _create_and_wait_for_failure(cfn, f"rollback-{unique}", template)
    # Then the group failed with the reason, and the bucket was deleted again
    events = stack_events(f"rollback-{unique}")
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "RetentionInDays 13" in _failed_events(events)["Group"]
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events]
    assert statuses.index(("Bucket", "CREATE_COMPLETE")) < statuses.index(
        ("Bucket", "DELETE_COMPLETE")
    )
    with pytest.raises(ClientError):
        aws("s3").head_bucket(Bucket=bucket)


def test_service_error_is_the_resource_reason(aws, unique, stack_events):
    # Given a topic rule whose explicit name IoT refuses (`-` is not allowed in rule names)
    cfn = aws("cloudformation")
    template = _rule_template("SELECT * FROM 't/+'", "2016-03-23", RuleName=f"bad-name-{unique}")
    # When the stack is created, it is rolled back
    reason = _rolled_back_reason(cfn, stack_events, f"rule-{unique}", template, "Rule")
    # Then the reason is IoT's own validation message
    assert "^[a-zA-Z0-9_]+$" in reason


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ("AWS::LanguageExtensions", "Transform AWS::LanguageExtensions is not supported"),
        (["AWS::Serverless-2016-10-31", "MyMacro"], "Transform MyMacro is not supported"),
    ],
)
def test_other_transforms_are_refused(aws, unique, transform, expected):
    # Given a template declaring a transform other than SAM's
    template = {
        "Transform": transform,
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup", "Properties": {}}},
    }
    # When it is deployed
    with pytest.raises(ClientError) as caught:
        aws("cloudformation").create_stack(
            StackName=f"transform-{unique}",
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_AUTO_EXPAND"],
        )
    # Then CloudFormation refuses the request and names the transform
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert expected in caught.value.response["Error"]["Message"]


def test_local_code_uri_must_be_packaged_first(aws, unique):
    # Given the project's template as it is in the repository (CodeUri: build/lambda)
    from pipeline.paths import TEMPLATE

    # When it is deployed without packaging
    with pytest.raises(ClientError) as caught:
        aws("cloudformation").create_stack(
            StackName=f"unpackaged-{unique}",
            TemplateBody=TEMPLATE.read_text(),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    # Then the error says what to do
    message = caught.value.response["Error"]["Message"]
    assert "CodeUri 'build/lambda' is a local path" in message
    assert "aws cloudformation package" in message


def test_parameter_constraints_are_checked(aws, unique, packaged_body):
    # Given an Environment value outside its AllowedPattern
    parameters = [{"ParameterKey": "Environment", "ParameterValue": "Not_Valid"}]
    # When the stack is created
    with pytest.raises(ClientError) as caught:
        aws("cloudformation").create_stack(
            StackName=f"param-{unique}",
            TemplateBody=packaged_body,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    # Then the request fails naming the parameter and its constraint description
    message = caught.value.response["Error"]["Message"]
    assert message.startswith("Parameter 'Environment' failed to satisfy constraint")
    assert "lower-case letters or digits" in message


def test_unknown_parameter_is_refused(aws, unique, packaged_body):
    # Given a parameter the template does not declare
    parameters = [{"ParameterKey": "Stage", "ParameterValue": "x"}]
    # When the stack is created, then the request names it
    with pytest.raises(ClientError, match=r"Parameters: \[Stage\] do not exist in the template"):
        aws("cloudformation").create_stack(
            StackName=f"unknown-{unique}",
            TemplateBody=packaged_body,
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )


def test_iam_and_transform_need_capabilities(aws, unique, packaged_body):
    # Given the packaged template (IAM roles, SAM transform)
    cfn = aws("cloudformation")
    # When it is created without capabilities, then CloudFormation asks for both
    with pytest.raises(ClientError) as caught:
        cfn.create_stack(StackName=f"caps-{unique}", TemplateBody=packaged_body)
    error = caught.value.response["Error"]
    assert error["Code"] == "InsufficientCapabilitiesException"
    assert error["Message"] == "Requires capabilities : [CAPABILITY_AUTO_EXPAND, CAPABILITY_IAM]"
    # And no stack was left behind
    with pytest.raises(ClientError, match="does not exist"):
        cfn.describe_stacks(StackName=f"caps-{unique}")


def test_topic_rule_sql_is_checked_by_the_rules_engine(aws, unique, stack_events):
    # Given a topic rule whose SQL the rules engine cannot parse
    cfn = aws("cloudformation")
    template = _rule_template("SELECT FROM WHERE 't/+'", "2016-03-23")
    # When the stack is created, it is rolled back
    reason = _rolled_back_reason(cfn, stack_events, f"sql-{unique}", template, "Rule")
    # Then the rule failed with the engine's reason and no rule was created
    assert "line 1, column" in reason  # the SqlError's position in the statement
    rules = aws("iot").list_topic_rules()["rules"]
    assert not any(r["ruleName"].startswith(f"sql_{unique}") for r in rules)


def test_topic_rule_sql_version_defaults_to_2015_10_08(aws, unique, stack_events):
    # Given a topic rule without AwsIotSqlVersion (CloudFormation's default is 2015-10-08,
    # "AWS::IoT::TopicRule TopicRulePayload"), which the rules engine may not run
    cfn = aws("cloudformation")
    template = _rule_template("SELECT * FROM 't/+'")
    # When the stack is created
    cfn.create_stack(StackName=f"sqlver-{unique}", TemplateBody=json.dumps(template))
    stack = cfn.describe_stacks(StackName=f"sqlver-{unique}")["Stacks"][0]
    # Then the rule either exists with that version or failed naming it: never another version
    if stack["StackStatus"] == "CREATE_COMPLETE":
        name = cfn.describe_stack_resource(StackName=f"sqlver-{unique}", LogicalResourceId="Rule")
        rule = aws("iot").get_topic_rule(
            ruleName=name["StackResourceDetail"]["PhysicalResourceId"]
        )["rule"]
        assert rule["awsIotSqlVersion"] == "2015-10-08"
    else:
        assert "2015-10-08" in _failed_events(stack_events(f"sqlver-{unique}"))["Rule"]


def test_rolled_back_stack_cannot_be_updated(aws, unique):
    # Given a stack that failed to create
    cfn = aws("cloudformation")
    template = {"Resources": {"Queue": {"Type": "AWS::AppSync::GraphQLApi"}}}
    _create_and_wait_for_failure(cfn, f"rolledback-{unique}", template)
    good = json.dumps({"Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}}})

    def change_set(name: str, kind: str) -> None:
        cfn.create_change_set(
            StackName=f"rolledback-{unique}",
            ChangeSetName=name,
            ChangeSetType=kind,
            TemplateBody=good,
        )

    # When it is updated, directly or with a change set, then CloudFormation refuses
    with pytest.raises(ClientError, match="is in ROLLBACK_COMPLETE state and can not be updated"):
        cfn.update_stack(StackName=f"rolledback-{unique}", TemplateBody=good)
    with pytest.raises(ClientError, match="is in ROLLBACK_COMPLETE state and can not be updated"):
        change_set("retry", "UPDATE")
    # And a CREATE change set for an existing name is refused too
    with pytest.raises(ClientError, match="already exists"):
        change_set("again", "CREATE")
    cfn.delete_stack(StackName=f"rolledback-{unique}")


def test_missing_stack_is_a_validation_error(aws, unique):
    # Given no stack of this name
    cfn = aws("cloudformation")
    good = {"Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}}}
    # When it is updated, then CloudFormation says it does not exist
    with pytest.raises(ClientError) as caught:
        cfn.update_stack(StackName=f"missing-{unique}", TemplateBody=json.dumps(good))
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert (
        caught.value.response["Error"]["Message"]
        == f"Stack with id missing-{unique} does not exist"
    )
    # And deleting it is not an error (DeleteStack is idempotent)
    cfn.delete_stack(StackName=f"missing-{unique}")


def test_rollback_keeps_retain_and_deletes_retain_except_on_create(aws, unique, stack_events):
    # Given two buckets, Retain and RetainExceptOnCreate, and a log group that fails after them
    cfn, s3 = aws("cloudformation"), aws("s3")
    template = {
        "Resources": {
            "Kept": resource(
                "AWS::S3::Bucket", {"BucketName": f"cfn-kept-{unique}"}, DeletionPolicy="Retain"
            ),
            "Dropped": resource(
                "AWS::S3::Bucket",
                {"BucketName": f"cfn-dropped-{unique}"},
                DeletionPolicy="RetainExceptOnCreate",
            ),
            "Group": resource(
                "AWS::Logs::LogGroup", {"RetentionInDays": 2}, DependsOn=["Kept", "Dropped"]
            ),
        }
    }
    # When the create fails and rolls back
    stack = _create_and_wait_for_failure(cfn, f"retain-rb-{unique}", template)
    # Then the Retain bucket is kept, the RetainExceptOnCreate one deleted
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    s3.head_bucket(Bucket=f"cfn-kept-{unique}")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=f"cfn-dropped-{unique}")
    statuses = {
        (e["LogicalResourceId"], e["ResourceStatus"]) for e in stack_events(f"retain-rb-{unique}")
    }
    assert ("Kept", "DELETE_SKIPPED") in statuses
    assert ("Dropped", "DELETE_COMPLETE") in statuses
    s3.delete_bucket(Bucket=f"cfn-kept-{unique}")


def test_unsupported_section_and_resource_attribute_are_refused(aws, unique, stack_events):
    # Given a template with a Rules section
    cfn = aws("cloudformation")
    with_rules = {
        "Rules": {"R": {"Assertions": []}},
        "Resources": {"Group": {"Type": "AWS::Logs::LogGroup"}},
    }
    # When it is created, then the request is refused naming the section
    with pytest.raises(ClientError, match="section\\(s\\) Rules not supported"):
        cfn.create_stack(StackName=f"rules-{unique}", TemplateBody=json.dumps(with_rules))
    # And a resource with an attribute the emulator ignores fails the stack
    with_policy = {
        "Resources": {
            "Group": {"Type": "AWS::Logs::LogGroup", "CreationPolicy": {"ResourceSignal": {}}}
        }
    }
    _create_and_wait_for_failure(cfn, f"attr-{unique}", with_policy)
    reason = _failed_events(stack_events(f"attr-{unique}"))["Group"]
    assert "resource attribute CreationPolicy is not supported" in reason
