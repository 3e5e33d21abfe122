"""Stack operations on moto's CloudFormation backend, with CloudFormation's life cycle.

moto 5.2.5 creates resources lazily in an order driven by `Ref`s, answers an API error (and
leaves the stack CREATE_IN_PROGRESS) when one fails, writes no resource events, deletes in no
particular order, and gives stacks created through a change set no outputs. Here:
- resources are created one by one in dependency order (`Ref`, `Fn::GetAtt`, `Fn::Sub`,
  `DependsOn`), each with CREATE_IN_PROGRESS / CREATE_COMPLETE events;
- a failure marks the resource CREATE_FAILED with the reason, rolls the stack back (deletes
  what was created, in reverse order) and ends in ROLLBACK_COMPLETE, as CloudFormation does
  (User Guide, "Stack status codes");
- delete runs in reverse dependency order and honours `DeletionPolicy: Retain`
  (DELETE_SKIPPED); a resource that cannot be deleted leaves the stack DELETE_FAILED.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.cloudformation.models import (
    CloudFormationBackend,
    Event,
    Stack,
    cloudformation_backends,
)
from moto.cloudformation.utils import generate_stack_id

from emulator.cloudformation.resources import EmulatedResource
from emulator.cloudformation.template import TemplateError, unsupported_resources

_SUB_REFERENCE = re.compile(r"\$\{(?!!)([A-Za-z0-9_:]+)(?:\.[^}]*)?\}")


# ------------------------------------------------------------------------ dependencies
def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else str(item).split(".", 1)[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                if isinstance(text, str):
                    found.update(_SUB_REFERENCE.findall(text))
                found |= _references(item[1] if isinstance(item, list) else None)
            else:
                found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def creation_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids so that each comes after everything it references (template order kept
    where there is no dependency)."""
    depends: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        needs = _references(resource.get("Properties") or {})
        depends_on = resource.get("DependsOn") or []
        needs |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        depends[logical_id] = {n for n in needs if n in resources and n != logical_id}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(resources):
        ready = [lid for lid in resources if lid not in done and depends[lid] <= done]
        if not ready:
            cycle = sorted(lid for lid in resources if lid not in done)
            raise TemplateError(f"Circular dependency between resources: [{', '.join(cycle)}]")
        for lid in ready:
            order.append(lid)
            done.add(lid)
    return order


