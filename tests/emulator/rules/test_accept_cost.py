"""What accept() costs the broker for the pipeline's rule (firehose only, ~200-byte JSON).

The broker calls accept() on its event loop before each PUBACK, so the rules engine must stay
well under 100 us per message: the SQL is compiled once and nothing here parses it again.
"""

from __future__ import annotations

import json
import statistics
import time

from emulator.iot.messages import InboundMessage


def test_accept_costs_well_under_100_microseconds(
    emulator, rules, aws, unique, role_arn, recording_firehose
):
    # given the pipeline's rule with a firehose action (a recording stand-in for Firehose)
    aws("iot").create_topic_rule(
        ruleName=f"cost_{unique}",
        topicRulePayload={
            "sql": f"SELECT topic() AS topic, * FROM 'cost-{unique}/+'",
            "actions": [
                {
                    "firehose": {
                        "deliveryStreamName": "s",
                        "roleArn": role_arn,
                        "separator": "\n",
                    }
                }
            ],
        },
    )
    payload = json.dumps(
        {
            "deviceId": "pump-0001",
            "ts": 1764150000123,
            "temperature": 21.53,
            "pressure": 101.325,
            "vibration": [0.01, 0.02, 0.015],
            "status": "OK",
            "site": {"plant": "north", "line": 3},
        }
    ).encode()
    assert 150 <= len(payload) <= 250

    def one() -> float:
        message = InboundMessage(
            f"cost-{unique}/pump-0001",
            payload,
            1,
            "pump-0001",
            "ab" * 32,
            int(time.time() * 1000),
            emulator.account_id,
            emulator.region,
        )
        start = time.perf_counter()
        rules.accept(message)
        return time.perf_counter() - start

    for _ in range(200):  # warm-up (compilation happens on the first message)
        one()
    # when 2,000 messages are accepted
    costs = [one() for _ in range(2000)]
    # then each produced its record and the median cost is far below the broker's budget
    assert len(recording_firehose.calls) == 2200
    median_us = statistics.median(costs) * 1e6
    print(f"accept() median {median_us:.1f} us")
    assert median_us < 100
