"""IoT SQL: parse a topic rule's statement once, evaluate it per message.

`compile_sql(sql)` parses with sqlglot (a dialect with IoT's quoting: single- or double-quoted
strings, back-quoted names) and turns the syntax tree into Python closures, so evaluating a
message costs no parsing. Anything the evaluator does not implement is refused here, with the
line, column and offset of the construct, rather than ignored at run time.

IoT specifics handled on top of ANSI SQL (AWS IoT developer guide, "iot-sql-reference"):
- FROM takes a topic filter in single quotes, with `+` and `#` ("iot-sql-from");
- `SELECT VALUE expr` returns a bare value, arrays included ("iot-rule-sql-version");
- `*` returns the payload, merged with other fields when listed with them ("iot-sql-select");
- `a.b.c`, `a[0]`, object and array literals, nested `(SELECT ... FROM field)` queries
  ("iot-sql-json", "iot-sql-literals", "iot-sql-nested-queries");
- operators with Undefined propagation and string/number coercions ("iot-sql-operators").

SQL versions (https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-sql-version.html):
2015-10-08 is what AWS uses when a rule names none; 2016-03-23 added nested object queries,
literals, arrays as the top-level output, encode() and the functions documented as "Supported by
SQL version 2016-03-23 and later", and processes whole-number Decimals as Ints. A 2015-10-08
statement using any of those is refused at compile time; so is selecting nested fields or
array elements there, which 2016-03-23 documents only as "fixes" without the old behaviour.
`beta` is accepted, as AWS does, and evaluated as 2016-03-23 (its newest documented behaviour).

Non-JSON payloads ("binary-payloads"): `SELECT *` yields the raw bytes and `encode(*, 'base64')`
works; a field reference on a non-JSON payload is Undefined (so `WHERE device_type = 'x'` is
simply false); listing `*` with other fields needs a JSON (or empty) payload, otherwise the
evaluation fails with `SqlEvaluationError`: the rules engine then runs no action and no
errorAction and logs the failure to AWS IoT logging when it is on (`iotlogging.py`).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp, parser, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from emulator.constants import ACCOUNT_ID, DEFAULT_REGION
from emulator.rules.functions import FUNCTIONS, UNSUPPORTED_FUNCTIONS, java_mod
from emulator.rules.operators import add, arithmetic, cast, comparison, divide
from emulator.rules.protobuf_decode import ARITY as PROTO_DECODE_ARITY
from emulator.rules.protobuf_decode import CALLS_PER_STATEMENT as PROTO_DECODE_CALLS
from emulator.rules.protobuf_decode import decode_proto
from emulator.rules.service_functions import CALLS_PER_STATEMENT
from emulator.rules.topics import check_topic_filter, topic_matcher
from emulator.rules.values import (
    SQL_V1,
    UNDEFINED,
    SqlEvaluationError,
    dumps,
    equal,
    make_decimal,
    normalize,
    parse_json,
    to_boolean,
    to_decimal,
    to_int,
    to_string,
)

V1 = "2015-10-08"
V2 = "2016-03-23"
SUPPORTED_VERSIONS = (V1, V2, "beta")
# AWS's version when CreateTopicRule (or CloudFormation) gives none ("AWS::IoT::TopicRule
# TopicRulePayload": AwsIotSqlVersion defaults to 2015-10-08).
DEFAULT_VERSION = V1

# Functions documented as "Supported by SQL version 2016-03-23 and later" ("iot-sql-functions").
FUNCTIONS_SINCE_V2 = frozenset(
    {
        "decode",
        "encode",
        "get_dynamodb",
        "get_mqtt_property",
        "get_thing_shadow",
        "indexof",
        "isundefined",
        "length",
        "numbytes",
        "parse_time",
        "sourceip",
        "time_to_epoch",
        "transform",
    }
)
_VERSION_PAGE = "https://docs.aws.amazon.com/iot/latest/developerguide/iot-rule-sql-version.html"
NO_CLIENT_ID = "n/a"


class SqlError(ValueError):
    """A statement the engine refuses, with where (1-based line/column, 0-based offset)."""

    def __init__(self, message: str, line: int = 1, column: int = 1, offset: int = 0) -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.offset = offset
        self.position = (line, column)
        super().__init__(f"{message} (line {line}, column {column}, offset {offset})")


@dataclass(frozen=True)
class MessageContext:
    """What the SQL functions read about the message besides its payload."""

    topic: str
    client_id: str = NO_CLIENT_ID
    principal: str | None = None
    timestamp_ms: int = 0
    account_id: str = ACCOUNT_ID
    user_properties: tuple[tuple[str, str], ...] = ()
    trace_id: str | None = None
    # The publishing client's IP address (sourceip()) and the PUBLISH's MQTT 5 properties by
    # get_mqtt_property()'s names (emulator/iot/messages.py InboundMessage).
    source_ip: str | None = None
    mqtt_properties: tuple[tuple[str, Any], ...] = ()
    region: str = DEFAULT_REGION
    # The rule being evaluated, and its SQL version (substitution templates are evaluated with
    # it): set by the rules engine for each rule.
    rule_name: str | None = None
    sql_version: str | None = None
    # The services the functions of service_functions.py call (the rules engine's
    # `ServiceCalls`); None outside the engine, where those functions fail.
    services: Any = None
    # The SET clause's values for this message and rule (set by `CompiledRule.evaluate`), which
    # the rule's substitution templates read as `${@name}` ("iot-sql-set").
    variables: dict[str, Any] | None = None


@dataclass(frozen=True)
class Result:
    """The rule's output: a JSON value (`value`) or, for `SELECT *` on binary data, `raw`."""

    value: Any = UNDEFINED
    raw: bytes | None = None
    # SQL version 2015-10-08 prints whole-number Decimals as Decimals (10.0), not Ints.
    keeps_decimals: bool = False

    def to_bytes(self) -> bytes:
        if self.raw is not None:
            return self.raw
        token = SQL_V1.set(self.keeps_decimals)
        try:
            return dumps(self.value).encode("utf-8")
        finally:
            SQL_V1.reset(token)


