"""The store's leads, accounts, events and outcomes as a Dataset, for the evaluate layer.

Custom attributes become ordinary columns, as in files; the tables go into an in-memory
DuckDB so that backtests and channel analyses run on the batch engine, as on files.
"""

from __future__ import annotations

from typing import Any

import ibis
import pyarrow as pa
import sqlalchemy as sa

from leadscore import schema
from leadscore.io.readers import arrow_table
from leadscore.store import tables as t
from leadscore.store.database import Store

_ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "boolean": pa.bool_(),
}


def _arrow(
    rows: list[dict[str, Any]], columns: tuple[schema.Column, ...], attributes: bool
) -> pa.Table:
    fields = [pa.field(c.name, _ARROW[c.type]) for c in columns]
    data: dict[str, list[Any]] = {c.name: [r[c.name] for r in rows] for c in columns}
    names = {c.name for c in columns}
    if attributes:
        extra: dict[str, None] = {}
        for r in rows:
            extra.update(dict.fromkeys(k for k in (r["attributes"] or {}) if k not in names))
        for name in extra:
            data[name] = [(r["attributes"] or {}).get(name) for r in rows]
    table = pa.Table.from_pydict(data)
    # canonical columns keep their canonical types, even when every value is null
    for i, f in enumerate(fields):
        table = table.set_column(i, f, table.column(f.name).cast(f.type))
    return table


def store_dataset(store: Store) -> schema.Dataset:
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

    def table(name: str, arrow: pa.Table) -> ibis.Table:
        return arrow_table(con, name, arrow)

    return schema.Dataset(
        leads=table("leads", _arrow(leads, schema.LEADS, True)),
        events=table("events", _arrow(events, schema.EVENTS, True)),
        accounts=table("accounts", _arrow(accounts, schema.ACCOUNTS, True)),
        outcomes=table("outcomes", _arrow(outcomes, schema.OUTCOMES, False)),
        # the store keeps event ids unique and every event's lead exists
        validated=True,
    )
