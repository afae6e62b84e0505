"""The store's leads, accounts, events and outcomes as a Dataset, for the evaluate layer.

Custom attributes become ordinary columns, as in files; the tables go into an in-memory
DuckDB so that backtests and channel analyses run on the batch engine, as on files.

Attributes are stored as JSON, one lead at a time, so one attribute may hold a flag for one
lead and a text for another (`vip: true`, `vip: "yes"`). A column's type is decided from all
its values: booleans, integers (64-bit), numbers (integers and decimals) or text; any other
mix is text, with `true`/`false` and numbers written as JSON writes them. Every value read
differently than it was written is reported (`Conversion`), never dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import ibis
import pyarrow as pa
import sqlalchemy as sa

from leadscore import schema
from leadscore.io.readers import arrow_table
from leadscore.store import tables as t
from leadscore.store.database import Store

log = logging.getLogger("leadscore.service")

_ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "boolean": pa.bool_(),
}
_KEYS: Final = {"leads": "lead_id", "accounts": "account_id", "events": "event_id"}
_INT64: Final = (-(2**63), 2**63 - 1)
EXAMPLES: Final = 5  # values shown per converted column


@dataclass
class Conversion:
    """An attribute column whose values were not all read as written, with a few examples."""

    table: str
    column: str
    type: str  # what the column holds: text or number
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: object, written: Any, read: Any) -> None:
        """Count one value read differently, keeping the first few as examples."""
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append({"id": key, "written": written, "read": read})

    def as_dict(self) -> dict[str, Any]:
        """The note as JSON."""
        return {
            "table": self.table,
            "column": self.column,
            "type": self.type,
            "count": self.count,
            "examples": self.examples,
        }

    def describe(self) -> str:
        """One line for a log or a report."""
        shown = ", ".join(
            f"{e['id']}: {json.dumps(e['written'])} as {json.dumps(e['read'])}"
            for e in self.examples
        )
        return (
            f"{self.table}.{self.column} holds mixed types and is read as {self.type}: "
            f"{self.count} values read differently ({shown})"
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int64" if _INT64[0] <= value <= _INT64[1] else "float64"
    if isinstance(value, float):
        return "float64"
    return "string"


def attribute_column(
    table: str, name: str, keys: list[Any], values: list[Any]
) -> tuple[pa.Array, Conversion | None]:
    """One attribute's values as an Arrow array of the type they agree on (see the module)."""
    kinds = {_kind(v) for v in values if v is not None}
    if kinds <= {"boolean"} or kinds <= {"int64"} or kinds == {"string"}:
        kind = next(iter(kinds), "string")
        return pa.array(values, type=_ARROW[kind]), None
    if kinds <= {"int64", "float64"}:
        note = Conversion(table, name, "number")
        for key, v in zip(keys, values, strict=True):
            if isinstance(v, int) and not _INT64[0] <= v <= _INT64[1]:
                note.add(key, v, float(v))  # beyond 64 bits: only a float can hold it
        numbers = [None if v is None else float(v) for v in values]
        return pa.array(numbers, type=pa.float64()), note if note.count else None
    note = Conversion(table, name, "text")
    read: list[str | None] = []
    for key, v in zip(keys, values, strict=True):
        if v is None or isinstance(v, str):
            read.append(v)
        else:
            read.append(_text(v))
            note.add(key, v, read[-1])
    return pa.array(read, type=pa.string()), note


def _arrow(
    rows: list[dict[str, Any]],
    columns: tuple[schema.Column, ...],
    table: str,
    notes: list[Conversion],
    *,
    attributes: bool,
) -> pa.Table:
    arrays = [pa.array([r[c.name] for r in rows], type=_ARROW[c.type]) for c in columns]
    names = [c.name for c in columns]
    if attributes:
        extra: dict[str, None] = {}
        canonical = set(names)
        for r in rows:
            extra.update(dict.fromkeys(k for k in (r["attributes"] or {}) if k not in canonical))
        keys = [r[_KEYS[table]] for r in rows]
        for name in extra:
            values = [(r["attributes"] or {}).get(name) for r in rows]
            array, note = attribute_column(table, name, keys, values)
            arrays.append(array)
            names.append(name)
            if note is not None:
                notes.append(note)
    return pa.Table.from_arrays(arrays, names=names)


@dataclass(frozen=True)
class StoreData:
    """The store as a Dataset, and the attribute values read differently than written."""

    dataset: schema.Dataset
    conversions: tuple[Conversion, ...]

    def notes(self) -> list[dict[str, Any]]:
        """The conversions as JSON, for an answer or a report."""
        return [c.as_dict() for c in self.conversions]


def read_store(store: Store) -> StoreData:
    """Everything in the store as a validated Dataset on a fresh in-memory DuckDB."""
    with store.read() as conn:
        leads = [dict(r) for r in conn.execute(sa.select(t.leads)).mappings()]
        accounts = [dict(r) for r in conn.execute(sa.select(t.accounts)).mappings()]
        events = [
            dict(r) for r in conn.execute(sa.select(t.events).order_by(t.events.c.seq)).mappings()
        ]
        outcomes = [
            dict(r)
            for r in conn.execute(
                sa.select(
                    t.outcomes.c.lead_id, t.outcomes.c.outcome, t.outcomes.c.ts, t.outcomes.c.value
                )
            ).mappings()
        ]
    con = ibis.duckdb.connect()
    notes: list[Conversion] = []

    def table(name: str, arrow: pa.Table) -> ibis.Table:
        return arrow_table(con, name, arrow)

    dataset = schema.Dataset(
        leads=table("leads", _arrow(leads, schema.LEADS, "leads", notes, attributes=True)),
        events=table("events", _arrow(events, schema.EVENTS, "events", notes, attributes=True)),
        accounts=table(
            "accounts", _arrow(accounts, schema.ACCOUNTS, "accounts", notes, attributes=True)
        ),
        outcomes=table(
            "outcomes", _arrow(outcomes, schema.OUTCOMES, "outcomes", notes, attributes=False)
        ),
        # the store keeps event ids unique and every event's lead exists
        validated=True,
    )
    _log(notes)
    return StoreData(dataset, tuple(notes))


def _log(notes: Iterable[Conversion]) -> None:
    for note in notes:
        log.warning("reading the store for evaluation: %s", note.describe())


def store_dataset(store: Store) -> schema.Dataset:
    """Everything in the store as a Dataset (conversions are logged; `read_store` has them)."""
    return read_store(store).dataset
