"""The Firehose transformation Lambda: `pipeline.handler.lambda_handler`.

Thin on purpose: decode the event, transform each record (`pipeline.transform`), build the
response. Standard library only, so the deployment zip holds just this package's handler modules.

Contract (Firehose developer guide, "data-transformation" and
"data-transformation-status-model"): every input `recordId` comes back exactly once, in input
order, with `result` Ok or ProcessingFailed and base64 `data`. One bad record never fails the
invocation; an invalid event (no `records` list, a record without `recordId`) does, so Firehose
retries it and finally counts the batch as processing-failed.

Response size: a synchronous Lambda response is at most 6 MB (6,291,456 bytes; Lambda developer
guide, "Lambda quotas"); a larger one fails the whole invocation (`Function.ResponseSizeTooLarge`).
Transformed lines are larger than their input (topic levels and times added, then base64): for
the sample telemetry (~200-byte messages) the response is ~2.7x the raw input, so 6 MB is reached
at ~2.2 MB of input (measured: 3 MB of input left 8,898 of 15,000 records over the limit). Keep
the processor's BufferSizeInMBs at 2 or less (the template's default is 1).

When the response would not fit, records are kept Ok in input order while they fit, and the
others come back ProcessingFailed with their original data and the reason "response size":
Firehose then writes them to its `processing-failed/` error output, every
recordId stays accounted for, and the fix is a smaller processor `BufferSizeInMBs`.

Why a record failed is not part of the contract's response; it goes to the function's log, which
Firehose's docs point to for ProcessingFailed records ("data-transformation-failure-handling"):
one JSON line per invocation with the counts, the count of each reason and the first failures.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.transform import OK, PROCESSING_FAILED, TransformedRecord, transform_record

# Lambda quotas: 6 MB invocation response for synchronous invocations (Firehose invokes
# synchronously). The emulator's runtime enforces the same number.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# Failures named one by one in the log line; the rest are counted.
LOGGED_FAILURES = 20

logger = logging.getLogger(__name__)


class InvalidEvent(ValueError):
    """The event is not a Firehose transformation event."""


def firehose_records(event: Any) -> list[dict[str, Any]]:
    """The event's records, checked for what the response needs (a recordId each)."""
    records = event.get("records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise InvalidEvent(
            "not a Firehose transformation event: expected an object with a 'records' list "
            "(invocationId, deliveryStreamArn, region, records)"
        )
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("recordId"), str):
            raise InvalidEvent(f"records[{i}] has no string 'recordId'")
    return records


# Entry sizes are computed, not serialised: json.dumps of every entry (twice, Ok and failed form)
# cost a fifth of the handler's time. awslambdaric serialises the response with json.dumps'
# defaults: separators ", " and ": ", ensure_ascii (so the text is ASCII: one byte a character).
# An entry is this frame plus its three values as JSON; a string of printable ASCII without `"`
# or `\` (every base64 text, the usual record id) is written as itself between quotes.
_ENTRY_FRAME = len(json.dumps({"recordId": "", "result": "", "data": ""})) - 3 * len('""')
_ENVELOPE = len(json.dumps({"records": []}))
_SEPARATOR = len(", ")
# Bytes a JSON string writes as themselves (ASCII 0x20-0x7e but `"` and `\`): deleting them from
# a plain text leaves nothing.
_PLAIN_BYTES = bytes(b for b in range(0x20, 0x7F) if b not in b'"\\')
_CHUNK = 32  # values checked together: a few dozen KB, which stays in the CPU's cache


def _json_length(value: Any) -> int:
    """len(json.dumps(value).encode()), for one value."""
    if type(value) is str and value.isascii():
        if not value.encode("ascii").translate(None, _PLAIN_BYTES):
            return len(value) + 2
    return len(json.dumps(value).encode("utf-8"))


