"""Properties the project's template does not use but the emulator honours: thing attributes,
inline Lambda code, tags, versioning, named roles (CAPABILITY_NAMED_IAM)."""

from __future__ import annotations

import json


def test_properties_outside_the_project_template(aws, unique):
    # Given a template with thing attributes, inline code, tags and versioning
    cfn = aws("cloudformation")
    stack_name = f"others-{unique}"
    template = {
        "Resources": {
            "Thing": {
                "Type": "AWS::IoT::Thing",
                "Properties": {"AttributePayload": {"Attributes": {"site": "plant-1"}}},
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": f"named-{unique}",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Tags": [{"Key": "team", "Value": "data"}],
                },
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
                    "Handler": "index.handler",
                    "Runtime": "python3.12",
                    "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                    "Tags": [{"Key": "team", "Value": "data"}],
                },
            },
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "Tags": [{"Key": "team", "Value": "data"}],
                },
            },
        },
        "Outputs": {
            "Thing": {"Value": {"Ref": "Thing"}},
            "Fn": {"Value": {"Ref": "Fn"}},
            "Bucket": {"Value": {"Ref": "Bucket"}},
        },
    }
    # When it is created with CAPABILITY_IAM only, then the named role asks for more
    first = None
    try:
        cfn.create_stack(
            StackName=stack_name, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
        )
    except cfn.exceptions.InsufficientCapabilitiesException as exc:
        first = exc.response["Error"]["Message"]
    assert first == "Requires capabilities : [CAPABILITY_NAMED_IAM]"
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    # Then each property is visible through its service
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    thing = aws("iot").describe_thing(thingName=outputs["Thing"])
    assert thing["attributes"] == {"site": "plant-1"}
    function = aws("lambda").get_function(FunctionName=outputs["Fn"])
    assert function["Configuration"]["Role"].endswith(f":role/named-{unique}")
    assert function["Tags"]["team"] == "data"
    s3 = aws("s3")
    assert s3.get_bucket_versioning(Bucket=outputs["Bucket"])["Status"] == "Enabled"
    assert s3.get_bucket_tagging(Bucket=outputs["Bucket"])["TagSet"] == [
        {"Key": "team", "Value": "data"}
    ]
    role = aws("iam").get_role(RoleName=f"named-{unique}")["Role"]
    assert {"Key": "team", "Value": "data"} in role["Tags"]
    # And the generated bucket name follows CloudFormation's pattern (lower case)
    assert outputs["Bucket"].startswith(f"{stack_name}-bucket-")
    cfn.delete_stack(StackName=stack_name)
