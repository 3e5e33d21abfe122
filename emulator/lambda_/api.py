"""Lambda's `Invoke` on the emulator's endpoint (rest-json
`POST /2015-03-31/functions/{FunctionName}/invocations`), answered before moto, which could
only run the code in Docker. Headers follow the API reference ("Invoke"):
`X-Amz-Invocation-Type`, `X-Amz-Log-Type: Tail`, `X-Amz-Client-Context` in; `X-Amz-Function-Error`,
`X-Amz-Log-Result`, `X-Amz-Executed-Version` out.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from emulator.gateway import AwsRequest, AwsResponse, Gateway, json_error
from emulator.lambda_.answers import LambdaError, encode_log_result

if TYPE_CHECKING:
    from emulator.lambda_.runtime import LambdaRuntime


def register(gateway: Gateway, runtime: LambdaRuntime) -> None:
    gateway.on("lambda", "Invoke", lambda request: handle_invoke(runtime, request))


def handle_invoke(runtime: LambdaRuntime, request: AwsRequest) -> AwsResponse:
    function = request.path_params.get("FunctionName", "")
    invocation_type = request.headers.get("x-amz-invocation-type") or "RequestResponse"
    client_context = None
    if request.headers.get("x-amz-client-context"):
        try:
            # The header is base64; the runtime receives the decoded JSON.
            client_context = base64.b64decode(request.headers["x-amz-client-context"]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return json_error(
                "InvalidRequestContentException",
                "X-Amz-Client-Context must be the base64 encoding of a JSON object.",
            )
    try:
        result = runtime.invoke(
            request.account_id,
            request.region,
            function,
            request.body,
            invocation_type,
            qualifier=request.query_value("Qualifier"),
            client_context=client_context,
        )
    except LambdaError as exc:
        return json_error(exc.code, exc.message, exc.status)
    headers = {
        "Content-Type": "application/json",
        "X-Amz-Executed-Version": result.executed_version,
    }
    if result.request_id:
        headers["x-amzn-RequestId"] = result.request_id
    if result.function_error:
        headers["X-Amz-Function-Error"] = result.function_error
    # Only synchronous calls can return the log tail.
    if invocation_type == "RequestResponse" and request.headers.get("x-amz-log-type") == "Tail":
        headers["X-Amz-Log-Result"] = encode_log_result(result.log_tail)
    return AwsResponse(result.status_code, result.payload, headers)
