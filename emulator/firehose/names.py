"""The DeliveryStreamName of every Firehose operation, checked as Firehose checks it (moto does
not): length 1-64 and the pattern [a-zA-Z0-9_.-]+ of the API reference
(https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html), taken
from botocore's copy of the service model. A name that passed never holds "/", and the spool
path adds nothing else from a request without checking it (`spool_path`).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import botocore.session

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error

# What the spool's directories are made of: an account id and a region name.
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


class UnsafeName(ValueError):
    """A name that must not become part of a path."""


@cache
def _constraints() -> dict[str, tuple[re.Pattern[str], int, int]]:
    """Operation -> (pattern, min, max) of its DeliveryStreamName member."""
    model = botocore.session.get_session().get_service_model("firehose")
    out = {}
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        if shape is None or "DeliveryStreamName" not in shape.members:
            continue
        meta = shape.members["DeliveryStreamName"].metadata
        out[operation] = (re.compile(meta["pattern"]), int(meta["min"]), int(meta["max"]))
    return out


def _problems(value: str, pattern: re.Pattern[str], low: int, high: int) -> list[str]:
    problems = []
    if len(value) < low:
        problems.append(f"Member must have length greater than or equal to {low}")
    if len(value) > high:
        problems.append(f"Member must have length less than or equal to {high}")
    if value and not pattern.fullmatch(value):
        problems.append(f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return problems


def check_stream_name(request: AwsRequest) -> AwsResponse | None:
    """ValidationException, in AWS's wording, for a DeliveryStreamName Firehose would refuse."""
    constraint = _constraints().get(request.operation or "")
    if constraint is None:
        return None
    try:
        body = request.json()
    except ValueError:
        return None  # moto answers a malformed body itself
    value = body.get("DeliveryStreamName") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return None
    problems = _problems(value, *constraint)
    if not problems:
        return None
    count = len(problems)
    clauses = "; ".join(
        f"Value '{value}' at 'deliveryStreamName' failed to satisfy constraint: {p}"
        for p in problems
    )
    noun = "validation error" if count == 1 else "validation errors"
    return json_error("ValidationException", f"{count} {noun} detected: {clauses}")


def register(gateway: Gateway) -> None:
    for operation in _constraints():
        gateway.on("firehose", operation, check_stream_name)


def spool_path(root: Path, account_id: str, region: str, name: str) -> Path:
    """`<root>/<account>/<region>/<name>.spool`, each part checked: never outside `root`."""
    pattern, low, high = _constraints()["CreateDeliveryStream"]
    if _problems(name, pattern, low, high):
        raise UnsafeName(f"delivery stream name {name!r} is not [a-zA-Z0-9_.-]{{1,64}}")
    if not _ACCOUNT.fullmatch(account_id) or not _REGION.fullmatch(region):
        raise UnsafeName(f"account {account_id!r} / region {region!r} is not a valid pair")
    # "." and ".." are valid stream names; with the suffix they stay file names in the region
    # directory ("..spool", "...spool").
    return Path(root) / account_id / region / f"{name}.spool"
