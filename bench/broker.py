"""How fast the emulator's MQTT broker takes QoS 1 messages over mutual TLS, next to Mosquitto.

    .venv/bin/python bench/broker.py [--quick] [--messages N] [--devices N]

1. One awsiotsdk publisher (MQTT 3.1.1, mtls_from_path) sends N QoS 1 messages of ~200 bytes;
   every message is counted at the broker's consumer (the rules engine's place).
2. The same load against Debian's Mosquitto (/usr/sbin/mosquitto, TLS with
   require_certificate), counted through a subscriber; then the ratio.
3. Many devices connect at once (one certificate each), each publishes M messages: all counted.

Publishers run in a child process so that they do not share the broker's interpreter lock.
In-flight counts stay under 65,535 (a limit of awsiotsdk and paho).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from emulator.process import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAYLOAD_SIZE = 200
MOSQUITTO = "/usr/sbin/mosquitto"


# Child process: publishers -------------------------------------------------------------------
def run_publishers(spec: dict) -> None:
    from awscrt import mqtt
    from awsiot import mqtt_connection_builder

    connections = []
    for device in spec["devices"]:
        connections.append(
            mqtt_connection_builder.mtls_from_path(
                endpoint="localhost",
                port=spec["port"],
                cert_filepath=device["cert"],
                pri_key_filepath=device["key"],
                ca_filepath=spec["ca"],
                client_id=device["client_id"],
                clean_session=True,
                keep_alive_secs=60,
            )
        )
    started = time.perf_counter()
    for future in [c.connect() for c in connections]:
        future.result(60)
    connected = time.perf_counter()
    payload = b"x" * PAYLOAD_SIZE
    futures = []
    for i in range(spec["messages"]):
        for conn, device in zip(connections, spec["devices"], strict=True):
            futures.append(
                conn.publish(
                    f"bench/{device['client_id']}/{i % 10}", payload, mqtt.QoS.AT_LEAST_ONCE
                )[0]
            )
    for future in futures:
        future.result(120)
    done = time.perf_counter()
    for future in [c.disconnect() for c in connections]:
        future.result(30)
    print(
        json.dumps(
            {"connect_s": connected - started, "publish_s": done - connected, "acked": len(futures)}
        ),
        flush=True,
    )


def spawn_publishers(port: int, ca: str, devices: list[dict], messages: int) -> dict:
    spec = json.dumps({"port": port, "ca": ca, "devices": devices, "messages": messages})
    out = subprocess.run(
        [sys.executable, __file__, "--publisher"],
        input=spec,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"publisher failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Parent: emulator, broker, devices -----------------------------------------------------------
class CountingConsumer:
    def __init__(self) -> None:
        self.count = 0
        self.first = self.last = 0.0

    def accept_many(self, messages) -> None:
        counted = sum(1 for message in messages if message.topic.startswith("bench/"))
        if counted:
            now = time.perf_counter()
            if not self.count:
                self.first = now
            self.count += counted
            self.last = now

    def reset(self) -> None:
        self.count = 0


def make_devices(iot_client, work: Path, count: int, prefix: str) -> list[dict]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}],
    }
    policy_name = f"{prefix}-policy"
    iot_client.create_policy(policyName=policy_name, policyDocument=json.dumps(policy))
    devices = []
    for i in range(count):
        keys = iot_client.create_keys_and_certificate(setAsActive=True)
        iot_client.attach_policy(policyName=policy_name, target=keys["certificateArn"])
        cert, key = work / f"{prefix}-{i}.pem", work / f"{prefix}-{i}.key"
        cert.write_text(keys["certificatePem"])
        key.touch(mode=0o600)
        key.write_text(keys["keyPair"]["PrivateKey"])
        devices.append({"client_id": f"{prefix}-{i}", "cert": str(cert), "key": str(key)})
    return devices


def mosquitto_rate(iot_core, device: dict, messages: int, work: Path) -> float | None:
    if not Path(MOSQUITTO).exists():
        print("Mosquitto: skipped (/usr/sbin/mosquitto is not installed)")
        return None
    import paho.mqtt.client as mqtt

    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {iot_core.root_ca_path}\n"
        f"certfile {iot_core.ca.server_cert_path}\n"
        f"keyfile {iot_core.ca.server_key_path}\n"
        "require_certificate true\nallow_anonymous true\npersistence false\n"
        # Started as root, Mosquitto would drop to its own user, who cannot read these files.
        "max_inflight_messages 0\nmax_queued_messages 0\n"
        # Started as root, Mosquitto would drop to its own user, who cannot read these files.
        + ("user root\n" if os.geteuid() == 0 else "")
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    if proc.poll() is not None:
        print(f"Mosquitto: skipped (it did not start: {proc.stderr.read()[-500:]})")
        return None
    try:
        counted = SimpleNamespace(n=0, done=threading.Event(), first=0.0, last=0.0)

        def on_message(_c, _u, _m):
            now = time.perf_counter()
            if not counted.n:
                counted.first = now
            counted.n += 1
            counted.last = now
            if counted.n >= messages:
                counted.done.set()

        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-subscriber")
        sub.tls_set(str(iot_core.root_ca_path), device["cert"], device["key"])
        sub.on_message = on_message
        for _ in range(50):
            try:
                sub.connect("localhost", port)
                break
            except OSError:
                time.sleep(0.1)
        sub.loop_start()
        sub.subscribe("bench/#", qos=1)
        time.sleep(0.5)
        result = spawn_publishers(
            port, str(iot_core.root_ca_path), [{**device, "client_id": "bench-pub"}], messages
        )
        counted.done.wait(60)
        sub.loop_stop()
        sub.disconnect()
        rate = messages / result["publish_s"]
        print(
            f"Mosquitto:   {messages} QoS 1 messages acknowledged in {result['publish_s']:.2f} s "
            f"= {rate:,.0f} msg/s; subscriber counted {counted.n}"
        )
        return rate
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a short run (2,000 messages, 20 devices)"
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--per-device", type=int, default=50)
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        run_publishers(json.loads(sys.stdin.read()))
        return
    if args.quick:
        args.messages, args.devices = 2_000, 20

    import boto3

    from emulator.app import build_emulator
    from emulator.mqtt.broker import Broker

    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    work = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    emulator = build_emulator(port=0, mqtt_port=0, ephemeral=True)
    emulator.start()
    consumer = CountingConsumer()
    view = SimpleNamespace(
        shadow=None,
        iot=emulator.iot,
        account_id=emulator.account_id,
        region=emulator.region,
        gateway=None,
        activity=None,
    )
    broker = Broker(view, consumer=consumer, port=0).start()
    try:
        iot_client = boto3.client(
            "iot", endpoint_url=emulator.endpoint_url, region_name=emulator.region
        )
        (device,) = make_devices(iot_client, work, 1, "bench-one")
        ca = str(emulator.iot.root_ca_path)

        cpu0 = time.process_time()
        result = spawn_publishers(broker.port, ca, [device], args.messages)
        cpu = time.process_time() - cpu0
        ours = args.messages / result["publish_s"]
        print(
            f"Emulator:    {args.messages} QoS 1 messages of {PAYLOAD_SIZE} B acknowledged in "
            f"{result['publish_s']:.2f} s = {ours:,.0f} msg/s; consumer counted {consumer.count}; "
            f"broker process CPU {cpu:.2f} s ({cpu / args.messages * 1e6:.1f} us/msg)"
        )
        mosquitto = mosquitto_rate(emulator.iot, device, args.messages, work)
        if mosquitto:
            print(f"Ratio:       emulator / Mosquitto = {ours / mosquitto:.2f}")

        devices = make_devices(iot_client, work, args.devices, "bench-fleet")
        consumer.reset()
        cpu0 = time.process_time()
        result = spawn_publishers(broker.port, ca, devices, args.per_device)
        cpu = time.process_time() - cpu0
        expected = args.devices * args.per_device
        total = result["connect_s"] + result["publish_s"]
        print(
            f"Fleet:       {args.devices} devices connected in {result['connect_s']:.2f} s, "
            f"{expected} messages acknowledged in {result['publish_s']:.2f} s "
            f"({expected / total:,.0f} msg/s with handshakes); consumer counted {consumer.count}; "
            f"broker process CPU {cpu:.2f} s"
        )
        if consumer.count != expected:
            raise SystemExit(f"lost messages: {expected - consumer.count}")
    finally:
        broker.stop()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
