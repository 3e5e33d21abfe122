"""Pure checks on templates: dependency order, supported types and properties, parameter
constraints, the SAM transform (no endpoint needed)."""

from __future__ import annotations

import pytest
from support.templates import sam_function

from emulator.cloudformation.stacks import creation_order
from emulator.cloudformation.template import (
    TemplateError,
    check_parameters,
    expand_transforms,
    parse_template,
    unsupported_resources,
)
from pipeline.paths import TEMPLATE


def test_creation_order_follows_ref_getatt_sub_and_depends_on():
    # Given resources declared before what they reference
    resources = {
        "Rule": {"Properties": {"Stream": {"Ref": "Stream"}}},
        "Stream": {"Properties": {"Arn": {"Fn::GetAtt": ["Bucket", "Arn"]}}},
        "Policy": {"Properties": {"R": {"Fn::Sub": "${Bucket.Arn}/* ${AWS::Region} ${!Literal}"}}},
        "Bucket": {"Properties": {}},
        "Late": {"DependsOn": ["Rule"], "Properties": {}},
    }
    # When they are ordered
    order = creation_order(resources)
    # Then each comes after its references
    assert order.index("Bucket") < order.index("Stream") < order.index("Rule") < order.index("Late")
    assert order.index("Bucket") < order.index("Policy")


def test_creation_order_refuses_a_cycle():
    # Given two resources that reference each other
    resources = {
        "A": {"Properties": {"x": {"Ref": "B"}}},
        "B": {"Properties": {"x": {"Fn::GetAtt": "A.Arn"}}},
    }
    # When they are ordered, then the cycle is named
    with pytest.raises(TemplateError, match=r"Circular dependency between resources: \[A, B\]"):
        creation_order(resources)


def test_unsupported_resources_names_types_and_nested_properties():
    # Given an unknown type, a nested unknown property, intrinsic values and a good resource
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::AppSync::GraphQLApi"},
            "Stream": {
                "Type": "AWS::KinesisFirehose::DeliveryStream",
                "Properties": {
                    "ExtendedS3DestinationConfiguration": {
                        "BucketARN": {"Fn::GetAtt": ["B", "Arn"]},
                        "CustomTimeZone": "Asia/Tokyo",
                        "ProcessingConfiguration": {
                            "Processors": [{"Type": "Lambda", "Parameters": [{"Bad": 1}]}]
                        },
                    }
                },
            },
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"RetentionInDays": {"Ref": "P"}},
            },
            "Policy": {"Type": "AWS::IoT::Policy", "Properties": {}},
        }
    }
    # When the template is checked
    problems = unsupported_resources(template)
    # Then each problem names its path; the good resource has none
    assert set(problems) == {"Queue", "Stream", "Policy"}
    assert "Resource type AWS::AppSync::GraphQLApi is not supported" in problems["Queue"]
    assert "#/ExtendedS3DestinationConfiguration: key [CustomTimeZone]" in (problems["Stream"])
    assert (
        "#/ExtendedS3DestinationConfiguration/ProcessingConfiguration/Processors/0/Parameters/0: "
        "key [Bad]" in problems["Stream"]
    )
    assert "required key [PolicyDocument] not found" in problems["Policy"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Environment": "UPPER"}, "Parameter 'Environment' failed to satisfy constraint"),
        ({"BufferIntervalSeconds": "901"}, "Parameter 'BufferIntervalSeconds'"),
        ({"LogRetentionDays": "13"}, "Parameter 'LogRetentionDays'"),
        ({"Nope": "1"}, r"Parameters: \[Nope\] do not exist in the template"),
    ],
)
def test_check_parameters_applies_the_template_constraints(parameters, message):
    # Given the project's template
    template = parse_template(TEMPLATE.read_text())
    # When a value breaks a constraint, then the error names the parameter
    with pytest.raises(TemplateError, match=message):
        check_parameters(template, parameters)


def test_check_parameters_accepts_defaults_and_valid_values():
    # Given the project's template and valid values
    template = parse_template(TEMPLATE.read_text())
    # When checked, then nothing is raised
    check_parameters(template, {"Environment": "prod1", "BufferIntervalSeconds": "0"})


def test_sam_transform_expands_offline_with_the_region():
    # Given the project's template with its code already in S3
    template = parse_template(TEMPLATE.read_text())
    template["Resources"]["TransformFunction"]["Properties"]["CodeUri"] = "s3://b/k.zip"
    # When the transform is expanded for eu-west-1
    expanded = expand_transforms(template, {}, "eu-west-1")
    # Then the function is a plain Lambda function reading the code from S3, and no SAM
    # type or Transform is left
    function = expanded["Resources"]["TransformFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["Code"] == {"S3Bucket": "b", "S3Key": "k.zip"}
    assert "Transform" not in expanded
    assert not any(
        r["Type"].startswith("AWS::Serverless::") for r in expanded["Resources"].values()
    )
    assert unsupported_resources(expanded) == {}


def test_sam_managed_policy_names_resolve_offline():
    # Given a SAM function naming an AWS managed policy
    template = sam_function("s3://b/k.zip", "app.handler", Policies=["AWSLambdaBasicExecutionRole"])
    # When it is expanded (no network)
    expanded = expand_transforms(template, {}, "us-east-1")
    # Then the role attaches the policy by ARN
    role = expanded["Resources"]["FnRole"]["Properties"]
    assert (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        in role["ManagedPolicyArns"]
    )
