"""Load: 100 devices connect at once over mutual TLS and publish at QoS 1 through the whole
pipeline; every acknowledged message is accounted for in the buckets."""

from __future__ import annotations

import threading

from reliability_harness import assert_every_acknowledged_message_accounted, message

DEVICES = 100
MESSAGES = 20


def test_hundred_devices_at_once_lose_nothing(pipeline, connect, tmp_path):
    # Given the pipeline and 100 things, one certificate each
    pipeline.create()
    devices = [pipeline.device(i, tmp_path) for i in range(DEVICES)]

    # When all of them connect at the same moment and each publishes 20 messages
    publishers: list = [None] * DEVICES
    errors: list[str] = []
    start = threading.Barrier(DEVICES)

    def run(i: int) -> None:
        try:
            start.wait(30)
            publishers[i] = publisher = connect(devices[i])
            for seq in range(MESSAGES):
                publisher.publish(pipeline.topic(devices[i]), message(devices[i].thing_name, seq))
            publisher.wait_acked(MESSAGES)
        except Exception as exc:  # reported below with the device's name
            errors.append(f"{devices[i].thing_name}: {exc!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(DEVICES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then every publish was acknowledged, and every acknowledged message reached the raw
    # bucket and, transformed, the parsed bucket
    assert errors == []
    acknowledged = [p for publisher in publishers for p in publisher.acked]
    assert len(acknowledged) == DEVICES * MESSAGES
    found = pipeline.wait_accounted(len(acknowledged), timeout=60)
    assert_every_acknowledged_message_accounted(found, acknowledged)
    assert len(found.parsed) == DEVICES * MESSAGES
    assert {row["equipment_id"] for row in found.parsed} == {d.thing_name for d in devices}
