"""Write the recorded Firehose transformation event (and, on request, its expected response).

    python data/events/make_event.py              # writes firehose-transform.json
    python data/events/make_event.py --expected   # also writes firehose-transform.expected.json

The event is what Firehose sends the transform Lambda (Firehose developer guide,
"data-transformation"): `invocationId`, `deliveryStreamArn`, `region` and `records`, each with a
`recordId`, `approximateArrivalTimestamp` (epoch ms) and base64 `data`. Each record's data is
what the topic rule `SELECT topic() AS topic, * FROM 'iot-test-topic/+'` with the Firehose
action's "\\n" separator sends: the message as compact JSON with `topic` first, then "\\n".

Good records: the first eight messages of data/telemetry.jsonl (two per piece of equipment) and
three edge cases (an ISO `ts` clock with an array field and deeper nesting; no device clock; a
payload field named like an added field). Bad records, which must come back ProcessingFailed:
text that is not JSON, truncated JSON, a JSON array, bytes that are not UTF-8, an empty record,
and a JSON object without `topic`.

The expected response was generated once with `--expected` and then reviewed record by record
against the rules in pipeline/transform.py (see data/events/README.md); regenerate it only
together with such a review, since tests/unit/test_handler_layout.py compares against it.
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TELEMETRY = HERE.parent / "telemetry.jsonl"
TOPIC_ROOT = "iot-test-topic"
ARRIVAL_START_MS = 1_795_000_000_412  # Firehose's clock, a little behind the devices'
STREAM_ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/iot-core-pipeline-dev-stream"


def rule_output(equipment: str, payload: dict) -> bytes:
    """What `SELECT topic() AS topic, *` plus separator "\\n" hands Firehose for one message."""
    message = {"topic": f"{TOPIC_ROOT}/{equipment}", **payload}
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def messages() -> list[bytes]:
    lines = [json.loads(line) for line in TELEMETRY.read_text().splitlines()]
    good = [rule_output(m["equipment"], m["payload"]) for m in lines if "payload" in m][:8]
    edge = [
        rule_output(
            "pump-02",
            {
                "device_id": "pump-02",
                "ts": "2026-11-18T11:06:42.5+01:00",
                "temperature_c": 51.02,
                "vibration_mm_s": [2.41, 2.52, 2.47],
                "status": {"code": 1, "message": "check seal", "detail": {"seal": "worn"}},
            },
        ),
        rule_output("conveyor-01", {"device_id": "conveyor-01", "temperature_c": 35.1}),
        rule_output(
            "compressor-01",
            {"device_id": "compressor-01", "timestamp": 1795000002018, "equipment_id": "C-01"},
        ),
    ]
    bad = [
        b"temperature=48.2;vibration=2.0\n",  # a device that does not speak JSON
        b'{"topic":"iot-test-topic/pump-02","temperature_c": 51.3, "vibration_mm_s": \n',
        b"[1, 2, 3]\n",  # valid JSON, but not an object
        b"\xff\xfe\x00bad\n",  # not UTF-8
        b"",  # an empty record
        b'{"device_id":"pump-01","temperature_c":48.0}\n',  # no topic: a rule without topic()
    ]
    # Bad records interleaved with good ones, as they arrive in a real batch.
    return good[:3] + bad[:2] + good[3:6] + bad[2:4] + edge + good[6:] + bad[4:]


def event() -> dict:
    records = []
    for i, data in enumerate(messages()):
        records.append(
            {
                # Firehose record ids are long opaque strings; these keep the shape and the order.
                "recordId": f"4965286372948176523480971530468302849125760{i:014d}",
                "approximateArrivalTimestamp": ARRIVAL_START_MS + 250 * i,
                "data": base64.b64encode(data).decode(),
            }
        )
    return {
        "invocationId": "3f2c9b7e-1d4a-4c8e-9f0b-6a5d2e7c1b90",
        "deliveryStreamArn": STREAM_ARN,
        "region": "us-east-1",
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", action="store_true", help="also write the expected output")
    args = parser.parse_args()
    recorded = event()
    (HERE / "firehose-transform.json").write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"wrote {len(recorded['records'])} records to firehose-transform.json")
    if args.expected:
        from pipeline.handler import lambda_handler

        response = lambda_handler(recorded, None)
        (HERE / "firehose-transform.expected.json").write_text(
            json.dumps(response, indent=2) + "\n"
        )
        print("wrote firehose-transform.expected.json: review it before committing")


if __name__ == "__main__":
    main()
