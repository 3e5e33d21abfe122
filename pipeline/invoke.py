"""Run the transform handler locally on a recorded Firehose event and show what it returned.

    python -m pipeline.handler [event.json | -]     # default: data/events/firehose-transform.json
    python -m pipeline.invoke  [event.json | -] [--json]

Prints one line per record (recordId, result, the decoded output line or the failure reason)
and a one-line summary; `--json` prints the handler's exact response instead. Not shipped in
the Lambda zip: it reads repository paths.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.handler import firehose_records, fit_response, lambda_handler
from pipeline.transform import transform_record


def load_event(source: str | None) -> dict[str, Any]:
    """The event from a file, stdin (`-`) or the recorded default."""
    if source == "-":
        return json.load(sys.stdin)
    if source is None:
        from pipeline.paths import EVENTS

        source = str(EVENTS / "firehose-transform.json")
    return json.loads(Path(source).read_text(encoding="utf-8"))


def describe(event: dict[str, Any]) -> list[str]:
    """Readable lines: each record's result and decoded output (or reason), then the counts."""
    records = firehose_records(event)
    transformed = fit_response(records, [transform_record(r) for r in records])
    lines = []
    for i, t in enumerate(transformed):
        if t.result == "Ok":
            shown = base64.b64decode(t.data).decode("utf-8").rstrip("\n")
        else:
            shown = f"reason: {t.reason}"
        # Firehose record ids share long prefixes: the position and the id's tail tell them apart.
        lines.append(f"#{i:<4} …{t.record_id[-8:]}  {t.result:<16}  {shown}")
    ok = sum(t.result == "Ok" for t in transformed)
    lines.append(f"{len(transformed)} records: {ok} Ok, {len(transformed) - ok} ProcessingFailed")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.handler", description=__doc__)
    parser.add_argument("event", nargs="?", help="event JSON file, or - for stdin")
    parser.add_argument("--json", action="store_true", help="print the raw handler response")
    args = parser.parse_args(argv)
    event = load_event(args.event)
    if args.json:
        print(json.dumps(lambda_handler(event, None), indent=2))
    else:
        print("\n".join(describe(event)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
