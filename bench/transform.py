"""How fast the Firehose transformation Lambda handler is, next to a bare JSON loop (the floor).

    .venv/bin/python bench/transform.py [--quick] [--repeat N]

Events of 1 MiB and 3 MiB of record data (what the processor's BufferSizeInMBs counts), made of
~260-byte telemetry messages as the topic rule writes them (`{"topic": ..., <payload>}\\n`),
base64 in a Firehose transformation event. For each size, in the same run:
- handler: `pipeline.handler.lambda_handler(event, None)`, records/s (best of N);
- floor:   `json.dumps(json.loads(data))` over the same records' decoded bytes (best of N;
  the three measurements take turns, so that they see the same load on a shared machine);
- floor+b64: the same with base64 decode/encode, which any Firehose transform must do;
- the ratios handler/floor (target >= 0.5) and the handler's peak memory (tracemalloc, one run).
A 3 MiB event's response exceeds Lambda's 6 MB response quota; the handler then returns the
records that do not fit as ProcessingFailed ("response size"), which is counted and shown.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.handler import lambda_handler  # noqa: E402

MIB = 1 << 20


def message(i: int, size: int = 0) -> bytes:
    """One rule output record: the ~200-byte payload with the rule's `topic` merged in; with
    `size`, padded by a `note` field to about `size` bytes."""
    device = f"pump-{i % 50:02d}"
    text = (
        f'{{"topic":"iot-test-topic/{device}","device_id":"{device}",'
        f'"timestamp":{1795000000000 + i * 10},"temperature_c":{40 + (i % 300) / 10:.2f},'
        f'"vibration_mm_s":2.171,"pressure_kpa":316.0,"status":{{"code":0,"message":"ok"}},'
        f'"sequence":{i},"site":"plant-a"'
    )
    if size > len(text) + 12:
        text += ',"note":"' + "x" * (size - len(text) - 12) + '"'
    return (text + "}\n").encode()


def make_event(size: int, message_bytes: int = 0) -> tuple[dict, list[bytes]]:
    datas, total, i = [], 0, 0
    while total < size:
        data = message(i, message_bytes)
        datas.append(data)
        total += len(data)
        i += 1
    records = [
        {
            "recordId": f"{i:056d}",
            "approximateArrivalTimestamp": 1795000000000 + i,
            "data": base64.b64encode(d).decode(),
        }
        for i, d in enumerate(datas)
    ]
    event = {
        "invocationId": "bench",
        "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench",
        "region": "us-east-1",
        "records": records,
    }
    return event, datas


def best(fns: list, repeat: int) -> list[float]:
    """Each function's best time of `repeat` runs, the functions taking turns: on a shared
    machine, the handler and its floors then see the same load."""
    times = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            times[i] = min(times[i], time.perf_counter() - started)
    return times


def floor(datas: list[bytes]) -> None:
    for data in datas:
        json.dumps(json.loads(data), separators=(",", ":"))


def floor_b64(event: dict) -> None:
    for record in event["records"]:
        out = json.dumps(json.loads(base64.b64decode(record["data"])), separators=(",", ":"))
        base64.b64encode(out.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--event-mib", default="1,3", help="comma-separated event sizes (MiB)")
    parser.add_argument("--message-bytes", type=int, default=0, help="message size (0: ~230 B)")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    logging.getLogger("pipeline.handler").setLevel(logging.ERROR)  # the log line is not measured

    for size in (int(float(m) * MIB) for m in args.event_mib.split(",")):
        event, datas = make_event(size, args.message_bytes)
        n = len(datas)
        response = lambda_handler(event, None)
        failed = sum(r["result"] != "Ok" for r in response["records"])
        handler_s, floor_s, floor_b64_s = best(
            [
                lambda e=event: lambda_handler(e, None),
                lambda d=datas: floor(d),
                lambda e=event: floor_b64(e),
            ],
            repeat,
        )
        tracemalloc.start()
        lambda_handler(event, None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        event_bytes = len(json.dumps(event))
        print(
            f"{size / MIB:g} MiB event ({n:,} records of {len(datas[0])} B, "
            f"{event_bytes / MIB:.2f} MiB as JSON): "
            f"handler {n / handler_s:>9,.0f} rec/s ({handler_s * 1000:.0f} ms); "
            f"floor json.loads+dumps {n / floor_s:>9,.0f} rec/s; "
            f"floor+base64 {n / floor_b64_s:>9,.0f} rec/s; "
            f"ratio to floor {floor_s / handler_s:.2f} (to floor+base64 "
            f"{floor_b64_s / handler_s:.2f}); peak memory {peak / MIB:.1f} MiB "
            f"({peak / event_bytes:.1f}x the event); ProcessingFailed {failed:,}",
            flush=True,
        )


if __name__ == "__main__":
    main()
