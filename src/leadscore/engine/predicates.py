"""Conditions compiled to plain Python predicates over a record (a mapping of column -> value).

Every predicate is total: a value of any type (text, number, true/false, a list or mapping from
JSON, NaN) gives true or false, never an exception, with the same answer as the batch engine
gives for a column of that value's type:

- `gt`, `gte`, `lt`, `lte` and `between` hold for a number (not true/false, not NaN) and for
  text that is a decimal number (`NUMBER_TEXT`, read as that number); anything else: no match.
- `equals` and `in` compare text with text (folded), numbers with numbers and true/false with
  true/false; a number or true/false meets text by its text (`1` equals the text `"1"`, `true`
  the text `"True"`, either way round); true/false never equals a number.
- `contains` and `regex` read text; a number or true/false is read as its text.
- A list or mapping matches nothing but `exists: true`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import re2

from leadscore.engine.folding import fold, fold_pattern
from leadscore.model.conditions import All, AnyOf, Condition, Leaf

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]

# A decimal number written as text: sign, digits, an optional fraction; no exponent, spaces or
# thousands separators. Fifteen digits at most on each side, so that every engine reads the
# same double (and PostgreSQL never a number out of its range).
NUMBER_TEXT = r"[+-]?[0-9]{1,15}(\.[0-9]{1,15})?"
_NUMBER_TEXT = re.compile(NUMBER_TEXT)


def text_of(value: Any) -> str | None:
    """The text a text operator reads from a value (None: a list or mapping, no text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return None


def number_of(value: Any) -> float | int | None:
    """The number a number operator reads from a value (None: not a number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        return float(value)
    return None


def compile_regex(pattern: str) -> Any:
    """A model's regular expression compiled with RE2 (linear time) to search folded text."""
    # RE2's default options are DuckDB's: `.` stops at a newline, `^`/`$` at the text's ends
    options = re2.Options()
    options.log_errors = False  # the error is raised, not written to stderr
    try:
        return re2.compile(fold_pattern(pattern), options)
    except re2.error as exc:
        reason = exc.args[0].decode() if isinstance(exc.args[0], bytes) else exc.args[0]
        raise ValueError(f"regular expression {pattern!r}: RE2 refuses it: {reason}") from None


def _equals(name: str, values: list[Any]) -> Predicate:
    texts = frozenset(fold(str(v)) for v in values)
    # apart: a set of numbers holding 1 would also hold true, and one of flags 1
    numbers = frozenset(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    flags = frozenset(v for v in values if isinstance(v, bool))

    def member(r: Record) -> bool:
        v = r.get(name)
        if isinstance(v, str):
            return fold(v) in texts
        if isinstance(v, bool):
            return v in flags or fold(str(v)) in texts
        if isinstance(v, int | float):
            if isinstance(v, float) and math.isnan(v):
                return False
            return v in numbers or fold(str(v)) in texts
        return False

    return member


def _leaf(leaf: Leaf) -> Predicate:
    name, op, arg = leaf.field, leaf.op, leaf.value
    if op == "exists":
        want = bool(arg)
        return lambda r: (r.get(name) is not None) is want
    if op == "equals" or op == "in":
        return _equals(name, arg if isinstance(arg, list) else [arg])
    if op == "contains":
        needle = fold(str(arg))
        return lambda r: (t := text_of(r.get(name))) is not None and needle in fold(t)
    if op == "regex":
        pattern = compile_regex(arg)
        return lambda r: (
            (t := text_of(r.get(name))) is not None and (pattern.search(fold(t)) is not None)
        )
    if op == "between":
        lo, hi = arg
        return lambda r: (v := number_of(r.get(name))) is not None and lo <= v <= hi
    if op == "gt":
        return lambda r: (v := number_of(r.get(name))) is not None and v > arg
    if op == "gte":
        return lambda r: (v := number_of(r.get(name))) is not None and v >= arg
    if op == "lt":
        return lambda r: (v := number_of(r.get(name))) is not None and v < arg
    assert op == "lte"
    return lambda r: (v := number_of(r.get(name))) is not None and v <= arg


def compile_condition(condition: Condition) -> Predicate:
    """A predicate that is true where the condition holds (null matches nothing)."""
    if isinstance(condition, Leaf):
        return _leaf(condition)
    if isinstance(condition, All):
        parts = [compile_condition(c) for c in condition.all]
        return lambda r: all(p(r) for p in parts)
    if isinstance(condition, AnyOf):
        parts = [compile_condition(c) for c in condition.any]
        return lambda r: any(p(r) for p in parts)
    inner = compile_condition(condition.not_)
    return lambda r: not inner(r)
