"""`emulator.cloudformation`: CloudFormation in front of moto, for the unchanged SAM template.

Gateway handlers (query protocol, operation = the form's `Action`):
- CreateStack, UpdateStack, ExecuteChangeSet, DeleteStack are answered here
  (emulator/cloudformation/stacks.py: ordered creation, events, rollback, outputs, Retain);
- CreateChangeSet is rewritten (template fetched from the local S3 when given as TemplateURL,
  parameters resolved, SAM transform expanded) and passed on to moto;
- ValidateTemplate, GetTemplate (Original/Processed), ListStackResources and
  DescribeStackResource(s) are answered here, where moto's answers are empty or hardcoded.
Every other CloudFormation operation (DescribeStacks, DescribeStackEvents, DescribeChangeSet,
ListExports, ...) is moto's, reading the state kept here.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlparse
from xml.sax.saxutils import escape

import boto3
from botocore.config import Config
from moto.cloudformation.models import cloudformation_backends
from moto.core.exceptions import ServiceException

from emulator.cloudformation import resources, stacks
from emulator.cloudformation.template import (
    SAM_TRANSFORM,
    TEMPLATE_BODY_OPERATIONS,
    TemplateError,
    check_capabilities,
    check_parameters,
    check_sections,
    expand_transforms,
    parse_template,
    refuse_long_template_body,
    required_capabilities,
    transforms_of,
)
from emulator.gateway import AwsRequest, AwsResponse, query_error
from emulator.s3 import bucket_policy

log = logging.getLogger(__name__)

_XMLNS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"


def _xml(operation: str, result: str = "") -> AwsResponse:
    body = (
        f'<{operation}Response xmlns="{_XMLNS}">'
        + (f"<{operation}Result>{result}</{operation}Result>" if result is not None else "")
        + f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        f"</{operation}Response>"
    ).encode()
    return AwsResponse(200, body, {"Content-Type": "text/xml"})


def _members(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """`Parameters.member.1.ParameterKey=...` -> [{"ParameterKey": ...}, ...] (query protocol)."""
    items: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if key.startswith(f"{prefix}.member."):
            rest = key[len(prefix) + 8 :]
            index, _, field = rest.partition(".")
            items.setdefault(int(index), {})[field or ""] = value
    return [items[i] for i in sorted(items)]


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Parameter values compared as CloudFormation passes them: as strings."""

    def text(value: Any) -> str:
        if isinstance(value, list):
            return ",".join(map(str, value))
        return str(value)

    return a.keys() == b.keys() and all(text(a[k]) == text(b[k]) for k in a)


def _resource_xml(stack: Any, row: dict[str, Any], time_field: str) -> str:
    """One stack resource's members (the query protocol's XML), with its latest status."""
    stamp = row["LastUpdatedTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    head = (
        f"<StackName>{escape(stack.name)}</StackName><StackId>{stack.stack_id}</StackId>"
        if stack is not None
        else ""
    )
    return (
        head + f"<LogicalResourceId>{escape(row['LogicalResourceId'])}</LogicalResourceId>"
        f"<PhysicalResourceId>{escape(row['PhysicalResourceId'])}</PhysicalResourceId>"
        f"<ResourceType>{escape(row['ResourceType'])}</ResourceType>"
        f"<{time_field}>{stamp}</{time_field}>"
        f"<ResourceStatus>{row['ResourceStatus']}</ResourceStatus>"
        "<DriftInformation><StackResourceDriftStatus>NOT_CHECKED"
        "</StackResourceDriftStatus></DriftInformation>"
    )


_UPDATABLE = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")


def _check_updatable(stack: Any) -> None:
    """A stack that failed to create (ROLLBACK_COMPLETE) can only be deleted (User Guide,
    "Stack status codes"); one being changed cannot be changed again."""
    if stack.status not in _UPDATABLE:
        raise TemplateError(
            f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated."
        )


