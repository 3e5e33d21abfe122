"""The one endpoint: requests are identified from the wire format and reach moto or our handlers."""

from emulator.gateway import json_response


def test_unhandled_requests_reach_moto(aws, unique):
    # given a thing created through the endpoint
    iot = aws("iot")
    iot.create_thing(thingName=f"gw-{unique}")
    # then moto holds it
    assert iot.describe_thing(thingName=f"gw-{unique}")["thingName"] == f"gw-{unique}"


def test_rest_json_operation_is_identified_with_path_parameters(emulator, aws, unique):
    # given an after-hook on iot.DescribeThing
    seen = []
    emulator.gateway.after(
        "iot", "DescribeThing", lambda req, status, body: seen.append(req.path_params)
    )
    iot = aws("iot")
    iot.create_thing(thingName=f"hook-{unique}")
    # when the thing is described
    iot.describe_thing(thingName=f"hook-{unique}")
    # then the hook saw the operation's path parameter
    assert {"thingName": f"hook-{unique}"} in seen


def test_json_protocol_handler_answers_instead_of_moto(emulator, aws):
    # given a handler for logs.DescribeDestinations (JSON protocol, X-Amz-Target)
    emulator.gateway.on(
        "logs",
        "DescribeDestinations",
        lambda req: json_response({"destinations": [{"destinationName": "ours"}]}),
    )
    # when it is called, then our answer comes back
    assert aws("logs").describe_destinations()["destinations"][0]["destinationName"] == "ours"


def test_query_protocol_operation_is_identified(emulator, aws):
    seen = []
    emulator.gateway.after(
        "cloudformation", "ListStacks", lambda req, status, body: seen.append(req.operation)
    )
    aws("cloudformation").list_stacks()
    assert seen == ["ListStacks"]


def test_encoded_slash_in_a_path_label_stays_one_parameter():
    from werkzeug.test import Client

    from emulator.gateway import Gateway

    # given a gateway whose handler records what it identified
    seen = []

    def moto(environ, start_response):
        start_response("200 OK", [])
        return []

    gateway = Gateway(moto)
    gateway.on("iot-data", "Publish", lambda req: seen.append((req.operation, req.path_params)))
    scope = (
        "Credential=AKID/20261126/us-east-1/iotdata/aws4_request, SignedHeaders=host, Signature=x"
    )
    # when iot-data Publish arrives for a multi-level topic (one label, "/" encoded as %2F)
    Client(gateway).post(
        "/topics/plant%2Fline-1%2Fpump?qos=1",
        headers={"Authorization": f"AWS4-HMAC-SHA256 {scope}"},
    )
    # then the whole topic is one parameter of the Publish operation
    assert seen == [("Publish", {"topic": "plant/line-1/pump"})]
