"""Conditions compiled to Ibis boolean expressions, with the reference predicates' semantics.

Every leaf is null-safe (a test on a missing value is false, so `not` of it is true), text
tests compare folded text (`leadscore.engine.folding`) on every backend, and a number in the
model compares with a text column as its text.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from leadscore.engine.binding import Kind, kind_of
from leadscore.engine.folding import casefold_tables, fold, fold_pattern
from leadscore.engine.predicates import NUMBER_TEXT
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


def _fold_arrow(text: pa.Array) -> pa.Array:
    return pa.array([None if v is None else fold(v) for v in text.to_pylist()], pa.string())


def _fold_python_udf() -> Callable[[str | None], str | None]:
    # Nested and self-contained, so that Spark ships the function itself to its workers (they
    # need not have leadscore installed); it must stay the same as `folding.fold`.
    def leadscore_fold(text: str | None) -> str | None:
        import unicodedata

        if text is None:
            return None
        if text.isascii():
            return text.lower()
        return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())

    return leadscore_fold


def _builtin(name: str, result: str) -> Callable[[ir.Value], ir.Value]:
    """A one-argument SQL function of the backend, by name."""

    def stub(text: str) -> object: ...

    return ibis.udf.scalar.builtin(stub, name=name, signature=(("string",), result))  # type: ignore[no-any-return]


_FOLD_ARROW = ibis.udf.scalar.pyarrow(
    _fold_arrow, name="leadscore_fold_arrow", signature=(("string",), "string")
)
_FOLD_PYTHON = ibis.udf.scalar.python(
    _fold_python_udf(), name="leadscore_fold", signature=(("string",), "string")
)
_OCTETS = {
    "duckdb": _builtin("strlen", "int64"),
    "postgres": _builtin("octet_length", "int64"),
    "pyspark": _builtin("octet_length", "int64"),
}
_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# PostgreSQL's planner copies an expression into every query that reads its column (and runs
# an immutable function at plan time); the folding tables are 50 kB of SQL, so they live in
# one function of the session, volatile so that the subquery computing a folded column is
# kept (fit-engagement on 600 leads: 25 s immutable, 2.6 s volatile, 5 s with plain lower()).
_PG_FOLD = "leadscore_fold_v1"
_PG_FOLD_CALL = ibis.udf.scalar.builtin(
    _fold_arrow, name=_PG_FOLD, database="pg_temp", signature=(("string",), "string")
)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def postgres_fold_function() -> str:
    """The SQL that defines `folding.fold` as a temporary function of a PostgreSQL session."""
    singles_from, singles_to, multi = casefold_tables()
    body = "normalize(s)"
    for source, target in multi:
        body = f"replace({body}, {_sql_text(source)}, {_sql_text(target)})"
    body = f"normalize(translate({body}, {_sql_text(singles_from)}, {_sql_text(singles_to)}))"
    return (
        f"CREATE OR REPLACE FUNCTION pg_temp.{_PG_FOLD}(s text) RETURNS text "
        "LANGUAGE plpgsql VOLATILE STRICT PARALLEL RESTRICTED "
        f"AS $leadscore$ BEGIN RETURN {body}; END $leadscore$"
    )


def _postgres_fold(text: ir.StringValue) -> ir.StringValue:
    """`folding.fold` in PostgreSQL: normalize() (NFC) around Python's case folding tables."""
    con = text._find_backend(use_default=False)
    raw = con.con
    with raw.cursor() as cursor:
        cursor.execute(postgres_fold_function())
    if not raw.autocommit:
        raw.commit()  # a later rollback must not take the function with it
    return _PG_FOLD_CALL(text)


def folded(column: ir.Value) -> ir.StringValue:
    """The column's text as conditions compare it (`folding.fold`), on the column's backend.

    ASCII text (most data, told by its byte length) takes the engine's own lower(); the rest
    is folded by Python's very function where the engine runs Python (DuckDB, Spark), and by
    the same tables in SQL on PostgreSQL.
    """
    text: ir.StringValue = column if column.type().is_string() else column.cast("string")
    backend = backend_name(column)
    octets = _OCTETS.get(backend, _OCTETS["duckdb"])
    is_ascii = text.length() == octets(text)
    if backend == "postgres":
        # PostgreSQL's lower() follows the database's locale (Turkish: I -> dotless i)
        fast = text.translate(_ASCII_UPPER, _ASCII_UPPER.lower())
        return ibis.ifelse(is_ascii, fast, _postgres_fold(text))
    if backend == "pyspark":
        # Spark runs a Python function on every row whatever the branch: one call, ASCII inside
        return _FOLD_PYTHON(text)
    return ibis.ifelse(is_ascii, text.lower(), _FOLD_ARROW(text))


def _lower(column: ir.Value, field: str, lowered: Resolve | None) -> ir.StringValue:
    found = lowered(field) if lowered is not None else None
    return found if found is not None else folded(column)


def _equals(
    column: ir.Value, values: list[object], kind: Kind, lower: Callable[[], ir.StringValue]
) -> ir.BooleanValue:
    if kind == "text":
        texts = sorted({fold(str(v)) for v in values})
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


def _number(column: ir.Value) -> ir.NumericValue:
    """What a number operator reads: a number column, or the decimal number a text holds."""
    if not column.type().is_string():
        return column
    end = r"\z" if backend_name(column) == "pyspark" else "$"  # Java's $ allows a final newline
    number: ir.NumericValue = ibis.ifelse(
        column.re_search(f"^{NUMBER_TEXT}{end}"), column.cast("float64"), ibis.null("float64")
    )
    return number


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
        test = _lower(column, leaf.field, lowered).contains(fold(str(arg)))
    elif op == "regex":
        pattern = regex_for(backend_name(column), fold_pattern(str(arg)))
        test = _lower(column, leaf.field, lowered).re_search(pattern)
    else:
        num: ir.NumericValue = _number(column)
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
    """The fields a condition compares as folded text (equals, in, contains, regex)."""
    if isinstance(condition, Leaf):
        return [condition.field] if condition.op in ("equals", "in", "contains", "regex") else []
    if isinstance(condition, All | AnyOf):
        items = condition.all if isinstance(condition, All) else condition.any
        return [f for c in items for f in lowered_fields(c)]
    return lowered_fields(condition.not_)
