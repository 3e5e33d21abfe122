"""Deleting stacks (reverse order, DeletionPolicy, failures CloudFormation reports) and
updating them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, WaiterError


def _create(cfn, stack_name: str, template: dict, **kwargs) -> str:
    stack_id = cfn.create_stack(StackName=stack_name, TemplateBody=json.dumps(template), **kwargs)[
        "StackId"
    ]
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return stack_id


def _bucket_and_group(unique: str, retain_bucket: bool) -> dict:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": f"cfn-del-{unique}"}}
    if retain_bucket:
        bucket["DeletionPolicy"] = "Retain"
    return {
        "Resources": {
            "Bucket": bucket,
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": {"Fn::Sub": "/test/${Bucket}"}},
            },
            "Stream": {
                "Type": "AWS::Logs::LogStream",
                "Properties": {"LogGroupName": {"Ref": "Group"}, "LogStreamName": "s"},
            },
        },
        "Outputs": {"GroupArn": {"Value": {"Fn::GetAtt": ["Group", "Arn"]}}},
    }


def test_delete_runs_in_reverse_order_and_honours_retain(aws, unique, stack_events):
    # Given a stack whose bucket has DeletionPolicy Retain
    cfn, s3, logs = aws("cloudformation"), aws("s3"), aws("logs")
    stack_name = f"retain-{unique}"
    stack_id = _create(cfn, stack_name, _bucket_and_group(unique, retain_bucket=True))
    # When the stack is deleted
    cfn.delete_stack(StackName=stack_name)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    # Then the log group and stream are gone, dependants first, and the bucket is kept
    events = stack_events(stack_id)  # a deleted stack is found by id only
    deleted = [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "DELETE_COMPLETE"]
    skipped = [e["LogicalResourceId"] for e in events if e["ResourceStatus"] == "DELETE_SKIPPED"]
    assert deleted[:2] == ["Stream", "Group"]
    assert skipped == ["Bucket"]
    assert logs.describe_log_groups(logGroupNamePrefix=f"/test/cfn-del-{unique}")["logGroups"] == []
    s3.head_bucket(Bucket=f"cfn-del-{unique}")  # raises if it was deleted
    s3.delete_bucket(Bucket=f"cfn-del-{unique}")


def test_non_empty_bucket_leaves_the_stack_delete_failed(aws, unique, stack_events):
    # Given a stack whose bucket holds an object
    cfn, s3 = aws("cloudformation"), aws("s3")
    stack_name = f"nonempty-{unique}"
    _create(cfn, stack_name, _bucket_and_group(unique, retain_bucket=False))
    s3.put_object(Bucket=f"cfn-del-{unique}", Key="k", Body=b"x")
    # When the stack is deleted
    cfn.delete_stack(StackName=stack_name)
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_delete_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 5}
        )
    # Then it is DELETE_FAILED with S3's reason, and emptying the bucket lets a retry finish
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "DELETE_FAILED"
    failed = [e for e in stack_events(stack_name) if e["ResourceStatus"] == "DELETE_FAILED"]
    assert failed[0]["LogicalResourceId"] == "Bucket"
    assert "BucketNotEmpty" in failed[0]["ResourceStatusReason"]
    s3.delete_object(Bucket=f"cfn-del-{unique}", Key="k")
    cfn.delete_stack(StackName=stack_name)
    cfn.get_waiter("stack_delete_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=f"cfn-del-{unique}")


def test_log_group_arn_attribute_ends_with_star(aws, unique):
    # Given a stack that outputs a log group's Arn attribute
    cfn = aws("cloudformation")
    stack_name = f"arn-{unique}"
    _create(cfn, stack_name, _bucket_and_group(unique, retain_bucket=False))
    # When the output is read
    outputs = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    # Then it is the group's ARN with `:*` (CloudFormation, AWS::Logs::LogGroup return values)
    assert outputs[0]["OutputValue"] == (
        f"arn:aws:logs:us-east-1:123456789012:log-group:/test/cfn-del-{unique}:*"
    )
    cfn.delete_stack(StackName=stack_name)


def test_update_replaces_a_changed_resource_and_refreshes_outputs(aws, unique):
    # Given a stack with a log group of 7 days' retention
    cfn, logs = aws("cloudformation"), aws("logs")
    stack_name = f"update-{unique}"
    group = f"/test/update/{unique}"

    def template(days: int) -> dict:
        return {
            "Resources": {
                "Group": {
                    "Type": "AWS::Logs::LogGroup",
                    "Properties": {"LogGroupName": group, "RetentionInDays": days},
                }
            },
            "Outputs": {"Days": {"Value": str(days)}},
        }

    _create(cfn, stack_name, template(7))
    # When the stack is updated to 30 days
    cfn.update_stack(StackName=stack_name, TemplateBody=json.dumps(template(30)))
    cfn.get_waiter("stack_update_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    # Then the group has the new retention and the output follows
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert stack["Outputs"][0]["OutputValue"] == "30"
    assert (
        logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 30
    )
    # And the same template again is "No updates are to be performed."
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=stack_name, TemplateBody=json.dumps(template(30)))
    cfn.delete_stack(StackName=stack_name)


def test_update_with_unsupported_resource_rolls_back_untouched(aws, unique):
    # Given a stack with one log group
    cfn, logs = aws("cloudformation"), aws("logs")
    stack_name = f"badupdate-{unique}"
    group = f"/test/badupdate/{unique}"
    good = {
        "Resources": {
            "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}
        }
    }
    _create(cfn, stack_name, good)
    bad = json.loads(json.dumps(good))
    bad["Resources"]["Topic"] = {"Type": "AWS::AppSync::GraphQLApi", "Properties": {}}
    # When it is updated with an unsupported resource
    cfn.update_stack(StackName=stack_name, TemplateBody=json.dumps(bad))
    with pytest.raises(WaiterError):
        cfn.get_waiter("stack_update_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 5}
        )
    # Then the update rolled back and the log group is still there
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert (
        logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupName"] == group
    )
    cfn.delete_stack(StackName=stack_name)


def test_exports_are_imported_by_another_stack(aws, unique):
    # Given a stack exporting a bucket name
    cfn, logs = aws("cloudformation"), aws("logs")
    exporter = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"Name": {"Value": {"Ref": "Bucket"}, "Export": {"Name": f"bucket-{unique}"}}},
    }
    _create(cfn, f"exporter-{unique}", exporter)
    bucket = cfn.describe_stacks(StackName=f"exporter-{unique}")["Stacks"][0]["Outputs"][0]
    # When another stack imports it
    importer = {
        "Resources": {
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {
                    "LogGroupName": {
                        "Fn::Sub": ["/test/${B}", {"B": {"Fn::ImportValue": f"bucket-{unique}"}}]
                    }
                },
            }
        }
    }
    _create(cfn, f"importer-{unique}", importer)
    # Then the export is listed and the imported value was used
    exports = {e["Name"]: e["Value"] for e in cfn.list_exports()["Exports"]}
    assert exports[f"bucket-{unique}"] == bucket["OutputValue"]
    assert bucket["ExportName"] == f"bucket-{unique}"
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/test/{bucket['OutputValue']}")
    assert len(groups["logGroups"]) == 1
    cfn.delete_stack(StackName=f"importer-{unique}")
    cfn.delete_stack(StackName=f"exporter-{unique}")
    assert f"bucket-{unique}" not in {e["Name"] for e in cfn.list_exports()["Exports"]}
