"""What a delivery stream's IAM role lets Firehose do, asked of `emulator.iam` at call time.

Firehose acts with the role named in the destination configuration (`RoleARN`; the backup's
own `RoleARN`; a Lambda processor's `RoleArn` parameter, else the destination's role). It must
first be allowed to assume the role: the trust policy names `firehose.amazonaws.com`, and
Firehose passes the account id as `sts:ExternalId`, which the documented trust policy checks
(guide, "Allow Firehose to assume an IAM role",
https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#firehose-assume-role).
Then each action is checked as the guide's "Grant Firehose access to an Amazon S3 destination"
lists it: `s3:PutObject` on `arn:aws:s3:::bucket/key` (with the bucket policy as the resource
policy), `lambda:InvokeFunction` and `lambda:GetFunctionConfiguration` on the function,
`logs:PutLogEvents` on the error log stream, and for record format conversion
`glue:GetTable`, `glue:GetTableVersion`, `glue:GetTableVersions` on the table.

With enforcement off (`--no-iam`, IOT_EMULATOR_IAM=off) every check answers None (allowed).
Decisions are cached by the authorizer per role fingerprint, so a delivery pays a dict lookup.
"""

from __future__ import annotations

from typing import Any

from emulator.iam.authorizer import enforcing, source_context
from emulator.iam.evaluator import Decision

FIREHOSE_PRINCIPAL = "firehose.amazonaws.com"
SESSION = "Firehose"


class RoleAccess:
    """Checks for one emulator; every method returns the deciding Decision when access is
    denied, None when it is allowed (or IAM is not enforced)."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def _iam(self) -> Any | None:
        return enforcing(self._emulator)

    def assume(self, role_arn: str, account_id: str, stream_arn: str) -> Decision | None:
        iam = self._iam()
        if iam is None:
            return None
        context = {"sts:ExternalId": account_id, **source_context(stream_arn)}
        decision = iam.can_assume(role_arn or "(no RoleARN)", FIREHOSE_PRINCIPAL, context)
        return None if decision.allowed else decision

    def allowed(
        self,
        role_arn: str,
        action: str,
        resource: str,
        resource_policy: str | None = None,
        resource_policy_id: str = "resource policy",
    ) -> Decision | None:
        iam = self._iam()
        if iam is None:
            return None
        decision = iam.authorize(
            role_arn or "(no RoleARN)",
            action,
            resource,
            resource_policy=resource_policy,
            resource_policy_id=resource_policy_id,
            session=SESSION,
        )
        return None if decision.allowed else decision

    def s3_put(
        self, role_arn: str, account_id: str, stream_arn: str, bucket: str, key: str
    ) -> Decision | None:
        """May the role write s3://bucket/key (trust, identity policies, bucket policy)?"""
        denied = self.assume(role_arn, account_id, stream_arn)
        if denied is not None:
            return denied
        return self.allowed(
            role_arn,
            "s3:PutObject",
            f"arn:aws:s3:::{bucket}/{key}",
            bucket_policy(account_id, bucket),
            f"bucket policy of {bucket}",
        )

    def lambda_invoke(
        self, role_arn: str, account_id: str, stream_arn: str, function_arn: str
    ) -> tuple[str, Decision] | None:
        """("AssumeRole" | "Invoke", decision) when the processor may not be called."""
        denied = self.assume(role_arn, account_id, stream_arn)
        if denied is not None:
            return "AssumeRole", denied
        for action in ("lambda:InvokeFunction", "lambda:GetFunctionConfiguration"):
            denied = self.allowed(role_arn, action, function_arn)
            if denied is not None:
                return "Invoke", denied
        return None

    def glue_read(
        self, role_arn: str, account_id: str, stream_arn: str, conv: Any
    ) -> Decision | None:
        """May the role read the conversion's Glue table (GetTable, GetTableVersion(s) on the
        catalog, database and table, as Glue authorizes them)?"""
        from emulator.firehose.conversion import GLUE_ACTIONS, table_arns

        denied = self.assume(role_arn, account_id, stream_arn)
        if denied is not None:
            return denied
        for action in GLUE_ACTIONS:
            for resource in table_arns(conv):
                denied = self.allowed(role_arn, action, resource)
                if denied is not None:
                    return denied
        return None

    def log_put(
        self, role_arn: str, account_id: str, stream_arn: str, region: str, group: str, stream: str
    ) -> Decision | None:
        denied = self.assume(role_arn, account_id, stream_arn)
        if denied is not None:
            return denied
        resource = f"arn:aws:logs:{region}:{account_id}:log-group:{group}:log-stream:{stream}"
        return self.allowed(role_arn, "logs:PutLogEvents", resource)


def bucket_policy(account_id: str, bucket: str) -> str | None:
    """The bucket's policy as moto stores it (PutBucketPolicy), or None."""
    from moto.s3.models import s3_backends

    try:
        found = s3_backends[account_id]["aws"].buckets.get(bucket)
    except KeyError:
        found = None
    policy = getattr(found, "policy", None)
    if isinstance(policy, bytes):
        return policy.decode("utf-8", "replace")
    return policy
