"""Rules on the Device Shadow service's topics: a rule reading
`$aws/things/+/shadow/update/accepted` gets the accepted documents IoT Core publishes, for
updates made over MQTT by a device and over HTTP by an application, as on AWS ("Reserved topics":
rules may select from the shadow topics; https://docs.aws.amazon.com/iot/latest/developerguide/reserved-topics.html).
"""

from __future__ import annotations

import json

import pytest
from support.waiting import wait_until


@pytest.mark.parametrize("source", ["mqtt", "http"])
def test_a_rule_on_update_accepted_gets_the_accepted_documents(
    rules, aws, unique, role_arn, device_client, source
):
    # given a rule that stores the reported temperature, version and thing of each accepted update
    s3 = aws("s3")
    bucket = f"shadow-rule-{unique}"
    s3.create_bucket(Bucket=bucket)
    aws("iot").create_topic_rule(
        ruleName=f"shadow_{source}_{unique}",
        topicRulePayload={
            "sql": "SELECT state.reported.temperature AS t, version, clientToken, topic(3) AS thing"
            " FROM '$aws/things/+/shadow/update/accepted'"
            f" WHERE startswith(topic(3), 'shadow-{unique}')",
            "awsIotSqlVersion": "2016-03-23",
            "actions": [
                {"s3": {"bucketName": bucket, "key": "${clientToken}", "roleArn": role_arn}}
            ],
        },
    )
    thing = f"shadow-{unique}"
    request = {"state": {"reported": {"temperature": 21.5}}, "clientToken": f"tok-{source}"}
    # when the thing's shadow is updated, by the device over MQTT or an application over HTTP
    if source == "mqtt":
        device = device_client(thing)
        sent = device.publish(f"$aws/things/{thing}/shadow/update", json.dumps(request), qos=1)
        sent.wait_for_publish(10)
    else:
        aws("iot-data").update_thing_shadow(thingName=thing, payload=json.dumps(request))
    # then the rule ran on the accepted document the shadow service published
    assert wait_until(lambda: s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) >= 1)
    stored = json.loads(s3.get_object(Bucket=bucket, Key=f"tok-{source}")["Body"].read())
    assert stored == {"t": 21.5, "version": 1, "clientToken": f"tok-{source}", "thing": thing}
