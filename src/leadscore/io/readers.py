"""Read the canonical tables from files into DuckDB, validate and coerce them; write tables back.

Everything heavy happens inside DuckDB: files are scanned by DuckDB's readers, values are parsed
with SQL, bad rows are marked with SQL and only the (bounded) rejection report reaches Python.
"""

from __future__ import annotations

import csv
import gzip
import uuid
import warnings
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import duckdb
import ibis

from leadscore.errors import DataError
from leadscore.io.formulas import safe_table
from leadscore.schema import TABLES, ColumnType, Dataset, Rejection
from leadscore.timestamps import EXPECTED, PATTERN
from leadscore.timestamps import MAX as MAX_TIMESTAMP
from leadscore.timestamps import MIN as MIN_TIMESTAMP

if TYPE_CHECKING:
    from leadscore.io.mapping import Mapping

__all__ = [
    "MAX_REJECTIONS_PER_KIND",
    "SUPPORTED_SUFFIXES",
    "load_dataset",
    "write_table",
]

#: At most this many individual rejections are kept per (table, kind of reason); the rest are
#: counted in one summary rejection so that a file with millions of bad rows stays cheap.
MAX_REJECTIONS_PER_KIND: Final = 1000

FileFormat = Literal["csv", "parquet", "jsonl"]

#: File name endings read by `load_dataset`, longest first so `.csv.gz` wins over `.gz`.
SUPPORTED_SUFFIXES: Final[dict[str, FileFormat]] = {
    ".csv.gz": "csv",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}

WRITE_SUFFIXES: Final = (".csv", ".parquet", ".jsonl")

DUCKDB_TYPES: Final[dict[ColumnType, str]] = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}

_DATE_RE: Final = "'[0-9]{4}-[0-9]{2}-[0-9]{2}'"

TIMESTAMP_HINT: Final = EXPECTED

# Helper columns carry this prefix; input columns with it are refused so they cannot collide.
_HELPER: Final = "__ls_"

