"""A request member checked as the service checks it, from botocore's copy of its API model.

moto skips the length and pattern constraints of members such as Firehose's DeliveryStreamName
or Lambda's FunctionName; the services answer a ValidationException in one wording, e.g.
`1 validation error detected: Value 'a/b' at 'functionName' failed to satisfy constraint:
Member must satisfy regular expression pattern: ...` (one clause per broken constraint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import botocore.session


@dataclass(frozen=True)
class Member:
    label: str  # the member as AWS names it in validation messages, e.g. "functionName"
    location: str | None  # "uri", or None for the JSON body
    wire_name: str  # path label or body key
    pattern: re.Pattern[str] | None
    min_length: int | None
    max_length: int | None


@cache
def members_named(service: str, name: str, label: str) -> dict[str, Member]:
    """Operation -> its member `name`, for each operation of `service` that has one."""
    model = botocore.session.get_session().get_service_model(service)
    members = {}
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        if shape is None or name not in shape.members:
            continue
        member = shape.members[name]
        pattern = member.metadata.get("pattern")
        members[operation] = Member(
            label=label,
            location=member.serialization.get("location"),
            wire_name=member.serialization.get("name", name),
            pattern=re.compile(pattern) if pattern else None,
            min_length=member.metadata.get("min"),
            max_length=member.metadata.get("max"),
        )
    return members


def constraint_errors(value: str, member: Member) -> list[str]:
    """AWS's wording of each constraint `value` breaks (empty when it is valid)."""
    problems = []
    if member.min_length is not None and len(value) < member.min_length:
        problems.append(f"Member must have length greater than or equal to {member.min_length}")
    if member.max_length is not None and len(value) > member.max_length:
        problems.append(f"Member must have length less than or equal to {member.max_length}")
    if member.pattern is not None and value and not member.pattern.fullmatch(value):
        problems.append(f"Member must satisfy regular expression pattern: {member.pattern.pattern}")
    return problems


def validation_message(value: str, label: str, problems: list[str]) -> str:
    """The message of AWS's ValidationException (one clause per broken constraint)."""
    count = len(problems)
    noun = "validation error" if count == 1 else "validation errors"
    clauses = "; ".join(
        f"Value '{value}' at '{label}' failed to satisfy constraint: {problem}"
        for problem in problems
    )
    return f"{count} {noun} detected: {clauses}"