# --------------------------------------------------------------------------------------------
# Dialect: IoT quoting; every function name kept as written (no ANSI rewriting) except CAST.
class IotSql(Dialect):
    class Tokenizer(tokens.Tokenizer):
        QUOTES = ["'", '"']
        IDENTIFIERS = ["`"]

    class Parser(parser.Parser):
        FUNCTIONS: dict[str, Any] = {}
        FUNCTION_PARSERS = {"CAST": parser.Parser.FUNCTION_PARSERS["CAST"]}
        NO_PAREN_FUNCTIONS: dict[Any, Any] = {}


_DIALECT = IotSql()


class _Env:
    """One evaluation: the message, its payload parsed lazily, and the current document."""

    __slots__ = ("context", "payload", "_doc", "sql_version", "variables")

    def __init__(self, payload: bytes, context: MessageContext, sql_version: str) -> None:
        self.payload = payload
        self.context = context
        self._doc: Any = _UNPARSED
        self.sql_version = sql_version
        # The SET clause's variables, evaluated once per message before WHERE and SELECT.
        self.variables: dict[str, Any] = _NO_VARIABLES

    @property
    def doc(self) -> Any:
        doc = self._doc
        if doc is _UNPARSED:
            try:
                doc = parse_json(self.payload) if self.payload else _NOT_JSON
            except (ValueError, UnicodeDecodeError, RecursionError):
                # Nesting deeper than the parser's recursion limit (~1,000 levels) is handled
                # like any payload that is not JSON (accepted with a PUBACK, then handled as
                # the rule's SQL allows), instead of being refused without a PUBACK.
                doc = _NOT_JSON
            self._doc = doc
        return doc

    def nested(self, document: Any) -> _Env:
        env = _Env(self.payload, self.context, self.sql_version)
        env._doc = document
        env.variables = self.variables
        return env


_UNPARSED = object()
_NO_VARIABLES: dict[str, Any] = {}
_NOT_JSON = object()

Evaluator = Callable[[_Env], Any]


# --------------------------------------------------------------------------------------------
@dataclass
class CompiledRule:
    """A parsed statement: `matches(topic)` for FROM, `evaluate(payload, context)` per message."""

    sql: str
    version: str
    topic_filter: str
    _matcher: Callable[[str], bool]
    _where: Evaluator | None
    _select: Callable[[_Env], Result]
    uses_payload_fields: bool = False
    field_names: list[str] = field(default_factory=list)
    # Why every evaluation fails although the statement compiled (a documented run-time limit).
    refusal: str | None = None
    # The SET clause ("iot-sql-set"): (name, evaluator) in the order written.
    variables: tuple[tuple[str, Evaluator], ...] = ()

    def matches(self, topic: str) -> bool:
        return self._matcher(topic)

    @property
    def variable_names(self) -> frozenset[str]:
        """The names the SET clause defines (what the rule's templates may read)."""
        return frozenset(name for name, _ in self.variables)

    def evaluate(self, payload: bytes, context: MessageContext) -> Result | None:
        """The rule's output for one message, or None when WHERE is not true."""
        if self.refusal is not None:
            raise SqlEvaluationError(self.refusal)
        env = _Env(payload, context, self.version)
        token = SQL_V1.set(self.version == V1)
        try:
            if self.variables:
                values: dict[str, Any] = {}
                env.variables = values
                for name, evaluator in self.variables:
                    values[name] = evaluator(env)
                # The actions' and errorAction's templates of this rule read them.
                object.__setattr__(context, "variables", values)
            elif context.variables is not None:
                object.__setattr__(context, "variables", None)  # another rule's
            if self._where is not None and not _is_true(self._where(env)):
                return None
            result = self._select(env)
        finally:
            SQL_V1.reset(token)
        if self.version != V1:
            return result
        if type(result.value) is list:
            # "iot-rule-sql-version": outputting an array as the top-level object is new in
            # 2016-03-23; what 2015-10-08 does instead is not documented, so the rule fails.
            raise SqlEvaluationError(
                "SQL version 2015-10-08 cannot output an Array as the top-level value "
                f"(added in 2016-03-23, {_VERSION_PAGE}); set awsIotSqlVersion to 2016-03-23"
            )
        return Result(value=result.value, raw=result.raw, keeps_decimals=True)

    def expression(self, source: str) -> Callable[[bytes, MessageContext], Any]:
        """Compile a substitution-template expression (`${...}`) against this rule's version."""
        evaluator = compile_expression(source, self.version)
        version = self.version

        def evaluate(payload: bytes, context: MessageContext) -> Any:
            token = SQL_V1.set(version == V1)
            try:
                return evaluator(_Env(payload, context, version))
            finally:
                SQL_V1.reset(token)

        return evaluate


def _is_true(value: Any) -> bool:
    return value is True or (type(value) is str and value.lower() == "true")


def compile_sql(sql: str, version: str = V2) -> CompiledRule:
    """Parse and check a rule's statement; raise `SqlError` with the position of the problem.

    `version` defaults to 2016-03-23 for callers in this package; CreateTopicRule and
    CloudFormation pass `DEFAULT_VERSION` (2015-10-08) when the rule names none, as AWS does.
    """
    if version not in SUPPORTED_VERSIONS:
        raise SqlError(
            f"Unknown awsIotSqlVersion {version!r}; AWS IoT supports "
            f"{', '.join(SUPPORTED_VERSIONS)} ({_VERSION_PAGE})"
        )
    if not sql or not sql.strip():
        raise SqlError("The SQL statement is empty")
    assignments, select = _parse_rule(sql)
    if not isinstance(select, exp.Select):
        raise _error_at(sql, select, "Expected a SELECT statement")
    compiler = _Compiler(sql, version)
    variables = compiler.set_clause(assignments) if assignments is not None else ()
    from_ = select.args.get("from_")
    if from_ is None:
        raise _error_at(sql, select, "Expected FROM with a topic filter in single quotes")
    topic_filter = compiler.topic_filter(from_)
    where, projection = compiler.select_parts(select, top_level=True)
    return CompiledRule(
        sql=sql,
        version=version,
        topic_filter=topic_filter,
        _matcher=topic_matcher(topic_filter),
        _where=where,
        _select=projection,
        refusal=compiler.call_limit_exceeded(),
        variables=variables,
    )


