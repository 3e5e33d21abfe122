"""Device to rule over real MQTT: a paho client publishes over mutual TLS, rules run, and a
republished message reaches an MQTT subscriber."""

from __future__ import annotations

import json
import time

from support.rules import error_message, new_bucket, s3_action
from support.waiting import wait_until


def test_device_message_runs_the_rule_with_its_client_id_and_principal(
    rules, aws, unique, role_arn, device_client
):
    # given a rule storing clientid() and principal() of each message, and a connected device
    bucket = f"rules-mqtt-{unique}"
    s3 = new_bucket(aws, bucket)
    aws("iot").create_topic_rule(
        ruleName=f"mqtt_{unique}",
        topicRulePayload={
            "sql": f"SELECT *, clientid() AS c, principal() AS p FROM 'dev/{unique}/+'",
            "actions": [s3_action(bucket, "${topic(3)}", role_arn)],
        },
    )
    device = device_client(f"thing-{unique}")
    # when the device publishes with QoS 1 and gets its PUBACK
    info = device.publish(f"dev/{unique}/t1", json.dumps({"v": 1}), qos=1)
    info.wait_for_publish(10)
    assert info.is_published()
    assert rules.drain(10)
    # then the rule saw the MQTT client id and the certificate id as principal()
    stored = error_message(s3, bucket, "t1")
    assert stored == {"v": 1, "c": f"thing-{unique}", "p": device.certificate_id}


def test_republished_message_reaches_an_mqtt_subscriber(
    rules, aws, unique, role_arn, device_client
):
    # given a republish rule and a subscriber on the target topic
    aws("iot").create_topic_rule(
        ruleName=f"mqttrepub_{unique}",
        topicRulePayload={
            "sql": f"SELECT VALUE upper(msg) FROM 'shout/{unique}'",
            "actions": [{"republish": {"topic": f"heard/{unique}", "qos": 1, "roleArn": role_arn}}],
        },
    )
    listener = device_client(f"listener-{unique}")
    listener.subscribe(f"heard/{unique}", qos=1)
    time.sleep(0.3)  # SUBACK
    # when a message is published over HTTP (iot-data)
    aws("iot-data").publish(topic=f"shout/{unique}", qos=1, payload=b'{"msg": "hello"}')
    # then the subscriber receives the rule's output
    assert wait_until(lambda: listener.messages)
    assert listener.messages[0].topic == f"heard/{unique}"
    assert listener.messages[0].payload == b'"HELLO"'
