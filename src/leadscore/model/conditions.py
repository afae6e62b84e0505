"""Conditions: the small boolean language shared by fit rules, event filters and routing.

A leaf names a `field` and exactly one operator; `all`, `any` and `not` combine conditions.
Text comparisons (`equals`, `in`, `contains`, `regex`) ignore case. A missing (null) value
matches nothing except `exists: false`.
"""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Any, Literal

import re2
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from leadscore.model.base import Strict

Scalar = str | int | float | bool

OPERATORS: tuple[str, ...] = (
    "equals",
    "in",
    "contains",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "exists",
)
NUMERIC_OPERATORS = frozenset({"gt", "gte", "lt", "lte", "between"})
TEXT_OPERATORS = frozenset({"contains", "regex"})

_BRACE_QUANTIFIER = re.compile(r"\{(?:\d+(?:,\d*)?|,\d*)\}")
_RE2_FLAGS = frozenset("imsU")
# Python reads these literally (and warns it may not in future); RE2 reads `[:alpha:]` as a
# class of its own.
SET_OPERATION = "`[[`, `[:`, `--`, `&&`, `~~` or `||` inside a [...] set (escape it: `\\[`)"
OPEN_BRACE = "`{,n}` or `{,}` (write `{0,n}` or `*`)"
# What RE2 accepts but reads otherwise than Python; everything else it rejects.
READ_DIFFERENTLY = frozenset({SET_OPERATION, OPEN_BRACE})


def _escape(pattern: str, i: int, in_class: bool) -> str | None:
    """What the escape at `pattern[i]` (a backslash) uses that RE2 lacks, or None."""
    nxt = pattern[i + 1 : i + 2]
    octal = re.fullmatch(r"[0-7]{3}", pattern[i + 1 : i + 4]) is not None
    if nxt.isdigit() and nxt != "0" and not octal:
        return "an octal escape like \\1 (write \\x01)" if in_class else "a back-reference"
    if nxt in ("u", "U", "N"):
        return f"the escape \\{nxt} (write the character itself)"
    if nxt == "b" and in_class:
        return "\\b inside a [...] set (write \\x08)"
    if nxt == "Z" and not in_class:
        return "\\Z (write $ instead)"
    return None


def _group(pattern: str, i: int) -> str | None:
    """What the `(?...` group at `pattern[i]` uses that RE2 lacks, or None."""
    ext = pattern[i + 2 : i + 4]
    if ext[:1] in ("=", "!") or ext in ("<=", "<!"):
        return "look-around"
    if ext == "P=":
        return "a back-reference"
    if ext[:1] == ">":
        return "an atomic group"
    if ext[:1] == "(":
        return "a conditional group"
    if ext[:1] == "#":
        return "a comment group"
    flags = re.match(r"[a-zA-Z]*", pattern[i + 2 :])
    letters = set(flags.group(0)) if flags else set()
    if ext[:1] != "P" and letters - _RE2_FLAGS:
        return f"the inline flag(s) {''.join(sorted(letters - _RE2_FLAGS))}"
    return None


def _set_end(pattern: str, i: int) -> tuple[int, str | None]:
    """The index after the [...] set opening at `pattern[i]`, and what in it RE2 lacks."""
    j, n = i + 1, len(pattern)
    if pattern[j : j + 1] == "[":
        return j, SET_OPERATION
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        if pattern[j : j + 2] in ("[:", "[=", "[.", "--", "&&", "~~", "||"):
            return j, SET_OPERATION
        if pattern[j] == "\\":
            what = _escape(pattern, j, in_class=True)
            if what is not None:
                return j, what
            j += 2
        else:
            j += 1
    return j + 1, None


def unportable_regex(pattern: str) -> str | None:
    """What a (compiling) pattern uses that RE2 lacks or reads otherwise, or None."""
    # RE2 (DuckDB, most warehouses) is what SQL engines run; reject what it would read
    # differently, so that a model means the same everywhere. A small scan rather than a regex,
    # to skip escapes and character sets.
    i, n = 0, len(pattern)
    quantified = False
    while i < n:
        c = pattern[i]
        what: str | None = None
        if c == "\\":
            what, i, quantified = _escape(pattern, i, in_class=False), i + 2, False
        elif c == "[":
            (i, what), quantified = _set_end(pattern, i), False
        elif c == "(" and pattern[i + 1 : i + 2] == "?":
            what, i, quantified = _group(pattern, i), i + 2, False
        elif quantified and c == "+":
            what = "a possessive quantifier"
        elif quantified and c == "?":
            i, quantified = i + 1, False
        elif c in "*+?":
            i, quantified = i + 1, True
        elif c == "{" and (brace := _BRACE_QUANTIFIER.match(pattern, i)) is not None:
            if brace.group(0).startswith("{,"):
                what = OPEN_BRACE
            i, quantified = brace.end(), True
        else:
            i, quantified = i + 1, False
        if what is not None:
            return what
    return None


