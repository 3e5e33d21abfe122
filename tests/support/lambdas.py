"""Deploying a function with boto3 as a user would, for the tests that need one of their own."""

from __future__ import annotations

from typing import Any


def create_function(
    aws: Any,
    role: str,
    name: str,
    code: bytes,
    handler: str = "app.echo",
    runtime: str = "python3.11",
    **extra: Any,
) -> dict[str, Any]:
    """CreateFunction with a .zip; `extra` adds parameters (Timeout, MemorySize, ...)."""
    return aws("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=role,
        Handler=handler,
        Code={"ZipFile": code},
        **extra,
    )
