"""End to end: devices over mutual TLS -> topic rule -> Firehose -> Lambda -> both buckets.

    .venv/bin/python bench/e2e.py [--quick] [--devices 1,10,100] [--messages N] [--profile]
                                  [--iam-compare ROUNDS]

The emulator runs in its own process (`python -m emulator --ephemeral`, as `make run` starts
it); template.yaml is deployed unchanged with 1 s buffering intervals (Firehose and its Lambda
processor). For each device count, a fresh stack (its own Environment, so its own buckets) and
a fleet of things, one certificate each (signed from the device's CSR), one policy for all with
the thing-name variable; each device publishes M ~260-byte messages at QoS 1 to `<T>/<thing>`.

Figures: msg/s from the first publish to the moment the last parsed row is in S3 (polled every
0.2 s), PUBACK rate, and the zero-loss accounting:
    acknowledged == raw lines + rule errors      raw lines == parsed rows + processing-failed
(payloads that are not JSON objects, which the topic rule's SQL cannot evaluate and AWS would
drop with no errorAction, are raw lines too: template.yaml's NotJsonTopicRule forwards them and
they end as processing-failed, counted under "not a JSON object" in the failure reasons; the
bench's own messages are JSON objects with `run_id`, so it expects none)
With --iam-compare ROUNDS, emulators with IAM enforcement on and off alternate ROUNDS times
each, and the medians and on/off ratios of the rate and the CPU per message are printed.
With --profile, py-spy (pip install py-spy) records the emulator process during the 10-device run
and prints its top functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402

TOPIC_ROOT = "bench-topic"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def tree_cpu(pid: int) -> float:
    """CPU seconds of the emulator and its live children (the Lambda workers)."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_cpu(int(c)) for c in children)


def run_once(
    target,
    info,
    run_id: int,
    devices: int,
    messages: int,
    work: Path,
    profile: bool,
    payload_bytes: int = 0,
) -> dict:
    from pipeline import workbook
    from pipeline.ledger import Ledger

    environment = f"run{run_id}"  # its own buckets and prefixes
    stack_name = f"bench-e2e-{environment}"
    t0 = time.perf_counter()
    out = workbook.deploy(
        target,
        stack_name,
        {
            "Environment": environment,
            "IotTopicName": TOPIC_ROOT,
            "BucketNamePrefix": "bench",
            "BufferIntervalSeconds": "1",
            "ProcessorBufferIntervalSeconds": "1",
        },
    )
    deploy_s = time.perf_counter() - t0
    fleet = _common.make_fleet(
        target.client("iot"), devices, f"bench-{environment}", TOPIC_ROOT, work / "secrets"
    )
    accounting = _common.Accounting(target.client("s3"), out, environment)
    spy = None
    if profile:
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(info.pid),
                "--format",
                "raw",
                "--output",
                str(work / f"profile-{devices}.txt"),
                "--rate",
                "200",
                "--subprocesses",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
    cpu0 = tree_cpu(info.pid)
    run = _common.publish_fleet(
        info.mqtt_host,
        info.mqtt_port,
        info.root_ca_path,
        fleet,
        TOPIC_ROOT,
        messages,
        payload_bytes=payload_bytes,
    )
    done = accounting.wait_complete(run.acknowledged, timeout=120 + run.acknowledged / 500)
    cpu = tree_cpu(info.pid) - cpu0
    if spy is not None:
        spy.send_signal(2)
        spy.wait(30)
    elapsed = done["at"] - run.first_publish
    publish_s = run.last_puback - run.first_publish
    ledger = Ledger.of(done)
    return {
        "devices": devices,
        "payload_bytes": len(_common.payload(fleet[0].thing_name, messages, 0, payload_bytes)),
        "messages": messages,
        "deploy_s": deploy_s,
        "connect_s": run.connect_s,
        "acknowledged": run.acknowledged,
        "failed": run.failed,
        "errors": run.errors[:3],
        "puback_rate": run.acknowledged / publish_s if publish_s > 0 else 0.0,
        "e2e_s": elapsed,
        "e2e_rate": run.acknowledged / elapsed if elapsed > 0 else 0.0,
        "emulator_cpu_s": cpu,
        "cpu_us_per_msg": cpu / max(run.acknowledged, 1) * 1e6,
        "lost_before_raw": ledger.missing_before_raw(run.acknowledged),
        "lost_before_parsed": ledger.missing_before_parsed(),
        "failed_reasons": accounting.failed_reasons,
        **{k: done[k] for k in ("raw_lines", "rule_errors", "parsed_rows", "processing_failed")},
        "complete": done["complete"],
    }