class Leaf(Strict):
    """A test on one field: `{field: job_title, regex: "ceo|chief executive"}`."""

    field: str = Field(
        description="Column name; in fit rules `account.<column>` reads the account."
    )
    equals: Scalar | None = Field(None, description="Equal to this value (text: ignoring case).")
    in_: list[Scalar] | None = Field(
        None, alias="in", description="Equal to one of these values (text: ignoring case)."
    )
    contains: str | None = Field(None, description="Text contains this, ignoring case.")
    regex: str | None = Field(
        None, description="Text matches this regular expression anywhere, ignoring case."
    )
    gt: float | None = Field(None, description="Number greater than this.")
    gte: float | None = Field(None, description="Number greater than or equal to this.")
    lt: float | None = Field(None, description="Number less than this.")
    lte: float | None = Field(None, description="Number less than or equal to this.")
    between: tuple[float, float] | None = Field(
        None, description="Number within [low, high], both ends included."
    )
    exists: bool | None = Field(None, description="true: the value is present; false: missing.")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            with warnings.catch_warnings():
                # "possible nested set": reported below as unportable, not as a warning
                warnings.simplefilter("ignore", FutureWarning)
                re.compile(value)
        except re.error as exc:
            raise ValueError(f"regular expression {value!r} does not compile: {exc}") from None
        what = unportable_regex(value)
        if what is not None:
            how = "read differently" if what in READ_DIFFERENTLY else "do not support"
            raise ValueError(
                f"regular expression {value!r} uses {what}, which SQL engines (RE2) {how}"
            )
        options = re2.Options()
        options.log_errors = False
        try:
            # what every path runs (the service too): a pattern it refuses must not load
            re2.compile(value, options)
        except re2.error as exc:
            reason = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
            raise ValueError(f"regular expression {value!r}: RE2 refuses it: {reason}") from None
        return value

    @field_validator("in_", mode="before")
    @classmethod
    def _no_null_in(cls, value: Any) -> Any:
        if isinstance(value, list) and None in value:
            raise ValueError(
                "`in` lists null, which is not a value to compare with; to test for an empty "
                "field write `exists: false`, or `any: [{field: ..., in: [...]}, {field: ..., "
                "exists: false}]` for either"
            )
        return value

    @field_validator("in_")
    @classmethod
    def _in_not_empty(cls, value: list[Scalar] | None) -> list[Scalar] | None:
        if value is not None and not value:
            raise ValueError("`in` needs at least one value")
        return value

    @field_validator("between")
    @classmethod
    def _between_ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"`between` needs [low, high] with low <= high, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Leaf:
        # `equals: null` was read as "no operator": say what null means here instead
        nulls = [
            op
            for op in OPERATORS
            if ("in_" if op == "in" else op) in self.model_fields_set and self.operand(op) is None
        ]
        if nulls:
            raise ValueError(
                f"`{nulls[0]}: null` on field {self.field!r}: null is not a value to compare "
                "with; to test for an empty field write `exists: false` (for one with a value, "
                "`exists: true`)"
            )
        given = [op for op in OPERATORS if self.operand(op) is not None]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise ValueError(
                f"a condition on field {self.field!r} needs exactly one operator of "
                f"{', '.join(OPERATORS)}; found {found}"
            )
        return self

    def operand(self, op: str) -> Any:
        """The value given for operator `op` (None when not given)."""
        return getattr(self, "in_" if op == "in" else op)

    @property
    def op(self) -> str:
        """The one operator this leaf uses."""
        return next(op for op in OPERATORS if self.operand(op) is not None)

    @property
    def value(self) -> Any:
        """The operand of this leaf's operator."""
        return self.operand(self.op)


class All(Strict):
    """True when every condition is true: `{all: [...]}`."""

    all: list[Condition] = Field(min_length=1)


class AnyOf(Strict):
    """True when at least one condition is true: `{any: [...]}`."""

    any: list[Condition] = Field(min_length=1)


class Not(Strict):
    """True when the condition is false: `{not: {...}}`."""

    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return key
        return "leaf"
    if isinstance(value, Leaf | All | AnyOf | Not):
        return {Leaf: "leaf", All: "all", AnyOf: "any", Not: "not"}[type(value)]
    return None


Condition = Annotated[
    Annotated[Leaf, Tag("leaf")]
    | Annotated[All, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition",
        custom_error_message=(
            "a condition must be a mapping: {field: ..., <operator>: ...}, {all: [...]}, "
            "{any: [...]} or {not: {...}}"
        ),
    ),
]

All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def fields_of(condition: Condition) -> list[str]:
    """Every field name a condition reads, in order of appearance."""
    if isinstance(condition, Leaf):
        return [condition.field]
    if isinstance(condition, All):
        return [f for c in condition.all for f in fields_of(c)]
    if isinstance(condition, AnyOf):
        return [f for c in condition.any for f in fields_of(c)]
    return fields_of(condition.not_)


__all__ = ["All", "AnyOf", "Condition", "Leaf", "Literal", "Not", "fields_of"]
