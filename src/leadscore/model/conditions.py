"""Conditions: the small boolean language shared by fit rules, event filters and routing.

A leaf names a `field` and exactly one operator; `all`, `any` and `not` combine conditions.
Text comparisons (`equals`, `in`, `contains`, `regex`) ignore case. A missing (null) value
matches nothing except `exists: false`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

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

_BRACE_QUANTIFIER = re.compile(r"\{\d*(?:,\d*)?\}")
_RE2_FLAGS = frozenset("imsU")


def unportable_regex(pattern: str) -> str | None:
    """What a (compiling) pattern uses that RE2 lacks, or None when RE2 reads it alike."""
    # RE2 (DuckDB, most warehouses) lacks these; reject them so the model means the same
    # everywhere. A small scan rather than a regex, to skip escapes and character classes.
    i, n = 0, len(pattern)
    quantified = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            octal = re.fullmatch(r"[0-7]{3}", pattern[i + 1 : i + 4]) is not None
            if nxt.isdigit() and nxt != "0" and not octal:
                return "a back-reference"
            if nxt == "Z":
                return "\\Z (write $ instead)"
            i, quantified = i + 2, False
            continue
        if c == "[":
            j = i + 1
            if pattern[j : j + 1] == "^":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i, quantified = j + 1, False
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
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
            i, quantified = i + 2, False
            continue
        if quantified and c == "+":
            return "a possessive quantifier"
        if quantified and c == "?":
            i, quantified = i + 1, False
            continue
        if c in "*+?":
            i, quantified = i + 1, True
            continue
        brace = _BRACE_QUANTIFIER.match(pattern, i) if c == "{" else None
        if brace is not None:
            i, quantified = brace.end(), True
            continue
        i, quantified = i + 1, False
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
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"regular expression {value!r} does not compile: {exc}") from None
        what = unportable_regex(value)
        if what is not None:
            raise ValueError(
                f"regular expression {value!r} uses {what}, which SQL engines (RE2) do not support"
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
