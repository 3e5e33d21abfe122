"""The http rule action and its topic rule destinations, against a real HTTPS server on
127.0.0.1 (certificate from the emulator's CA): the confirmation request, ConfirmTopicRule-
Destination, delivery only once ENABLED, and the URLs the emulator refuses."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from support.https_receiver import confirmation, confirmation_token, https_receiver
from support.rules import create_rule


@pytest.fixture
def https_server(emulator):
    """An HTTPS server on 127.0.0.1 with the emulator CA's server certificate (for localhost);
    `requests` holds (path, headers, body) of each POST; it answers 200."""
    with https_receiver(
        emulator.iot.ca.server_cert_path, emulator.iot.ca.server_key_path
    ) as server:
        yield server


def test_http_action_posts_only_after_the_destination_is_confirmed(
    rules, aws, unique, https_server
):
    iot = aws("iot")
    base = f"{https_server.base}/hook-{unique}"
    # Given a destination: IN_PROGRESS, and a confirmation request with its token
    created = iot.create_topic_rule_destination(
        destinationConfiguration={"httpUrlConfiguration": {"confirmationUrl": base}}
    )["topicRuleDestination"]
    assert created["status"] == "IN_PROGRESS"
    assert created["arn"].startswith("arn:aws:iot:us-east-1:123456789012:ruledestination/http/")
    path, headers, body = confirmation(https_server)
    token = confirmation_token(path)
    assert urlsplit(path).path == f"/hook-{unique}/"
    assert headers["x-amz-rules-engine-message-type"] == "DestinationConfirmation"
    assert headers["x-amz-rules-engine-destination-arn"] == created["arn"]
    assert body["arn"] == created["arn"] and body["confirmationToken"] == token
    assert body["messageType"] == "DestinationConfirmation"
    # and a rule posting to a templated URL under it, with a templated header
    create_rule(
        aws("iot"),
        f"http_{unique}",
        f"SELECT * FROM 'http/+/{unique}'",
        [
            {
                "http": {
                    "url": base + "/${topic(2)}",
                    "confirmationUrl": base,
                    "headers": [{"key": "x-device", "value": "${topic(2)}"}],
                }
            }
        ],
    )
    data = aws("iot-data")
    # When a message arrives before the destination is confirmed
    data.publish(topic=f"http/early/{unique}", payload=b'{"n": 1}')
    assert rules.drain(10)
    # Then nothing is posted and the failure names the destination's status
    assert not [r for r in https_server.requests if "/early" in r[0]]
    (failure,) = rules.rule_failures(f"http_{unique}")[-1].failures
    assert failure["failedAction"] == "HttpAction"
    assert "IN_PROGRESS" in failure["errorMessage"]

    # When the owner confirms with the token
    iot.confirm_topic_rule_destination(confirmationToken=token)
    described = iot.get_topic_rule_destination(arn=created["arn"])["topicRuleDestination"]
    assert described["status"] == "ENABLED"
    assert described["httpUrlProperties"] == {"confirmationUrl": base}
    data.publish(topic=f"http/d7/{unique}", payload=b'{"n": 2}')
    assert rules.drain(10)
    # Then the output is POSTed to the rendered URL with the rendered header
    (posted,) = [r for r in https_server.requests if r[0] == f"/hook-{unique}/d7"]
    assert json.loads(posted[2]) == {"n": 2}
    assert posted[1]["x-device"] == "d7"
    assert posted[1]["Content-Type"] == "application/json"

    # When the destination is disabled, the action fails again
    iot.update_topic_rule_destination(arn=created["arn"], status="DISABLED")
    data.publish(topic=f"http/d8/{unique}", payload=b'{"n": 3}')
    assert rules.drain(10)
    assert not [r for r in https_server.requests if r[0].endswith("/d8")]
    assert "DISABLED" in rules.rule_failures(f"http_{unique}")[-1].failures[0]["errorMessage"]
    iot.delete_topic_rule_destination(arn=created["arn"])
    with pytest.raises(ClientError) as caught:
        iot.get_topic_rule_destination(arn=created["arn"])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_create_topic_rule_makes_the_destination_of_a_hardcoded_url(
    rules, aws, unique, https_server, topic_rule
):
    url = f"{https_server.base}/direct-{unique}"
    topic_rule("httpnew", f"SELECT * FROM 'httpnew/{unique}'", [{"http": {"url": url}}])
    # the url is its own confirmation URL: a destination exists and was sent its request
    summaries = aws("iot").list_topic_rule_destinations()["destinationSummaries"]
    (mine,) = [s for s in summaries if s["httpUrlSummary"]["confirmationUrl"] == url]
    assert mine["status"] == "IN_PROGRESS"
    path, _, body = confirmation(https_server)
    assert path.startswith(f"/direct-{unique}/?confirmationToken=")
    assert body["arn"] == mine["arn"]


def test_wrong_confirmation_token_is_refused(rules, aws):
    with pytest.raises(ClientError) as caught:
        aws("iot").confirm_topic_rule_destination(confirmationToken="not-a-token")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"


@pytest.mark.parametrize(
    ("http", "words"),
    [
        ({"url": "http://127.0.0.1:9/x"}, "must be an https:// URL"),
        ({"url": "https://example.com/x"}, "only to https://127.0.0.1 or https://localhost"),
        ({"url": "https://localhost:9/${topic()}"}, "confirmationUrl is required"),
        (
            {"url": "https://localhost:9/a", "confirmationUrl": "https://localhost:9/b"},
            "must be a prefix of url",
        ),
        (
            {
                "url": "https://localhost:9/a",
                "auth": {
                    "sigv4": {
                        "signingRegion": "us-east-1",
                        "serviceName": "execute-api",
                        "roleArn": "arn:aws:iam::123456789012:role/r",
                    }
                },
            },
            "auth is not supported",
        ),
    ],
)
def test_create_topic_rule_refuses_urls_the_emulator_will_not_send_to(
    rules, aws, unique, http, words
):
    with pytest.raises(ClientError) as caught:
        create_rule(aws("iot"), f"httpbad_{unique}", "SELECT * FROM 'a/b'", [{"http": http}])
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert words in caught.value.response["Error"]["Message"]


def test_destination_outside_localhost_is_refused(rules, aws):
    with pytest.raises(ClientError) as caught:
        aws("iot").create_topic_rule_destination(
            destinationConfiguration={
                "httpUrlConfiguration": {"confirmationUrl": "https://example.com/hook"}
            }
        )
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "127.0.0.1" in caught.value.response["Error"]["Message"]