def compile_expression(source: str, version: str = V2) -> Evaluator:
    """An IoT SQL expression (substitution template body) as an evaluator."""
    wrapper = f"SELECT {source} FROM 'x'"
    try:
        select = _parse(wrapper)
    except SqlError as error:
        raise SqlError(f"Invalid substitution template ${{{source}}}: {error.reason}") from None
    if not isinstance(select, exp.Select) or len(select.expressions) != 1:
        raise SqlError(f"Invalid substitution template ${{{source}}}")
    return _Compiler(wrapper, version, in_template=True).expr(select.expressions[0])


def expression_variables(source: str) -> set[str]:
    """The SET variables (`@name`) a substitution template expression reads."""
    select = _parse(f"SELECT {source} FROM 'x'")
    return {node.name for node in select.find_all(exp.Parameter)}


def validate_sql(sql: str, version: str = V2) -> None:
    """Raise `SqlError` if the engine cannot run `sql` (CreateTopicRule, CloudFormation)."""
    compile_sql(sql, version)


# --------------------------------------------------------------------------------------------
# Parsing
def _parse(sql: str) -> exp.Expression:
    return _parse_rule(sql, allow_set=False)[1]


def _parse_rule(sql: str, allow_set: bool = True) -> tuple[exp.Select | None, exp.Expression]:
    """The SET clause's assignments (parsed as a SELECT list), if any, and the statement."""
    try:
        toks = _DIALECT.tokenize(sql)
    except TokenError as error:
        raise SqlError(f"Could not read the statement: {error}") from None
    head: list[tokens.Token] = []
    if allow_set and toks and toks[0].token_type == TokenType.SET:
        head, toks = _split_set(toks)
    rest = [*head[1:], *toks]
    for token, following in zip(rest, rest[1:], strict=False):
        # A second `SET @...` (a field may be named set: `SELECT set FROM 't'`).
        if token.token_type == TokenType.SET and following.token_type == TokenType.PARAMETER:
            raise SqlError(
                "The SET clause must come first, before SELECT, and only once per statement "
                "(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-set.html)",
                token.line,
                max(token.col - len(token.text) + 1, 1),
                token.start,
            )
    assignments = _parse_tokens(sql, _mark_select_value(sql, head)) if head else None
    toks = _mark_select_value(sql, toks)
    _check_from(toks)
    return assignments, _parse_tokens(sql, toks)


def _split_set(toks: list[tokens.Token]) -> tuple[list[tokens.Token], list[tokens.Token]]:
    """`SET a SELECT b` -> (`SELECT a` as tokens, `SELECT b`): the SET keyword becomes a SELECT
    (keeping its position) so the assignments parse as a list of `@name = expression`."""
    depth = 0
    for index, token in enumerate(toks):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif kind == TokenType.SELECT and depth == 0:
            first = toks[0]
            head = tokens.Token(
                TokenType.SELECT, first.text, first.line, first.col, first.start, first.end
            )
            return [head, *toks[1:index]], toks[index:]
    last = toks[-1]
    raise SqlError(
        "The SET clause must be followed by a SELECT clause", last.line, last.col, last.start
    )


def _parse_tokens(sql: str, toks: list[tokens.Token]) -> exp.Expression:
    try:
        statements = _DIALECT.parser().parse(toks, sql)
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        line, col = first.get("line", 1), first.get("col", 1)
        reason = first.get("description", str(error))
        if "missing for" in reason:
            reason = "Incomplete statement"
        highlight = first.get("highlight")
        if highlight:
            reason = f"{reason} near {highlight!r}"
        raise SqlError(reason, line, col, _offset(sql, line, col)) from None
    if len(statements) != 1 or statements[0] is None:
        raise SqlError("Expected exactly one SELECT statement")
    return statements[0]


def _mark_select_value(sql: str, toks: list[tokens.Token]) -> list[tokens.Token]:
    """`SELECT VALUE x` -> `SELECT DISTINCT x` internally (IoT has no DISTINCT, so no clash)."""
    for index, token in enumerate(toks):
        if token.comments:
            # "iot-sql-reference": comments are not supported in AWS IoT SQL syntax.
            raise SqlError(
                "Comments are not supported in AWS IoT SQL", token.line, token.col, token.start
            )
        if token.token_type == TokenType.DISTINCT:
            raise SqlError(
                "DISTINCT is not supported by AWS IoT SQL",
                token.line,
                token.col - len(token.text) + 1,
                token.start,
            )
        if (
            token.token_type == TokenType.VAR
            and token.text.upper() == "VALUE"
            and index > 0
            and toks[index - 1].token_type == TokenType.SELECT
            and index + 1 < len(toks)
            and toks[index + 1].token_type not in (TokenType.FROM, TokenType.COMMA)
        ):
            token.token_type = TokenType.DISTINCT
    return toks


def _check_from(toks: list[tokens.Token]) -> None:
    """The statement's own FROM must name a quoted topic filter ("iot-sql-from")."""
    depth = 0
    for index, token in enumerate(toks):
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        elif token.token_type == TokenType.FROM and depth == 0:
            following = toks[index + 1] if index + 1 < len(toks) else token
            if following.token_type != TokenType.STRING or following is token:
                raise SqlError(
                    "FROM expects a topic filter enclosed in single quotes, e.g. FROM 'a/+/b'",
                    following.line,
                    max(following.col - len(following.text) + 1, 1),
                    following.start,
                )
            return


def _offset(sql: str, line: int, col: int) -> int:
    lines = sql.split("\n")
    return sum(len(text) + 1 for text in lines[: max(line - 1, 0)]) + max(col - 1, 0)


def _position(node: exp.Expression) -> tuple[int, int, int] | None:
    for candidate in node.walk():
        meta = getattr(candidate, "_meta", None) or {}
        if "line" in meta:
            start = meta.get("start", 0)
            end = meta.get("end", start)
            return meta["line"], max(meta["col"] - (end - start), 1), start
    return None