_INTEGER_TYPES: Final = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER"}
    | {"UBIGINT", "UHUGEINT"}
)
_FLOAT_TYPES: Final = frozenset({"FLOAT", "DOUBLE", "REAL"})
_TIMESTAMP_TYPES: Final = frozenset(
    {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE", "DATETIME"}
)
_TIMESTAMPTZ_TYPES: Final = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"})

# Targets of coercion: the canonical column types plus two used internally.
_Target = Literal["string", "int64", "float64", "timestamp", "boolean", "date", "outcome"]


# --------------------------------------------------------------------------------------------
# SQL helpers


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal for DuckDB."""
    return "'" + value.replace("'", "''") + "'"


def duckdb_connection(con: Any) -> Any:
    """Return the DuckDB connection of an Ibis DuckDB backend, or raise DataError."""
    raw = getattr(con, "con", None)
    if getattr(con, "name", None) != "duckdb" or raw is None:
        raise DataError(f"leadscore reads data with DuckDB; got an Ibis backend {con!r}")
    return raw


def ibis_table(con: Any, name: str) -> Any:
    """The Ibis table for a DuckDB table `name` on `con`."""
    with warnings.catch_warnings():
        # Ibis 12 calls a DuckDB 2 method that is deprecated; harmless, and not ours to fix.
        warnings.filterwarnings(
            "ignore", message=r".*fetch_arrow_table", category=DeprecationWarning
        )
        return con.table(name)


def arrow_table(con: Any, name: str, table: Any) -> Any:
    """Copy an Arrow table into a temporary DuckDB table `name`; returns it as an Ibis table.

    Ibis's own `create_table` emits SQL that DuckDB 2 rejects, hence the detour via a view.
    """
    raw = duckdb_connection(con)
    view = f"arrow_{name}_{uuid.uuid4().hex[:8]}"
    raw.register(view, table)
    try:
        con.raw_sql(f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT * FROM {view}")
    finally:
        raw.unregister(view)
    return ibis_table(con, name)


def _run(con: Any, sql: str) -> None:
    con.raw_sql(sql)


def _fetch(con: Any, sql: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = con.raw_sql(sql).fetchall()
    return rows


def _parse_sql(target: _Target, t: str) -> str:
    """SQL parsing the trimmed, non-empty text `t` into `target`; NULL when it cannot."""
    if target == "string":
        return t
    if target == "int64":
        # TRY_CAST('12.5' AS BIGINT) rounds, so non-integral numbers are refused explicitly.
        return (
            f"CASE WHEN regexp_full_match({t}, '[+-]?[0-9]+') THEN TRY_CAST({t} AS BIGINT) "
            f"WHEN TRY_CAST({t} AS DOUBLE) = trunc(TRY_CAST({t} AS DOUBLE)) "
            f"THEN TRY_CAST(TRY_CAST({t} AS DOUBLE) AS BIGINT) END"
        )
    if target == "float64":
        return f"TRY_CAST({t} AS DOUBLE)"
    if target == "boolean":
        return (
            f"CASE WHEN lower({t}) IN ('true', 't', 'yes', 'y', '1') THEN true "
            f"WHEN lower({t}) IN ('false', 'f', 'no', 'n', '0') THEN false END"
        )
    if target == "date":
        return f"CASE WHEN {date_in_range(f'TRY_CAST({t} AS DATE)')} THEN TRY_CAST({t} AS DATE) END"
    if target == "timestamp":
        return f"CASE WHEN {timestamp_in_range(timestamp_sql(t))} THEN {timestamp_sql(t)} END"
    if target == "outcome":
        return (
            f"CASE WHEN lower({t}) IN ('won', '1', '1.0', 'true') THEN 'won' "
            f"WHEN lower({t}) IN ('lost', '0', '0.0', 'false') THEN 'lost' END"
        )
    raise AssertionError(target)


# The common form needs no offset arithmetic: DuckDB's cast is exact for it (and only for it: the
# cast ignores whatever follows a time, from `+02:00` after a space to `CET` or `BC`).
_PLAIN_TIMESTAMP: Final = quote_literal(
    "[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?)?"
)


_OFFSET_TIMESTAMP: Final = quote_literal(
    "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?"
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


def timestamp_sql(t: str) -> str:
    """SQL reading text `t` by the rule of `leadscore.timestamps` into a naive UTC TIMESTAMP.

    NULL when `t` is no timestamp; a value outside years 1-9999 (`timestamp_in_range`) when it
    lies there, as written or in UTC.
    """
    # DuckDB's TIMESTAMPTZ cast reads every form the rule accepts once it is spelt
    # `dateTtime+HH:MM:SS` (and much the rule refuses, hence the full match first).
    spelt = f"regexp_replace({t}, ' ?(?:[Zz]|[Uu][Tt][Cc]|[Gg][Mm][Tt])$', '+00')"
    spelt = f"replace(replace(replace({spelt}, 't', 'T'), ' +', '+'), ' -', '-')"
    spelt = f"regexp_replace({spelt}, '([+-][0-9]{{2}})([0-9]{{2}})([0-9]{{2}})$', '\\1:\\2:\\3')"
    # A year written outside 1-9999 is outside even where the offset would bring it back.
    return (
        f"CASE WHEN regexp_full_match({t}, {_PLAIN_TIMESTAMP}) THEN TRY_CAST({t} AS TIMESTAMP) "
        f"WHEN regexp_full_match({t}, {_OFFSET_TIMESTAMP}) "
        f"THEN timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)) "
        f"WHEN NOT regexp_full_match({t}, {quote_literal(PATTERN)}) THEN NULL "
        f"WHEN regexp_matches({t}, '^(0000|[0-9]{{5}})') THEN {_OUTSIDE} "
        f"ELSE timezone('UTC', TRY_CAST({spelt} AS TIMESTAMPTZ)) END"
    )


_OUTSIDE: Final = "CAST('0000-01-01' AS TIMESTAMP)"
_MIN_TS: Final = f"TIMESTAMP '{MIN_TIMESTAMP.isoformat(sep=' ')}'"
_MAX_TS: Final = f"TIMESTAMP '{MAX_TIMESTAMP.isoformat(sep=' ')}'"


def timestamp_in_range(value: str) -> str:
    """SQL: the TIMESTAMP `value` lies in years 1-9999 (NULL stays NULL)."""
    return f"({value} BETWEEN {_MIN_TS} AND {_MAX_TS})"


def date_in_range(value: str) -> str:
    """SQL: the DATE `value` lies in years 1-9999 (NULL stays NULL)."""
    return f"({value} BETWEEN DATE '0001-01-01' AND DATE '9999-12-31')"


# Targets whose values DuckDB holds beyond the years Python and Arrow's conversions can.
_IN_RANGE: Final[dict[_Target | None, Callable[[str], str]]] = {
    "timestamp": timestamp_in_range,
    "date": date_in_range,
}


def _typed_sql(target: _Target, r: str, src_type: str) -> str | None:
    """SQL converting an already typed source column `r`; None when it must go through text."""
    base = src_type.upper()
    if target == "string" and base != "VARCHAR":
        return f"CAST({r} AS VARCHAR)"
    if target == "int64" and base in _INTEGER_TYPES:
        return f"TRY_CAST({r} AS BIGINT)"
    if target == "float64" and (base in _INTEGER_TYPES or base in _FLOAT_TYPES):
        return f"CAST({r} AS DOUBLE)"
    if target == "float64" and base.startswith("DECIMAL"):
        return f"CAST({r} AS DOUBLE)"
    if target == "timestamp" and base in _TIMESTAMP_TYPES:
        return f"CAST({r} AS TIMESTAMP)"
    if target == "timestamp" and base in _TIMESTAMPTZ_TYPES:
        return f"timezone('UTC', {r})"
    if target == "boolean" and base == "BOOLEAN":
        return r
    if target == "date" and base == "DATE":
        return r
    return None


_WHAT: Final[dict[_Target, str]] = {
    "string": "a string",
    "int64": "an integer",
    "float64": "a number",
    "boolean": "a boolean (expected true/false, yes/no or 1/0)",
    "date": "a date (expected ISO 8601 like 2026-03-01)",
    "timestamp": f"a timestamp ({TIMESTAMP_HINT})",
}


def _shown(t: str) -> str:
    """SQL rendering text `t` quoted and shortened for a rejection reason."""
    return f"'''' || CASE WHEN length({t}) > 60 THEN left({t}, 57) || '...' ELSE {t} END || ''''"


# --------------------------------------------------------------------------------------------
# Sources and staging


@dataclass(frozen=True)
class Relation:
    """Rows for one canonical table as SQL over a DuckDB connection, before validation.

    `sql` is usable after FROM; `columns` are (name, DuckDB type) pairs as `sql` yields them.
    `row_column` names the column holding the 1-based source row; None means the rows arrive in
    source order and are numbered by their position. `declared` gives the type of custom
    columns whose type is known (others are inferred from text, or kept as typed). `origins`
    names, for a column whose value was read from another file than the row (a mapping's join),
    a column of `sql` saying where (e.g. `accounts.csv row 3`): rejection reasons show it.
    """

    table: str
    label: str
    sql: str
    columns: tuple[tuple[str, str], ...]
    row_column: str | None = None
    declared: AbcMapping[str, ColumnType] = field(default_factory=dict)
    origins: AbcMapping[str, str] = field(default_factory=dict)


@dataclass
class _Staged:
    table: str
    label: str
    name: str
    row_sql: str
    helpers: tuple[str, ...]
    checks: list[_Check] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Check:
    """A rejection rule found after staging, kept as SQL rather than written into the table."""

    kind: str
    count_sql: str
    list_sql: str
    delete_where: str


@dataclass
class _Col:
    out: str
    src: str
    src_type: str
    target: _Target | None
    required: bool


def _infer_types(con: Any, rel: Relation, names: list[str]) -> dict[str, _Target | None]:
    """Infer a type for text custom columns from all their values, in one scan."""
    if not names:
        return {}
    parts: list[str] = []
    for i, name in enumerate(names):
        t = f"NULLIF(TRIM({quote_ident(name)}), '')"
        tx = f"__t{i}"
        parts.append(f"{t} AS {tx}")
    inner = f"SELECT {', '.join(parts)} FROM {rel.sql}"
    aggs: list[str] = []
    for i in range(len(names)):
        tx = f"__t{i}"
        aggs += [
            f"count({tx})",
            f"count({tx}) FILTER (WHERE lower({tx}) IN ('true', 'false'))",
            f"count({tx}) FILTER (WHERE regexp_full_match({tx}, '[+-]?[0-9]+') "
            f"AND TRY_CAST({tx} AS BIGINT) IS NOT NULL)",
            f"count({tx}) FILTER (WHERE TRY_CAST({tx} AS DOUBLE) IS NOT NULL)",
            f"count({tx}) FILTER (WHERE regexp_full_match({tx}, {_DATE_RE}) "
            f"AND ({_parse_sql('date', tx)}) IS NOT NULL)",
            f"count({tx}) FILTER (WHERE ({_parse_sql('timestamp', tx)}) IS NOT NULL)",
        ]
    (row,) = _fetch(con, f"SELECT {', '.join(aggs)} FROM ({inner})")
    result: dict[str, _Target | None] = {}
    order: tuple[_Target, ...] = ("boolean", "int64", "float64", "date", "timestamp")
    for i, name in enumerate(names):
        n, *counts = row[i * 6 : i * 6 + 6]
        chosen: _Target | None = None
        if n:
            for target, count in zip(order, counts, strict=True):
                if count == n:
                    chosen = target
                    break
        # None keeps the text unchanged: the column is VARCHAR.
        result[name] = chosen
    return result


def _plan_columns(con: Any, rel: Relation) -> list[_Col]:
    """Match source columns to canonical ones and decide every column's conversion."""
    canon = TABLES[rel.table]
    by_key: dict[str, tuple[str, str]] = {}
    helpers = {rel.row_column, *rel.origins.values()}
    for name, typ in rel.columns:
        if name in helpers:
            continue
        if name.startswith(_HELPER):
            raise DataError(f"{rel.label}: column names starting with {_HELPER!r} are reserved")
        key = name.strip().lower()
        if key in by_key:
            raise DataError(
                f"{rel.label}: columns {by_key[key][0]!r} and {name!r} have the same name"
            )
        by_key[key] = (name, typ)
    found = [name for name, _ in rel.columns if name not in helpers]
    missing = [c.name for c in canon if c.required and c.name not in by_key]
    if missing:
        raise DataError(
            f"{rel.label}: required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} missing for table {rel.table}; "
            f"found columns: {', '.join(found) if found else '(none)'}"
        )
    cols: list[_Col] = []
    canonical_names = {c.name for c in canon}
    for c in canon:
        if c.name in by_key:
            src, typ = by_key[c.name]
            target: _Target = (
                "outcome" if (rel.table, c.name) == ("outcomes", "outcome") else c.type
            )
            cols.append(_Col(c.name, src, typ, target, c.required))
    custom = [(k, v) for k, v in by_key.items() if k not in canonical_names]
    text_undeclared = [
        src for _, (src, typ) in custom if typ.upper() == "VARCHAR" and src not in rel.declared
    ]
    inferred = _infer_types(con, rel, text_undeclared)
    for _, (src, typ) in custom:
        out = src.strip()
        if src in rel.declared:
            cols.append(_Col(out, src, typ, rel.declared[src], False))
        elif src in inferred:
            cols.append(_Col(out, src, typ, inferred[src], False))
        elif typ.upper() in _TIMESTAMPTZ_TYPES or typ.upper() in _TIMESTAMP_TYPES - {"DATE"}:
            # typed times are checked for their range like times read from text
            cols.append(_Col(out, src, typ, "timestamp", False))
        elif typ.upper() == "DATE":
            cols.append(_Col(out, src, typ, "date", False))
        else:
            cols.append(_Col(out, src, typ, None, False))
    return cols


def _stage(con: Any, rel: Relation, name: str) -> _Staged:
    """Create the staged table: converted columns plus the reason a row is rejected, if any."""
    cols = _plan_columns(con, rel)
    # Four levels: raw columns, their text, their converted value, then names and reasons.
    l1: list[str] = []
    l2: list[str] = []
    l3: list[str] = []
    out: list[str] = []
    reasons: list[str] = []
    kinds: list[str] = []
    origins: list[tuple[str, str]] = []
    for i, col in enumerate(cols):
        r, t, v = f"__r{i}", f"__t{i}", f"__v{i}"
        l1.append(f"{quote_ident(col.src)} AS {r}")
        if col.target is None:
            l2.append(r)
            l3.append(r)
            # Empty text is a missing value in every format (CSV reads it as NULL already).
            kept = f"NULLIF({r}, '')" if col.src_type.upper() == "VARCHAR" else r
            out.append(f"{kept} AS {quote_ident(col.out)}")
            continue
        is_text = col.src_type.upper() == "VARCHAR"
        if not is_text:
            text = f"CAST({r} AS VARCHAR)"
        elif col.target == "string" and not col.required:
            # Trimming every optional text value costs a third of the load time on big files;
            # ids, types and values to parse are trimmed, free text is kept as written.
            text = f"NULLIF({r}, '')"
        else:
            text = f"NULLIF(TRIM({r}), '')"
        typed = None if is_text else _typed_sql(col.target, r, col.src_type)
        in_range = _IN_RANGE.get(col.target)
        if in_range is not None:
            # The value as read (`w`) may lie outside years 1-9999; such a value is rejected.
            w = f"__w{i}"
            if typed is not None:
                value = typed
            else:
                value = timestamp_sql(t) if col.target == "timestamp" else f"TRY_CAST({t} AS DATE)"
            l2.append(f"{r}, {text} AS {t}")
            l3.append(f"{t}, {value} AS {w}")
            kept = f"CASE WHEN {in_range(w)} THEN {w} END"
            out.append(f"{kept} AS {quote_ident(col.out)}")
        else:
            w = v
            value = typed if typed is not None else _parse_sql(col.target, t)
            l2.append(f"{r}, {text} AS {t}")
            l3.append(f"{t}, {value} AS {v}")
            out.append(f"{v} AS {quote_ident(col.out)}")
        reason_cases: list[str] = []
        kind_cases: list[str] = []
        if col.required:
            missing = quote_literal(f"column {col.out}: missing required value")
            reason_cases.append(f"WHEN {t} IS NULL THEN {missing}")
            kind_cases.append(f"WHEN {t} IS NULL THEN {quote_literal(f'missing {col.out}')}")
        prefix = quote_literal(f"column {col.out}: ")
        origin = rel.origins.get(col.src)
        if origin is not None:
            o = f"__o{i}"
            origins.append((quote_ident(origin), o))
            # the value came from another file than the row: say which, and its row
            place = f"coalesce(' (' || {o} || ')', '')"
            prefix = f"({quote_literal(f'column {col.out}')} || {place} || ': ')"
        bad = f"{t} IS NOT NULL AND {w} IS NULL"
        if in_range is not None:
            outside = f"{w} IS NOT NULL AND NOT {in_range(w)}"
            tail = quote_literal(" is outside the years 1-9999 (as written or in UTC)")
            reason_cases.append(f"WHEN {outside} THEN {prefix} || {_shown(t)} || {tail}")
            kind_cases.append(f"WHEN {outside} THEN {quote_literal(f'out of range {col.out}')}")
        if col.target == "outcome":
            tail = quote_literal(" is not won or lost (1/0 and true/false are accepted too)")
            reason_cases.append(f"WHEN {bad} THEN {prefix} || {_shown(t)} || {tail}")
            kind_cases.append(f"WHEN {bad} THEN {quote_literal(f'invalid {col.out}')}")
        elif col.target != "string":
            head = f"{prefix} || 'cannot parse '"
            tail = quote_literal(f" as {_WHAT[col.target]}")
            reason_cases.append(f"WHEN {bad} THEN {head} || {_shown(t)} || {tail}")
            kind_cases.append(f"WHEN {bad} THEN {quote_literal(f'cannot parse {col.out}')}")
        if reason_cases:
            reasons.append(f"CASE {' '.join(reason_cases)} END")
            kinds.append(f"CASE {' '.join(kind_cases)} END")
    # Canonical columns in canonical order, absent ones as typed NULLs, then custom columns.
    present = {c.out: j for j, c in enumerate(cols)}
    canonical = TABLES[rel.table]
    select: list[str] = []
    for c in canonical:
        if c.name in present:
            select.append(out[present[c.name]])
        else:
            select.append(f"CAST(NULL AS {DUCKDB_TYPES[c.type]}) AS {quote_ident(c.name)}")
    canonical_names = {c.name for c in canonical}
    select += [out[j] for j, c in enumerate(cols) if c.out not in canonical_names]
    helpers: list[str] = []
    row = f"{_HELPER}row"
    for source, o in origins:
        l1.append(f"{source} AS {o}")
        l2.append(o)
        l3.append(o)
    if rel.row_column is not None:
        l1.append(f"{quote_ident(rel.row_column)} AS {row}")
        l2.append(row)
        l3.append(row)
        select.append(row)
        helpers.append(row)
    reason_sql = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '')" if reasons else "NULL"
    kind_sql = f"coalesce({', '.join(kinds)})" if kinds else "NULL"
    select.append(f"CAST({reason_sql} AS VARCHAR) AS {_HELPER}reason")
    select.append(f"CAST({kind_sql} AS VARCHAR) AS {_HELPER}kind")
    helpers += [f"{_HELPER}reason", f"{_HELPER}kind"]
    l1_sql = ", ".join(l1) if l1 else "1 AS __none"
    l2_sql = ", ".join(l2) if l2 else "__none"
    l3_sql = ", ".join(l3) if l3 else "__none"
    sql = (
        f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {', '.join(select)} FROM ("
        f"SELECT {l3_sql} FROM (SELECT {l2_sql} FROM (SELECT {l1_sql} FROM {rel.sql})))"
    )
    _execute_read(con, sql, rel.label)
    row_sql = row if rel.row_column is not None else "(rowid + 1)"
    return _Staged(rel.table, rel.label, name, row_sql, tuple(helpers))


def _execute_read(con: Any, sql: str, label: str) -> None:
    try:
        _run(con, sql)
    except duckdb.Error as exc:
        message = str(exc).strip().splitlines()
        raise DataError(f"{label}: cannot read: {' '.join(m.strip() for m in message)}") from exc


def _mark_duplicates(
    con: Any, st: _Staged, key: str, *, compare_all: bool, order: tuple[str, ...] = ()
) -> None:
    """Reject every row whose `key` another accepted row has; the one kept comes first by
    the columns `order`, then in file order. Rows other checks reject do not take part, so a
    bad row never hides a good one."""
    s = quote_ident(st.name)
    k = quote_ident(key)
    ranked = ", ".join([*(f"o{j}" for j in range(len(order))), "row", "rid"])
    first = f"PARTITION BY key ORDER BY {ranked}"
    valid = f"{_HELPER}reason IS NULL" + "".join(f" AND NOT ({c.delete_where})" for c in st.checks)
    dup_keys = f"SELECT {k} FROM {s} WHERE {valid} GROUP BY {k} HAVING count(*) > 1"
    if compare_all:
        cols = [
            row[0] for row in _fetch(con, f"DESCRIBE {s}") if not str(row[0]).startswith(_HELPER)
        ]
        # Rows are compared by a 64-bit hash of all their values: joining the rows back to
        # compare them column by column costs gigabytes when millions of rows repeat.
        digest = f"hash({', '.join(quote_ident(c) for c in cols)})"
    else:
        digest = "0"
    keys = "".join(f"{quote_ident(c)} AS o{j}, " for j, c in enumerate(order))
    inner = (
        f"SELECT rowid AS rid, {st.row_sql} AS row, {keys}{k} AS key, {digest} AS digest "
        f"FROM {s} WHERE {valid} AND {k} IN ({dup_keys})"
    )
    windowed = (
        f"SELECT rid, row, key, digest, first_value(rid) OVER ({first}) AS first_rid, "
        f"first_value(row) OVER ({first}) AS first_row, "
        f"first_value(digest) OVER ({first}) AS first_digest FROM ({inner})"
    )
    different = quote_literal(" with different values")
    detail = (
        f"SELECT rid, row, key, first_row, "
        f"CASE WHEN digest = first_digest THEN '' ELSE {different} END AS note "
        f"FROM ({windowed}) WHERE rid <> first_rid"
    )
    # The duplicates go to a side table: marking them in the staged table with UPDATE would
    # cost far more memory when a file repeats millions of rows.
    dups = quote_ident(f"{st.name}{_HELPER}dups")
    _run(con, f"CREATE TEMP TABLE {dups} AS {detail}")
    st.temps.append(dups)
    kind = f"duplicate {key}"
    kept = "', row ' || first_row || ' is kept'" if order else "', first seen at row ' || first_row"
    reason = f"'duplicate {key} ' || key || note || {kept}"
    st.checks.append(
        _Check(
            kind=kind,
            count_sql=f"SELECT count(*) FROM {dups}",
            list_sql=f"SELECT row, {reason} FROM {dups} ORDER BY row, rid",
            delete_where=f"rowid IN (SELECT rid FROM {dups})",
        )
    )


def _mark_unknown_leads(con: Any, st: _Staged, leads_name: str) -> None:
    """Reject rows whose lead_id is not an accepted lead (and that nothing else rejected)."""
    s = quote_ident(st.name)
    # leads.lead_id is never NULL, so NOT IN is a plain anti-join.
    leads = quote_ident(leads_name)
    where = f"{_HELPER}reason IS NULL AND lead_id NOT IN (SELECT lead_id FROM {leads})"
    for check in st.checks:
        where += f" AND NOT ({check.delete_where})"
    st.checks.append(
        _Check(
            kind="unknown lead_id",
            count_sql=f"SELECT count(*) FROM {s} WHERE {where}",
            list_sql=(
                f"SELECT {st.row_sql} AS row, 'unknown lead_id ' || lead_id FROM {s} "
                f"WHERE {where} ORDER BY row"
            ),
            delete_where=f"({where})",
        )
    )


def _finish(con: Any, st: _Staged) -> tuple[Any, list[Rejection]]:
    """Collect the rejection report, drop rejected rows and helper columns; return the table."""
    s = quote_ident(st.name)
    limit = f"LIMIT {MAX_REJECTIONS_PER_KIND}"
    found: list[tuple[str, int, str]] = []
    for kind, n in _fetch(
        con,
        f"SELECT {_HELPER}kind, count(*) FROM {s} WHERE {_HELPER}reason IS NOT NULL "
        f"GROUP BY 1 ORDER BY 1",
    ):
        listing = (
            f"SELECT {st.row_sql} AS row, {_HELPER}reason FROM {s} "
            f"WHERE {_HELPER}kind = {quote_literal(str(kind))} ORDER BY row, rowid {limit}"
        )
        found.append((str(kind), int(n), listing))
    for check in st.checks:
        ((n,),) = _fetch(con, check.count_sql)
        if n:
            found.append((check.kind, int(n), f"{check.list_sql} {limit}"))
    rejections: list[Rejection] = []
    summaries: list[Rejection] = []
    for kind, n, listing in found:
        listed = _fetch(con, listing)
        rejections += [Rejection(st.table, st.label, int(row), str(why)) for row, why in listed]
        if n > len(listed):
            more = f"... and {n - len(listed):,} more rows rejected for {kind}"
            summaries.append(Rejection(st.table, st.label, None, more))
    rejections.sort(key=lambda r: r.row or 0)
    if found:
        where = " OR ".join([f"{_HELPER}reason IS NOT NULL", *(c.delete_where for c in st.checks)])
        _run(con, f"DELETE FROM {s} WHERE {where}")
    for temp in st.temps:
        _run(con, f"DROP TABLE IF EXISTS {temp}")
    for helper in st.helpers:
        _run(con, f"ALTER TABLE {s} DROP COLUMN {helper}")
    return ibis_table(con, st.name), rejections + summaries


def _empty_table(con: Any, table: str, name: str) -> Any:
    cols = ", ".join(f"{quote_ident(c.name)} {DUCKDB_TYPES[c.type]}" for c in TABLES[table])
    _run(con, f"CREATE TEMP TABLE {quote_ident(name)} ({cols})")
    return ibis_table(con, name)


def load_relations(con: Any, relations: AbcMapping[str, Relation]) -> Dataset:
    """Validate and coerce prepared relations (one per table) into a Dataset on `con`."""
    if "leads" not in relations:
        raise DataError("a dataset needs a leads table; none was given")
    raw = duckdb_connection(con)
    token = uuid.uuid4().hex[:8]
    names = {t: f"{t}_{token}" for t in TABLES}
    (keep_order,) = raw.execute("SELECT current_setting('preserve_insertion_order')").fetchone()
    if not keep_order:
        # Row numbers come from insertion order, so DuckDB must keep it while we read.
        _run(con, "SET preserve_insertion_order = true")
    try:
        return _load(con, relations, names)
    finally:
        if not keep_order:
            _run(con, "SET preserve_insertion_order = false")


def _load(con: Any, relations: AbcMapping[str, Relation], names: dict[str, str]) -> Dataset:
    try:
        return _load_tables(con, relations, names)
    except BaseException:
        # A file that fails half way leaves no half-loaded tables behind on the connection.
        for name in names.values():
            for temp in (name, f"{name}{_HELPER}dups"):
                _run(con, f"DROP TABLE IF EXISTS {quote_ident(temp)}")
        raise


def _load_tables(con: Any, relations: AbcMapping[str, Relation], names: dict[str, str]) -> Dataset:
    rejections: list[Rejection] = []
    tables: dict[str, Any] = {}
    for table in ("leads", "accounts", "events", "outcomes"):
        rel = relations.get(table)
        if rel is None:
            continue
        st = _stage(con, rel, names[table])
        if table == "leads":
            _mark_duplicates(con, st, "lead_id", compare_all=False)
        elif table == "accounts":
            _mark_duplicates(con, st, "account_id", compare_all=False)
        elif table == "events":
            # The copy the engine counts in a database (docs/model.md): of the events of known
            # leads, the earliest by (ts, lead_id, type); the file order breaks a tie.
            _mark_unknown_leads(con, st, names["leads"])
            order = ("ts", "lead_id", "type")
            _mark_duplicates(con, st, "event_id", compare_all=True, order=order)
        else:
            _mark_unknown_leads(con, st, names["leads"])
        tables[table], rej = _finish(con, st)
        rejections += rej
    if "events" not in tables:
        tables["events"] = _empty_table(con, "events", names["events"])
    return Dataset(
        leads=tables["leads"],
        events=tables["events"],
        accounts=tables.get("accounts"),
        outcomes=tables.get("outcomes"),
        rejections=tuple(rejections),
        validated=True,
    )


# --------------------------------------------------------------------------------------------
# Files


def split_suffix(path: Path) -> tuple[str, FileFormat]:
    """Return (stem, format) of a data file name, or raise DataError for unsupported names."""
    lower = path.name.lower()
    for suffix, fmt in SUPPORTED_SUFFIXES.items():
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return path.name[: -len(suffix)], fmt
    raise DataError(
        f"{path.name}: unsupported file type; supported: {', '.join(SUPPORTED_SUFFIXES)}"
    )


def _header_line(path: Path, encoding: str | None = None) -> str:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            head: bytes = fh.readline(1 << 20)
    except OSError as exc:
        raise DataError(f"{path.name}: cannot read: {exc}") from exc
    text = head.decode(_python_encoding(encoding), errors="replace")
    return text.removeprefix("\ufeff").rstrip("\r\n")


def _python_encoding(encoding: str | None) -> str:
    return {"utf-16": "utf-16", "latin-1": "latin-1"}.get((encoding or "").lower(), "utf-8")


def sniff_delimiter(path: Path) -> str:
    """Guess the CSV delimiter from the header line: the most frequent of , ; tab |."""
    header = _header_line(path)
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def csv_header(path: Path, delimiter: str, encoding: str | None = None) -> list[str]:
    """Column names from the first line of a CSV file; empty ones become column<i>."""
    line = _header_line(path, encoding)
    if not line.strip():
        raise DataError(f"{path.name}: no header row (the file or its first line is empty)")
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(next(csv.reader([line], delimiter=delimiter))):
        name = raw if raw.strip() else f"column{i}"
        base, k = name, 0
        while name.lower() in seen:
            k += 1
            name = f"{base}_{k}"
        seen.add(name.lower())
        names.append(name)
    return names


def source_sql(
    con: Any,
    path: Path,
    fmt: FileFormat,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    text_columns: AbcMapping[str, object] | None = None,
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Return (SQL after FROM, (name, type) columns) reading `path` with DuckDB.

    CSV is read as text (all columns VARCHAR, so values are parsed and reported by leadscore,
    not rejected by the sniffer); the header is the first line, the delimiter the given one or
    the most frequent of , ; tab | in it. JSON lines: keys are found in the whole file; the
    keys named in `text_columns` (lower-case names) are read as text, others with DuckDB's types.
    """
    p = quote_literal(str(path))
    if fmt == "csv":
        delim = delimiter if delimiter is not None else sniff_delimiter(path)
        # No sniffing: DuckDB's sniffer may skip leading lines it finds inconsistent, and
        # every value is read as text so that leadscore parses and reports it.
        spec = ", ".join(
            f"{quote_literal(n)}: 'VARCHAR'" for n in csv_header(path, delim, encoding)
        )
        opts = f"header = true, auto_detect = false, delim = {quote_literal(delim)}"
        opts += f", quote = '\"', escape = '\"', columns = {{{spec}}}"
        if encoding:
            opts += f", encoding = {quote_literal(encoding)}"
        sql = f"read_csv({p}, {opts})"
    elif fmt == "parquet":
        sql = f"read_parquet({p})"
    else:
        probe = f"read_json({p}, format = 'newline_delimited', sample_size = -1)"
        described = _describe(con, probe, path.name)
        wanted = text_columns or {}
        spec = ", ".join(
            f"{quote_literal(n)}: {quote_literal('VARCHAR' if n.strip().lower() in wanted else t)}"
            for n, t in described
        )
        sql = f"read_json({p}, format = 'newline_delimited', columns = {{{spec}}})"
    return sql, _describe(con, sql, path.name)


def _describe(con: Any, sql: str, label: str) -> tuple[tuple[str, str], ...]:
    try:
        rows = _fetch(con, f"DESCRIBE SELECT * FROM {sql}")
    except duckdb.Error as exc:
        message = " ".join(line.strip() for line in str(exc).strip().splitlines())
        raise DataError(f"{label}: cannot read: {message}") from exc
    return tuple((str(r[0]), str(r[1])) for r in rows)


def file_relation(con: Any, table: str, path: Path) -> Relation:
    """Describe one canonical-table file as a Relation (read lazily by DuckDB)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    _, fmt = split_suffix(path)
    canonical = {c.name: c for c in TABLES[table]}
    sql, columns = source_sql(con, path, fmt, text_columns=canonical)
    return Relation(table=table, label=path.name, sql=sql, columns=columns)


def _directory_files(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if not child.is_file():
            continue
        try:
            stem, _ = split_suffix(child)
        except DataError:
            continue
        if stem in TABLES:
            if stem in found:
                raise DataError(
                    f"{root}: both {found[stem].name} and {child.name} hold table {stem}"
                )
            found[stem] = child
    if not found:
        raise DataError(
            f"{root}: no data files (expected leads.csv, leads.parquet or leads.jsonl, "
            f"events.*, and optionally accounts.* and outcomes.*)"
        )
    return found


def _collect_files(paths: str | Path | Sequence[str | Path]) -> dict[str, Path]:
    items = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    files: dict[str, Path] = {}
    for item in items:
        if item.is_dir():
            found = _directory_files(item)
        else:
            stem, _ = split_suffix(item)
            if stem not in TABLES:
                raise DataError(
                    f"{item.name}: the file name must say which table it holds "
                    f"({', '.join(TABLES)}), e.g. leads.csv; got {stem!r}"
                )
            found = {stem: item}
        for stem, path in found.items():
            if stem in files:
                raise DataError(f"both {files[stem]} and {path} hold table {stem}")
            files[stem] = path
    if "leads" not in files:
        raise DataError(
            "no leads file among "
            + ", ".join(str(i) for i in items)
            + " (expected leads.csv, leads.parquet or leads.jsonl)"
        )
    return files


def load_dataset(
    paths: str | Path | Sequence[str | Path],
    *,
    con: ibis.BaseBackend | None = None,
    mapping: Mapping | None = None,
) -> Dataset:
    """Read, validate and coerce canonical tables from files into a Dataset on DuckDB.

    `paths` is a directory holding `leads.*`, `events.*` and optionally `accounts.*` and
    `outcomes.*` (`.csv`, `.csv.gz`, `.parquet`, `.jsonl`/`.ndjson`, `.jsonl.gz`), or a list of
    such files (a file's stem names its table). leads is required; when no events file is given
    the events table is empty (with the canonical columns). With `mapping`, `paths` is the one
    export file the mapping turns into the canonical tables, or, for a mapping of several
    files (`files:`), the folder holding them or those files.

    Bad rows are not loaded but reported in `Dataset.rejections` (1-based data rows of the file):
    values that cannot be converted, missing required values, duplicate lead/account ids (the
    first in file order is kept), duplicate event ids (of the valid copies of known leads, the
    earliest by ts, lead_id, type, then file order is kept, as the engine counts in a database),
    events and outcomes of unknown leads, outcomes other than won/lost. At most
    MAX_REJECTIONS_PER_KIND rows are listed per table and kind of reason; one summary rejection
    (row None) counts the rest. Raises DataError for unreadable files, missing
    required columns, unsupported or unknown file names.
    """
    if con is None:
        con = ibis.duckdb.connect()
    duckdb_connection(con)
    if mapping is not None:
        from leadscore.io.mapping import apply_mapping

        # One export file, or (a mapping with `files`) a data folder or the files themselves.
        return apply_mapping(mapping, paths, con)
    files = _collect_files(paths)
    relations = {table: file_relation(con, table, path) for table, path in files.items()}
    return load_relations(con, relations)


# --------------------------------------------------------------------------------------------
# Writing


def write_table(table: ibis.Table, path: Path) -> None:
    """Write an Ibis table to CSV, Parquet or JSON lines, chosen by the suffix of `path`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise DataError(
            f"{path.name}: cannot write this file type; supported: {', '.join(WRITE_SUFFIXES)}"
        )
    try:
        if suffix == ".parquet":
            table.to_parquet(path)
        elif suffix == ".csv":
            # a spreadsheet opens it: no text cell may run as a formula (leadscore.io.formulas)
            safe_table(table).to_csv(path)
        else:
            _write_jsonl(table, path)
    except duckdb.Error as exc:
        raise DataError(f"{path.name}: cannot write: {' '.join(str(exc).split())}") from exc


def _write_jsonl(table: ibis.Table, path: Path) -> None:
    backend = table.get_backend()
    if getattr(backend, "name", None) != "duckdb":
        raise DataError(
            f"{path.name}: JSON lines are written from DuckDB; with --backend "
            f"{backend.name}, write .parquet or .csv (or --table)"
        )
    duckdb_connection(backend)
    # In-memory tables the expression uses must be registered before the SQL can read them;
    # Ibis does this before its own exports, through this hook.
    hook = getattr(backend, "_run_pre_execute_hooks", None)
    if hook is not None:
        hook(table)
    query = backend.compile(table)
    _run(backend, f"COPY ({query}) TO {quote_literal(str(path))} (FORMAT JSON)")
