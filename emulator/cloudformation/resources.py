"""The resource types the emulator's CloudFormation creates, as moto `CloudFormationModel`s.

Every type here replaces moto's own model (or fills a gap: moto 5.2.5 has none for
`AWS::IoT::TopicRule`, `AWS::KinesisFirehose::DeliveryStream`, `AWS::Logs::LogStream`, and
ignores properties such as `PublicAccessBlockConfiguration`, `OwnershipControls`,
`ManagedPolicyArns`, Lambda `Architectures`/`Tags`). Like CloudFormation itself, each resource
is created through the service's own API (boto3 against the emulator's endpoint), so that
resources made by a stack are indistinguishable from ones made by a client, and every
component's gateway hooks and validations run for them.

`PROPERTIES` is the allow-list a template is validated against before anything is created:
a property that is not listed is not honoured here, so the stack fails instead of silently
ignoring it.

Every other type that moto has a model for (`moto_resource_types()`: SQS, SNS topics,
DynamoDB, Kinesis, ...) is created by moto's own model, in the same ordered life cycle
(stacks.py), so mixed stacks resolve Ref/GetAtt/Outputs across both.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.common_models import CloudFormationModel

# Spec values: ANY accepts any value; a dict lists the keys allowed in a nested object (applied
# to each element of a list).
ANY = None
Spec = dict[str, Any]


def _json_text(document: Any) -> str:
    """A policy document as the APIs take it: templates give an object or JSON text."""
    return document if isinstance(document, str) else json.dumps(document)


class ResourceFailed(Exception):
    """A resource could not be created, updated or deleted; the message is the StatusReason."""


class Services:
    """boto3 clients against the emulator's endpoint, cached per (service, region).

    Set by the CloudFormationDeployer; resource handlers call `Services.client(...)`."""

    factory: ClassVar[Callable[[str, str], Any] | None] = None
    sql_validator: ClassVar[Callable[[str, str], None] | None] = None

    @classmethod
    def client(cls, service: str, region: str) -> Any:
        if cls.factory is None:
            raise ResourceFailed("the emulator's CloudFormation component is not running")
        return cls.factory(service, region)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def _bool(value: Any) -> bool:
    # CloudFormation passes template booleans through as written: true, "true", "True".
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _int(value: Any) -> int:
    return int(float(value)) if isinstance(value, str) else int(value)


def _lower_first_keys(value: Any) -> Any:
    """CloudFormation's PascalCase property names -> the IoT API's camelCase member names
    (`Firehose: {DeliveryStreamName}` -> `firehose: {deliveryStreamName}`)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_first_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_first_keys(v) for v in value]
    return value


