"""Operations moto lacks are answered 501 in the service's own protocol, once, never as HTML."""

from __future__ import annotations

import http.client
import json
import logging
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

# (service, method, kwargs, protocol, how moto signals the gap)
CASES = [
    # JSON protocol; moto's LogsResponse has no such method: NotImplementedError.
    ("logs", "get_data_protection_policy", {"logGroupIdentifier": "g"}, "json"),
    # query protocol (XML errors); BaseResponse.call_action raises NotImplementedError.
    ("cloudformation", "describe_account_limits", {}, "query"),
    # rest-json; moto's IoT URL rule exists, its response method does not.
    ("iot", "list_fleet_metrics", {}, "rest-json"),
    # rest-json; no URL rule in moto's Lambda app: werkzeug's HTML 404 page.
    ("lambda", "get_account_settings", {}, "rest-json"),
    # rest-json on iot-data (NotImplementedError).
    ("iot-data", "get_connection", {"clientId": "device-1"}, "rest-json"),
    # rest-xml; no URL rule in moto's Route 53 app: HTML 404.
    ("route53", "list_cidr_collections", {}, "rest-xml"),
]


@pytest.mark.parametrize(("service", "method", "kwargs", "protocol"), CASES)
def test_unimplemented_operation_is_a_parsed_501_answered_once(
    aws, service, method, kwargs, protocol
):
    client = aws(service)
    assert client.meta.service_model.protocol == protocol
    operation = client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping[method]
    ).name
    sent = []
    client.meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    # when the operation is called with the SDK's default retry policy
    with pytest.raises(ClientError) as raised:
        getattr(client, method)(**kwargs)
    error = raised.value.response
    # then botocore parsed the code and the message (no HTML, no generic "404"/"501")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error["Error"]["Code"] == "NotImplemented"
    message = error["Error"]["Message"]
    assert f"{service} {operation}" in message
    assert "local emulator does not implement" in message
    assert "<html" not in message.lower()
    # and it answered once: 501 is not retried, so no retry storm
    assert len(sent) == 1
    assert error["ResponseMetadata"]["RetryAttempts"] == 0


def test_unknown_route_is_never_an_html_page(emulator):
    # given a signed Lambda request for a route moto has no rule for, sent raw
    url = urlsplit(emulator.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    scope = (
        "Credential=AKID/20261126/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x"
    )
    conn.request(
        "GET",
        "/2020-04-22/code-signing-configs",
        headers={"Authorization": f"AWS4-HMAC-SHA256 {scope}"},
    )
    response = conn.getresponse()
    body = response.read()
    conn.close()
    # then the answer is Lambda's JSON error shape with a 501
    assert response.status == 501
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("x-amzn-ErrorType") == "NotImplemented"
    payload = json.loads(body)
    assert payload["__type"] == "NotImplemented"
    assert "lambda ListCodeSigningConfigs" in payload["message"]


def test_unimplemented_operation_is_logged_once(aws, caplog):
    client = aws("cloudformation")
    # when an unimplemented operation is called twice
    with caplog.at_level(logging.WARNING, logger="emulator.gateway"):
        for _ in range(2):
            with pytest.raises(ClientError):
                client.list_generated_templates()
    # then one warning names it
    lines = [r.getMessage() for r in caplog.records if "ListGeneratedTemplates" in r.getMessage()]
    assert lines == ["not implemented: cloudformation ListGeneratedTemplates"]


@pytest.mark.parametrize(
    ("method", "kwargs", "operation"),
    [
        ("get_bucket_analytics_configuration", {"Id": "a"}, "GetBucketAnalyticsConfiguration"),
        ("get_bucket_request_payment", {}, "GetBucketRequestPayment"),
    ],
)
def test_s3_bucket_read_moto_lacks_is_not_answered_as_a_listing(
    aws, unique, method, kwargs, operation
):
    # given a bucket (moto would answer these sub-resources with ListObjects)
    s3 = aws("s3")
    bucket = f"gw-unimpl-{unique}"
    s3.create_bucket(Bucket=bucket)
    # when a bucket sub-resource moto does not serve is read
    with pytest.raises(ClientError) as raised:
        getattr(s3, method)(Bucket=bucket, **kwargs)
    # then S3's own 501 NotImplemented, parsed from the XML error, names the operation
    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error["ResponseMetadata"]["RetryAttempts"] == 0
    assert error["Error"]["Code"] == "NotImplemented"
    assert f"s3 {operation}" in error["Error"]["Message"]
    # and what moto serves still works
    assert s3.get_bucket_versioning(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_head_of_a_missing_s3_key_is_a_404_not_an_unimplemented_operation(aws, unique):
    # given a bucket without the key
    s3 = aws("s3")
    s3.create_bucket(Bucket=f"head-{unique}")
    # when a client asks for the key's metadata, then S3 answers 404 (NoSuchKey has no body)
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=f"head-{unique}", Key="missing")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