class _Lengths:
    """len(json.dumps(v).encode()) of each value of a list, and their total.

    Plain strings (printable ASCII without `"` or `\\`: every base64 text, the usual record id)
    are written by json.dumps as themselves between quotes, so their length is arithmetic. They
    are recognised a few dozen at a time (bounded memory) in one pass over their concatenation;
    a chunk that is not all plain is measured value by value.

    `known_plain` marks values known to be plain strings without looking (see `fit_response`):
    only the others are scanned, which matters for large records (~0.3 ns a byte).
    """

    def __init__(self, values: list[Any], known_plain: list[bool] | None = None) -> None:
        self.count = len(values)
        self.values = values
        self.known_plain = known_plain
        self.known_total = 0
        if known_plain is not None:
            known = [len(v) for v, plain in zip(values, known_plain, strict=True) if plain]
            self.known_total = sum(known) + 2 * len(known)
            values = [v for v, plain in zip(values, known_plain, strict=True) if not plain]
        self.chunks: list[tuple[list[Any], int | None]] = []
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            try:
                joined = "".join(chunk)
            except TypeError:  # not all strings
                self.chunks.append((chunk, None))
                continue
            plain = joined.isascii() and not joined.encode("ascii").translate(None, _PLAIN_BYTES)
            self.chunks.append((chunk, len(joined) if plain else None))

    def total(self) -> int:
        total = self.known_total
        for chunk, plain_length in self.chunks:
            if plain_length is None:
                total += sum(_json_length(v) for v in chunk)
            else:
                total += plain_length + 2 * len(chunk)
        return total

    def each(self) -> list[int]:
        if self.known_plain is not None:  # the unknown ones (failed records' data) one by one
            return [
                len(v) + 2 if plain else _json_length(v)
                for v, plain in zip(self.values, self.known_plain, strict=True)
            ]
        out: list[int] = []
        for chunk, plain_length in self.chunks:
            if plain_length is None:
                out.extend([_json_length(v) for v in chunk])
            else:
                out.extend([len(v) + 2 for v in chunk])
        return out


