"""The DeliveryStreamName of every Firehose operation, checked as Firehose checks it (moto does
not): length 1-64 and the pattern [a-zA-Z0-9_.-]+ of the API reference
(https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html), taken
from botocore's copy of the service model. A name that passed never holds "/", and the spool
path adds nothing else from a request without checking it (`spool_path`).
"""

from __future__ import annotations

import re
from pathlib import Path

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error
from emulator.members import Member, constraint_errors, members_named, validation_message

# What the spool's directories are made of: an account id and a region name.
_ACCOUNT = re.compile(r"\d{12}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


class UnsafeName(ValueError):
    """A name that must not become part of a path."""


def _stream_name_members() -> dict[str, Member]:
    """Operation -> its DeliveryStreamName member, from Firehose's service model."""
    return members_named("firehose", "DeliveryStreamName", "deliveryStreamName")


def check_stream_name(request: AwsRequest) -> AwsResponse | None:
    """ValidationException, in AWS's wording, for a DeliveryStreamName Firehose would refuse."""
    member = _stream_name_members().get(request.operation or "")
    if member is None:
        return None
    try:
        body = request.json()
    except ValueError:
        return None  # moto answers a malformed body itself
    value = body.get("DeliveryStreamName") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return None
    problems = constraint_errors(value, member)
    if not problems:
        return None
    return json_error("ValidationException", validation_message(value, member.label, problems))


def register(gateway: Gateway) -> None:
    for operation in _stream_name_members():
        gateway.on("firehose", operation, check_stream_name)


def spool_path(root: Path, account_id: str, region: str, name: str) -> Path:
    """`<root>/<account>/<region>/<name>.spool`, each part checked: never outside `root`."""
    if constraint_errors(name, _stream_name_members()["CreateDeliveryStream"]):
        raise UnsafeName(f"delivery stream name {name!r} is not [a-zA-Z0-9_.-]{{1,64}}")
    if not _ACCOUNT.fullmatch(account_id) or not _REGION.fullmatch(region):
        raise UnsafeName(f"account {account_id!r} / region {region!r} is not a valid pair")
    # "." and ".." are valid stream names; with the suffix they stay file names in the region
    # directory ("..spool", "...spool").
    return Path(root) / account_id / region / f"{name}.spool"