def report(row: dict) -> None:
    print(
        f"{row['devices']:>4} devices x {row['messages']:>6} msgs of {row['payload_bytes']} B: "
        f"{row['acknowledged']:>7} acknowledged ({row['failed']} failed), "
        f"PUBACKs {row['puback_rate']:>7,.0f} msg/s, "
        f"first publish -> last parsed row {row['e2e_s']:6.2f} s = {row['e2e_rate']:>7,.0f} msg/s "
        f"(ratio to the 5,000 msg/s target {row['e2e_rate'] / 5000:.2f}); "
        f"connect {row['connect_s']:.2f} s; emulator CPU {row['emulator_cpu_s']:.1f} s "
        f"({row['cpu_us_per_msg']:.0f} us/msg)",
        flush=True,
    )
    print(
        f"      accounting: acknowledged {row['acknowledged']} = raw lines {row['raw_lines']} + "
        f"rule errors {row['rule_errors']} (missing {row['lost_before_raw']}); raw lines = "
        f"parsed rows {row['parsed_rows']} + processing-failed {row['processing_failed']} "
        f"(missing {row['lost_before_parsed']})"
        + (f"; failures {row['failed_reasons']}" if row["failed_reasons"] else "")
        + ("" if row["complete"] else "  INCOMPLETE (timed out)")
        + (f"; publish errors {row['errors']}" if row["errors"] else ""),
        flush=True,
    )


def run_series(counts: list[int], sizes: list[int], total: int, profile: bool) -> list[dict]:
    """One emulator process (IAM as IOT_EMULATOR_IAM says), each device count and size once."""
    from emulator import process
    from pipeline.target import open_target

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    port, mqtt_port = process.free_port(), process.free_port()
    info = process.ensure_running(
        port=port, mqtt_port=mqtt_port, ephemeral=True, log_path=work / "emulator.log"
    )
    rows = []
    try:
        target = open_target("local", port=port, mqtt_port=mqtt_port)
        for run_id, (devices, size) in enumerate((d, b) for b in sizes for d in counts):
            per_device = max(1, total // devices)
            row = run_once(
                target, info, run_id, devices, per_device, work, profile and devices == 10, size
            )
            report(row)
            rows.append(row)
    finally:
        process.stop(info)
        if profile:
            print(f"profiles kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def compare_iam(counts: list[int], sizes: list[int], total: int, rounds: int) -> list[dict]:
    """Alternate emulators with IAM enforcement on and off (`rounds` each) and print, per device
    count, the medians and the on/off ratios of the end-to-end rate and the CPU per message."""
    figures: dict[tuple[str, int], list[dict]] = {}
    rows = []
    for _ in range(rounds):
        for mode in ("on", "off"):
            os.environ["IOT_EMULATOR_IAM"] = mode
            print(f"-- IAM enforcement {mode}", flush=True)
            for row in run_series(counts, sizes, total, False):
                figures.setdefault((mode, row["devices"]), []).append(row)
                rows.append(row)
    os.environ.pop("IOT_EMULATOR_IAM", None)
    for devices in counts:
        on, off = figures[("on", devices)], figures[("off", devices)]
        rate = [statistics.median(r["e2e_rate"] for r in side) for side in (on, off)]
        cpu = [statistics.median(r["cpu_us_per_msg"] for r in side) for side in (on, off)]
        print(
            f"{devices:>4} devices, median of {rounds}: IAM on {rate[0]:,.0f} msg/s "
            f"({cpu[0]:.0f} us/msg), off {rate[1]:,.0f} msg/s ({cpu[1]:.0f} us/msg); "
            f"rate ratio on/off {rate[0] / rate[1]:.2f}, CPU ratio on/off {cpu[0] / cpu[1]:.2f}"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 devices, ~3,000 messages")
    parser.add_argument("--devices", default="1,10,100", help="comma-separated device counts")
    parser.add_argument(
        "--messages", type=int, default=20_000, help="total messages per device count"
    )
    parser.add_argument(
        "--payload-bytes", default="0", help="comma-separated message sizes (0: ~260 B)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the 10-device run")
    parser.add_argument(
        "--iam-compare",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="alternate IAM enforcement on and off ROUNDS times each and print the ratios",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.devices.split(",")]
    total = args.messages
    if args.quick:
        counts, total = [1, 10], 3_000
    sizes = [int(b) for b in args.payload_bytes.split(",")]
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    if args.iam_compare:
        rows = compare_iam(counts, sizes, total, args.iam_compare)
    else:
        rows = run_series(counts, sizes, total, args.profile)
    lost = sum(r["lost_before_raw"] + r["lost_before_parsed"] for r in rows)
    zero_loss = lost == 0 and all(r["complete"] for r in rows)
    print(f"zero loss: {'yes' if zero_loss else 'NO'}")
    return 0 if zero_loss else 1


if __name__ == "__main__":
    sys.exit(main())
