"""Topic rule destinations outlive the emulator process: after a clean stop or `kill -9` and a
start on the same data directory, Get/List show them as they were, a confirmed one still takes
the http action's posts, one IN_PROGRESS is confirmed with the token of its confirmation
request, a deleted one stays deleted; the records are 0600 in 0700 directories, and an
--ephemeral emulator writes none (https://docs.aws.amazon.com/iot/latest/developerguide/
rule-destination-http-managing.html)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError
from support.https_receiver import confirmation, confirmation_token, https_receiver
from support.rules import create_rule
from support.waiting import wait_until

from emulator.persistence.quarantine import quarantined_files
from emulator.persistence.records import RecordFiles
from emulator.rules.destinations import KIND, TopicRuleDestinations

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "persistence"))

from persistence_helpers import started_emulators  # noqa: E402


@pytest.fixture
def emulators(tmp_path: Path):
    """Emulator processes, one after the other, on one data directory (`.data_dir`)."""
    yield from started_emulators(tmp_path / "state")


def destination(iot, url: str) -> dict:
    return iot.create_topic_rule_destination(
        destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": url}}
    )["topicRuleDestination"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_destinations_survive_a_restart(emulators):
    first = emulators()
    data_dir = first.data_dir
    ca = data_dir / "iot"  # the emulator's CA, kept in the data directory across the restart
    with https_receiver(ca / "server.pem", ca / "server.key") as hooks:
        iot = first.client("iot")
        # given a confirmed destination and a rule posting to it
        confirmed = destination(iot, f"{hooks.base}/confirmed")
        iot.confirm_topic_rule_destination(
            confirmationToken=confirmation_token(confirmation(hooks, "/confirmed/")[0])
        )
        create_rule(
            iot,
            "to_hook",
            "SELECT * FROM 'meters/+'",
            [
                {
                    "http": {
                        "url": f"{hooks.base}/confirmed/" + "${topic(2)}",
                        "confirmationUrl": f"{hooks.base}/confirmed",
                    }
                }
            ],
        )
        # and one IN_PROGRESS, its confirmation request sent, and one deleted
        pending = destination(iot, f"{hooks.base}/pending")
        token = confirmation_token(confirmation(hooks, "/pending/")[0])
        deleted = destination(iot, f"{hooks.base}/deleted")
        iot.delete_topic_rule_destination(arn=deleted["arn"])
        before = {s["arn"]: s for s in iot.list_topic_rule_destinations()["destinationSummaries"]}
        # then two records, 0600 in 0700 directories, named by no request text
        folder = data_dir / "rules" / "destinations"
        records = sorted(folder.iterdir())
        assert len(records) == 2
        assert {mode(folder), mode(folder.parent)} == {0o700}
        assert {mode(r) for r in records} == {0o600}
        assert all(token not in r.name and "pending" not in r.name for r in records)

        # when the emulator stops cleanly and another starts on the same data directory
        assert first.stop() == 0
        second = emulators()
        iot = second.client("iot")

        # then Get and List show the destinations as they were, the deleted one absent
        got = iot.get_topic_rule_destination(arn=confirmed["arn"])["topicRuleDestination"]
        assert got["status"] == "ENABLED"
        assert got["httpUrlProperties"] == {"confirmationUrl": f"{hooks.base}/confirmed"}
        after = {s["arn"]: s for s in iot.list_topic_rule_destinations()["destinationSummaries"]}
        assert after == before
        assert set(after) == {confirmed["arn"], pending["arn"]}
        assert after[pending["arn"]]["status"] == "IN_PROGRESS"
        with pytest.raises(ClientError) as caught:
            iot.get_topic_rule_destination(arn=deleted["arn"])
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        # and the rule's http action posts to the confirmed destination
        second.client("iot-data").publish(topic="meters/m7", payload=b'{"kwh": 3}')
        posted = wait_until(lambda: [r for r in hooks.requests if r[0] == "/confirmed/m7"])
        assert posted and json.loads(posted[0][2]) == {"kwh": 3}
        # and the pending one is confirmed with the token sent before the restart
        iot.confirm_topic_rule_destination(confirmationToken=token)

        # when that process is killed (-9) right after the answer, and a third one starts
        second.kill9()
        iot = emulators().client("iot")
        # then the confirmation was on disk before it was answered
        got = iot.get_topic_rule_destination(arn=pending["arn"])["topicRuleDestination"]
        assert got["status"] == "ENABLED"


def test_an_ephemeral_emulator_writes_no_destination(emulator, aws, unique):
    # given the session emulator, started with ephemeral=True
    assert emulator.ephemeral
    iot = aws("iot")
    # when a destination is made (its confirmation request goes nowhere: port 9 is closed)
    made = destination(iot, f"https://127.0.0.1:9/ephemeral-{unique}")
    # then it is served from memory, and nothing is written for it
    assert iot.get_topic_rule_destination(arn=made["arn"])["topicRuleDestination"]["arn"]
    assert not (emulator.data_dir / "rules").exists()
    iot.delete_topic_rule_destination(arn=made["arn"])


def test_a_record_that_is_no_destination_goes_to_the_quarantine(tmp_path: Path):
    # given a readable record without a destination's fields, and a valid one
    folder = tmp_path / "rules" / "destinations"
    files = RecordFiles(folder, KIND, tmp_path)
    arn = "arn:aws:iot:us-east-1:123456789012:ruledestination/http/kept"
    good = {
        "accountId": "123456789012",
        "region": "us-east-1",
        "arn": arn,
        "status": "DISABLED",
        "statusReason": "",
        "confirmationUrl": "https://localhost:8443/x",
        "token": "t",
        "createdAt": 1.5,
        "lastUpdatedAt": 2.5,
    }
    files.save(arn, good)
    files.save("arn:aws:iot:us-east-1:123456789012:ruledestination/http/bad", {"status": 1})
    # when the destinations are loaded
    destinations = TopicRuleDestinations(SimpleNamespace(data_dir=tmp_path, ephemeral=False))
    destinations.load()
    # then the valid one is there, the other moved aside
    assert destinations.status_for("123456789012", "us-east-1", "https://localhost:8443/x/y") == (
        "DISABLED"
    )
    assert len(quarantined_files(tmp_path)) == 1
    assert len(list(folder.iterdir())) == 1
