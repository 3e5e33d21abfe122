"""Generate the workbook's sample telemetry: deterministic, realistic, with a few bad messages.

    python data/generate.py            # writes data/telemetry.jsonl (committed)

Each line is one MQTT message to publish under `<topic root>/<equipment id>`:
  {"equipment": "pump-01", "payload": {...}}          a good JSON telemetry message
  {"equipment": "pump-01", "raw": "text"}             published as these UTF-8 bytes (not JSON)
  {"equipment": "pump-01", "raw_base64": "..."}       published as these bytes (not UTF-8)
The bad ones are on purpose: IoT Core acknowledges them all, but the topic rule cannot merge a
payload that is not a JSON object with `topic()` (no action, no errorAction); the template's
second rule forwards those base64-encoded and the Lambda marks them ProcessingFailed, like the
JSON one it cannot use. Notebooks 04 and 05 review them.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import random
from pathlib import Path

SEED = 20261126
START_MS = 1_795_000_000_000  # 2026-11-18T11:06:40Z: a fixed device clock, so output is stable
PERIOD_MS = 1_000
EQUIPMENT = {
    # id: (kind, base temperature C, base vibration mm/s, base pressure kPa)
    "pump-01": ("pump", 48.0, 2.1, 310.0),
    "pump-02": ("pump", 51.0, 2.6, 295.0),
    "compressor-01": ("compressor", 72.0, 4.4, 780.0),
    "conveyor-01": ("conveyor", 35.0, 1.2, 101.3),
}
BAD_MESSAGES = [
    # Valid JSON, but its own numeric `topic` replaces the one the rule's
    # `SELECT topic() AS topic, *` put first: the transform rejects it (ProcessingFailed).
    {
        "equipment": "pump-02",
        "payload": {"device_id": "pump-02", "topic": 7, "temperature_c": 50.4},
    },
    {"equipment": "pump-01", "raw": "temperature=48.2;vibration=2.0"},
    {"equipment": "pump-02", "raw": '{"temperature_c": 51.3, "vibration_mm_s": '},
    {"equipment": "compressor-01", "raw": "[1, 2, 3]"},
    {"equipment": "conveyor-01", "raw_base64": base64.b64encode(b"\xff\xfe\x00bad").decode()},
]


def telemetry(messages_per_equipment: int, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    lines = []
    for i in range(messages_per_equipment):
        for equipment, (kind, temp, vib, pressure) in EQUIPMENT.items():
            drift = math.sin(i / 40.0)
            fault = kind == "compressor" and 120 <= i < 140  # a short overheating episode
            payload = {
                "device_id": equipment,
                "timestamp": START_MS + i * PERIOD_MS + rng.randint(0, 40),
                "temperature_c": round(
                    temp + 3 * drift + rng.gauss(0, 0.4) + (9 if fault else 0), 2
                ),
                "vibration_mm_s": round(max(0.0, vib + 0.3 * drift + rng.gauss(0, 0.15)), 3),
                "pressure_kpa": round(pressure + rng.gauss(0, pressure * 0.01), 1),
                "status": {"code": 2 if fault else 0, "message": "overheat" if fault else "ok"},
                "sequence": i,
            }
            lines.append({"equipment": equipment, "payload": payload})
    # Bad messages at fixed places, so every run publishes them in the same order.
    for k, bad in enumerate(BAD_MESSAGES):
        lines.insert(min(len(lines), (k + 1) * len(lines) // (len(BAD_MESSAGES) + 1)), bad)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages-per-equipment", type=int, default=250)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("telemetry.jsonl"))
    args = parser.parse_args()
    lines = telemetry(args.messages_per_equipment)
    args.out.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    print(f"wrote {len(lines)} messages to {args.out}")


if __name__ == "__main__":
    main()
