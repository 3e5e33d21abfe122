"""The execution role check Lambda makes at CreateFunction and UpdateFunctionConfiguration: Lambda
must be allowed to assume the role (its trust policy names `lambda.amazonaws.com`), otherwise the
call fails with InvalidParameterValueException "The role defined for the function cannot be
assumed by Lambda." ("Lambda execution role",
https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html). Asked of
`emulator.iam` only when IAM is enforced; with `--no-iam` any role is accepted.
"""

from __future__ import annotations

import logging
from typing import Any

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error
from emulator.lambda_.logs import LAMBDA_PRINCIPAL

log = logging.getLogger(__name__)

CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda."


class ExecutionRoleCheck:
    """A gateway handler for the operations that set a function's `Role`."""

    def __init__(self, emulator: Any) -> None:
        self._emulator = emulator

    def register(self, gateway: Gateway) -> None:
        for operation in ("CreateFunction", "UpdateFunctionConfiguration"):
            gateway.on("lambda", operation, self.check)

    def check(self, request: AwsRequest) -> AwsResponse | None:
        if not getattr(self._emulator, "iam_enforced", True):
            return None
        try:
            role = request.json().get("Role")
        except ValueError:
            return None  # the body check answers a malformed body
        if not isinstance(role, str) or not role:
            return None  # moto answers a missing Role (CreateFunction requires it)
        iam = self._emulator.find("iam")
        if iam is None:
            return json_error(
                "ServiceException",
                "IAM enforcement is on but the emulator has no IAM component",
                500,
            )
        decision = iam.can_assume(role, LAMBDA_PRINCIPAL)
        if decision.allowed:
            return None
        log.warning(
            "Lambda %s refused the role %s: %s", request.operation, role, decision.message()
        )
        return json_error("InvalidParameterValueException", CANNOT_ASSUME)