def _error_at(sql: str, node: exp.Expression, message: str) -> SqlError:
    if not isinstance(node, exp.Anonymous):
        message = f"{message}: {node.sql()!r}"
    where = _position(node)
    if where is None:
        return SqlError(message)
    line, col, offset = where
    return SqlError(message, line, col, offset)


# Friendlier names for constructs sqlglot parses but IoT SQL does not have.
_REFUSED_NODES = {
    "DPipe": "'||' is not an AWS IoT SQL operator; use + or concat()",
    "Is": "IS is not an AWS IoT SQL operator; use isNull() or isUndefined()",
    "Like": "LIKE is not supported; use regexp_matches() or startswith()",
    "Between": "BETWEEN is not supported; use two comparisons",
    "Select": "A nested SELECT must be in parentheses",
}


# --------------------------------------------------------------------------------------------
# Compilation to closures
_CAST_TYPES = {
    exp.DataType.Type.TEXT: "String",
    exp.DataType.Type.VARCHAR: "String",
    exp.DataType.Type.NVARCHAR: "String",
    exp.DataType.Type.NCHAR: "String",
    exp.DataType.Type.INT: "Int",
    exp.DataType.Type.DOUBLE: "Double",
    exp.DataType.Type.DECIMAL: "Decimal",
    exp.DataType.Type.BOOLEAN: "Boolean",
}
# "iot-sql-functions" cast(): Decimal, Bool and Boolean are keywords of 2016-03-23 only.
_CAST_TARGETS_SINCE_V2 = ("Decimal", "Boolean")

_SELECT_CLAUSES_REFUSED = {
    "joins": "JOIN",
    "group": "GROUP BY",
    "having": "HAVING",
    "order": "ORDER BY",
    "limit": "LIMIT",
    "offset": "OFFSET",
    "laterals": "LATERAL",
    "qualify": "QUALIFY",
    "windows": "WINDOW",
    "with_": "WITH",
    "into": "INTO",
    "kind": "SELECT AS",
}