# ------------------------------------------------------------------------------ events
def _event(
    stack: Stack,
    logical_id: str,
    kind: str,
    status: str,
    physical_id: str = "",
    reason: str | None = None,
) -> None:
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id,
            resource_type=kind,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def _stack_event(stack: Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    stack._add_stack_event(status, resource_status_reason=reason)


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _reason(exc: BaseException) -> str:
    """The message a user needs, from a botocore ClientError, a moto error or our own."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return (
            f'Resource handler returned message: "{error.get("Message")}" '
            f"(ErrorCode: {error.get('Code')})"
        )
    message = getattr(exc, "message", None) or getattr(exc, "description", None) or str(exc)
    return str(message) or type(exc).__name__


# ------------------------------------------------------------------------------ create
def new_stack(
    backend: CloudFormationBackend,
    name: str,
    template_body: str,
    parameters: dict[str, Any],
    tags: dict[str, str],
    role_arn: str | None,
    notification_arns: list[str],
) -> Stack:
    """Register a stack and create its resources; returns it in its final status."""
    if any(stack.name == name for stack in backend.stacks.values()):
        raise TemplateError(f"Stack [{name}] already exists", "AlreadyExistsException")
    template = json.loads(template_body)
    problems = unsupported_resources(template)
    stack_id = generate_stack_id(name, backend.region_name, backend.account_id)
    common = dict(
        stack_id=stack_id,
        name=name,
        parameters=parameters,
        account_id=backend.account_id,
        region_name=backend.region_name,
        notification_arns=notification_arns,
        tags=tags,
        role_arn=role_arn,
        cross_stack_resources=backend.exports,
    )
    if problems:
        # moto's Stack would choke on outputs of unknown types: record the stack without
        # resources, then fail it with the reasons.
        stack = Stack(template={}, **common)
        stack.template = template_body
        stack._parse_template()
    else:
        stack = Stack(template=template_body, **common)  # parameter errors: ValidationError
    backend.stacks[stack_id] = stack
    _stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated")
    create_resources(stack, problems)
    return stack


def _refused_events(
    stack: Stack, resources: dict[str, Any], problems: dict[str, str], status: str
) -> None:
    """One `status` event per resource the emulator refused, with its reason."""
    for logical_id, reason in problems.items():
        _event(stack, logical_id, resources[logical_id].get("Type", ""), status, reason=reason)


def create_resources(stack: Stack, problems: dict[str, str] | None = None) -> None:
    """Create every resource of `stack.template_dict` in order; roll back on the first failure."""
    template = stack.template_dict
    resources = template.get("Resources") or {}
    stack.status = "CREATE_IN_PROGRESS"
    if problems is None:
        problems = unsupported_resources(template)
    if problems:
        _refused_events(stack, resources, problems, "CREATE_FAILED")
        _roll_back(stack, list(problems))
        return
    resource_map = stack.resource_map
    resource_map._template = template
    resource_map._resource_json_map = resources
    resource_map.tags.update(
        {"aws:cloudformation:stack-name": stack.name, "aws:cloudformation:stack-id": stack.stack_id}
    )
    try:
        order = creation_order(resources)
    except TemplateError as exc:
        _stack_event(stack, "CREATE_FAILED", str(exc))
        _roll_back(stack, [])
        return
    for logical_id in order:
        resource = resources[logical_id]
        condition = resource.get("Condition")
        if condition and not resource_map.lazy_condition_map[condition]:
            continue
        _event(stack, logical_id, resource["Type"], "CREATE_IN_PROGRESS")
        try:
            instance = resource_map[logical_id]
        except Exception as exc:  # any failure of one resource fails the stack, as on AWS
            _event(stack, logical_id, resource["Type"], "CREATE_FAILED", reason=_reason(exc))
            _roll_back(stack, [logical_id])
            return
        physical_id = getattr(instance, "physical_resource_id", "") or ""
        _event(stack, logical_id, resource["Type"], "CREATE_COMPLETE", physical_id)
    stack.output_map = stack._create_output_map()
    try:
        _ = stack.outputs  # resolve now, so that a bad output fails the stack, not a Describe
    except Exception as exc:
        _stack_event(stack, "CREATE_FAILED", f"Output resolution failed: {_reason(exc)}")
        _roll_back(stack, [])
        return
    backend = cloudformation_backends[stack.account_id][stack.region_name]
    taken = [e.name for e in stack.exports if e.name in backend.exports]
    if taken:
        _stack_event(stack, "CREATE_FAILED", f"Export with name {taken[0]} is already exported")
        _roll_back(stack, [])
        return
    for export in stack.exports:
        backend.exports[export.name] = export
    stack.description = template.get("Description")
    _stack_event(stack, "CREATE_COMPLETE")


def _roll_back(stack: Stack, failed: list[str]) -> None:
    if failed:
        _stack_event(
            stack,
            "CREATE_FAILED",
            f"The following resource(s) failed to create: [{', '.join(failed)}]. "
            "Rollback requested by user.",
        )
    _stack_event(stack, "ROLLBACK_IN_PROGRESS", "Rollback requested by user.")
    # Retain keeps a resource even when the create that made it rolls back; that is what
    # RetainExceptOnCreate does not (User Guide, "DeletionPolicy attribute").
    failures = _delete_resources(stack, retained=("Retain",))
    if failures:
        _stack_event(
            stack,
            "ROLLBACK_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failures)}].",
        )
    else:
        _stack_event(stack, "ROLLBACK_COMPLETE")
    _forget_resources(stack)


def _forget_resources(stack: Stack) -> None:
    """A rolled-back stack lists no resources and no outputs (moto would create resources
    lazily when they are listed)."""
    stack.resource_map._resource_json_map = {}
    stack.output_map._output_json_map = {}


# ------------------------------------------------------------------------------ delete
def _delete_resources(stack: Stack, retained: tuple[str, ...]) -> list[str]:
    """Delete created resources in reverse dependency order, skipping those whose
    DeletionPolicy is in `retained`; the logical ids that failed."""
    resource_map = stack.resource_map
    resources = resource_map._resource_json_map or {}
    created = resource_map._parsed_resources
    try:
        order = creation_order(resources)
    except TemplateError:
        order = list(resources)
    failures = []
    for logical_id in reversed(order):
        instance = created.get(logical_id)
        if instance is None or isinstance(instance, str | int | float | list | dict):
            continue
        resource = resources[logical_id]
        physical_id = getattr(instance, "physical_resource_id", "") or ""
        if resource.get("DeletionPolicy") in retained:
            _event(stack, logical_id, resource["Type"], "DELETE_SKIPPED", physical_id)
            created.pop(logical_id)
            continue
        _event(stack, logical_id, resource["Type"], "DELETE_IN_PROGRESS", physical_id)
        try:
            if isinstance(instance, EmulatedResource):
                instance.delete(stack.account_id, stack.region_name)
            else:
                resource_map._delete_resource(instance, resource)
        except Exception as exc:
            _event(
                stack,
                logical_id,
                resource["Type"],
                "DELETE_FAILED",
                physical_id,
                reason=_reason(exc),
            )
            failures.append(logical_id)
            continue
        _event(stack, logical_id, resource["Type"], "DELETE_COMPLETE", physical_id)
        created.pop(logical_id)
    return failures


def delete_stack(backend: CloudFormationBackend, name_or_id: str) -> None:
    """DeleteStack: a stack that does not exist is not an error (CloudFormation API)."""
    stack = next((s for s in backend.stacks.values() if name_or_id in (s.name, s.stack_id)), None)
    if stack is None:
        return
    _stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated")
    failures = _delete_resources(stack, retained=("Retain", "RetainExceptOnCreate"))
    if failures:
        _stack_event(
            stack,
            "DELETE_FAILED",
            f"The following resource(s) failed to delete: [{', '.join(failures)}]. ",
        )
        return
    export_names = [export.name for export in stack.exports]
    _forget_resources(stack)
    _stack_event(stack, "DELETE_COMPLETE")
    backend.stacks.pop(stack.stack_id, None)
    backend.deleted_stacks[stack.stack_id] = stack
    for export_name in export_names:
        backend.exports.pop(export_name, None)


# ------------------------------------------------------------------------------ update
def update_stack(
    stack: Stack,
    template_body: str,
    parameters: dict[str, Any],
    tags: dict[str, str] | None,
    role_arn: str | None,
) -> None:
    """Apply a new template with moto's diffing update; unsupported resources roll the update
    back before anything changed."""
    problems = unsupported_resources(json.loads(template_body))
    if problems:
        _stack_event(stack, "UPDATE_IN_PROGRESS", "User Initiated")
        resources = json.loads(template_body).get("Resources") or {}
        _refused_events(stack, resources, problems, "UPDATE_FAILED")
        _stack_event(
            stack,
            "UPDATE_ROLLBACK_IN_PROGRESS",
            f"The following resource(s) failed to update: [{', '.join(problems)}]. ",
        )
        _stack_event(stack, "UPDATE_ROLLBACK_COMPLETE")
        return
    # moto replaces every resource that references a parameter whose value differs from the
    # stack's *given* parameters, so compare effective values (defaults included) as strings.
    declared = json.loads(template_body).get("Parameters") or {}
    effective = {k: v.get("Default") for k, v in declared.items()} | dict(parameters)
    effective = {k: _text(v) for k, v in effective.items() if v is not None}
    stack.resource_map.input_parameters = {
        k: _text(v) for k, v in stack.stack_parameters.items() if v is not None
    }
    new_template = json.loads(template_body)
    diff = stack.resource_map.build_resource_diff(new_template, effective)
    old_types = {k: v.get("Type", "") for k, v in stack.resource_map._resource_json_map.items()}
    try:
        stack.update(template_body, role_arn, parameters=effective, tags=tags)
    except Exception as exc:
        # moto has no update rollback: say so rather than pretend the old state is back.
        _stack_event(
            stack,
            "UPDATE_ROLLBACK_FAILED",
            f"Update failed and the local emulator cannot roll it back: {_reason(exc)}",
        )
        return
    stack.output_map = stack._create_output_map()
    stack.description = stack.template_dict.get("Description")
    _record_update_events(stack, diff, new_template.get("Resources") or {}, old_types)


def _record_update_events(
    stack: Stack, diff: dict[str, list[str]], resources: dict[str, Any], old_types: dict[str, str]
) -> None:
    """Resource events of an update (moto writes only the stack's), placed before the stack's
    final UPDATE_COMPLETE: additions, modifications, then removals (cleanup)."""
    final = stack.events.pop() if stack.events else None
    created = stack.resource_map._parsed_resources
    for action, statuses in (("Add", "CREATE"), ("Modify", "UPDATE")):
        for logical_id in diff.get(action, []):
            physical_id = getattr(created.get(logical_id), "physical_resource_id", "") or ""
            kind = resources[logical_id].get("Type", "")
            _event(stack, logical_id, kind, f"{statuses}_IN_PROGRESS", physical_id)
            _event(stack, logical_id, kind, f"{statuses}_COMPLETE", physical_id)
    for logical_id in diff.get("Remove", []):
        _event(stack, logical_id, old_types.get(logical_id, ""), "DELETE_IN_PROGRESS")
        _event(stack, logical_id, old_types.get(logical_id, ""), "DELETE_COMPLETE")
    if final is not None:
        stack.events.append(final)


def resource_summaries(stack: Stack) -> list[dict[str, Any]]:
    """ListStackResources rows with each resource's latest status and time from its events
    (moto answers CREATE_COMPLETE for every resource, whatever happened since)."""
    latest: dict[str, Event] = {}
    for event in stack.events:
        if event.resource_type != "AWS::CloudFormation::Stack":
            latest[event.logical_resource_id] = event
    rows = []
    created = stack.resource_map._parsed_resources
    for logical_id, resource in (stack.resource_map._resource_json_map or {}).items():
        instance = created.get(logical_id)
        if instance is None or isinstance(instance, str | int | float | list | dict):
            continue
        event = latest.get(logical_id)
        rows.append(
            {
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": getattr(instance, "physical_resource_id", "") or "",
                "ResourceType": resource.get("Type", ""),
                "ResourceStatus": event.resource_status if event else "CREATE_COMPLETE",
                "LastUpdatedTimestamp": (event.timestamp if event else stack.creation_time),
            }
        )
    return rows


def execute_change_set(
    backend: CloudFormationBackend, change_set_name: str, stack_name: str | None
) -> None:
    """ExecuteChangeSet, with outputs and failures as for CreateStack/UpdateStack."""
    change_set = backend.describe_change_set(change_set_name)
    if stack_name and stack_name not in (change_set.stack_name, change_set.stack_id):
        raise TemplateError(f"ChangeSet [{change_set_name}] does not exist", "ChangeSetNotFound")
    if change_set.execution_status != "AVAILABLE":
        raise TemplateError(
            f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current "
            f"execution status of [{change_set.execution_status}]",
            "InvalidChangeSetStatus",
        )
    stack = backend.stacks[change_set.stack_id]
    change_set.execution_status = "EXECUTE_IN_PROGRESS"
    if change_set.change_set_type == "CREATE":
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = change_set.parameters
        _stack_event(stack, "CREATE_IN_PROGRESS", "User Initiated")
        problems = unsupported_resources(stack.template_dict)
        if not problems:
            try:
                stack.resource_map = stack._create_resource_map()
                stack.output_map = stack._create_output_map()
            except Exception as exc:
                _stack_event(stack, "CREATE_FAILED", _reason(exc))
                _roll_back(stack, [])
                change_set.execution_status = "EXECUTE_FAILED"
                return
        create_resources(stack, problems)
    else:
        resolved = dict(stack.parameters)
        resolved.update(change_set.parameters or {})
        update_stack(stack, change_set.template, resolved, change_set.tags, change_set.role_arn)
    if stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        stack.original_template = getattr(change_set, "original_template", change_set.template)
    change_set.execution_status = (
        "EXECUTE_COMPLETE"
        if stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status
        else "EXECUTE_FAILED"
    )
