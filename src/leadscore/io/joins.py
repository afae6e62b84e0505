"""Mappings over several files: find the files, join them by key, report keys without a match.

A mapping's `files` are read into temporary DuckDB tables; for each file a table's rows come
from (`tables`), the files joined to it (`joins`, a tree rooted at the first file) are left-joined
once into one temporary table, whose columns the mapping names `column` (the file's own) or
`file.column`. Joins are many-to-one: a key finding several rows is an error, since it would copy
rows. A key finding none is a note (left join, the row is kept) or a rejection (inner join).
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from leadscore.io.errors import DataError, MappingError
from leadscore.io.mapping import (
    JoinSpec,
    Mapping,
    _build_relations,
    _Builder,
    _Ctx,
    _nulls,
    _read_source,
    _Source,
    _temp_table,
)
from leadscore.io.readers import MAX_REJECTIONS_PER_KIND, load_relations, quote_ident, quote_literal
from leadscore.schema import Dataset, Rejection

__all__ = ["apply_files"]


def _resolve_files(mapping: Mapping, items: list[Path]) -> dict[str, Path]:
    """Find every file of `mapping.files` among data folders and files given."""
    assert mapping.files is not None
    for item in items:
        if not item.exists():
            raise DataError(f"{item}: no such file or folder")
    folders = [p for p in items if p.is_dir()]
    given = [p for p in items if not p.is_dir()]
    searched = ", ".join(str(p) for p in items) or "(nothing given)"
    found: dict[str, Path] = {}
    for name, spec in mapping.files.items():
        matches: dict[Path, Path] = {}
        for folder in folders:
            for candidate in sorted(folder.glob(spec.path)):
                if candidate.is_file():
                    matches.setdefault(candidate.resolve(), candidate)
        for file in given:
            if fnmatch.fnmatch(file.name, spec.path) or fnmatch.fnmatch(str(file), spec.path):
                matches.setdefault(file.resolve(), file)
        if not matches:
            raise DataError(f"{mapping.where('files', name)}: no file {spec.path!r} in {searched}")
        if len(matches) > 1:
            shown = ", ".join(p.name for p in matches.values())
            raise DataError(
                f"{mapping.where('files', name)}: {spec.path!r} matches several files "
                f"({shown}); name one"
            )
        found[name] = next(iter(matches.values()))
    used = {p.resolve() for p in found.values()}
    for file in given:
        if file.resolve() not in used:
            listed = ", ".join(f"{n}: {s.path}" for n, s in mapping.files.items())
            raise DataError(f"{file}: not one of the mapping's files ({listed})")
    return found


def _key_sql(column: str, nulls: Sequence[str], join: JoinSpec, *, left: bool) -> str:
    """SQL for one key value as a join compares it: trimmed, mapped, normalised."""
    text = _nulls(f"NULLIF(TRIM(CAST({column} AS VARCHAR)), '')", nulls)
    if left and join.values:
        cases = " ".join(
            f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in join.values.items()
        )
        text = f"(CASE {text} {cases} ELSE {text} END)"
    if "punctuation" in join.normalise:
        text = f"regexp_replace({text}, '[^\\p{{L}}\\p{{N}}\\s]', '', 'g')"
    if "spaces" in join.normalise:
        text = f"regexp_replace({text}, '\\s+', '', 'g')"
    if "case" in join.normalise:
        text = f"lower({text})"
    return f"NULLIF({text}, '')"


@dataclass
class _Files:
    """The files of a multi-file mapping as read: temporary table, columns, name, nulls."""

    mapping: Mapping
    tables: dict[str, str]
    columns: dict[str, dict[str, str]]
    labels: dict[str, str]
    nulls: dict[str, tuple[str, ...]]

    def first(self) -> str:
        return next(iter(self.tables))

    def key_columns(self, i: int, join: JoinSpec) -> None:
        """Every key column of join `i` exists in its file (else a MappingError)."""
        to = join.to or self.first()
        for file, names in ((to, join.on.keys()), (join.file, join.on.values())):
            for name in names:
                if name not in self.columns[file]:
                    shown = ", ".join(repr(c) for c in self.columns[file])
                    raise MappingError(
                        f"{self.mapping.where('joins', i, 'on')}: key column {name!r} not "
                        f"found in {self.labels[file]}; its columns are: {shown}"
                    )


def _check_many_to_one(con: Any, files: _Files, i: int, join: JoinSpec) -> None:
    """A key of `to` may find one row of the joined file, never several (it would copy rows)."""
    to = join.to or files.first()
    pairs = list(join.on.items())
    rkeys = [_key_sql(quote_ident(r), files.nulls[join.file], join, left=False) for _, r in pairs]
    lkeys = [_key_sql(quote_ident(lc), files.nulls[to], join, left=True) for lc, _ in pairs]
    raw = " || ' / ' || ".join(f"coalesce(CAST({quote_ident(r)} AS VARCHAR), '')" for _, r in pairs)
    r_sel = ", ".join(f"{k} AS k{m}" for m, k in enumerate(rkeys))
    l_sel = ", ".join(f"{k} AS k{m}" for m, k in enumerate(lkeys))
    same = " AND ".join(f"l.k{m} = r.k{m}" for m in range(len(pairs)))
    present = " AND ".join(f"k{m} IS NOT NULL" for m in range(len(pairs)))
    keys = ", ".join(f"k{m}" for m in range(len(pairs)))
    joined_keys = " || ' / ' || ".join(f"k{m}" for m in range(len(pairs)))
    sql = (
        f"WITH r AS (SELECT rowid + 1 AS row, {raw} AS raw, {r_sel} "
        f"FROM {quote_ident(files.tables[join.file])}), "
        f"l AS (SELECT DISTINCT {l_sel} FROM {quote_ident(files.tables[to])}) "
        f"SELECT {joined_keys}, "
        f"list(DISTINCT raw ORDER BY raw), list(row ORDER BY row), count(*) OVER () "
        f"FROM r WHERE {present} AND EXISTS (SELECT 1 FROM l WHERE {same}) "
        f"GROUP BY {keys} HAVING count(*) > 1 ORDER BY min(row) LIMIT 3"
    )
    found = con.raw_sql(sql).fetchall()
    if not found:
        return
    described = []
    for key, written, rows, _ in found:
        spelt = ", ".join(repr(w) for w in written)
        shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        described.append(f"key {key!r} (written {spelt}) is on rows {shown}")
    more = found[0][3] - len(found)
    tail = f"; and {more} more such keys" if more > 0 else ""
    columns = ", ".join(r for _, r in pairs)
    raise DataError(
        f"{files.labels[join.file]}: {'; '.join(described)}{tail}: a join "
        f"({files.mapping.where('joins', i)}, "
        f"on {columns}) must find at most one row of {files.labels[join.file]} per key of "
        f"{files.labels[to]}, or it would copy those rows"
    )


def _join_base(
    con: Any, files: _Files, base: str, name: str, table: str
) -> tuple[_Ctx, list[Rejection], list[Rejection]]:
    """Materialize the rows of file `base` with its joins as temporary table `name`.

    Returns the context to build tables from, the rejections (an inner join without a match)
    and the notes (a left join without a match: the row is kept, the joined columns empty).
    """
    mapping = files.mapping
    joins = mapping.joins_into(base)
    alias = {base: "t0"}
    for k, (_, join) in enumerate(joins, 1):
        alias[join.file] = f"t{k}"
    select = ["t0.rowid + 1 AS __ls_row"]
    qualified: dict[str, _Source] = {}
    bare: dict[str, _Source] = {}
    for idx, file in enumerate(alias):
        # t<k> is the file of join k: its matched row is __ls_m<k>
        origin = (
            None
            if idx == 0
            else f"({quote_literal(files.labels[file] + ' row ')} || CAST(__ls_m{idx} AS VARCHAR))"
        )
        for j, column in enumerate(files.columns[file]):
            ident = f"__ls_c{idx}_{j}"
            select.append(f"{alias[file]}.{quote_ident(column)} AS {quote_ident(ident)}")
            source = _Source(ident, files.nulls[file], origin)
            qualified[f"{file}.{column}"] = source
            if file == base:
                bare[column] = source
    ambiguous = {n for n, s in bare.items() if n in qualified and qualified[n] != s}
    columns = {**qualified, **{n: s for n, s in bare.items() if n not in ambiguous}}
    sql_from = f"{quote_ident(files.tables[base])} AS t0"
    for k, (_, join) in enumerate(joins, 1):
        to = join.to or files.first()
        la, ra = alias[to], alias[join.file]
        conds = []
        for m, (lc, rc) in enumerate(join.on.items()):
            lk = _key_sql(f"{la}.{quote_ident(lc)}", files.nulls[to], join, left=True)
            rk = _key_sql(f"{ra}.{quote_ident(rc)}", files.nulls[join.file], join, left=False)
            conds.append(f"{lk} = {rk}")
            raw = f"NULLIF(TRIM(CAST({la}.{quote_ident(lc)} AS VARCHAR)), '')"
            select.append(f"{raw} AS __ls_k{k}_{m}")
            select.append(f"{lk} IS NOT NULL AS __ls_h{k}_{m}")
        sql_from += (
            f" LEFT JOIN {quote_ident(files.tables[join.file])} AS {ra} ON {' AND '.join(conds)}"
        )
        select.append(f"{ra}.rowid + 1 AS __ls_m{k}")
    con.raw_sql(
        f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT {', '.join(select)} "
        f"FROM {sql_from} ORDER BY t0.rowid"
    )
    rejections: list[Rejection] = []
    notes: list[Rejection] = []
    label = files.labels[base]
    for k, (_, join) in enumerate(joins, 1):
        to = join.to or files.first()
        n_keys = len(join.on)
        has_key = " AND ".join(f"__ls_h{k}_{m}" for m in range(n_keys))
        unmatched = f"__ls_m{k} IS NULL" + ("" if join.kind == "inner" else f" AND {has_key}")
        ((count,),) = con.raw_sql(
            f"SELECT count(*) FROM {quote_ident(name)} WHERE {unmatched}"
        ).fetchall()
        if not count:
            continue
        keys = ", ".join(f"__ls_k{k}_{m}" for m in range(n_keys))
        listed = con.raw_sql(
            f"SELECT __ls_row, {keys} FROM {quote_ident(name)} WHERE {unmatched} "
            f"ORDER BY __ls_row LIMIT {MAX_REJECTIONS_PER_KIND}"
        ).fetchall()
        prefix = "" if to == base else f"{to}."
        right = files.labels[join.file]
        if join.kind == "inner":
            outcome = f"no match in {right} (inner join): not loaded"
            into = rejections
        else:
            outcome = f"no match in {right}: kept without its {join.file}.* columns"
            into = notes
        for row, *values in listed:
            described = ", ".join(
                f"{prefix}{col} " + (repr(v) if v is not None else "(empty)")
                for col, v in zip(join.on, values, strict=True)
            )
            into.append(Rejection(table, label, int(row), f"{described}: {outcome}"))
        if count > len(listed):
            more = f"... and {count - len(listed):,} more rows with {outcome}"
            into.append(Rejection(table, label, None, more))
        if join.kind == "inner":
            con.raw_sql(f"DELETE FROM {quote_ident(name)} WHERE {unmatched}")
    builder = _Builder(mapping, columns, f"{label} (file {base})", frozenset(ambiguous))
    ctx = _Ctx(builder, quote_ident(name), "__ls_row", "__ls_row", label)
    return ctx, rejections, notes


def apply_files(mapping: Mapping, items: list[Path], con: Any) -> Dataset:
    """Read the files of a mapping with `files` (found among `items`) into a Dataset."""
    assert mapping.files is not None
    paths = _resolve_files(mapping, items)
    token = uuid.uuid4().hex[:8]
    source = mapping.source
    with ExitStack() as stack:
        files = _Files(mapping, {}, {}, {}, {})
        for i, (name, spec) in enumerate(mapping.files.items()):
            table = f"source_{token}_{i}"
            stack.enter_context(_temp_table(con, table))
            files.columns[name] = _read_source(
                con,
                paths[name],
                table,
                spec.format or source.format,
                spec.delimiter if spec.delimiter is not None else source.delimiter,
                spec.encoding or source.encoding,
            )
            files.tables[name] = table
            files.labels[name] = paths[name].name
            nulls = spec.null_values if spec.null_values is not None else source.null_values
            files.nulls[name] = tuple(nulls)
        for i, join in enumerate(mapping.joins):
            files.key_columns(i, join)
            _check_many_to_one(con, files, i, join)
        used = ["leads"]
        if mapping.accounts is not None:
            used.append("accounts")
        if mapping.events is not None and mapping.events.rules:
            used.append("events")
        if mapping.outcomes is not None:
            used.append("outcomes")
        ctxs: dict[str, _Ctx] = {}
        rejections: list[Rejection] = []
        notes: list[Rejection] = []
        for table in used:
            base = mapping.file_of(table)
            assert base is not None
            shared = next((t for t in used if t in ctxs and mapping.file_of(t) == base), None)
            if shared is not None:
                ctxs[table] = ctxs[shared]
                continue
            joined = f"joined_{token}_{len(ctxs)}"
            stack.enter_context(_temp_table(con, joined))
            ctxs[table], rej, noted = _join_base(con, files, base, joined, table)
            rejections += rej
            notes += noted
        data = load_relations(con, _build_relations(mapping, ctxs))
    return replace(
        data,
        rejections=(*rejections, *data.rejections),
        notes=(*notes, *data.notes),
    )
