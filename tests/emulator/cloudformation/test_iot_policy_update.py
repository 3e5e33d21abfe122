"""AWS::IoT::Policy updates: a new PolicyDocument is "Update requires: No interruption"
(CloudFormation template reference, AWS::IoT::Policy), so an attached policy gets a new default
version instead of a replacement (IoT refuses to delete an attached policy). This is what a
redeploy of a changed template.yaml does after notebook 02 attached the device policy."""

from __future__ import annotations

import json

WAIT = {"Delay": 1, "MaxAttempts": 60}


def _policy_template(name: str, topic: str) -> str:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": topic}],
    }
    return json.dumps(
        {
            "Resources": {
                "Policy": {
                    "Type": "AWS::IoT::Policy",
                    "Properties": {"PolicyName": name, "PolicyDocument": document},
                }
            }
        }
    )


def _publish_allowed(iot, certificate_arn: str, topic: str) -> bool:
    result = iot.test_authorization(
        principal=certificate_arn,
        clientId="c",
        authInfos=[{"actionType": "PUBLISH", "resources": [topic]}],
    )["authResults"][0]
    return result["authDecision"] == "ALLOWED"


def test_an_attached_policy_is_updated_with_new_default_versions(aws, unique, emulator):
    # given a stack's IoT policy attached to a certificate
    cfn, iot = aws("cloudformation"), aws("iot")
    arn = f"arn:aws:iot:{emulator.region}:{emulator.account_id}:topic"
    name, stack = f"pol-{unique}", f"iotpol-{unique}"
    cfn.create_stack(StackName=stack, TemplateBody=_policy_template(name, f"{arn}/a/0"))
    cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig=WAIT)
    certificate = iot.create_keys_and_certificate(setAsActive=True)["certificateArn"]
    iot.attach_policy(policyName=name, target=certificate)
    # when the document changes six times (one more than the five versions a policy may hold)
    for n in range(1, 7):
        cfn.update_stack(StackName=stack, TemplateBody=_policy_template(name, f"{arn}/a/{n}"))
        cfn.get_waiter("stack_update_complete").wait(StackName=stack, WaiterConfig=WAIT)
    # then each update made a new default version, the oldest ones making room
    policy = iot.get_policy(policyName=name)
    versions = iot.list_policy_versions(policyName=name)["policyVersions"]
    assert policy["defaultVersionId"] == "7"
    assert sorted(int(v["versionId"]) for v in versions) == [3, 4, 5, 6, 7]
    # and the certificate keeps the policy, and its permissions are the latest document's
    assert iot.list_targets_for_policy(policyName=name)["targets"] == [certificate]
    assert _publish_allowed(iot, certificate, f"{arn}/a/6")
    assert not _publish_allowed(iot, certificate, f"{arn}/a/0")
    iot.detach_policy(policyName=name, target=certificate)
    cfn.delete_stack(StackName=stack)
    cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig=WAIT)
