"""Substitution templates in rule action fields: `${expression}` ("iot-substitution-templates").

The expression is any IoT SQL expression evaluated on the ORIGINAL message (not the SELECT's
output, so aliases are not visible), converted to a string; Undefined becomes "". It is IoT SQL
of the rule's `awsIotSqlVersion`, like the rule's statement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from emulator.rules.sql import (
    V1,
    V2,
    MessageContext,
    SqlError,
    _Env,
    compile_expression,
    expression_variables,
)
from emulator.rules.values import SQL_V1, UNDEFINED, to_string

Template = Callable[[bytes, MessageContext], str]


def _split(template: str) -> list[str | tuple[str]]:
    """Literal text and ("expression",) pieces; braces inside quotes do not end an expression."""
    pieces: list[str | tuple[str]] = []
    i = 0
    while i < len(template):
        start = template.find("${", i)
        if start < 0:
            pieces.append(template[i:])
            break
        if start > i:
            pieces.append(template[i:start])
        depth, j, quote = 1, start + 2, None
        while j < len(template) and depth:
            char = template[j]
            if quote:
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            j += 1
        if depth:
            raise SqlError(f"Unclosed substitution template in {template!r}")
        pieces.append((template[start + 2 : j - 1],))
        i = j
    return pieces


@lru_cache(maxsize=4096)
def compile_template(template: str, version: str | None = None) -> Template:
    """A function (payload, context) -> str; raises SqlError for an invalid expression.

    The expressions are IoT SQL of the rule's `awsIotSqlVersion` ("iot-rule-sql-version"): with
    `version` None they are checked as 2016-03-23 now and evaluated with the version the rules
    engine sets on the context (`MessageContext.sql_version`) for the rule being run.
    """
    if version is not None:
        return _compile(template, version)
    default = _compile(template, V2)

    def render(payload: bytes, context: MessageContext) -> str:
        rule_version = getattr(context, "sql_version", None)
        if rule_version is None or rule_version == V2:
            return default(payload, context)
        return compile_template(template, rule_version)(payload, context)

    return render


def check_templates(
    action: Any,
    templated: Mapping[str, Sequence[str]],
    version: str,
    variables: frozenset[str] = frozenset(),
) -> None:
    """Compile the substitution templates of one action ({type: params}) with the rule's SQL
    version; raise SqlError naming the first that the version cannot run, or that reads a
    variable (`${@name}`) the rule's SET clause does not define. `templated` maps an action
    type to its parameters that take templates."""
    if not isinstance(action, dict) or len(action) != 1:
        return
    kind, params = next(iter(action.items()))
    if not isinstance(params, dict):
        return
    for name in templated.get(kind, ()):
        if name in params:
            template = str(params[name])
            compile_template(template, version)
            for piece in _split(template):
                if not isinstance(piece, tuple):
                    continue
                undefined = sorted(expression_variables(piece[0]) - variables)
                if undefined:
                    raise SqlError(
                        f"${{{piece[0]}}} reads @{undefined[0]}, which the rule's SET clause "
                        "does not define"
                    )


def _compile(template: str, version: str) -> Template:
    parts: list[Any] = []
    for piece in _split(template):
        if isinstance(piece, tuple):
            parts.append(compile_expression(piece[0], version))
        else:
            parts.append(piece)
    if len(parts) == 1 and isinstance(parts[0], str):
        constant = parts[0]
        return lambda payload, context: constant

    def render(payload: bytes, context: MessageContext) -> str:
        env = _Env(payload, context, version)
        out = []
        token = SQL_V1.set(version == V1)
        try:
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value = to_string(part(env))
                out.append("" if value is UNDEFINED else value)
        finally:
            SQL_V1.reset(token)
        return "".join(out)

    return render
