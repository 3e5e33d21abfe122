"""How fast the parsed bucket's objects load into pandas, next to pyarrow's own JSON reader.

    .venv/bin/python bench/analysis.py [--quick] [--messages N] [--repeat N]

The parsed objects of a run are made as the pipeline makes them: N ~260-byte telemetry messages
(50 devices) go through the real transform (`pipeline.handler.lambda_handler`, in events of
~1 MiB, one per processor call), and each event's Ok lines become one gzip batch object
(`pipeline.batches.write_batch`), as Firehose writes them to the parsed bucket. Then, best of N:
- load:  `pipeline.analysis.load_parsed(objects)` (each object read by pyarrow, gzip included,
  on a thread per core; tables concatenated; columns in the lines' order; pandas);
- floor: `pyarrow.json.read_json` of the same lines already gunzipped and concatenated, then
  `to_pandas()` (no schema, no decompression: the least any JSON-lines reader must do);
- the ratio floor/load (target >= 0.5) and both rates in rows/s.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import io
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from transform import make_event  # noqa: E402

from pipeline import batches  # noqa: E402
from pipeline.analysis import load_parsed  # noqa: E402
from pipeline.handler import lambda_handler  # noqa: E402

MIB = 1 << 20


def parsed_objects(messages: int, message_bytes: int = 0) -> list[bytes]:
    """The parsed bucket's gzip objects for `messages` messages (~1 MiB of input per object)."""
    event, datas = make_event(1 * MIB, message_bytes)
    per_event = len(datas)
    out = []
    left = messages
    while left > 0:
        records = event["records"][: min(per_event, left)]
        response = lambda_handler({**event, "records": records}, None)
        lines = [base64.b64decode(r["data"]) for r in response["records"] if r["result"] == "Ok"]
        # write_batch adds the separator; the transform's lines already end with one.
        out.append(batches.write_batch([line.rstrip(b"\n") for line in lines]))
        left -= len(records)
    return out


def best(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 messages, 3 repetitions")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--message-bytes", type=int, default=0, help="message size (0: ~230 B)")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.repeat = 20_000, 3
    logging.getLogger("pipeline.handler").setLevel(logging.ERROR)

    import pyarrow.json as pj

    started = time.perf_counter()
    objects = parsed_objects(args.messages, args.message_bytes)
    made_s = time.perf_counter() - started
    joined = b"".join(gzip.decompress(o) for o in objects)
    gz_bytes = sum(len(o) for o in objects)
    load_s, frame = best(lambda: load_parsed(objects), args.repeat)
    floor_s, table = best(lambda: pj.read_json(io.BytesIO(joined)).to_pandas(), args.repeat)
    rows = len(frame)
    assert rows == len(table) == args.messages, (rows, len(table), args.messages)
    print(
        f"{args.messages:,} messages -> {len(objects)} parsed objects, {gz_bytes / MIB:.1f} MiB "
        f"gzip, {len(joined) / MIB:.1f} MiB of JSON lines (made in {made_s:.1f} s)\n"
        f"load_parsed:         {load_s:.3f} s = {rows / load_s:>9,.0f} rows/s "
        f"({len(frame.columns)} columns)\n"
        f"pyarrow.json floor:  {floor_s:.3f} s = {rows / floor_s:>9,.0f} rows/s\n"
        f"ratio floor/load:    {floor_s / load_s:.2f} (target >= 0.50)",
        flush=True,
    )


if __name__ == "__main__":
    main()
