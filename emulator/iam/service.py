"""The IAM component: `emulator.iam`, the authorizer every service asks before acting with a
user's role, and the IAM operations the emulator answers itself (the policy simulator).

Services use it at call time, e.g.
    trust = emulator.iam.can_assume(role_arn, "iot.amazonaws.com", source_context(rule_arn))
    decision = emulator.iam.authorize(role_arn, "firehose:PutRecordBatch", stream_arn)
    if not decision.allowed: ... decision.message(), decision.as_dict() ...
"""

from __future__ import annotations

from typing import Any

from emulator.iam import api
from emulator.iam.authorizer import IamAuthorizer


class IamService:
    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.authorizer = IamAuthorizer(emulator.account_id, emulator.region)
        # The authorizer's public methods, here so callers write `emulator.iam.authorize(...)`.
        self.authorize = self.authorizer.authorize
        self.can_assume = self.authorizer.can_assume
        self.authorize_service = self.authorizer.authorize_service
        emulator.iam = self
        api.register(self, emulator.gateway)
