"""The Firehose transformation Lambda: decode the event, transform each record
(`pipeline.transform`), build the response (docs/parsed-records.md, "The batch and the
response"). Standard library only: the deployment zip holds just the handler modules."""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from pipeline.transform import OK, PROCESSING_FAILED, TransformedRecord, transform_record

# Lambda quotas: 6 MB response for synchronous invocations, as Firehose's (emulator: the same).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
LOGGED_FAILURES = 20  # failures named one by one in the log line; the rest are counted

logger = logging.getLogger(__name__)
_LAMBDA_JSON = json.JSONEncoder(check_circular=False)  # json.dumps' defaults, no cycle check


class InvalidEvent(ValueError):
    """The event is not a Firehose transformation event."""


def firehose_records(event: Any) -> list[dict[str, Any]]:
    """The event's records, checked for what the response needs (a recordId each)."""
    records = event.get("records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise InvalidEvent("not a Firehose transformation event: no 'records' list")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("recordId"), str):
            raise InvalidEvent(f"records[{i}] has no string 'recordId'")
    return records


def _entry(t: TransformedRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"recordId": t.record_id, "result": t.result, "data": t.data}
    if t.partition_keys:  # the stream's Prefix reads !{partitionKeyFromLambda:equipment_id}
        entry["metadata"] = {"partitionKeys": t.partition_keys}
    return entry


def firehose_response(transformed: list[TransformedRecord]) -> dict[str, list[dict]]:
    """The response Firehose expects: `{"records": [{recordId, result, data, metadata?}]}`."""
    return {"records": [_entry(t) for t in transformed]}


def _size(response: Any) -> int:
    # As Lambda's runtime writes it: json.dumps' defaults, ASCII (one byte a character).
    return len(_LAMBDA_JSON.encode(response))


def _size_bound(transformed: list[TransformedRecord]) -> int:
    """At least the response's JSON size, without encoding it (that is a sixth of the handler's
    time): Ok data is base64, which JSON writes as it is; other entries are measured."""
    ok = [t for t in transformed if t.result == OK]
    pairs = [key + value for t in ok for key, value in (t.partition_keys or {}).items()]
    text = "".join([t.record_id for t in ok] + pairs)
    # Printable ASCII takes at most 2 bytes a character (\" and \\), any other at most 12
    # ("\ud83d\ude00"); fixed: 16 for {"records": []}, 8 a key pair, 90 an entry (81 used).
    per_char = 2 if text.isascii() and text.isprintable() else 12
    bound = 16 + per_char * len(text) + 8 * len(pairs) + sum(len(t.data) + 90 for t in ok)
    return bound + sum(_size(_entry(t)) + 2 for t in transformed if t.result != OK)


def fit_response(
    records: list[dict[str, Any]],
    transformed: list[TransformedRecord],
    limit: int = MAX_RESPONSE_BYTES,
) -> list[TransformedRecord]:
    """Keep the response within `limit` bytes, greedy in input order: a record keeps its result
    if the response fits with every later record failed (its original data, never larger)."""
    if _size_bound(transformed) <= limit or _size(firehose_response(transformed)) <= limit:
        return transformed
    reason = (
        f"response size: the transformed batch would exceed Lambda's {limit}-byte response "
        "limit; lower the Firehose processor's BufferSizeInMBs"
    )
    failed = [
        TransformedRecord(t.record_id, PROCESSING_FAILED, record.get("data", ""), reason)
        for record, t in zip(records, transformed, strict=True)
    ]
    size = _size(firehose_response(failed))  # every record failed, so far
    if size > limit:
        raise ValueError(f"even unchanged, the records exceed {limit} bytes: {reason}")
    out = []
    for t, t_failed in zip(transformed, failed, strict=True):
        # Entries are independent: keeping one changes the response's size by the difference
        # of the two forms' JSON sizes.
        grown = _size(_entry(t)) - _size(_entry(t_failed))
        keep = t.result == PROCESSING_FAILED or size + grown <= limit  # a failure keeps its reason
        out.append(t if keep else t_failed)
        size += grown if keep else 0
    return out


def _log_outcome(event: dict[str, Any], transformed: list[TransformedRecord]) -> None:
    failed = [t for t in transformed if t.result == PROCESSING_FAILED]
    first_failures = failed[:LOGGED_FAILURES]
    summary = {
        "invocationId": event.get("invocationId"),
        "records": len(transformed),
        "ok": len(transformed) - len(failed),
        "processingFailed": len(failed),
        "reasons": dict(Counter(t.reason for t in failed).most_common()),
        "failures": [{"recordId": t.record_id, "reason": t.reason} for t in first_failures],
    }
    (logger.warning if failed else logger.info)(json.dumps(summary))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict]]:
    """Firehose data transformation: one flat JSON line per IoT message."""
    records = firehose_records(event)
    transformed = fit_response(records, [transform_record(record) for record in records])
    _log_outcome(event, transformed)
    return firehose_response(transformed)


if __name__ == "__main__":  # python -m pipeline.handler [event.json]: see pipeline.invoke
    from pipeline.invoke import main

    raise SystemExit(main())
