"""Start-up time of the emulator on a saved state, and what persistence costs.

    .venv/bin/python bench/startup.py            # 10,000 S3 objects + 100 things (target < 5 s)
    .venv/bin/python bench/startup.py --quick    # 1,000 objects + 20 things
    .venv/bin/python bench/startup.py --costs    # also: cost per change, per PutObject, RSS

Builds the state through boto3 against `python -m emulator --data-dir <tmp>`, stops it cleanly,
then starts it again and times it until `/_emulator/info` answers (it does once every component
has started); then kills it with SIGKILL and times a start again. With `--costs` it also
measures, on the same emulator:
- the time the emulator spends saving per state-changing call and per S3 PutObject (from
  `/_emulator/persistence`), and the client-side latency of such calls next to a read-only call;
- the emulator's resident memory before and after a 200 MB object is uploaded with
  `upload_file` (multipart), and after it has been read back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

from emulator.process import free_port

ROOT = Path(__file__).resolve().parents[1]
os.environ.update(
    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
)


class Emulator:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.child: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait for the endpoint; seconds until it answered."""
        started = time.perf_counter()
        self.child = subprocess.Popen(
            [sys.executable, "-m", "emulator", "--port", str(self.port), "--mqtt-port", "0",
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while True:
            if self.child.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.child.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_emulator/info", timeout=0.5):
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)

    def stop(self, kill: bool = False) -> None:
        assert self.child is not None
        self.child.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.child.wait(timeout=120)

    def client(self, service: str):
        config = Config(max_pool_connections=16, retries={"max_attempts": 1})
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", config=config)

    def persistence(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/_emulator/persistence") as response:
            return json.loads(response.read())

    def saves(self) -> dict:
        return self.persistence()["saves"]

    def rss_mb(self) -> float:
        assert self.child is not None
        for line in Path(f"/proc/{self.child.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def build_state(emu: Emulator, objects: int, things: int) -> None:
    iot, s3 = emu.client("iot"), emu.client("s3")
    for i in range(things):
        iot.create_thing(
            thingName=f"bench-thing-{i}", attributePayload={"attributes": {"i": str(i)}}
        )
    s3.create_bucket(Bucket="bench-objects")
    body = b"x" * 1024

    def put(i: int) -> None:
        s3.put_object(Bucket="bench-objects", Key=f"raw/{i // 1000}/{i}.json", Body=body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(objects)))


def mean_ms(call, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        call(i)
    return 1000 * (time.perf_counter() - started) / n


def measure_costs(emu: Emulator, work: Path) -> None:
    iot, s3 = emu.client("iot"), emu.client("s3")
    before = emu.saves()
    read = mean_ms(lambda i: iot.describe_thing(thingName=f"bench-thing-{i % 20}"), 200)
    change = mean_ms(
        lambda i: iot.update_thing(
            thingName=f"bench-thing-{i % 20}", attributePayload={"attributes": {"n": str(i)}}
        ),
        200,
    )
    get = mean_ms(lambda i: s3.head_object(Bucket="bench-objects", Key=f"raw/0/{i}.json"), 200)
    put = mean_ms(
        lambda i: s3.put_object(Bucket="bench-objects", Key=f"cost/{i}", Body=b"y" * 1024), 200
    )
    after = emu.saves()
    print(f"client latency: DescribeThing {read:.2f} ms, UpdateThing {change:.2f} ms, "
          f"HeadObject {get:.2f} ms, PutObject 1 KiB {put:.2f} ms")  # fmt: skip
    for kind in ("snapshot", "object_record"):
        saves = after[kind]["count"] - before[kind]["count"]
        print(f"emulator time per {kind} save: {after[kind]['mean_ms']} ms ({saves} saves)")

    big = work / "big.bin"
    with open(big, "wb") as out:
        for _ in range(200):
            out.write(os.urandom(1024 * 1024))
    rss_before = emu.rss_mb()
    started = time.perf_counter()
    s3.upload_file(str(big), "bench-objects", "big/200mb.bin")
    upload = time.perf_counter() - started
    time.sleep(1)
    rss_after_put = emu.rss_mb()
    started = time.perf_counter()
    s3.download_file("bench-objects", "big/200mb.bin", str(work / "back.bin"))
    download = time.perf_counter() - started
    time.sleep(1)
    rss_after_get = emu.rss_mb()
    same = os.path.getsize(work / "back.bin") == os.path.getsize(big)
    print(f"200 MB upload_file {upload:.1f} s, download_file {download:.1f} s, sizes equal: {same}")
    print(f"emulator RSS: {rss_before:.0f} MB before, {rss_after_put:.0f} MB after the put, "
          f"{rss_after_get:.0f} MB after reading it back")  # fmt: skip
    big.unlink()
    (work / "back.bin").unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 objects and 20 things")
    parser.add_argument("--costs", action="store_true", help="also measure save costs and RSS")
    args = parser.parse_args()
    objects, things = (1_000, 20) if args.quick else (10_000, 100)

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        data_dir = Path(work) / "state"
        emu = Emulator(data_dir)
        empty = emu.start()
        print(f"start-up on an empty data dir: {empty:.2f} s")
        started = time.perf_counter()
        build_state(emu, objects, things)
        print(f"built {objects} objects + {things} things in {time.perf_counter() - started:.1f} s")
        if args.costs:
            measure_costs(emu, Path(work))
        emu.stop()

        emu = Emulator(data_dir)
        clean = emu.start()
        count = emu.client("s3").list_objects_v2(Bucket="bench-objects", Prefix="raw/")["KeyCount"]
        print(f"start-up after a clean stop: {clean:.2f} s (first page lists {count} objects); "
              f"state load {emu.persistence()['load'].get('seconds')} s")  # fmt: skip
        emu.client("iot").create_thing(thingName="after-restart")
        emu.stop(kill=True)

        emu = Emulator(data_dir)
        killed = emu.start()
        emu.client("iot").describe_thing(thingName="after-restart")
        print(f"start-up after kill -9: {killed:.2f} s; "
              f"state load {emu.persistence()['load'].get('seconds')} s")  # fmt: skip
        emu.stop()
        status = subprocess.run(
            [sys.executable, "-m", "emulator", "status", "--data-dir", str(data_dir)],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        print(status.stdout)
    return 0 if max(clean, killed) < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
