"""The one endpoint: requests are identified from the wire format and reach moto or our handlers."""

from emulator.gateway import json_response


def test_unhandled_requests_reach_moto(aws, unique):
    # given a thing created through the endpoint
    iot = aws("iot")
    iot.create_thing(thingName=f"gw-{unique}")
    # then moto holds it
    names = [t["thingName"] for t in iot.list_things()["things"]]
    assert f"gw-{unique}" in names


def test_rest_json_operation_is_identified_with_path_parameters(emulator, aws, unique):
    # given an after-hook on iot.DescribeThing
    seen = []
    emulator.gateway.after("iot", "DescribeThing", lambda req, status, body: seen.append(req.path_params))
    iot = aws("iot")
    iot.create_thing(thingName=f"hook-{unique}")
    # when the thing is described
    iot.describe_thing(thingName=f"hook-{unique}")
    # then the hook saw the operation's path parameter
    assert {"thingName": f"hook-{unique}"} in seen


def test_json_protocol_handler_answers_instead_of_moto(emulator, aws):
    # given a handler for logs.DescribeDestinations (JSON protocol, X-Amz-Target)
    emulator.gateway.on(
        "logs", "DescribeDestinations", lambda req: json_response({"destinations": [{"destinationName": "ours"}]})
    )
    # when it is called, then our answer comes back
    assert aws("logs").describe_destinations()["destinations"][0]["destinationName"] == "ours"


def test_query_protocol_operation_is_identified(emulator, aws):
    seen = []
    emulator.gateway.after("cloudformation", "ListStacks", lambda req, status, body: seen.append(req.operation))
    aws("cloudformation").list_stacks()
    assert seen == ["ListStacks"]
