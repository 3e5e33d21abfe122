"""IoT SQL functions that read what the broker knows of a PUBLISH, over real MQTT 5 and TLS.

A paho-mqtt client publishes with MQTT 5 properties over mutual TLS; the rule (SQL version
2016-03-23, "iot-sql-functions" and "iot-sql-set") stores sourceip(), get_user_properties(),
get_mqtt_property() and get_or_default() results in S3, read back with boto3.
"""

from __future__ import annotations

import base64
import json

import paho.mqtt.client as mqtt
import pytest
from botocore.exceptions import ClientError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

SQL = (
    "SET @ip = sourceip() "
    "SELECT *, @ip AS ip, get_user_properties() AS all_props, "
    "get(get_user_properties('partnerId'), 0) AS partner, "
    "get_mqtt_property('content_type') AS ct, get_mqtt_property('format_indicator') AS fi, "
    "get_mqtt_property('response_topic') AS rt, get_mqtt_property('correlation_data') AS cd, "
    "get_or_default(missing, 'none') AS d "
    "FROM 'ctx/{unique}/+'"
)


def _rule_output(rules, unique, s3_rule, device_client, protocol, properties=None):
    """Create the rule, publish {"v": 1} from a device with QoS 1, return the stored output."""
    stored = s3_rule("ctx", SQL.format(unique=unique), "2016-03-23")
    device = device_client(f"ctx-{unique}", protocol=protocol)
    info = device.publish(f"ctx/{unique}/t1", json.dumps({"v": 1}), qos=1, properties=properties)
    info.wait_for_publish(10)
    assert info.is_published()
    assert rules.drain(10)
    return stored("t1")


def test_mqtt5_publish_properties_and_source_ip_reach_the_rule(
    rules, unique, s3_rule, device_client
):
    # given an MQTT 5 PUBLISH with user properties (one key twice), a content type, a payload
    # format indicator, a response topic and binary correlation data
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("partnerId", "p-7"), ("site", "north"), ("partnerId", "p-8")]
    props.ContentType = "application/json"
    props.PayloadFormatIndicator = 1
    props.ResponseTopic = f"reply/{unique}"
    props.CorrelationData = b"\x00\x01corr"
    # when the device publishes it over TLS and the rule runs
    stored = _rule_output(rules, unique, s3_rule, device_client, mqtt.MQTTv5, props)
    # then the rule saw the client's address (the broker listens on 127.0.0.1 only) and each
    # property, the correlation data base64-encoded
    assert stored == {
        "v": 1,
        "ip": "127.0.0.1",
        "all_props": [{"partnerId": "p-7"}, {"site": "north"}, {"partnerId": "p-8"}],
        "partner": "p-7",
        "ct": "application/json",
        "fi": "UTF8_DATA",
        "rt": f"reply/{unique}",
        "cd": base64.b64encode(b"\x00\x01corr").decode(),
        "d": "none",
    }


def test_mqtt311_publish_has_a_source_ip_but_no_mqtt5_properties(
    rules, unique, s3_rule, device_client
):
    # when a device publishes with MQTT 3.1.1, which has no properties
    stored = _rule_output(rules, unique, s3_rule, device_client, mqtt.MQTTv311)
    # then the MQTT 5 fields are Undefined (left out), except the format indicator, whose
    # absence means unspecified bytes
    assert stored == {"v": 1, "ip": "127.0.0.1", "fi": "UNSPECIFIED_BYTES", "d": "none"}


def test_set_variable_names_the_s3_key_through_a_substitution_template(
    rules, unique, s3_rule, device_client
):
    # given a rule whose S3 key template reads a SET variable ("iot-sql-set": variables can be
    # used in action substitution templates)
    sql = f"SET @device = upper(topic(3)) SELECT v FROM 'ctx/{unique}/+'"
    stored = s3_rule("ctxkey", sql, "2016-03-23", key="${@device}-reading")
    device = device_client(f"ctxkey-{unique}")
    # when a device publishes on ctx/<unique>/t1
    info = device.publish(f"ctx/{unique}/t1", json.dumps({"v": 7}), qos=1)
    info.wait_for_publish(10)
    assert rules.drain(10)
    # then the object key carries the variable's value
    assert stored("T1-reading") == {"v": 7}


def test_create_topic_rule_refuses_a_template_reading_an_undefined_variable(aws, unique, role_arn):
    payload = {
        "sql": "SET @a = 1 SELECT * FROM 'ctx/x'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"s3": {"bucketName": "b", "key": "${@b}", "roleArn": role_arn}}],
    }
    with pytest.raises(ClientError) as caught:
        aws("iot").create_topic_rule(ruleName=f"ctxbad_{unique}", topicRulePayload=payload)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "@b, which the rule's SET clause does not define" in str(caught.value)
