"""Wildcards, policy variables and ARN matching for IAM policies (pure).

- `*` matches any run of characters and `?` exactly one, in Action (case insensitive), in
  Resource and in the String*Like / Arn* condition values (case sensitive).
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- An ARN is matched one colon-separated segment at a time (partition, service, region, account);
  the resource part (everything after the fifth colon) is one segment that may itself contain
  colons and slashes, so `arn:aws:s3:::bucket/` never matches `arn:aws:s3:::bucket` and
  `arn:aws:s3:::bucket/*` never matches the bucket itself ("Each of the six colon-delimited
  components of the ARN is checked separately", ArnLike in
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
- `${key}` policy variables are substituted only in documents of Version 2012-10-17, and their
  values are literal (a value of `*` is not a wildcard); `${key, 'default'}` gives a default;
  `${*}`, `${?}`, `${$}` are a literal `*`, `?` and `$`; a variable without a value and without a
  default makes the element match nothing. A multivalued key is no variable ("You can't use a
  multivalued key as a policy variable"), so it counts as one without a value.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

VARIABLES_VERSION = "2012-10-17"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"^\s*([^,]+?)\s*,\s*'([^']*)'\s*$")
_LITERAL_ESCAPES = {"*", "?", "$"}

# Looks up a (lower-cased) context key; None when the request has no value for it.
Lookup = Callable[[str], "list[str] | None"]


class Unresolved(Exception):
    """A policy variable has no value in the request and no default: the element is unmatched.
    `str()` of it is the variable's name."""


def wildcard_source(text: str) -> str:
    """The regex source of an IAM wildcard string: `*` any run, `?` one character."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


@lru_cache(maxsize=4096)
def _regex(source: str, ignore_case: bool) -> re.Pattern[str]:
    # `\Z`, not `$`: a value ending in a newline must not match a pattern without one.
    return re.compile(f"(?:{source})\\Z", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def has_variables(text: str) -> bool:
    return "${" in text


def variable_names(text: str) -> list[str]:
    """The context keys the `${...}` variables of `text` read (not the literal escapes)."""
    names = []
    for match in _VARIABLE.finditer(text):
        name = match.group(1).strip()
        if name in _LITERAL_ESCAPES:
            continue
        with_default = _DEFAULT.match(name)
        names.append(with_default.group(1) if with_default else name)
    return names


def resolve(text: str, lookup: Lookup, wildcards: bool) -> str:
    """The regex source of `text` with each variable replaced by its literal value.

    With `wildcards` False the result is the literal text itself (for equality operators).
    Raises Unresolved when a variable has no value and no default.
    """
    out: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        literal = text[position : match.start()]
        out.append(wildcard_source(literal) if wildcards else literal)
        name = match.group(1).strip()
        if name in _LITERAL_ESCAPES:
            value = name
        else:
            default = None
            with_default = _DEFAULT.match(name)
            if with_default:
                name, default = with_default.group(1), with_default.group(2)
            values = lookup(name.lower())
            if values and len(values) == 1:
                value = values[0]
            elif default is not None:
                value = default
            else:
                raise Unresolved(name)
        out.append(re.escape(value) if wildcards else value)
        position = match.end()
    tail = text[position:]
    out.append(wildcard_source(tail) if wildcards else tail)
    return "".join(out)


@lru_cache(maxsize=8192)
def _pattern_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return _regex(wildcard_source(pattern), ignore_case)


def wildcard_match(
    pattern: str, value: str, ignore_case: bool = False, lookup: Lookup | None = None
) -> bool:
    """`pattern` (with `*`/`?`, and variables when `lookup` is given) matches all of `value`."""
    if lookup is not None and has_variables(pattern):
        return (
            _regex(resolve(pattern, lookup, wildcards=True), ignore_case).match(value) is not None
        )
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern.lower() == value.lower() if ignore_case else pattern == value
    return _pattern_regex(pattern, ignore_case).match(value) is not None


def arn_match(pattern: str, arn: str, lookup: Lookup | None = None) -> bool:
    """ARN matching segment by segment; a pattern that is not an ARN is a plain wildcard."""
    if pattern == "*":
        return True
    if lookup is not None and has_variables(pattern):
        # Variables are resolved first; their values stay literal (escaped below).
        return _arn_match_resolved(pattern, arn, lookup)
    if not pattern.startswith("arn:"):
        return wildcard_match(pattern, arn)
    wanted = pattern.split(":", 5)
    actual = arn.split(":", 5)
    if len(wanted) != 6 or len(actual) != 6:
        # An `arn:` pattern without its six segments is malformed (IAM refuses to store it):
        # it matches nothing rather than being read as one long wildcard.
        return False
    return all(wildcard_match(w, a) for w, a in zip(wanted, actual, strict=True))


def _arn_match_resolved(pattern: str, arn: str, lookup: Lookup) -> bool:
    # Variable names hold colons (`${aws:username}`): hide them before splitting into segments.
    names: list[str] = []

    def hide(match: re.Match[str]) -> str:
        names.append(match.group(0))
        return f"\x00{len(names) - 1}\x00"

    hidden = _VARIABLE.sub(hide, pattern)
    wanted = hidden.split(":", 5) if hidden.startswith("arn:") else [hidden]
    if hidden.startswith("arn:") and len(wanted) != 6:
        return False
    actual = arn.split(":", 5) if len(wanted) == 6 else [arn]
    if len(wanted) != len(actual):
        return False
    for w, a in zip(wanted, actual, strict=True):
        segment = re.sub("\x00(\\d+)\x00", lambda m: names[int(m.group(1))], w)
        source = resolve(segment, lookup, wildcards=True)
        if _regex(source, False).match(a) is None:
            return False
    return True