def _entry_values(
    records: list[dict[str, Any]], transformed: list[TransformedRecord]
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """The values the entries' sizes depend on: record ids, results, data, original data."""
    return (
        [t.record_id for t in transformed],
        [t.result for t in transformed],
        [t.data for t in transformed],
        [r.get("data", "") for r in records],
    )


def _lengths(
    records: list[dict[str, Any]], transformed: list[TransformedRecord], from_transform: bool
) -> list[_Lengths]:
    """The `_Lengths` of the entries' record ids, results, data and original data."""
    ids, results, datas, originals = _entry_values(records, transformed)
    if not from_transform:
        return [_Lengths(ids), _Lengths(results), _Lengths(datas), _Lengths(originals)]
    # transform_record gives an Ok record base64 data of its own (binascii.b2a_base64), and only
    # after its input data decoded as strict base64 (binascii.a2b_base64, strict_mode): both are
    # then strings of the base64 alphabet, plain. Other records' data is looked at.
    ok = [t.result == OK for t in transformed]
    return [
        _Lengths(ids),
        _Lengths(results),
        _Lengths(datas, [k and type(d) is str for k, d in zip(ok, datas, strict=True)]),
        _Lengths(originals, [k and type(o) is str for k, o in zip(ok, originals, strict=True)]),
    ]


def entry_sizes(
    records: list[dict[str, Any]],
    transformed: list[TransformedRecord],
    from_transform: bool = False,
) -> tuple[list[int], list[int]]:
    """Each response entry's size in bytes, as transformed and in its ProcessingFailed form
    (original data), each with the ", " that precedes it in the list (all but the first).
    `from_transform`: as in `fit_response`."""
    return _sizes(transformed, _lengths(records, transformed, from_transform))


def _sizes(
    transformed: list[TransformedRecord], lengths: list[_Lengths]
) -> tuple[list[int], list[int]]:
    ids, results, datas, originals = (x.each() for x in lengths)
    failed_result = _json_length(PROCESSING_FAILED)
    frames = [_ENTRY_FRAME + _SEPARATOR + i for i in ids]  # each entry's ", " but the first's
    if frames:
        frames[0] -= _SEPARATOR
    size = [f + r + d for f, r, d in zip(frames, results, datas, strict=True)]
    size_failed = [
        # A record that already failed is returned as it is (its data is the original).
        ok if t.result == PROCESSING_FAILED else f + failed_result + o
        for t, ok, f, o in zip(transformed, size, frames, originals, strict=True)
    ]
    return size, size_failed


def _surely_fits(lengths: list[_Lengths], limit: int) -> bool:
    """Whether every record fits in either of its forms: then the greedy fitting keeps them all.

    An upper bound of the sum over records of max(Ok size, failed size): each entry counted with
    both its data and both its results. Computed from totals, without a step per record: below
    ~2 MB of request (the template's 1 MB buffer), this is all the fitting costs.
    """
    n = lengths[0].count
    if not n:
        return False
    ids, results, datas, originals = (x.total() for x in lengths)
    bound = (
        _ENVELOPE
        + n * (_ENTRY_FRAME + _json_length(PROCESSING_FAILED))
        + (n - 1) * _SEPARATOR
        + ids
        + results
        + datas
        + originals
    )
    return bound <= limit


def fit_response(
    records: list[dict[str, Any]],
    transformed: list[TransformedRecord],
    limit: int = MAX_RESPONSE_BYTES,
    from_transform: bool = False,
) -> list[TransformedRecord]:
    """Keep the response within `limit` bytes by failing the records that do not fit.

    `from_transform`: every record of `transformed` is `transform_record`'s result for the
    record at the same place, so an Ok record's data and input data are known base64 text
    (their sizes then need no look at their bytes). The handler says so; other callers need not.

    Greedy in input order: a record keeps its result if the response still fits with every
    later record reduced to its ProcessingFailed form (original data), which is never larger
    than the request Lambda already accepted.
    """
    reason = (
        f"response size: the transformed batch would exceed Lambda's {limit}-byte response "
        "limit; lower the Firehose processor's BufferSizeInMBs"
    )
    if len(records) != len(transformed):
        raise ValueError(
            f"{len(records)} records but {len(transformed)} transformed: they must pair up"
        )
    lengths = _lengths(records, transformed, from_transform)
    if _surely_fits(lengths, limit):
        return list(transformed)
    size, size_failed = _sizes(transformed, lengths)
    rest = sum(size_failed) + _ENVELOPE
    if rest > limit:
        raise ValueError(
            f"the response cannot fit Lambda's {limit}-byte limit even with every record "
            "returned unchanged: lower the Firehose processor's BufferSizeInMBs"
        )
    used = 0
    out: list[TransformedRecord] = []
    originals = lengths[3].values
    for t, ok, failed, original in zip(transformed, size, size_failed, originals, strict=True):
        rest -= failed
        if used + ok + rest <= limit:
            out.append(t)
            used += ok
        else:
            if t.result != PROCESSING_FAILED:
                t = TransformedRecord(t.record_id, PROCESSING_FAILED, original, reason)
            out.append(t)
            used += failed
    return out


def firehose_response(transformed: Iterable[TransformedRecord]) -> dict[str, list[dict]]:
    """The response Firehose expects: `{"records": [{recordId, result, data}, ...]}`."""
    # The entry of TransformedRecord.response_entry, written inline: one call less per record.
    return {
        "records": [
            {"recordId": t.record_id, "result": t.result, "data": t.data} for t in transformed
        ]
    }


def _log_outcome(event: dict[str, Any], transformed: list[TransformedRecord]) -> None:
    failed = [t for t in transformed if t.result == PROCESSING_FAILED]
    summary = {
        "invocationId": event.get("invocationId"),
        "records": len(transformed),
        "ok": sum(t.result == "Ok" for t in transformed),
        "processingFailed": len(failed),
        "reasons": dict(Counter(t.reason for t in failed).most_common()),
        "failures": [
            {"recordId": t.record_id, "reason": t.reason} for t in failed[:LOGGED_FAILURES]
        ],
    }
    (logger.warning if failed else logger.info)(json.dumps(summary))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict]]:
    """Firehose data transformation: one flat JSON line per IoT message."""
    records = firehose_records(event)
    transformed = fit_response(records, [transform_record(r) for r in records], from_transform=True)
    _log_outcome(event, transformed)
    return firehose_response(transformed)


if __name__ == "__main__":  # python -m pipeline.handler [event.json]: see pipeline.invoke
    from pipeline.invoke import main

    raise SystemExit(main())
