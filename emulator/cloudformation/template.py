"""Templates as CloudFormation receives them: parsing, the SAM transform, parameter constraints,
and the check that every resource type and property is one the emulator honours.

The SAM transform (`Transform: AWS::Serverless-2016-10-31`) is expanded offline with
aws-sam-translator, as CloudFormation does on AWS before it creates anything. The translator
asks for AWS managed policy ARNs only when a template names a managed policy (e.g.
`Policies: [AWSLambdaBasicExecutionRole]`); the names come from moto's bundled copy of the AWS
managed policies, so no network is needed.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from typing import Any

import boto3
import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from emulator.cloudformation.resources import RESOURCE_TYPES, moto_resource_types
from emulator.gateway import AwsRequest, AwsResponse, query_error

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"


class TemplateError(Exception):
    """The request is invalid; `code` is CloudFormation's error code for it."""

    def __init__(self, message: str, code: str = "ValidationError") -> None:
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- parsing
# CreateStack, UpdateStack, CreateChangeSet, ValidateTemplate: "TemplateBody ... Length
# Constraints: Minimum length of 1." and the quota "Template body size in a request: 51,200 bytes".
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
TEMPLATE_BODY_MAX = 51_200
TEMPLATE_BODY_OPERATIONS = ("CreateStack", "UpdateStack", "CreateChangeSet", "ValidateTemplate")
# The emulator's own bounds on a parsed template (AWS documents none): nodes after YAML aliases
# are expanded (a 1 MB template from S3, the largest AWS takes, has far fewer; an alias "bomb"
# of a few hundred bytes expands to billions), and nesting depth (the template's walkers recurse).
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 100


def template_body_problem(body: str) -> str | None:
    """CloudFormation's message for a TemplateBody over 51,200 bytes; None if within."""
    if len(body.encode("utf-8", "surrogatepass")) <= TEMPLATE_BODY_MAX:
        return None
    shown = body[:64] + "..."
    return (
        f"1 validation error detected: Value '{shown}' at 'templateBody' failed to satisfy "
        f"constraint: Member must have length less than or equal to {TEMPLATE_BODY_MAX}"
    )


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (`!Ref X` -> {"Ref": "X"}, `!GetAtt A.B`).

    Composition counts what the document expands to: an alias stands for a copy of its anchored
    node, so a few nested aliases can stand for billions of nodes that every later walk of the
    template (copies, JSON dumps, moto) would visit. Past `MAX_EXPANDED_NODES` the template is
    refused while it is being read, before anything is built."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            node = self.anchors.get(anchor)
            if node is not None and id(node) not in self._sizes:
                raise yaml.YAMLError(f"alias *{anchor} refers to a node that contains it")
            return super().compose_node(parent, index)
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(
                self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value
            )
        else:
            size = 1
        if size > MAX_EXPANDED_NODES:
            raise yaml.YAMLError(
                f"the template expands to more than {MAX_EXPANDED_NODES} values (YAML aliases "
                "repeat what they refer to); write the repeated parts out or use fewer aliases"
            )
        self._sizes[id(node)] = size
        return node


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)
# Keep timestamps such as Version: 2012-10-17 as strings, as CloudFormation does.
_CfnLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in _CfnLoader.yaml_implicit_resolvers.items()
}


def parse_template(body: str) -> dict[str, Any]:
    """A template body (JSON or YAML) as a dict, within the bounds above."""
    too_deep = TemplateError(
        f"Template format error: the template nests deeper than {MAX_DEPTH} levels"
    )
    try:
        template = json.loads(body)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        try:
            template = yaml.load(body, Loader=_CfnLoader)  # noqa: S506 (a SafeLoader subclass)
        except RecursionError:
            raise too_deep from None
        except yaml.YAMLError as exc:
            raise TemplateError(f"Template format error: {exc}") from exc
    if not isinstance(template, dict):
        raise TemplateError("Template format error: the template is not a JSON or YAML object")
    if _depth(template) > MAX_DEPTH:
        raise too_deep
    return template


def _depth(value: Any) -> int:
    """Nesting depth, without recursion (a deep template must not exhaust the stack here)."""
    deepest = 0
    stack = [(value, 1)]
    seen: set[int] = set()
    while stack:
        item, level = stack.pop()
        if not isinstance(item, (dict, list)) or id(item) in seen:
            continue
        seen.add(id(item))  # YAML aliases share objects: count each once
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children)
    return deepest


def refuse_long_template_body(request: AwsRequest) -> AwsResponse | None:
    """Gateway handler: CloudFormation's ValidationError for a TemplateBody over 51,200 bytes."""
    body = request.form().get("TemplateBody")
    problem = template_body_problem(body) if body is not None else None
    return query_error("ValidationError", problem) if problem else None


