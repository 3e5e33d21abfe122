"""Deploy, inspect and delete the CloudFormation stack: what the notebooks call.

The same code runs against the local emulator and against AWS: the caller builds the boto3
clients (endpoint and credentials) and passes them in. Packaging follows `aws cloudformation
package`: each local `CodeUri` is zipped, uploaded to a bucket under a content-hash key, and
replaced with its `s3://` URI, so that CloudFormation (and the SAM transform) can read it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError

# Every capability the project's template needs: IAM roles, and the SAM transform when the
# stack is created directly (CreateStack) rather than from a change set.
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class StackError(Exception):
    """A stack operation failed; the message lists the failed resources and their reasons."""


# ----------------------------------------------------------------------------- packaging
def _code_zip(code_dir: Path) -> bytes:
    """The deployment package of `code_dir`; the project's own Lambda directory
    (`build/lambda`) is rebuilt from `pipeline/` first, so the zip never holds stale code."""
    from pipeline import package
    from pipeline.paths import BUILD_LAMBDA

    if code_dir == BUILD_LAMBDA.resolve():
        package.build_lambda(code_dir)
    if not code_dir.is_dir():
        raise StackError(f"CodeUri directory {code_dir} does not exist")
    return package.lambda_zip(code_dir)


def _load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def package_template(
    template_path: str | Path, bucket: str, s3_client: Any, prefix: str = "packages/"
) -> dict[str, Any]:
    """The template with every local `CodeUri` uploaded to `bucket` and replaced by its
    `s3://bucket/key` (key = SHA-256 of the zip, so an unchanged package is not re-uploaded
    and an unchanged stack is not updated)."""
    template_path = Path(template_path).resolve()
    template = _load_template(template_path)
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        code_uri = properties.get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            continue
        code = _code_zip((template_path.parent / code_uri).resolve())
        key = f"{prefix}{hashlib.sha256(code).hexdigest()}.zip"
        try:
            s3_client.head_object(Bucket=bucket, Key=key)
        except ClientError:
            s3_client.put_object(Bucket=bucket, Key=key, Body=code)
        properties["CodeUri"] = f"s3://{bucket}/{key}"
    return template


# ------------------------------------------------------------------------------ stacks
def _stack(cfn_client: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        return cfn_client.describe_stacks(StackName=stack_name)["Stacks"][0]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def _failures(cfn_client: Any, stack_name: str) -> str:
    events = cfn_client.describe_stack_events(StackName=stack_name)["StackEvents"]
    failed = [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason')}"
        for e in events
        if e["ResourceStatus"].endswith("_FAILED")
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
    ]
    if not failed:
        failed = [f"{e['ResourceStatus']}: {e.get('ResourceStatusReason')}" for e in events[:3]]
    return "; ".join(dict.fromkeys(failed))


def _wait(cfn_client: Any, waiter: str, stack_name: str, delay: int) -> None:
    try:
        cfn_client.get_waiter(waiter).wait(
            StackName=stack_name, WaiterConfig={"Delay": delay, "MaxAttempts": 1800 // delay}
        )
    except WaiterError as exc:
        raise StackError(
            f"stack {stack_name}: {waiter} did not happen: {_failures(cfn_client, stack_name)}"
        ) from exc


def deploy_stack(
    cfn_client: Any,
    stack_name: str,
    template_body: str | dict[str, Any],
    parameters: dict[str, Any],
    delay: int = 5,
) -> dict[str, str]:
    """Create the stack, or update it when it exists; wait; return its outputs as a dict.
    Raises StackError with each failed resource's reason."""
    body = template_body if isinstance(template_body, str) else json.dumps(template_body)
    params = [{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()]
    existing = _stack(cfn_client, stack_name)
    status = existing["StackStatus"] if existing else None
    if (
        status
        and status not in DEPLOYABLE
        and status not in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")
    ):
        # In progress, or failed in a way only a person can resolve: say what to do.
        raise StackError(f"stack {stack_name} is {status}: {advice(status)}")
    if existing and existing["StackStatus"] in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS"):
        # A stack that failed to create can only be deleted (CloudFormation User Guide,
        # "Stack status codes").
        delete_stack(cfn_client, stack_name, delay)
        existing = None
    if existing is None:
        cfn_client.create_stack(
            StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES
        )
        _wait(cfn_client, "stack_create_complete", stack_name, delay)
    else:
        try:
            cfn_client.update_stack(
                StackName=stack_name,
                TemplateBody=body,
                Parameters=params,
                Capabilities=CAPABILITIES,
            )
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
        else:
            _wait(cfn_client, "stack_update_complete", stack_name, delay)
    return {o["OutputKey"]: o["OutputValue"] for o in stack_outputs(cfn_client, stack_name)}


# What to do about a stack in each state that is neither complete nor absent (CloudFormation
# User Guide, "Stack status codes":
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
ADVICE = {
    "ROLLBACK_COMPLETE": "its creation failed; run 06-teardown, then 01-deploy-stack again",
    "ROLLBACK_FAILED": "its creation failed and so did the rollback; delete it (06-teardown)",
    "DELETE_FAILED": "a resource could not be deleted; see the stack's events, remove the"
    " resource by hand, then run 06-teardown again",
    "UPDATE_ROLLBACK_FAILED": "an update failed and could not roll back; continue the rollback"
    " (`aws cloudformation continue-update-rollback --stack-name <name>`), then retry",
    "UPDATE_ROLLBACK_COMPLETE": "its last update failed and was rolled back; fix the"
    " parameters and run 01-deploy-stack again",
    "IMPORT_ROLLBACK_FAILED": "an import failed; see the stack's events",
}


# States in which CreateStack/UpdateStack can proceed (an update of a stack whose last update
# rolled back is allowed).
DEPLOYABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE")


def advice(status: str) -> str:
    """One sentence on what to do about a stack in `status`."""
    if status.endswith("_IN_PROGRESS"):
        return "an operation is still running; wait for it to finish and run this cell again"
    return ADVICE.get(status, "see the stack's events in the CloudFormation console")


def stack_outputs(cfn_client: Any, stack_name: str) -> list[dict[str, Any]]:
    """The stack's outputs, one dict per output (a pandas table's rows)."""
    stack = _stack(cfn_client, stack_name)
    if stack is None:
        raise StackError(f"stack {stack_name} does not exist")
    return [
        {
            "OutputKey": o["OutputKey"],
            "OutputValue": o["OutputValue"],
            "Description": o.get("Description", ""),
        }
        for o in stack.get("Outputs") or []
    ]


def stack_resources(cfn_client: Any, stack_name: str) -> list[dict[str, Any]]:
    """The stack's resources (logical id, type, physical id, status), one dict each."""
    paginator = cfn_client.get_paginator("list_stack_resources")
    return [
        {
            "LogicalResourceId": r["LogicalResourceId"],
            "ResourceType": r["ResourceType"],
            "PhysicalResourceId": r.get("PhysicalResourceId", ""),
            "ResourceStatus": r["ResourceStatus"],
        }
        for page in paginator.paginate(StackName=stack_name)
        for r in page["StackResourceSummaries"]
    ]


def delete_stack(cfn_client: Any, stack_name: str, delay: int = 5) -> None:
    """Delete the stack and wait; raises StackError naming what could not be deleted (for
    example a non-empty bucket, or a thing that still has a certificate attached)."""
    existing = _stack(cfn_client, stack_name)
    if existing is None:
        return
    status = existing["StackStatus"]
    if status.endswith("_IN_PROGRESS") and status not in (
        "DELETE_IN_PROGRESS",
        "REVIEW_IN_PROGRESS",
    ):
        # Deleting while CloudFormation still creates or updates fails; say so instead.
        raise StackError(f"stack {stack_name} is {status}: {advice(status)}")
    if status != "DELETE_IN_PROGRESS":
        cfn_client.delete_stack(StackName=stack_name)
    _wait(cfn_client, "stack_delete_complete", stack_name, delay)