class _Compiler:
    def __init__(self, sql: str, version: str = V2, in_template: bool = False) -> None:
        self.sql = sql
        self.version = version
        self.in_template = in_template
        self.calls: dict[str, int] = {}
        # The SET clause's variables defined so far (a variable sees only earlier ones).
        self.variables: set[str] = set()

    def call_limit_exceeded(self) -> str | None:
        """The documented per-statement call limits: a statement over one still compiles on
        AWS but "causes the rule to terminate without invoking any actions"
        ("iot-sql-functions" get_dynamodb())."""
        for name, limit in {**CALLS_PER_STATEMENT, "decode": PROTO_DECODE_CALLS}.items():
            if self.calls.get(name, 0) > limit:
                return (
                    f"{name}() can be called at most {limit} time(s) per SQL statement; this "
                    f"statement calls it {self.calls[name]} times, so the rule runs no action"
                )
        return None

    def error(self, node: exp.Expression, message: str) -> SqlError:
        return _error_at(self.sql, node, message)

    def needs_v2(self, node: exp.Expression, what: str) -> None:
        """Refuse, in a 2015-10-08 statement, what only 2016-03-23 documents."""
        if self.version == V1:
            raise self.error(
                node,
                f"{what} requires SQL version 2016-03-23 (the rule uses 2015-10-08, AWS's "
                f"default when awsIotSqlVersion is omitted; {_VERSION_PAGE})",
            )

    # SET ---------------------------------------------------------------------------------
    def set_clause(self, assignments: exp.Select) -> tuple[tuple[str, Evaluator], ...]:
        """`SET @name = expression, ...` ("iot-sql-set"): names of letters, digits and
        underscores up to 64 characters, each assigned once, in the order written."""
        for key, value in assignments.args.items():
            if key != "expressions" and value:
                raise self.error(
                    assignments, "The SET clause takes only assignments: SET @name = expression"
                )
        variables: list[tuple[str, Evaluator]] = []
        for item in assignments.expressions:
            target = item.this if isinstance(item, exp.EQ) else None
            if not isinstance(target, exp.Parameter):
                raise self.error(item, "SET assigns variables: SET @name = expression")
            name = target.name
            if not _VARIABLE_NAME.fullmatch(name):
                raise self.error(
                    target,
                    f"Invalid variable name @{name}: use letters, digits and underscores, "
                    f"at most {VARIABLE_NAME_MAX} characters",
                )
            if name in self.variables:
                raise self.error(
                    target,
                    f"Variable @{name} is assigned twice; variables are "
                    "immutable, each can be assigned only once",
                )
            variables.append((name, self.expr(item.expression)))
            self.variables.add(name)
        return tuple(variables)

    def _x_Parameter(self, node: exp.Parameter) -> Evaluator:
        name = node.name
        if self.in_template:
            # A substitution template reads the rule's SET values from the message context;
            # which names the rule defines is checked with the rule (templates.check_templates).
            if not _VARIABLE_NAME.fullmatch(name):
                raise self.error(node, f"Invalid variable name @{name}")

            def template_variable(env: _Env) -> Any:
                values = env.context.variables
                return UNDEFINED if values is None else values.get(name, UNDEFINED)

            return template_variable
        if name not in self.variables:
            raise self.error(
                node, f"Variable @{name} is not defined; define it in the SET clause before use"
            )
        return lambda env: env.variables.get(name, UNDEFINED)

    # FROM --------------------------------------------------------------------------------
    def topic_filter(self, from_: exp.From) -> str:
        table = from_.this
        ident = table.this if isinstance(table, exp.Table) else None
        if (
            not isinstance(table, exp.Table)
            or not isinstance(ident, exp.Identifier)
            or not ident.quoted
            or table.args.get("db")
            or table.args.get("alias")
        ):
            raise self.error(from_, "FROM expects a topic filter enclosed in single quotes")
        reason = check_topic_filter(ident.this)
        if reason:
            raise self.error(from_, f"Invalid topic filter {ident.this!r}: {reason}")
        return ident.this

    # SELECT ------------------------------------------------------------------------------
    def select_parts(
        self, select: exp.Select, top_level: bool
    ) -> tuple[Evaluator | None, Callable[[_Env], Any]]:
        for key, clause in _SELECT_CLAUSES_REFUSED.items():
            if select.args.get(key):
                node = select.args[key]
                node = node[0] if isinstance(node, list) else node
                target = node if isinstance(node, exp.Expression) else select
                raise self.error(target, f"{clause} is not supported by AWS IoT SQL")
        value_mode = bool(select.args.get("distinct"))
        where_node = select.args.get("where")
        where = self.expr(where_node.this) if where_node is not None else None
        items = select.expressions
        if not items:
            raise self.error(select, "SELECT needs at least one expression")
        if value_mode:
            if len(items) != 1 or isinstance(items[0], exp.Alias):
                raise self.error(select, "SELECT VALUE takes exactly one expression, no alias")
            return where, self._value_projection(items[0], top_level)
        return where, self._object_projection(items, top_level)

    def _value_projection(self, item: exp.Expression, top_level: bool) -> Callable:
        if isinstance(item, exp.Star):
            return self._star_only(top_level)
        evaluator = self.expr(item)
        if top_level:
            return lambda env: Result(value=evaluator(env))
        return evaluator

    def _star_only(self, top_level: bool) -> Callable:
        def star(env: _Env) -> Any:
            doc = env.doc
            if doc is _NOT_JSON:
                return Result(raw=env.payload) if top_level else UNDEFINED
            return Result(value=doc) if top_level else doc

        return star

    def _object_projection(self, items: list[exp.Expression], top_level: bool) -> Callable:
        if len(items) == 1 and isinstance(items[0], exp.Star):
            return self._star_only(top_level)
        parts: list[tuple[str | None, Evaluator]] = []
        for item in items:
            if isinstance(item, exp.Star):
                parts.append((None, _star_object))
            elif isinstance(item, exp.Alias):
                parts.append((item.alias, self.expr(item.this)))
            else:
                parts.append((self._output_name(item), self.expr(item)))
        frozen = tuple(parts)

        def project(env: _Env) -> Any:
            out: dict[str, Any] = {}
            for name, evaluator in frozen:
                if name is None:
                    out.update(evaluator(env))
                    continue
                value = evaluator(env)
                if value is not UNDEFINED:
                    out[name] = value
            return Result(value=out) if top_level else out

        return project

    def _output_name(self, item: exp.Expression) -> str:
        # Without AS, a field keeps its last name (`a.b` -> "b"); a call keeps the function name.
        node = item
        while isinstance(node, (exp.Bracket, exp.Paren)):
            node = node.this
        if isinstance(node, exp.Column):
            return node.name
        if isinstance(node, exp.Dot):
            return node.expression.name
        if isinstance(node, exp.Anonymous):
            return node.name
        if isinstance(node, exp.Cast):
            return "cast"
        raise self.error(item, "This SELECT expression needs a name: add AS <name>")

    # Expressions -------------------------------------------------------------------------
    def expr(self, node: exp.Expression) -> Evaluator:
        method = getattr(self, f"_x_{type(node).__name__}", None)
        if method is None:
            kind = type(node).__name__
            reason = _REFUSED_NODES.get(kind, f"{kind} is not supported by AWS IoT SQL")
            raise self.error(node, reason)
        return method(node)

    def _x_Paren(self, node: exp.Paren) -> Evaluator:
        return self.expr(node.this)

    def _x_Literal(self, node: exp.Literal) -> Evaluator:
        if node.is_string:
            text = node.this
            return lambda env: text
        raw = node.this
        if any(c in raw for c in ".eE"):
            decimal_value = make_decimal(raw)
            if decimal_value is UNDEFINED:
                raise self.error(node, "This number is outside the Decimal range (1E-999..1E999)")
            # 2016-03-23 processes a whole-number Decimal literal as an Int; 2015-10-08 keeps it.
            return lambda env: normalize(decimal_value)
        value: Any = int(raw)
        return lambda env: value

    def _x_Boolean(self, node: exp.Boolean) -> Evaluator:
        value = bool(node.this)
        return lambda env: value

    def _x_Null(self, node: exp.Null) -> Evaluator:
        return lambda env: None

    def _x_Star(self, node: exp.Star) -> Evaluator:
        raise self.error(node, "'*' is only allowed in SELECT or as the argument of encode()")

    def _x_Column(self, node: exp.Column) -> Evaluator:
        names = [part.name for part in node.parts]
        if not names or any(isinstance(p, exp.Star) for p in node.parts):
            raise self.error(node, "'x.*' is not supported by AWS IoT SQL")
        if len(names) > 1:
            self.needs_v2(node, "Selecting a nested field (a.b)")
        first, rest = names[0], tuple(names[1:])

        def column(env: _Env) -> Any:
            doc = env.doc
            if type(doc) is not dict:
                return UNDEFINED
            value = doc.get(first, UNDEFINED)
            for name in rest:
                if type(value) is not dict:
                    return UNDEFINED
                value = value.get(name, UNDEFINED)
            return value

        return column

    def _x_Dot(self, node: exp.Dot) -> Evaluator:
        self.needs_v2(node, "Selecting a nested field (a.b)")
        inner = self.expr(node.this)
        if not isinstance(node.expression, exp.Identifier):
            raise self.error(node, "Expected a field name after '.'")
        name = node.expression.name

        def dot(env: _Env) -> Any:
            value = inner(env)
            return value.get(name, UNDEFINED) if type(value) is dict else UNDEFINED

        return dot

    def _x_Bracket(self, node: exp.Bracket) -> Evaluator:
        self.needs_v2(node, "Selecting an array element (a[0])")
        inner = self.expr(node.this)
        if len(node.expressions) != 1:
            raise self.error(node, "An array index takes one expression")
        index = self.expr(node.expressions[0])

        def bracket(env: _Env) -> Any:
            value, key = inner(env), index(env)
            if type(value) is list:
                position = to_int(key)
                if type(position) is int and 0 <= position < len(value):
                    return value[position]
                return UNDEFINED
            if type(value) is dict and type(key) is str:
                return value.get(key, UNDEFINED)
            return UNDEFINED

        return bracket

    def _x_Array(self, node: exp.Array) -> Evaluator:
        # "iot-sql-literals": "Literals are available only when using SQL version 2016-03-23".
        self.needs_v2(node, "An array literal")
        items = [self.expr(e) for e in node.expressions]
        return lambda env: [v for v in (item(env) for item in items) if v is not UNDEFINED]

    def _x_Struct(self, node: exp.Struct) -> Evaluator:
        self.needs_v2(node, "An object literal")
        members: list[tuple[str, Evaluator]] = []
        for member in node.expressions:
            if not isinstance(member, exp.PropertyEQ):
                raise self.error(member, "Object literal members are written 'key': value")
            key = member.this
            members.append((key.name, self.expr(member.expression)))

        def struct(env: _Env) -> Any:
            out = {}
            for key, evaluator in members:
                value = evaluator(env)
                if value is not UNDEFINED:
                    out[key] = value
            return out

        return struct

    def _x_Subquery(self, node: exp.Subquery) -> Evaluator:
        # "iot-sql-nested-queries": "Supported by SQL version 2016-03-23 and later".
        self.needs_v2(node, "A nested query")
        select = node.this
        if not isinstance(select, exp.Select):
            raise self.error(node, "A nested query must be a SELECT")
        from_ = select.args.get("from_")
        if from_ is None or not isinstance(from_.this, exp.Table):
            raise self.error(node, "A nested query needs FROM <array field>")
        table = from_.this
        if isinstance(table.this, exp.Identifier) and table.this.quoted:
            raise self.error(from_, "A nested query reads an array field, not a topic")
        path = [p.name for p in table.parts]
        source = self.expr(exp.column(*reversed(path)) if len(path) > 1 else exp.column(path[0]))
        where, projection = self.select_parts(select, top_level=False)

        def nested(env: _Env) -> Any:
            array = source(env)
            if type(array) is dict:
                # "iot-sql-functions" transform() example 3: `(select a, b from data2)` over an
                # object gives one object, `(select value c from data2)` its member c.
                inner = env.nested(array)
                if where is not None and not _is_true(where(inner)):
                    return UNDEFINED
                return projection(inner)
            if type(array) is not list:
                return UNDEFINED
            out = []
            for element in array:
                inner = env.nested(element)
                if where is not None and not _is_true(where(inner)):
                    continue
                value = projection(inner)
                if value is not UNDEFINED:
                    out.append(value)
            return out

        return nested

    # Operators ---------------------------------------------------------------------------
    def _binary(self, node: exp.Binary, op: Callable[[Any, Any], Any]) -> Evaluator:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda env: op(left(env), right(env))

    def _x_EQ(self, node: exp.EQ) -> Evaluator:
        return self._binary(node, equal)

    def _x_NEQ(self, node: exp.NEQ) -> Evaluator:
        def not_equal(a: Any, b: Any) -> Any:
            result = equal(a, b)
            if result is UNDEFINED:
                return UNDEFINED
            if a is None and b is None:  # "iot-sql-operators": Null <> Null is false
                return False
            return not result

        return self._binary(node, not_equal)

    def _x_GT(self, node: exp.GT) -> Evaluator:
        return self._binary(node, comparison(lambda a, b: a > b))

    def _x_GTE(self, node: exp.GTE) -> Evaluator:
        return self._binary(node, comparison(lambda a, b: a >= b))

    def _x_LT(self, node: exp.LT) -> Evaluator:
        return self._binary(node, comparison(lambda a, b: a < b))

    def _x_LTE(self, node: exp.LTE) -> Evaluator:
        return self._binary(node, comparison(lambda a, b: a <= b))

    def _x_Add(self, node: exp.Add) -> Evaluator:
        return self._binary(node, add)

    def _x_Sub(self, node: exp.Sub) -> Evaluator:
        return self._binary(node, arithmetic(lambda a, b: a - b))

    def _x_Mul(self, node: exp.Mul) -> Evaluator:
        return self._binary(node, arithmetic(lambda a, b: a * b))

    def _x_Div(self, node: exp.Div) -> Evaluator:
        return self._binary(node, arithmetic(divide))

    def _x_Mod(self, node: exp.Mod) -> Evaluator:
        return self._binary(node, arithmetic(java_mod))

    def _x_Neg(self, node: exp.Neg) -> Evaluator:
        inner = self.expr(node.this)

        def negate(env: _Env) -> Any:
            value = inner(env)
            if type(value) is bool or value is None:
                return UNDEFINED
            number = to_decimal(value)
            return UNDEFINED if number is UNDEFINED else -number

        return negate

    def _x_And(self, node: exp.And) -> Evaluator:
        left, right = self.expr(node.left), self.expr(node.right)

        def and_(env: _Env) -> Any:
            a = to_boolean(left(env))
            if a is UNDEFINED:
                return UNDEFINED
            b = to_boolean(right(env))
            if b is UNDEFINED:
                return UNDEFINED
            return a and b

        return and_

    def _x_Or(self, node: exp.Or) -> Evaluator:
        left, right = self.expr(node.left), self.expr(node.right)

        def or_(env: _Env) -> Any:
            a, b = to_boolean(left(env)), to_boolean(right(env))
            if a is UNDEFINED or b is UNDEFINED:
                return UNDEFINED
            return a or b

        return or_

    def _x_Not(self, node: exp.Not) -> Evaluator:
        inner = self.expr(node.this)

        def not_(env: _Env) -> Any:
            value = to_boolean(inner(env))
            return UNDEFINED if value is UNDEFINED else not value

        return not_

    def _x_In(self, node: exp.In) -> Evaluator:
        if node.args.get("query") or node.args.get("unnest"):
            raise self.error(node, "IN takes an array: x IN arr or x IN [a, b]")
        needle = self.expr(node.this)
        if node.args.get("field") is not None:
            # "iot-sql-operators" IN: true if the left operand is an element of the array.
            array = self.expr(node.args["field"])

            def in_array(env: _Env) -> Any:
                value, items = needle(env), array(env)
                if value is UNDEFINED or type(items) is not list:
                    return UNDEFINED
                return any(equal(value, item) is True for item in items)

            return in_array
        candidates = [self.expr(e) for e in node.expressions]

        def in_(env: _Env) -> Any:
            value = needle(env)
            if value is UNDEFINED:
                return UNDEFINED
            return any(equal(value, c(env)) is True for c in candidates)

        return in_

    def _x_Case(self, node: exp.Case) -> Evaluator:
        subject = self.expr(node.this) if node.this is not None else None
        branches = [(self.expr(i.this), self.expr(i.args["true"])) for i in node.args["ifs"]]
        default_node = node.args.get("default")
        default = self.expr(default_node) if default_node is not None else None

        def case(env: _Env) -> Any:
            if subject is not None:
                value = subject(env)
                if value is UNDEFINED:  # "iot-sql-case": Undefined v gives Undefined
                    return UNDEFINED
                for test, result in branches:
                    if equal(value, test(env)) is True:
                        return result(env)
            else:
                for test, result in branches:
                    if _is_true(test(env)):
                        return result(env)
            return default(env) if default is not None else UNDEFINED

        return case

    def _x_Cast(self, node: exp.Cast) -> Evaluator:
        to = node.args["to"]
        target = _CAST_TYPES.get(to.this)
        if to.this == exp.DataType.Type.USERDEFINED and str(to.args.get("kind", "")).lower() in (
            "ntext",
            "string",
        ):
            target = "String"
        if target is None:
            raise self.error(
                node,
                f"cast to {to.sql()} is not supported; use String, Int, Decimal, Double or Boolean",
            )
        if target in _CAST_TARGETS_SINCE_V2:
            self.needs_v2(node, f"cast(... as {to.sql()})")
        inner = self.expr(node.this)
        return lambda env: cast(inner(env), target)

    def _x_Anonymous(self, node: exp.Anonymous) -> Evaluator:
        name = node.name.lower()
        args = node.expressions
        contextual = getattr(self, f"_f_{name}", None)
        if contextual is not None:
            return contextual(node, args)
        if name in FUNCTIONS_SINCE_V2:
            self.needs_v2(node, f"Function {node.name}()")
        if name == "decode" and len(args) == PROTO_DECODE_ARITY:
            # decode(*, 'proto', bucket, key, file, type) reads S3: protobuf_decode.py
            if isinstance(args[1], exp.Literal) and str(args[1].this).lower() != "proto":
                raise self.error(node, "decode() with six arguments takes the 'proto' scheme")
            return self._service_call(node, name, decode_proto, args)
        fn = FUNCTIONS.get(name)
        if fn is None:
            reason = UNSUPPORTED_FUNCTIONS.get(name, "is not a known AWS IoT SQL function")
            raise self.error(node, f"Function {node.name}() {reason}")
        if getattr(fn, "with_context", False):
            return self._service_call(node, name, fn, args)
        if name == "decode" and len(args) == 2 and isinstance(args[1], exp.Literal):
            if str(args[1].this).lower() != "base64":
                raise self.error(node, f"decode() {UNSUPPORTED_FUNCTIONS['decode']}")
        evaluators = [self.expr(a) for a in args]
        if len(evaluators) == 1:
            only = evaluators[0]
            return lambda env: fn(only(env))
        if len(evaluators) == 2:
            first, second = evaluators
            return lambda env: fn(first(env), second(env))
        return lambda env: fn(*(e(env) for e in evaluators))

    def _service_call(self, node: exp.Anonymous, name: str, fn: Any, args: list) -> Evaluator:
        """A function that calls another service (service_functions.py): fn(context, *args)."""
        if self.in_template:
            # The reference documents these in the SELECT and WHERE clauses; a template is
            # rendered while an action runs, where a failing call has no documented outcome.
            raise self.error(
                node,
                f"{node.name}() can be used only in the SELECT and WHERE clauses, not in a "
                "substitution template; select its result AS a field instead",
            )
        if len(args) not in fn.arities:
            counts = " or ".join(str(n) for n in fn.arities)
            raise self.error(node, f"{node.name}() takes {counts} arguments, not {len(args)}")
        self.calls[name] = self.calls.get(name, 0) + 1
        star = _payload_bytes if getattr(fn, "star_is_bytes", False) else _payload_value
        evaluators = [star if isinstance(a, exp.Star) else self.expr(a) for a in args]
        return lambda env: fn(env.context, *(e(env) for e in evaluators))

    # Functions that read the message -----------------------------------------------------
    def _no_args(self, node: exp.Anonymous, args: list, getter: Evaluator) -> Evaluator:
        if args:
            raise self.error(node, f"{node.name}() takes no arguments")
        return getter

    def _f_topic(self, node: exp.Anonymous, args: list) -> Evaluator:
        if not args:
            return lambda env: env.context.topic
        if len(args) != 1:
            raise self.error(node, "topic() takes at most one argument, the 1-based level")
        level = self.expr(args[0])

        def topic_level(env: _Env) -> Any:
            index = to_int(level(env))
            parts = env.context.topic.split("/")
            if type(index) is not int or not 1 <= index <= len(parts):
                return UNDEFINED
            return parts[index - 1]

        return topic_level

    def _f_clientid(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(node, args, lambda env: env.context.client_id)

    def _f_timestamp(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(node, args, lambda env: env.context.timestamp_ms)

    def _f_principal(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(
            node,
            args,
            lambda env: env.context.principal if env.context.principal is not None else UNDEFINED,
        )

    def _f_accountid(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(node, args, lambda env: env.context.account_id)

    def _f_traceid(self, node: exp.Anonymous, args: list) -> Evaluator:
        # "iot-sql-functions": Undefined when the message did not come over MQTT.
        def trace(env: _Env) -> Any:
            if env.context.client_id == NO_CLIENT_ID:
                return UNDEFINED
            return env.context.trace_id or str(uuid.uuid4())

        return self._no_args(node, args, trace)

    def _f_sql_version(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(node, args, lambda env: env.sql_version)

    def _f_newuuid(self, node: exp.Anonymous, args: list) -> Evaluator:
        return self._no_args(node, args, lambda env: str(uuid.uuid4()))

    def _f_get_user_properties(self, node: exp.Anonymous, args: list) -> Evaluator:
        # "iot-sql-functions" get_user_properties(): with a key, the values of the message's
        # MQTT 5 user properties with that key as an Array (a key may repeat), used as
        # get(get_user_properties('partnerId'), 0); without one, every property in order, each
        # as a one-member Object {key: value}. A message without user properties gives
        # Undefined.
        if len(args) > 1:
            raise self.error(node, "get_user_properties() takes at most one argument, a key")
        if not args:

            def all_properties(env: _Env) -> Any:
                pairs = env.context.user_properties
                return [{name: value} for name, value in pairs] if pairs else UNDEFINED

            return all_properties
        key = self.expr(args[0])

        def user_properties(env: _Env) -> Any:
            wanted = key(env)
            values = [value for name, value in env.context.user_properties if name == wanted]
            return values if values else UNDEFINED

        return user_properties

    def _f_get_mqtt_property(self, node: exp.Anonymous, args: list) -> Evaluator:
        # "iot-sql-functions" get_mqtt_property(name): the PUBLISH's MQTT 5 Content Type,
        # Payload Format Indicator ("UNSPECIFIED_BYTES" or "UTF8_DATA"), Response Topic, or
        # Correlation Data (base64-encoded). Undefined when the message does not carry it,
        # except the format indicator, whose absence means unspecified bytes (MQTT 5.0
        # section 3.3.2.3.2).
        self.needs_v2(node, "Function get_mqtt_property()")
        if len(args) != 1:
            raise self.error(node, f"get_mqtt_property() takes one argument, one of {_MQTT_NAMES}")
        name = self.expr(args[0])
        if isinstance(args[0], exp.Literal) and args[0].this not in _MQTT_PROPERTIES:
            raise self.error(
                node,
                f"get_mqtt_property() does not know {args[0].this!r}; use one of {_MQTT_NAMES}",
            )

        def mqtt_property(env: _Env) -> Any:
            wanted = name(env)
            convert = _MQTT_PROPERTIES.get(wanted) if type(wanted) is str else None
            if convert is None:
                return UNDEFINED
            for key, value in env.context.mqtt_properties:
                if key == wanted:
                    return convert(value)
            return "UNSPECIFIED_BYTES" if wanted == "format_indicator" else UNDEFINED

        return mqtt_property

    def _f_sourceip(self, node: exp.Anonymous, args: list) -> Evaluator:
        # "iot-sql-functions" sourceip(): the IP address of the device (or of the router it
        # connects through) as a String; Undefined when the emulator does not know it.
        self.needs_v2(node, "Function sourceip()")
        return self._no_args(
            node,
            args,
            lambda env: env.context.source_ip if env.context.source_ip else UNDEFINED,
        )

    def _f_get_user_property(self, node: exp.Anonymous, args: list) -> Evaluator:
        raise self.error(
            node,
            "get_user_property() is not an AWS IoT SQL function; use "
            "get(get_user_properties('key'), 0)",
        )

    def _f_encode(self, node: exp.Anonymous, args: list) -> Evaluator:
        self.needs_v2(node, "Function encode()")
        if len(args) != 2:
            raise self.error(node, "encode() takes two arguments: a value (or *) and 'base64'")
        scheme = args[1]
        if not (isinstance(scheme, exp.Literal) and scheme.is_string):
            raise self.error(node, "encode()'s second argument must be the literal 'base64'")
        if scheme.this.lower() != "base64":
            raise self.error(node, "encode() supports only the 'base64' scheme")
        if isinstance(args[0], exp.Star):
            return lambda env: base64.b64encode(env.payload).decode("ascii")
        inner = self.expr(args[0])

        def encode(env: _Env) -> Any:
            text = to_string(inner(env))
            if text is UNDEFINED:
                return UNDEFINED
            return base64.b64encode(text.encode("utf-8")).decode("ascii")

        return encode


# "iot-sql-set": "Variable names can contain letters, numbers, and underscores" and "can be up
# to 64 characters long".
VARIABLE_NAME_MAX = 64
_VARIABLE_NAME = re.compile(rf"[A-Za-z0-9_]{{1,{VARIABLE_NAME_MAX}}}")

_MQTT_PROPERTIES: dict[str, Callable[[Any], Any]] = {
    "content_type": str,
    "format_indicator": lambda flag: "UTF8_DATA" if flag == 1 else "UNSPECIFIED_BYTES",
    "response_topic": str,
    "correlation_data": lambda data: base64.b64encode(bytes(data)).decode("ascii"),
}
_MQTT_NAMES = ", ".join(repr(name) for name in _MQTT_PROPERTIES)


def _payload_bytes(env: _Env) -> bytes:
    """`*` as the value of decode(*, 'proto', ...): the payload's raw bytes."""
    return env.payload


def _payload_value(env: _Env) -> Any:
    """`*` as a function argument ("iot-sql-functions" aws_lambda(): "pass the full MQTT message
    payload ... using '*'"): the JSON payload."""
    doc = env.doc
    if doc is _NOT_JSON:
        raise SqlEvaluationError(
            "The payload is not JSON, so '*' cannot be passed to a function; use "
            "encode(*, 'base64') to pass binary data"
        )
    return doc


def _star_object(env: _Env) -> dict[str, Any]:
    doc = env.doc
    if type(doc) is dict:
        return doc
    if doc is _NOT_JSON and not env.payload:
        return {}  # an empty payload can have data added ("binary-payloads")
    raise SqlEvaluationError(
        "The payload is not a JSON object, so '*' cannot be merged with other fields; "
        "select only * (raw bytes) or encode(*, 'base64')"
    )