def transforms_of(template: dict[str, Any]) -> list[str]:
    declared = template.get("Transform")
    if declared is None:
        return []
    names = declared if isinstance(declared, list) else [declared]
    result = []
    for name in names:
        if isinstance(name, dict):  # {Name: ..., Parameters: ...} (AWS::Include)
            name = name.get("Name")
        result.append(str(name))
    return result


# ------------------------------------------------------------------------ SAM transform
@cache
def aws_managed_policy_map() -> dict[str, str]:
    """Managed policy name -> ARN, from moto's offline copy of the AWS managed policies."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    policies = json.loads(aws_managed_policies_data)
    return {
        name: f"arn:aws:iam::aws:policy{data.get('Path', '/')}{name}"
        for name, data in policies.items()
    }


class _OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return aws_managed_policy_map()


def expand_transforms(
    template: dict[str, Any], parameters: dict[str, Any], region: str
) -> dict[str, Any]:
    """The template with its SAM transform expanded; other transforms are refused."""
    names = transforms_of(template)
    unsupported = [n for n in names if n != SAM_TRANSFORM]
    if unsupported:
        raise TemplateError(
            f"Transform {', '.join(unsupported)} is not supported by the local emulator "
            f"(supported: {SAM_TRANSFORM})"
        )
    if not names:
        return template
    for logical_id, resource in (template.get("Resources") or {}).items():
        code_uri = (resource.get("Properties") or {}).get("CodeUri")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(code_uri, str):
            if not code_uri.startswith("s3://"):
                raise TemplateError(
                    f"Resource {logical_id}: CodeUri '{code_uri}' is a local path. Package the "
                    "template first (`aws cloudformation package` or "
                    "pipeline.stack.package_template), which uploads the code to S3."
                )
    # The translator takes the region (for ARNs) from a boto3 session.
    session = boto3.session.Session(
        region_name=region, aws_access_key_id="emulator", aws_secret_access_key="emulator"
    )
    translator = Translator(None, Parser(), boto_session=session)
    loader = _OfflinePolicyLoader()
    try:
        translated = translator.translate(
            copy.deepcopy(template),
            parameter_values=dict(parameters),
            get_managed_policy_map=loader.load,
        )
    except InvalidDocumentException as exc:
        messages = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"Transform {SAM_TRANSFORM} failed with: {messages}") from exc
    return translated


# ------------------------------------------------------------------------- parameters
def check_parameters(template: dict[str, Any], given: dict[str, Any]) -> None:
    """CloudFormation's parameter checks (User Guide, "Parameters"): unknown names, and the
    AllowedPattern/AllowedValues/Min/Max constraints of given and default values."""
    declared = template.get("Parameters") or {}
    unknown = [name for name in given if name not in declared]
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    for name, spec in declared.items():
        value = given.get(name, spec.get("Default"))
        if value is None:
            raise TemplateError(f"Parameters: [{name}] must have values")
        problem = _constraint_problem(spec, str(value))
        if problem:
            detail = spec.get("ConstraintDescription") or problem
            raise TemplateError(f"Parameter '{name}' failed to satisfy constraint: {detail}")


def _constraint_problem(spec: dict[str, Any], value: str) -> str | None:
    kind = spec.get("Type", "String")
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return f"must be one of AllowedValues {spec['AllowedValues']}"
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"'{value}' is not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"must be a number not less than {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"must be a number not greater than {spec['MaxValue']}"
    if kind == "String":
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            return f"must match pattern {spec['AllowedPattern']}"
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            return f"must be at least {spec['MinLength']} characters"
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            return f"must be at most {spec['MaxLength']} characters"
    return None


# ------------------------------------------------------------------ supported resources
def _is_intrinsic(value: Any) -> bool:
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _property_problems(value: Any, spec: Any, path: str) -> list[str]:
    if spec is None or _is_intrinsic(value):
        return []
    if isinstance(value, list):
        problems = []
        for index, item in enumerate(value):
            problems += _property_problems(item, spec, f"{path}/{index}")
        return problems
    if isinstance(value, dict):
        problems = []
        for key, item in value.items():
            if key not in spec:
                problems.append(
                    f"{path}: key [{key}] is not supported by the local emulator "
                    f"(supported: {', '.join(spec)})"
                )
            else:
                problems += _property_problems(item, spec[key], f"{path}/{key}")
        return problems
    return []


_RESOURCE_ATTRIBUTES = {
    "Type", "Properties", "DependsOn", "Condition", "Metadata", "DeletionPolicy",
    "UpdateReplacePolicy",
}  # fmt: skip
# DeletionPolicy values honoured on DeleteStack (stacks.py); Snapshot applies to data stores
# this emulator does not have. Replacement always deletes the old resource here.
_DELETION_POLICIES = ("Delete", "Retain", "RetainExceptOnCreate")
# UpdateReplacePolicy: Retain is honoured for the emulator's own types (resources.py); moto's
# models replace resources inside moto, so only Delete is accepted for them.
_UPDATE_REPLACE_POLICIES = ("Delete", "Retain")
_SECTIONS = {
    "AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings",
    "Conditions", "Transform", "Resources", "Outputs",
}  # fmt: skip


def check_sections(template: dict[str, Any]) -> None:
    """Refuse template sections the emulator would ignore (e.g. `Rules`, which constrains
    parameters; User Guide, "Template anatomy")."""
    unknown = [key for key in template if key not in _SECTIONS]
    if unknown:
        raise TemplateError(
            f"Template format error: section(s) {', '.join(unknown)} not supported by the "
            f"local emulator (supported: {', '.join(sorted(_SECTIONS))})"
        )
    if not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        raise TemplateError("Template format error: At least one Resources member must be defined.")


def _attribute_problems(resource: dict[str, Any]) -> list[str]:
    problems = [
        f"resource attribute {key} is not supported by the local emulator"
        for key in resource
        if key not in _RESOURCE_ATTRIBUTES
    ]
    deletion = resource.get("DeletionPolicy", "Delete")
    if deletion not in _DELETION_POLICIES:
        problems.append(
            f"DeletionPolicy {deletion} is not supported by the local emulator "
            f"(supported: {', '.join(_DELETION_POLICIES)})"
        )
    replace = resource.get("UpdateReplacePolicy", "Delete")
    if replace not in _UPDATE_REPLACE_POLICIES:
        problems.append(f"UpdateReplacePolicy {replace} is not supported by the local emulator")
    elif replace != "Delete" and resource.get("Type") not in RESOURCE_TYPES:
        problems.append(
            f"UpdateReplacePolicy {replace} is not supported by the local emulator for "
            f"{resource.get('Type')} (moto's model replaces it; only Delete)"
        )
    return problems


def unsupported_resources(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> reason, for each resource the emulator would not create faithfully."""
    problems: dict[str, str] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        attribute_problems = _attribute_problems(resource)
        if attribute_problems:
            problems[logical_id] = f"Resource {logical_id}: " + "; ".join(attribute_problems)
            continue
        kind = resource.get("Type")
        model = RESOURCE_TYPES.get(kind)
        if model is None:
            if kind in moto_resource_types():
                continue  # moto's own model creates it (its properties are moto's to honour)
            problems[logical_id] = (
                f"Resource type {kind} is not supported by the local emulator "
                "(neither its own handlers nor moto have a model for it)"
            )
            continue
        properties = resource.get("Properties") or {}
        found = _property_problems(properties, model.PROPERTIES, "#")
        found += [
            f"#: required key [{key}] not found" for key in model.REQUIRED if key not in properties
        ]
        if found:
            problems[logical_id] = (
                f"Properties validation failed for resource {logical_id} with message: "
                + "; ".join(found)
            )
    return problems


