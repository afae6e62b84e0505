"""Conditions compiled to Ibis boolean expressions, with the reference predicates' semantics.

Every leaf is null-safe (a test on a missing value is false, so `not` of it is true), text
tests ignore case, and a number in the model compares with a text column as its text.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from leadscore.engine.binding import Kind, kind_of
from leadscore.model.conditions import All, AnyOf, Condition, Leaf

Resolve = Callable[[str], ir.Value]


def f64(value: float) -> ir.FloatingScalar:
    """A double literal that every engine reads back bit for bit."""
    # Ibis writes floats as decimal text, which DuckDB types as DECIMAL and converts with a
    # second rounding; casting the shortest repr from text is exact.
    return ibis.literal(repr(float(value))).cast("float64")


def kind_of_value(value: ir.Value) -> Kind:
    """The comparison kind of a column expression, as `binding` names it."""
    return kind_of(str(value.type().copy(nullable=True)))


def _number_literal(v: int | float, column: ir.Value) -> ir.Value | None:
    """`v` as a literal of the column's numeric type, or None when no value can equal it."""
    if column.type().is_integer():
        if isinstance(v, float):
            if not v.is_integer():
                return None
            v = int(v)
        return ibis.literal(v, type="int64")
    return f64(v)


def _lower(column: ir.Value, field: str, lowered: Resolve | None) -> ir.StringValue:
    found = lowered(field) if lowered is not None else None
    return found if found is not None else column.cast("string").lower()


def _equals(
    column: ir.Value, values: list[object], kind: Kind, lower: Callable[[], ir.StringValue]
) -> ir.BooleanValue:
    if kind == "text":
        texts = sorted({str(v).lower() for v in values})
        return lower().isin(texts)
    if kind == "boolean":
        flags = sorted({bool(v) for v in values})
        return column.isin([ibis.literal(f) for f in flags])
    literals = [
        lit
        for v in values
        if isinstance(v, int | float) and (lit := _number_literal(v, column)) is not None
    ]
    if not literals:
        return ibis.literal(False)
    return column.isin(literals)


def _not_nan(column: ir.Value) -> ir.BooleanValue | None:
    # SQL orders NaN above every number; Python compares it false with everything.
    if column.type().is_floating():
        return ~column.isnan()
    return None


# PostgreSQL's regular expressions spell the word boundaries of Python and RE2 (the dialect of
# model files) differently; `\b` would be a backspace there.
_POSTGRES_ESCAPES = {"b": "y", "B": "Y"}


def regex_for(backend: str, pattern: str) -> str:
    """A model's regular expression (Python/RE2 syntax) as the given backend spells it."""
    if backend != "postgres":
        return pattern
    out: list[str] = []
    in_class = False  # inside [...], \b is a backspace in both dialects
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            out.append("\\" + (escaped if in_class else _POSTGRES_ESCAPES.get(escaped, escaped)))
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        out.append(ch)
    return "".join(out)


def backend_name(expr: ir.Expr) -> str:
    """The name of the Ibis backend an expression is bound to ("" when unbound)."""
    try:
        return str(expr._find_backend(use_default=False).name)
    except Exception:  # an unbound expression: no backend to adapt to
        return ""


def _leaf(leaf: Leaf, resolve: Resolve, lowered: Resolve | None) -> ir.BooleanValue:
    column = resolve(leaf.field)
    op, arg = leaf.op, leaf.value
    if op == "exists":
        return column.notnull() if arg else column.isnull()
    kind = kind_of_value(column)
    test: ir.BooleanValue
    if op in ("equals", "in"):
        values = list(arg) if isinstance(arg, list) else [arg]
        test = _equals(column, values, kind, lambda: _lower(column, leaf.field, lowered))
    elif op == "contains":
        test = _lower(column, leaf.field, lowered).contains(str(arg).lower())
    elif op == "regex":
        pattern = regex_for(backend_name(column), str(arg))
        test = column.cast("string").re_search(f"(?i){pattern}")
    else:
        num: ir.NumericValue = column
        if op == "between":
            lo, hi = arg
            test = (num >= f64(lo)) & (num <= f64(hi))
        elif op == "gt":
            test = num > f64(arg)
        elif op == "gte":
            test = num >= f64(arg)
        elif op == "lt":
            test = num < f64(arg)
        else:
            test = num <= f64(arg)
        guard = _not_nan(column)
        if guard is not None:
            test = test & guard
    return test.fill_null(False)


def condition_expr(
    condition: Condition, resolve: Resolve, lowered: Resolve | None = None
) -> ir.BooleanValue:
    """The condition as a never-null boolean expression over the columns `resolve` returns.

    `lowered`, when given, returns a precomputed lower-case copy of a text field (or None), so
    that a text column read by several tests is lowered once.
    """
    if isinstance(condition, Leaf):
        return _leaf(condition, resolve, lowered)
    if isinstance(condition, All | AnyOf):
        items = condition.all if isinstance(condition, All) else condition.any
        parts = [condition_expr(c, resolve, lowered) for c in items]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(condition, All) else (out | p)
        return out
    return ~condition_expr(condition.not_, resolve, lowered)


def lowered_fields(condition: Condition) -> list[str]:
    """The fields a condition compares as lower-case text (equals, in, contains)."""
    if isinstance(condition, Leaf):
        return [condition.field] if condition.op in ("equals", "in", "contains") else []
    if isinstance(condition, All | AnyOf):
        items = condition.all if isinstance(condition, All) else condition.any
        return [f for c in items for f in lowered_fields(c)]
    return lowered_fields(condition.not_)
