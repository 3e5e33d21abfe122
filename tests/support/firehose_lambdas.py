"""Firehose processor functions: deployed as real functions in the emulator's Lambda runtime
(this module's own source is the package: standard library only) and called directly by the
unit tests of the transformation contract."""

import base64
import json
from pathlib import Path
from typing import Any


def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Uppercases each record; "drop…" records are Dropped, "bad…" ones ProcessingFailed."""
    out = []
    for record in event["records"]:
        data = base64.b64decode(record["data"])
        if data.startswith(b"drop"):
            out.append({"recordId": record["recordId"], "result": "Dropped"})
        elif data.startswith(b"bad"):
            failed = {"recordId": record["recordId"], "result": "ProcessingFailed"}
            out.append({**failed, "data": record["data"]})
        else:
            upper = base64.b64encode(data.upper()).decode()
            out.append({"recordId": record["recordId"], "result": "Ok", "data": upper})
    return {"records": out}


def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("transform exploded")


def partition_keys(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Each JSON record, newline-terminated, with its `equipment` as the partition key (none
    when it has no such field)."""
    out = []
    for record in event["records"]:
        payload = json.loads(base64.b64decode(record["data"]))
        keys = {"equipment": payload.get("equipment")}
        if keys["equipment"] is None:
            keys = {}
        data = base64.b64encode(json.dumps(payload).encode() + b"\n").decode()
        out.append(
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": data,
                "metadata": {"partitionKeys": keys},
            }
        )
    return {"records": out}


SOURCE = Path(__file__).read_text()
