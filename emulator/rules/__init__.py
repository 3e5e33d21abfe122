"""The IoT rules engine: IoT SQL (parsed once with sqlglot) and topic rule actions.

Public interface: `RulesEngine(emulator)` (component attribute `rules`, `accept_many(messages)`),
`compile_sql(sql) -> CompiledRule`, `validate_sql(sql)` and `SqlError`.
"""

from emulator.rules.api import validate_sql
from emulator.rules.sql import CompiledRule, MessageContext, Result, SqlError, compile_sql


def __getattr__(name: str):
    # The engine imports boto3 and moto: loaded only when asked for.
    if name == "RulesEngine":
        from emulator.rules.engine import RulesEngine

        return RulesEngine
    raise AttributeError(name)


__all__ = [
    "CompiledRule",
    "MessageContext",
    "Result",
    "RulesEngine",
    "SqlError",
    "compile_sql",
    "validate_sql",
]