# ------------------------------------------------------------------------ capabilities
_IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}
_IAM_TYPES = {
    *_IAM_NAME_PROPERTIES,
    "AWS::IAM::Policy",
    "AWS::IAM::AccessKey",
    "AWS::IAM::UserToGroupAddition",
}


def check_capabilities(
    original: dict[str, Any], expanded: dict[str, Any], granted: list[str], direct: bool
) -> None:
    """InsufficientCapabilities as CloudFormation raises it (API reference, "CreateStack",
    Capabilities): IAM resources need CAPABILITY_IAM, named ones CAPABILITY_NAMED_IAM, and a
    transform in CreateStack/UpdateStack (not in a change set) CAPABILITY_AUTO_EXPAND."""
    needed = []
    if direct and transforms_of(original) and "CAPABILITY_AUTO_EXPAND" not in granted:
        needed.append("CAPABILITY_AUTO_EXPAND")
    iam = [r for r in (expanded.get("Resources") or {}).values() if r.get("Type") in _IAM_TYPES]
    named = [r for r in iam if _IAM_NAME_PROPERTIES.get(r["Type"]) in (r.get("Properties") or {})]
    if named and "CAPABILITY_NAMED_IAM" not in granted:
        needed.append("CAPABILITY_NAMED_IAM")
    elif iam and not ({"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(granted)):
        needed.append("CAPABILITY_IAM")
    if needed:
        raise TemplateError(
            f"Requires capabilities : [{', '.join(needed)}]", "InsufficientCapabilitiesException"
        )


def required_capabilities(template: dict[str, Any]) -> tuple[list[str], str | None]:
    """The capabilities ValidateTemplate reports for the template's own IAM resources."""
    resources = (template.get("Resources") or {}).values()
    iam = sorted({r.get("Type") for r in resources if r.get("Type") in _IAM_TYPES})
    if not iam:
        return [], None
    named = any(
        _IAM_NAME_PROPERTIES.get(r.get("Type")) in (r.get("Properties") or {}) for r in resources
    )
    capability = "CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM"
    return [capability], f"The following resource(s) require capabilities: [{', '.join(iam)}]"
