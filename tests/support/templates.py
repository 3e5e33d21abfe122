"""CloudFormation templates the tests deploy or expand."""

from __future__ import annotations

from typing import Any


def sam_function(code_uri: str, handler: str, **properties: Any) -> dict[str, Any]:
    """A SAM template with one function `Fn` on python3.12 (its generated role is `FnRole`)."""
    return {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": code_uri,
                    "Handler": handler,
                    "Runtime": "python3.12",
                    **properties,
                },
            }
        },
    }


def resource(type_: str, properties: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    """A template resource of `type_` with `properties` and resource attributes (DependsOn,
    DeletionPolicy, UpdateReplacePolicy, ...)."""
    return {"Type": type_, **attributes, "Properties": properties}