class CloudFormationDeployer:
    """The CloudFormation component (see the module docstring)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        emulator.cloudformation = self
        self._lock = threading.RLock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        resources.register()
        # AWS::S3::BucketPolicy (the SAM CLI's managed bucket has one) must be evaluated as S3
        # does, not as moto's condition-blind check does (emulator/s3/bucket_policy.py).
        bucket_policy.install()
        resources.Services.factory = self.client
        resources.Services.sql_validator = self._validate_sql
        gateway = emulator.gateway
        for operation in TEMPLATE_BODY_OPERATIONS:  # before the handlers below
            gateway.on("cloudformation", operation, refuse_long_template_body)
        gateway.on("cloudformation", "CreateStack", self._create_stack)
        gateway.on("cloudformation", "UpdateStack", self._update_stack)
        gateway.on("cloudformation", "CreateChangeSet", self._create_change_set)
        gateway.on("cloudformation", "ExecuteChangeSet", self._execute_change_set)
        gateway.on("cloudformation", "DeleteStack", self._delete_stack)
        gateway.on("cloudformation", "ValidateTemplate", self._validate_template)
        gateway.on("cloudformation", "GetTemplate", self._get_template)
        gateway.on("cloudformation", "ListStackResources", self._list_stack_resources)
        gateway.on("cloudformation", "DescribeStackResources", self._describe_stack_resources)
        gateway.on("cloudformation", "DescribeStackResource", self._describe_stack_resource)
        gateway.after("cloudformation", "CreateChangeSet", self._remember_change_set_template)

    # Clients CloudFormation uses to create resources -------------------------------------
    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = boto3.session.Session().client(
                    service,
                    endpoint_url=self.emulator.endpoint_url,
                    region_name=region,
                    aws_access_key_id="cloudformation",
                    aws_secret_access_key="cloudformation",
                    config=Config(retries={"max_attempts": 1}, read_timeout=120),
                )
            return self._clients[key]

    def _validate_sql(self, sql: str, version: str) -> None:
        """Refuse SQL the rules engine cannot run (emulator/rules), before the rule exists."""
        from emulator.rules import validate_sql

        validate_sql(sql, version)

    # Template in a request ---------------------------------------------------------------
    def _template_body(self, form: dict[str, str], region: str) -> str | None:
        if form.get("TemplateBody"):
            return form["TemplateBody"]
        url = form.get("TemplateURL")
        if not url:
            return None
        parsed = urlparse(url)
        host = parsed.hostname or ""
        path = unquote(parsed.path.lstrip("/"))
        if (
            host in ("127.0.0.1", "localhost")
            or host.startswith("s3.")
            or host == "s3.amazonaws.com"
        ):
            bucket, _, key = path.partition("/")
        else:  # virtual-hosted style: <bucket>.s3.<region>.amazonaws.com/<key>
            bucket, key = host.split(".s3", 1)[0], path
        try:
            obj = self.client("s3", region).get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise TemplateError(
                f"TemplateURL must reference a valid S3 object: {url} ({exc})"
            ) from exc
        return obj["Body"].read().decode()

    def _prepare(
        self,
        request: AwsRequest,
        form: dict[str, str],
        direct: bool,
        previous: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any], str]:
        """(expanded template as JSON, resolved parameters, template as sent) for a create or
        update request."""
        body = self._template_body(form, request.region)
        if body is None:
            raise TemplateError("Either Template URL or Template Body must be specified.")
        original = parse_template(body)
        parameters: dict[str, Any] = {}
        for member in _members(form, "Parameters"):
            key = member.get("ParameterKey", "")
            if member.get("UsePreviousValue", "").lower() == "true":
                if previous is None or key not in previous:
                    raise TemplateError(f"Parameter {key} has no previous value to use")
                parameters[key] = previous[key]
            else:
                parameters[key] = member.get("ParameterValue", "")
        check_parameters(original, parameters)
        expanded = expand_transforms(original, parameters, request.region)
        check_sections(expanded)
        granted = [m.get("", "") for m in _members(form, "Capabilities")]
        check_capabilities(original, expanded, granted, direct)
        return json.dumps(expanded), parameters, body

    @staticmethod
    def _backend(request: AwsRequest):
        return cloudformation_backends[request.account_id][request.region]

    # Handlers ----------------------------------------------------------------------------
    def _guard(self, work) -> AwsResponse:
        try:
            with self._lock:
                return work()
        except TemplateError as exc:
            return query_error(exc.code, str(exc))
        except ServiceException as exc:  # moto's newer errors: code is the AWS error code
            return query_error(exc.code, exc.message)
        except Exception as exc:  # moto's RESTError: error_type is the code, code the status
            code = getattr(exc, "error_type", None)
            if code is None:  # not a moto error: a bug of ours; 400 so that no SDK retries it
                log.exception("CloudFormation request failed")
                return query_error("InternalFailure", f"emulator error: {exc!r}")
            message = getattr(exc, "message", None) or str(exc)
            status = getattr(exc, "code", 400)
            return query_error(code, message, status if isinstance(status, int) else 400)

    def _create_stack(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            body, parameters, original = self._prepare(request, form, direct=True)
            stack = stacks.new_stack(
                self._backend(request),
                form.get("StackName", ""),
                body,
                parameters,
                {t.get("Key", ""): t.get("Value", "") for t in _members(form, "Tags")},
                form.get("RoleARN"),
                [m.get("", "") for m in _members(form, "NotificationARNs")],
            )
            stack.original_template = original  # GetTemplate's "Original" stage
            return _xml("CreateStack", f"<StackId>{stack.stack_id}</StackId>")

        return self._guard(work)

    def _update_stack(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            backend = self._backend(request)
            stack = backend.get_stack(form.get("StackName", ""))
            _check_updatable(stack)
            if form.get("UsePreviousTemplate", "").lower() == "true":
                form["TemplateBody"] = stack.template
            body, parameters, original = self._prepare(
                request, form, direct=True, previous=stack.stack_parameters
            )
            declared = json.loads(body).get("Parameters") or {}
            effective = {k: v.get("Default") for k, v in declared.items()} | parameters
            if stack.has_template(body) and _same_values(effective, stack.stack_parameters):
                raise TemplateError("No updates are to be performed.")
            tags = {t.get("Key", ""): t.get("Value", "") for t in _members(form, "Tags")}
            merged = {**stack.stack_parameters, **parameters}
            stacks.update_stack(stack, body, merged, tags or None, form.get("RoleARN"))
            if stack.status == "UPDATE_COMPLETE":
                stack.original_template = original
            return _xml("UpdateStack", f"<StackId>{stack.stack_id}</StackId>")

        return self._guard(work)

    def _create_change_set(self, request: AwsRequest) -> AwsResponse | None:
        form = request.form()
        if form.get("UsePreviousTemplate", "").lower() == "true":
            return None  # the stack's stored template is already expanded

        def work() -> AwsResponse | None:
            stack = None
            backend = self._backend(request)
            if form.get("ChangeSetType", "UPDATE") == "UPDATE":
                stack = backend.get_stack(form.get("StackName", ""))
                _check_updatable(stack)
            elif any(s.name == form.get("StackName") for s in backend.stacks.values()):
                raise TemplateError(
                    f"Stack [{form.get('StackName')}] already exists and cannot be created "
                    "again with the changeSet.",
                    "AlreadyExistsException",
                )
            previous = stack.stack_parameters if stack is not None else None
            body, parameters, original = self._prepare(
                request, form, direct=False, previous=previous
            )
            request.original_template = original  # for _remember_change_set_template
            if stack is not None and stack.has_template(body):
                declared = json.loads(body).get("Parameters") or {}
                effective = {k: v.get("Default") for k, v in declared.items()} | parameters
                if _same_values(effective, stack.stack_parameters):
                    # Same template, same effective values (UsePreviousValue and defaults
                    # resolved): let moto see the stack's own parameters, so that it reports
                    # "The submitted information didn't contain changes."
                    parameters = dict(stack.parameters)
            rewritten = {
                k: v
                for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()
                if not k.startswith("Parameters.member.") and k != "TemplateURL"
            }
            rewritten["TemplateBody"] = [body]
            for index, (key, value) in enumerate(parameters.items(), start=1):
                rewritten[f"Parameters.member.{index}.ParameterKey"] = [key]
                rewritten[f"Parameters.member.{index}.ParameterValue"] = [str(value)]
            request.body = urlencode(rewritten, doseq=True).encode()
            return None

        return self._guard(work)

    def _remember_change_set_template(self, request: AwsRequest, status: int, body: bytes) -> None:
        match = re.search(rb"<Id>([^<]+)</Id>", body)
        if match is None:
            return
        change_set = self._backend(request).change_sets.get(match.group(1).decode())
        if change_set is None:
            return
        _drop_false_conditions(change_set)
        original = getattr(request, "original_template", None)
        if original is not None:
            change_set.original_template = original

    def _get_template(self, request: AwsRequest) -> AwsResponse | None:
        """GetTemplate: the template as submitted ("Original", the default) or after the SAM
        transform ("Processed"), as CloudFormation keeps both (API reference, GetTemplate)."""
        form = request.form()
        if form.get("ChangeSetName"):
            return None

        def work() -> AwsResponse:
            stack = self._backend(request).get_stack(form.get("StackName", ""))
            stage = form.get("TemplateStage") or "Original"
            original = getattr(stack, "original_template", None)
            body = original if stage == "Original" and original else stack.template
            if not isinstance(body, str):
                body = json.dumps(body)
            stages = "<member>Original</member><member>Processed</member>"
            return _xml(
                "GetTemplate",
                f"<TemplateBody>{escape(body)}</TemplateBody>"
                f"<StagesAvailable>{stages}</StagesAvailable>",
            )

        return self._guard(work)

    def _list_stack_resources(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            stack = self._backend(request).get_stack(form.get("StackName", ""))
            members = "".join(
                f"<member>{_resource_xml(None, row, 'LastUpdatedTimestamp')}</member>"
                for row in stacks.resource_summaries(stack)
            )
            return _xml(
                "ListStackResources", f"<StackResourceSummaries>{members}</StackResourceSummaries>"
            )

        return self._guard(work)

    def _describe_stack_resources(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            backend = self._backend(request)
            logical, physical = form.get("LogicalResourceId"), form.get("PhysicalResourceId")
            if form.get("StackName"):
                candidates = [backend.get_stack(form["StackName"])]
            elif physical:
                candidates = list(backend.stacks.values())
            else:
                raise TemplateError("Either StackName or PhysicalResourceId must be specified.")
            members = ""
            for stack in candidates:
                for row in stacks.resource_summaries(stack):
                    if logical and row["LogicalResourceId"] != logical:
                        continue
                    if physical and row["PhysicalResourceId"] != physical:
                        continue
                    members += f"<member>{_resource_xml(stack, row, 'Timestamp')}</member>"
            return _xml("DescribeStackResources", f"<StackResources>{members}</StackResources>")

        return self._guard(work)

    def _describe_stack_resource(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            stack = self._backend(request).get_stack(form.get("StackName", ""))
            logical = form.get("LogicalResourceId", "")
            for row in stacks.resource_summaries(stack):
                if row["LogicalResourceId"] == logical:
                    metadata = (stack.template_dict.get("Resources") or {}).get(logical, {})
                    detail = _resource_xml(stack, row, "LastUpdatedTimestamp")
                    if "Metadata" in metadata:
                        detail += f"<Metadata>{escape(json.dumps(metadata['Metadata']))}</Metadata>"
                    return _xml(
                        "DescribeStackResource",
                        f"<StackResourceDetail>{detail}</StackResourceDetail>",
                    )
            raise TemplateError(f"Resource {logical} does not exist for stack {stack.name}")

        return self._guard(work)

    def _execute_change_set(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            stacks.execute_change_set(
                self._backend(request), form.get("ChangeSetName", ""), form.get("StackName")
            )
            return _xml("ExecuteChangeSet")

        return self._guard(work)

    def _delete_stack(self, request: AwsRequest) -> AwsResponse:
        form = request.form()

        def work() -> AwsResponse:
            stacks.delete_stack(self._backend(request), form.get("StackName", ""))
            return _xml("DeleteStack", None)

        return self._guard(work)

    def _validate_template(self, request: AwsRequest) -> AwsResponse:
        """ValidateTemplate: cfn-lint's first error (as moto does), else the template's
        parameters, description, required capabilities and declared transforms, which moto
        leaves empty (API reference, ValidateTemplate)."""
        form = request.form()

        def work() -> AwsResponse:
            body = self._template_body(form, request.region)
            if body is None:
                raise TemplateError("Either Template URL or Template Body must be specified.")
            template = parse_template(body)
            declared = transforms_of(template)
            unsupported = [n for n in declared if n != SAM_TRANSFORM]
            if unsupported:
                raise TemplateError(
                    f"Transform {', '.join(unsupported)} is not supported by the local emulator"
                )
            findings = self._backend(request).validate_template(body)
            if findings:
                raise TemplateError(findings[0].message)
            parameters = ""
            for key, spec in (template.get("Parameters") or {}).items():
                parameters += f"<member><ParameterKey>{escape(key)}</ParameterKey>"
                if "Default" in spec:
                    parameters += f"<DefaultValue>{escape(str(spec['Default']))}</DefaultValue>"
                parameters += f"<NoEcho>{str(bool(spec.get('NoEcho'))).lower()}</NoEcho>"
                if "Description" in spec:
                    parameters += f"<Description>{escape(str(spec['Description']))}</Description>"
                parameters += "</member>"
            capabilities, reason = required_capabilities(template)
            result = f"<Parameters>{parameters}</Parameters>"
            if template.get("Description"):
                result += f"<Description>{escape(str(template['Description']))}</Description>"
            result += (
                "<Capabilities>"
                + "".join(f"<member>{c}</member>" for c in capabilities)
                + "</Capabilities>"
            )
            if reason:
                result += f"<CapabilitiesReason>{escape(reason)}</CapabilitiesReason>"
            result += (
                "<DeclaredTransforms>"
                + "".join(f"<member>{escape(t)}</member>" for t in declared)
                + "</DeclaredTransforms>"
            )
            return _xml("ValidateTemplate", result)

        return self._guard(work)


def _drop_false_conditions(change_set: Any) -> None:
    """A CREATE change set lists no resource whose Condition is false (CloudFormation creates
    none of them); moto's diff lists every resource of the template. Conditions are evaluated
    with moto's own evaluator on the change set's parameter values."""
    import functools

    from moto.cloudformation.parsing import LazyDict, parse_condition

    template = change_set.template_dict or {}
    if change_set.change_set_type != "CREATE" or not template.get("Conditions"):
        return
    values = {
        name: spec.get("Default")
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict)
    }
    values.update(change_set.parameters or {})
    conditions = LazyDict()
    for name, condition in template["Conditions"].items():
        conditions[name] = functools.partial(parse_condition, condition, values, conditions)
    resources = template.get("Resources", {})
    kept = []
    for change in change_set.changes:
        condition = resources.get(change.logical_resource_id, {}).get("Condition")
        try:
            if condition and not conditions[condition]:
                continue
        except Exception:  # what the evaluator cannot resolve here stays listed, as moto had it
            pass
        kept.append(change)
    change_set.changes = kept
