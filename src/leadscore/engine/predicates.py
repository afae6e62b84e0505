"""Conditions compiled to plain Python predicates over a record (a mapping of column -> value)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from leadscore.model.conditions import All, AnyOf, Condition, Leaf

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


def _text(value: Any) -> str:
    return str(value).lower()


def _leaf(leaf: Leaf) -> Predicate:
    name, op, arg = leaf.field, leaf.op, leaf.value
    if op == "exists":
        want = bool(arg)
        return lambda r: (r.get(name) is not None) is want
    if op == "equals" or op == "in":
        values = arg if isinstance(arg, list) else [arg]
        texts = frozenset(_text(v) for v in values if not isinstance(v, bool | int | float))
        others = frozenset(v for v in values if isinstance(v, bool | int | float))
        # Their texts are taken from the list, not from `others`: a set keeps one of 1, 1.0 and
        # true (they are equal in Python), but their texts "1", "1.0" and "true" differ.
        other_texts = frozenset(_text(v) for v in values if isinstance(v, bool | int | float))

        def member(r: Record) -> bool:
            v = r.get(name)
            if v is None:
                return False
            if isinstance(v, str):
                # a number in the model compares with a text column as its text
                return v.lower() in texts or v.lower() in other_texts
            return v in others

        return member
    if op == "contains":
        needle = _text(arg)
        return lambda r: (v := r.get(name)) is not None and needle in v.lower()
    if op == "regex":
        pattern = re.compile(arg, re.IGNORECASE)
        return lambda r: (v := r.get(name)) is not None and pattern.search(v) is not None
    if op == "between":
        lo, hi = arg
        return lambda r: (v := r.get(name)) is not None and lo <= v <= hi
    if op == "gt":
        return lambda r: (v := r.get(name)) is not None and v > arg
    if op == "gte":
        return lambda r: (v := r.get(name)) is not None and v >= arg
    if op == "lt":
        return lambda r: (v := r.get(name)) is not None and v < arg
    assert op == "lte"
    return lambda r: (v := r.get(name)) is not None and v <= arg


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
