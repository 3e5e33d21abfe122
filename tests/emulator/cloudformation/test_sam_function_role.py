"""A SAM function without `Role`: the transform makes a role with the AWS managed policy
AWSLambdaBasicExecutionRole, which must be attachable without loading every managed policy."""

from __future__ import annotations

import json

from support.templates import sam_function


def test_sam_default_role_gets_the_basic_execution_policy(aws, unique, packaged_template):
    # Given a SAM function with the project's packaged code and no Role
    code_uri = packaged_template["Resources"]["TransformFunction"]["Properties"]["CodeUri"]
    template = sam_function(code_uri, "pipeline.handler.lambda_handler")
    template["Outputs"] = {"Role": {"Value": {"Ref": "FnRole"}}}
    cfn, iam = aws("cloudformation"), aws("iam")
    stack_name = f"samrole-{unique}"
    # When the stack is created
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    # Then the generated role carries the managed policy
    role = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"][0]["OutputValue"]
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    # And deleting the stack detaches it and removes the role
    cfn.delete_stack(StackName=stack_name)
    assert not any(r["RoleName"] == role for r in iam.list_roles()["Roles"])