class EmulatedResource:
    """Mixin giving a resource type moto's CloudFormationModel interface.

    A concrete type lists `CloudFormationModel` as a direct base as well, because moto finds
    models through `CloudFormationModel.__subclasses__()` (direct subclasses only)."""

    TYPE: ClassVar[str] = ""
    NAME_PROPERTY: ClassVar[str | None] = None
    PROPERTIES: ClassVar[Spec] = {}
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()
    # A name CloudFormation generates (`<stack>-<logical id>-<suffix>`) made valid for the
    # service: characters outside NAME_CHARS become `_`, and it is cut to NAME_MAX_LENGTH.
    NAME_CHARS: ClassVar[str | None] = None
    NAME_MAX_LENGTH: ClassVar[int | None] = None
    # The call that deletes a resource: (service, operation, the member naming it).
    DELETE: ClassVar[tuple[str, str, str] | None] = None

    def __init__(
        self, physical_id: str, attributes: dict[str, Any], region: str, properties: dict[str, Any]
    ) -> None:
        self._physical_id = physical_id
        self.attributes = attributes
        self.region = region
        self.properties = properties

    # moto's interface -------------------------------------------------------------------
    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY or ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name in self.attributes:
            return self.attributes[attribute_name]
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> EmulatedResource:
        properties = cloudformation_json.get("Properties") or {}
        if cls.NAME_PROPERTY and cls.NAME_PROPERTY in properties:
            # moto picks the name property from its own model for the type, which is wrong for
            # some (IoT things: "Thing"); the template's name always wins, as on AWS.
            resource_name = str(properties[cls.NAME_PROPERTY])
        else:
            if cls.NAME_CHARS:
                resource_name = re.sub(f"[^{cls.NAME_CHARS}]", "_", resource_name)
            resource_name = resource_name[: cls.NAME_MAX_LENGTH]
        physical_id, attributes = cls.create(resource_name, properties, account_id, region_name)
        return cls(physical_id, attributes, region_name, properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[override]
        cls,
        original_resource: EmulatedResource,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> EmulatedResource:
        properties = cloudformation_json.get("Properties") or {}
        same_name = (
            not cls.NAME_PROPERTY
            or properties.get(cls.NAME_PROPERTY, original_resource.physical_resource_id)
            == original_resource.physical_resource_id
        )
        if same_name:
            attributes = cls.update_in_place(original_resource, properties, region_name)
            if attributes is not None:
                original_resource.properties = properties
                original_resource.attributes = attributes
                return original_resource
        # Otherwise a replacement: create the new one, and delete the old one unless its
        # UpdateReplacePolicy is Retain (User Guide, "UpdateReplacePolicy attribute":
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatereplacepolicy.html).
        if cloudformation_json.get("UpdateReplacePolicy") != "Retain":
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    @classmethod
    def update_in_place(
        cls, original: EmulatedResource, props: dict[str, Any], region: str
    ) -> dict[str, Any] | None:
        """Apply new properties without replacement (new attributes), or None to replace."""
        return None

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[override]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        cls.remove(resource_name, cloudformation_json.get("Properties") or {}, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        type(self).remove(self.physical_resource_id, self.properties, region_name)

    # What a type implements --------------------------------------------------------------
    @classmethod
    def create(
        cls, name: str, props: dict[str, Any], account_id: str, region: str
    ) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def remove(cls, physical_id: str, props: dict[str, Any], region: str) -> None:
        if cls.DELETE is None:
            raise NotImplementedError
        service, operation, member = cls.DELETE
        getattr(Services.client(service, region), operation)(**{member: physical_id})


# ------------------------------------------------------------------------------------ IoT
class IotThing(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::IoT::Thing"
    NAME_PROPERTY = "ThingName"
    PROPERTIES = {"ThingName": ANY, "AttributePayload": {"Attributes": ANY}}
    ATTRIBUTES = ("Arn", "Id")
    # Fails (DELETE_FAILED) while a principal is attached, as on AWS.
    DELETE = ("iot", "delete_thing", "thingName")

    @classmethod
    def create(cls, name, props, account_id, region):
        kwargs: dict[str, Any] = {"thingName": name}
        if "AttributePayload" in props:
            kwargs["attributePayload"] = {
                "attributes": props["AttributePayload"].get("Attributes", {})
            }
        out = Services.client("iot", region).create_thing(**kwargs)
        return out["thingName"], {"Arn": out["thingArn"], "Id": out["thingId"]}


class IotPolicy(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::IoT::Policy"
    NAME_PROPERTY = "PolicyName"
    PROPERTIES = {"PolicyName": ANY, "PolicyDocument": ANY}
    REQUIRED = ("PolicyDocument",)
    ATTRIBUTES = ("Arn", "Id")

    @classmethod
    def create(cls, name, props, account_id, region):
        document = _json_text(props["PolicyDocument"])
        out = Services.client("iot", region).create_policy(policyName=name, policyDocument=document)
        return out["policyName"], {"Arn": out["policyArn"], "Id": out["policyName"]}

    # A policy holds at most five versions (API_CreatePolicyVersion.html).
    MAX_VERSIONS = 5

    @classmethod
    def update_in_place(cls, original, props, region):
        # PolicyDocument is "Update requires: No interruption" (CloudFormation template
        # reference, AWS::IoT::Policy): a new default version, so the certificates the policy
        # is attached to keep it. A replacement would have to delete an attached policy, which
        # IoT refuses (DeleteConflictException). The oldest non-default version makes room.
        document = _json_text(props["PolicyDocument"])
        iot = Services.client("iot", region)
        name = original.physical_resource_id
        versions = iot.list_policy_versions(policyName=name)["policyVersions"]
        if len(versions) >= cls.MAX_VERSIONS:
            spare = [v for v in versions if not v["isDefaultVersion"]]
            oldest = min(spare, key=lambda v: int(v["versionId"]))
            iot.delete_policy_version(policyName=name, policyVersionId=oldest["versionId"])
        iot.create_policy_version(policyName=name, policyDocument=document, setAsDefault=True)
        return original.attributes

    @classmethod
    def remove(cls, physical_id, props, region):
        # DeletePolicy refuses a policy with other versions than the default
        # (API_DeletePolicy.html): the versions the updates made go first.
        iot = Services.client("iot", region)
        for version in iot.list_policy_versions(policyName=physical_id)["policyVersions"]:
            if not version["isDefaultVersion"]:
                iot.delete_policy_version(
                    policyName=physical_id, policyVersionId=version["versionId"]
                )
        iot.delete_policy(policyName=physical_id)


# The rule actions the emulator's rules engine runs (emulator/rules), with their members.
TOPIC_RULE_ACTIONS: Spec = {
    "Firehose": {"DeliveryStreamName": ANY, "RoleArn": ANY, "Separator": ANY, "BatchMode": ANY},
    "S3": {"BucketName": ANY, "Key": ANY, "RoleArn": ANY, "CannedAcl": ANY},
    "Republish": {"Topic": ANY, "RoleArn": ANY, "Qos": ANY},
    "CloudwatchLogs": {"LogGroupName": ANY, "RoleArn": ANY, "BatchMode": ANY},
    "Lambda": {"FunctionArn": ANY},
    # Actions into other services (emulator/rules/service_actions.py), with the members of
    # their AWS::IoT::TopicRule property types.
    "Sqs": {"QueueUrl": ANY, "RoleArn": ANY, "UseBase64": ANY},
    "Sns": {"TargetArn": ANY, "RoleArn": ANY, "MessageFormat": ANY},
    "DynamoDB": {
        "TableName": ANY,
        "RoleArn": ANY,
        "HashKeyField": ANY,
        "HashKeyType": ANY,
        "HashKeyValue": ANY,
        "RangeKeyField": ANY,
        "RangeKeyType": ANY,
        "RangeKeyValue": ANY,
        "PayloadField": ANY,
    },
    "DynamoDBv2": {"PutItem": {"TableName": ANY}, "RoleArn": ANY},
    "Kinesis": {"StreamName": ANY, "PartitionKey": ANY, "RoleArn": ANY},
    "StepFunctions": {"StateMachineName": ANY, "ExecutionNamePrefix": ANY, "RoleArn": ANY},
    "CloudwatchMetric": {
        "MetricName": ANY,
        "MetricNamespace": ANY,
        "MetricUnit": ANY,
        "MetricValue": ANY,
        "MetricTimestamp": ANY,
        "RoleArn": ANY,
    },
    "CloudwatchAlarm": {"AlarmName": ANY, "StateReason": ANY, "StateValue": ANY, "RoleArn": ANY},
    # To confirmed https://127.0.0.1 / https://localhost destinations; no Auth or batching.
    "Http": {"Url": ANY, "ConfirmationUrl": ANY, "Headers": {"Key": ANY, "Value": ANY}},
}


class IotTopicRule(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::IoT::TopicRule"
    NAME_PROPERTY = "RuleName"
    PROPERTIES = {
        "RuleName": ANY,
        "TopicRulePayload": {
            "Sql": ANY,
            "AwsIotSqlVersion": ANY,
            "Description": ANY,
            "RuleDisabled": ANY,
            "Actions": TOPIC_RULE_ACTIONS,
            "ErrorAction": TOPIC_RULE_ACTIONS,
        },
    }
    REQUIRED = ("TopicRulePayload",)
    ATTRIBUTES = ("Arn",)
    # Rule names are `^[a-zA-Z0-9_]+$` (IoT API reference, "CreateTopicRule"), so the `-` of
    # generated names becomes `_`.
    NAME_CHARS, NAME_MAX_LENGTH = "A-Za-z0-9_", 128
    DELETE = ("iot", "delete_topic_rule", "ruleName")

    @classmethod
    def create(cls, name, props, account_id, region):
        payload = dict(props["TopicRulePayload"])
        if "Sql" not in payload or "Actions" not in payload:
            raise ResourceFailed(
                "Properties validation failed: #/TopicRulePayload: required key [Sql] or "
                "[Actions] not found"
            )
        # CloudFormation's default (TopicRulePayload, AwsIotSqlVersion), made explicit so that
        # IoT and the rules engine see the version the rule will run with.
        payload.setdefault("AwsIotSqlVersion", "2015-10-08")
        if Services.sql_validator is not None:
            Services.sql_validator(payload["Sql"], payload["AwsIotSqlVersion"])
        if "RuleDisabled" in payload:
            payload["RuleDisabled"] = _bool(payload["RuleDisabled"])
        api_payload = _lower_first_keys(payload)
        for action in [*api_payload.get("actions", []), api_payload.get("errorAction") or {}]:
            for member in action.values():
                for flag in ("batchMode", "useBase64"):
                    if flag in member:
                        member[flag] = _bool(member[flag])
                if "qos" in member:
                    member["qos"] = _int(member["qos"])
        iot = Services.client("iot", region)
        iot.create_topic_rule(ruleName=name, topicRulePayload=api_payload)
        arn = iot.get_topic_rule(ruleName=name)["ruleArn"]
        return name, {"Arn": arn}


# ------------------------------------------------------------------------------- Firehose
_BUFFERING = {"IntervalInSeconds": ANY, "SizeInMBs": ANY}
_LOGGING = {"Enabled": ANY, "LogGroupName": ANY, "LogStreamName": ANY}
_S3_DESTINATION = {
    "BucketARN": ANY,
    "RoleARN": ANY,
    "Prefix": ANY,
    "ErrorOutputPrefix": ANY,
    "BufferingHints": _BUFFERING,
    "CompressionFormat": ANY,
    "CloudWatchLoggingOptions": _LOGGING,
}
# What the emulator's Firehose data path (emulator/firehose) honours.
COMPRESSION_FORMATS = ("UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY")


class DeliveryStream(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::KinesisFirehose::DeliveryStream"
    NAME_PROPERTY = "DeliveryStreamName"
    PROPERTIES = {
        "DeliveryStreamName": ANY,
        "DeliveryStreamType": ANY,
        "Tags": ANY,
        "ExtendedS3DestinationConfiguration": {
            **_S3_DESTINATION,
            "FileExtension": ANY,
            "ProcessingConfiguration": {
                "Enabled": ANY,
                "Processors": {
                    "Type": ANY,
                    "Parameters": {"ParameterName": ANY, "ParameterValue": ANY},
                },
            },
            "S3BackupMode": ANY,
            "S3BackupConfiguration": _S3_DESTINATION,
            # Checked by the Firehose component's own create-time rules (validation.py).
            "DynamicPartitioningConfiguration": ANY,
            "DataFormatConversionConfiguration": ANY,
        },
    }
    REQUIRED = ("ExtendedS3DestinationConfiguration",)
    ATTRIBUTES = ("Arn",)
    NAME_CHARS, NAME_MAX_LENGTH = "a-zA-Z0-9_.-", 64
    DELETE = ("firehose", "delete_delivery_stream", "DeliveryStreamName")

    @classmethod
    def create(cls, name, props, account_id, region):
        stream_type = props.get("DeliveryStreamType", "DirectPut")
        if stream_type != "DirectPut":
            raise ResourceFailed(
                f"DeliveryStreamType {stream_type} is not supported by the local emulator "
                "(only DirectPut)"
            )
        destination = cls._api_destination(props["ExtendedS3DestinationConfiguration"])
        kwargs: dict[str, Any] = {
            "DeliveryStreamName": name,
            "DeliveryStreamType": stream_type,
            "ExtendedS3DestinationConfiguration": destination,
        }
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        out = Services.client("firehose", region).create_delivery_stream(**kwargs)
        return name, {"Arn": out["DeliveryStreamARN"]}

    @classmethod
    def _api_destination(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The template's configuration with the API's member types (CloudFormation may pass
        numbers from parameters as strings, and processor parameter values must be strings)."""
        config = json.loads(json.dumps(config))
        for part in (config, config.get("S3BackupConfiguration") or {}):
            hints = part.get("BufferingHints")
            if hints:
                for key in ("IntervalInSeconds", "SizeInMBs"):
                    if key in hints:
                        hints[key] = _int(hints[key])
            fmt = part.get("CompressionFormat")
            if fmt is not None and fmt not in COMPRESSION_FORMATS:
                raise ResourceFailed(
                    f"CompressionFormat {fmt} is not supported by the local emulator "
                    f"(supported: {', '.join(COMPRESSION_FORMATS)})"
                )
            logging_options = part.get("CloudWatchLoggingOptions")
            if logging_options and "Enabled" in logging_options:
                logging_options["Enabled"] = _bool(logging_options["Enabled"])
        for member in ("DynamicPartitioningConfiguration", "DataFormatConversionConfiguration"):
            if "Enabled" in (config.get(member) or {}):
                config[member]["Enabled"] = _bool(config[member]["Enabled"])
        processing = config.get("ProcessingConfiguration")
        if processing:
            if "Enabled" in processing:
                processing["Enabled"] = _bool(processing["Enabled"])
            for processor in processing.get("Processors", []):
                if processor.get("Type") != "Lambda":
                    raise ResourceFailed(
                        f"Processor type {processor.get('Type')} is not supported by the local "
                        "emulator (only Lambda)"
                    )
                for parameter in processor.get("Parameters", []):
                    value = parameter.get("ParameterValue")
                    if isinstance(value, float) and value.is_integer():
                        value = int(value)
                    parameter["ParameterValue"] = str(value)
        return config

    @classmethod
    def update_in_place(cls, original, props, region):
        # Destination changes are "Update requires: No interruption" (CloudFormation,
        # AWS::KinesisFirehose::DeliveryStream): UpdateDestination, as CloudFormation calls it.
        if props.get("DeliveryStreamType", "DirectPut") != original.properties.get(
            "DeliveryStreamType", "DirectPut"
        ):
            return None
        firehose = Services.client("firehose", region)
        description = firehose.describe_delivery_stream(
            DeliveryStreamName=original.physical_resource_id
        )["DeliveryStreamDescription"]
        update = cls._api_destination(props["ExtendedS3DestinationConfiguration"])
        if "S3BackupConfiguration" in update:
            update["S3BackupUpdate"] = update.pop("S3BackupConfiguration")
        firehose.update_destination(
            DeliveryStreamName=original.physical_resource_id,
            CurrentDeliveryStreamVersionId=description["VersionId"],
            DestinationId=description["Destinations"][0]["DestinationId"],
            ExtendedS3DestinationUpdate=update,
        )
        return original.attributes


# ------------------------------------------------------------------------------------- S3
class Bucket(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::S3::Bucket"
    NAME_PROPERTY = "BucketName"
    PROPERTIES = {
        "BucketName": ANY,
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": {
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": ANY, "KMSMasterKeyID": ANY},
                "BucketKeyEnabled": ANY,
            }
        },
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": ANY,
            "BlockPublicPolicy": ANY,
            "IgnorePublicAcls": ANY,
            "RestrictPublicBuckets": ANY,
        },
        "OwnershipControls": {"Rules": {"ObjectOwnership": ANY}},
        "VersioningConfiguration": {"Status": ANY},
        "Tags": ANY,
    }
    ATTRIBUTES = ("Arn", "DomainName", "RegionalDomainName", "DualStackDomainName")
    # S3 refuses to delete a bucket that holds objects (BucketNotEmpty), as on AWS.
    DELETE = ("s3", "delete_bucket", "Bucket")

    @classmethod
    def create(cls, name, props, account_id, region):
        s3 = Services.client("s3", region)
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
        if "BucketEncryption" in props:
            rules = []
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]:
                api_rule = dict(rule)
                if "ServerSideEncryptionByDefault" in api_rule:
                    api_rule["ApplyServerSideEncryptionByDefault"] = api_rule.pop(
                        "ServerSideEncryptionByDefault"
                    )
                if "BucketKeyEnabled" in api_rule:
                    api_rule["BucketKeyEnabled"] = _bool(api_rule["BucketKeyEnabled"])
                rules.append(api_rule)
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    k: _bool(v) for k, v in props["PublicAccessBlockConfiguration"].items()
                },
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls={"Rules": props["OwnershipControls"]["Rules"]}
            )
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        partition = _partition(region)
        return name, {
            "Arn": f"arn:{partition}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
        }


# ------------------------------------------------------------------------------------ IAM
class IamRole(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::IAM::Role"
    NAME_PROPERTY = "RoleName"
    PROPERTIES = {
        "RoleName": ANY,
        "AssumeRolePolicyDocument": ANY,
        "Description": ANY,
        "Path": ANY,
        "MaxSessionDuration": ANY,
        "PermissionsBoundary": ANY,
        "ManagedPolicyArns": ANY,
        "Policies": {"PolicyName": ANY, "PolicyDocument": ANY},
        "Tags": ANY,
    }
    REQUIRED = ("AssumeRolePolicyDocument",)
    ATTRIBUTES = ("Arn", "RoleId")
    NAME_MAX_LENGTH = 64

    @classmethod
    def create(cls, name, props, account_id, region):
        iam = Services.client("iam", region)
        document = props["AssumeRolePolicyDocument"]
        kwargs: dict[str, Any] = {
            "RoleName": name,
            "AssumeRolePolicyDocument": _json_text(document),
        }
        for key in ("Description", "Path", "PermissionsBoundary"):
            if key in props:
                kwargs[key] = props[key]
        if "MaxSessionDuration" in props:
            kwargs["MaxSessionDuration"] = _int(props["MaxSessionDuration"])
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        role = iam.create_role(**kwargs)["Role"]
        for policy in props.get("Policies", []):
            doc = policy["PolicyDocument"]
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=_json_text(doc),
            )
        for arn in props.get("ManagedPolicyArns", []):
            _ensure_aws_managed_policy(account_id, region, arn)
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    @classmethod
    def remove(cls, physical_id, props, region):
        iam = Services.client("iam", region)
        for name in iam.list_role_policies(RoleName=physical_id)["PolicyNames"]:
            iam.delete_role_policy(RoleName=physical_id, PolicyName=name)
        for attached in iam.list_attached_role_policies(RoleName=physical_id)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=physical_id, PolicyArn=attached["PolicyArn"])
        iam.delete_role(RoleName=physical_id)


@cache
def _aws_managed_policies() -> dict[str, Any]:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def _ensure_aws_managed_policy(account_id: str, region: str, arn: str) -> None:
    """Make an AWS managed policy (e.g. the AWSLambdaBasicExecutionRole of SAM's default
    function role) attachable. moto loads none of them unless told to load all ~1,600 at
    start (`iam.load_aws_managed_policies`); no API creates them, so this writes the one
    policy into moto's IAM backend from moto's own offline copy."""
    from moto.iam.models import AWSManagedPolicy, iam_backends

    if not re.fullmatch(r"arn:aws[a-z-]*:iam::aws:policy/.+", arn):
        return
    backend = iam_backends[account_id][_partition(region)]
    if arn in backend.managed_policies:
        return
    name = arn.rsplit("/", 1)[-1]
    data = _aws_managed_policies().get(name)
    if data is None or arn.split(":policy", 1)[1] != f"{data.get('Path', '/')}{name}":
        return  # not an AWS managed policy: IAM answers NoSuchEntity
    policy = AWSManagedPolicy.from_data(name, account_id, region, data)
    backend.aws_managed_policies.append(policy)
    backend.managed_policies[policy.arn] = policy


# --------------------------------------------------------------------------------- Lambda
class LambdaFunction(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::Lambda::Function"
    NAME_PROPERTY = "FunctionName"
    PROPERTIES = {
        "FunctionName": ANY,
        "Code": {"S3Bucket": ANY, "S3Key": ANY, "S3ObjectVersion": ANY, "ZipFile": ANY},
        "Handler": ANY,
        "Runtime": ANY,
        "Role": ANY,
        "Description": ANY,
        "Timeout": ANY,
        "MemorySize": ANY,
        "Architectures": ANY,
        "Environment": {"Variables": ANY},
        "Tags": ANY,
    }
    REQUIRED = ("Code", "Role")
    ATTRIBUTES = ("Arn",)
    NAME_MAX_LENGTH = 64
    DELETE = ("lambda", "delete_function", "FunctionName")

    @classmethod
    def create(cls, name, props, account_id, region):
        code = dict(props["Code"])
        if "ZipFile" in code:
            # Inline source becomes index.<ext> in a .zip (CloudFormation, "Function Code").
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("index.py", code["ZipFile"])
            code = {"ZipFile": buffer.getvalue()}
        kwargs: dict[str, Any] = {"FunctionName": name, "Role": props["Role"], "Code": code}
        for key in ("Handler", "Runtime", "Description", "Architectures", "Environment"):
            if key in props:
                kwargs[key] = props[key]
        for key in ("Timeout", "MemorySize"):
            if key in props:
                kwargs[key] = _int(props[key])
        if props.get("Tags"):
            kwargs["Tags"] = _tags_dict(props["Tags"])
        out = Services.client("lambda", region).create_function(**kwargs)
        return out["FunctionName"], {"Arn": out["FunctionArn"]}


# ----------------------------------------------------------------------- CloudWatch Logs
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class LogGroup(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::Logs::LogGroup"
    NAME_PROPERTY = "LogGroupName"
    PROPERTIES = {"LogGroupName": ANY, "RetentionInDays": ANY, "Tags": ANY}
    ATTRIBUTES = ("Arn",)
    DELETE = ("logs", "delete_log_group", "logGroupName")

    @classmethod
    def create(cls, name, props, account_id, region):
        logs = Services.client("logs", region)
        retention = props.get("RetentionInDays")
        if retention is not None and _int(retention) not in RETENTION_DAYS:
            # Checked first so that a rejected value leaves no log group behind.
            raise ResourceFailed(
                f"RetentionInDays {retention} is not one of {', '.join(map(str, RETENTION_DAYS))}"
            )
        kwargs: dict[str, Any] = {"logGroupName": name}
        if props.get("Tags"):
            kwargs["tags"] = _tags_dict(props["Tags"])
        logs.create_log_group(**kwargs)
        if retention is not None:
            logs.put_retention_policy(logGroupName=name, retentionInDays=_int(retention))
        # The Arn attribute ends with `:*` (CloudFormation, "AWS::Logs::LogGroup" return values).
        arn = f"arn:{_partition(region)}:logs:{region}:{account_id}:log-group:{name}:*"
        return name, {"Arn": arn}

    @classmethod
    def update_in_place(cls, original, props, region):
        # RetentionInDays is "Update requires: No interruption"; a replacement would also
        # delete the group's log streams.
        logs = Services.client("logs", region)
        retention = props.get("RetentionInDays")
        if retention is None:
            logs.delete_retention_policy(logGroupName=original.physical_resource_id)
        elif _int(retention) not in RETENTION_DAYS:
            raise ResourceFailed(
                f"RetentionInDays {retention} is not one of {', '.join(map(str, RETENTION_DAYS))}"
            )
        else:
            logs.put_retention_policy(
                logGroupName=original.physical_resource_id, retentionInDays=_int(retention)
            )
        return original.attributes


class LogStream(EmulatedResource, CloudFormationModel):
    TYPE = "AWS::Logs::LogStream"
    NAME_PROPERTY = "LogStreamName"
    PROPERTIES = {"LogGroupName": ANY, "LogStreamName": ANY}
    REQUIRED = ("LogGroupName",)

    @classmethod
    def create(cls, name, props, account_id, region):
        Services.client("logs", region).create_log_stream(
            logGroupName=props["LogGroupName"], logStreamName=name
        )
        return name, {}

    @classmethod
    def remove(cls, physical_id, props, region):
        Services.client("logs", region).delete_log_stream(
            logGroupName=props["LogGroupName"], logStreamName=physical_id
        )


# --------------------------------------------------------------------- S3 bucket policy
class BucketPolicy(EmulatedResource, CloudFormationModel):
    """Stored by S3 itself (PutBucketPolicy), so GetBucketPolicy shows it and the gateway's
    checks run; moto 5.2.5 has no model for this type. The SAM CLI's managed stack
    (`aws-sam-cli-managed-default`) creates one next to its artifacts bucket.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucketpolicy.html
    """

    TYPE = "AWS::S3::BucketPolicy"
    PROPERTIES = {"Bucket": ANY, "PolicyDocument": ANY}
    REQUIRED = ("Bucket", "PolicyDocument")

    @classmethod
    def create(cls, name, props, account_id, region):
        document = _json_text(props["PolicyDocument"])
        bucket = str(props["Bucket"])
        Services.client("s3", region).put_bucket_policy(Bucket=bucket, Policy=document)
        return name, {}

    @classmethod
    def update_in_place(cls, original, props, region):
        # Bucket requires replacement, PolicyDocument does not (property reference above).
        if str(props["Bucket"]) != str(original.properties["Bucket"]):
            return None
        document = _json_text(props["PolicyDocument"])
        Services.client("s3", region).put_bucket_policy(
            Bucket=str(props["Bucket"]), Policy=document
        )
        return original.attributes

    def delete(self, account_id: str, region_name: str) -> None:
        Services.client("s3", region_name).delete_bucket_policy(
            Bucket=str(self.properties["Bucket"])
        )

    @classmethod
    def remove(cls, physical_id, props, region):
        Services.client("s3", region).delete_bucket_policy(Bucket=str(props["Bucket"]))


# ------------------------------------------------------------------- SNS subscription
class SnsSubscription(EmulatedResource, CloudFormationModel):
    """Made with SNS's Subscribe (moto 5.2.5 has no model for this type; its topic model
    only knows the topic's inline `Subscription` list). Ref is the subscription ARN.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sns-subscription.html
    """

    TYPE = "AWS::SNS::Subscription"
    PROPERTIES = {
        "TopicArn": ANY,
        "Protocol": ANY,
        "Endpoint": ANY,
        "RawMessageDelivery": ANY,
        "FilterPolicy": ANY,
        "FilterPolicyScope": ANY,
        "RedrivePolicy": ANY,
    }
    REQUIRED = ("TopicArn", "Protocol")
    _ATTRIBUTE_NAMES = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy")
    DELETE = ("sns", "unsubscribe", "SubscriptionArn")

    @classmethod
    def create(cls, name, props, account_id, region):
        attributes: dict[str, str] = {}
        for key in cls._ATTRIBUTE_NAMES:
            if key in props:
                value = props[key]
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = str(value).lower()
                attributes[key] = str(value)
        kwargs: dict[str, Any] = {
            "TopicArn": str(props["TopicArn"]),
            "Protocol": str(props["Protocol"]),
            "ReturnSubscriptionArn": True,
        }
        if "Endpoint" in props:
            kwargs["Endpoint"] = str(props["Endpoint"])
        if attributes:
            kwargs["Attributes"] = attributes
        out = Services.client("sns", region).subscribe(**kwargs)
        return out["SubscriptionArn"], {}


# --------------------------------------------------------------------- Glue Data Catalog
class _GlueCatalogEntry(EmulatedResource):
    """A Glue database or table, made with Glue's API from the template's `<Noun>Input`
    (moto 5.2.5 has no CloudFormation model for Glue). Ref returns its name; a new name or
    database replaces it, other changes update it in place."""

    NOUN: ClassVar[str] = ""  # "database" or "table": the Glue API's Create/Update/Delete<Noun>
    INPUT: ClassVar[str] = ""  # "DatabaseInput" or "TableInput"

    @classmethod
    def _scope(cls, props: dict[str, Any]) -> dict[str, Any]:
        return {"CatalogId": str(props["CatalogId"])}

    @classmethod
    def _glue(cls, verb: str, props: dict[str, Any], region: str, **kwargs: Any) -> None:
        client = Services.client("glue", region)
        getattr(client, f"{verb}_{cls.NOUN}")(**cls._scope(props), **kwargs)

    @classmethod
    def create(cls, name, props, account_id, region):
        entry = {"Name": name.lower(), **props[cls.INPUT]}
        cls._glue("create", props, region, **{cls.INPUT: entry})
        return entry["Name"], {}

    @classmethod
    def update_in_place(cls, original, props, region):
        name = original.physical_resource_id
        if props[cls.INPUT].get("Name", name) != name or cls._scope(props) != cls._scope(
            original.properties
        ):
            return None
        # An updated table keeps its earlier version (Firehose reads "LATEST" unless told).
        extra = {"Name": name} if cls.NOUN == "database" else {}
        cls._glue(
            "update", props, region, **extra, **{cls.INPUT: {**props[cls.INPUT], "Name": name}}
        )
        return {}

    @classmethod
    def remove(cls, physical_id, props, region):
        cls._glue("delete", props, region, Name=physical_id)


class GlueDatabase(_GlueCatalogEntry, CloudFormationModel):
    """https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-glue-database.html"""

    TYPE = "AWS::Glue::Database"
    NOUN, INPUT = "database", "DatabaseInput"
    PROPERTIES = {"CatalogId": ANY, "DatabaseInput": ANY}
    REQUIRED = ("CatalogId", "DatabaseInput")


class GlueTable(_GlueCatalogEntry, CloudFormationModel):
    """TableInput is the Glue API's, so partition projection and the other `Parameters` are
    stored as written.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-glue-table.html
    """

    TYPE = "AWS::Glue::Table"
    NOUN, INPUT = "table", "TableInput"
    PROPERTIES = {"CatalogId": ANY, "DatabaseName": ANY, "TableInput": ANY}
    REQUIRED = ("CatalogId", "DatabaseName", "TableInput")

    @classmethod
    def _scope(cls, props: dict[str, Any]) -> dict[str, Any]:
        return {"CatalogId": str(props["CatalogId"]), "DatabaseName": props["DatabaseName"]}


RESOURCE_TYPES: dict[str, type[EmulatedResource]] = {
    cls.TYPE: cls
    for cls in (
        IotThing,
        IotPolicy,
        IotTopicRule,
        DeliveryStream,
        Bucket,
        IamRole,
        LambdaFunction,
        LogGroup,
        LogStream,
        BucketPolicy,
        SnsSubscription,
        GlueDatabase,
        GlueTable,
    )
}

# Placeholders among moto's CloudFormationModel subclasses, not resource types.
_NOT_TYPES = ("?", "AWS::SERVICE::RESOURCE")


def moto_resource_types() -> frozenset[str]:
    """The types moto's own models create (SQS, SNS topics, DynamoDB, Kinesis, ...), for the
    types the emulator does not handle itself. Its models write to moto's backends directly."""
    return frozenset(
        kind
        for kind in parsing.get_model_map()
        if kind not in RESOURCE_TYPES and kind not in _NOT_TYPES
    )


def register() -> None:
    """Make moto's CloudFormation use these types (its type map is built once, cached)."""
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()
    model_map = parsing.get_model_map()
    for type_name, cls in RESOURCE_TYPES.items():
        if model_map.get(type_name) is not cls:
            raise RuntimeError(f"moto did not pick up the emulator's model for {type_name}")
