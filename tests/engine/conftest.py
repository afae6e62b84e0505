"""Engine test fixtures: one DuckDB connection, datasets from rows, both engines side by side."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import pyarrow as pa
import pytest

from leadscore.engine.batch import BatchResult, compile_batch
from leadscore.engine.reference import score_many
from leadscore.engine.result import LEDGER_COLUMNS
from leadscore.io.readers import ibis_table
from leadscore.model.scoring import ScoringModel
from leadscore.schema import ACCOUNTS, EVENTS, LEADS, Column, Dataset

Row = dict[str, Any]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us"),
    "boolean": pa.bool_(),
}

# Custom attributes beside the canonical columns, as a customer's data may have them.
LEAD_EXTRA = {"vip": "boolean"}
EVENT_EXTRA = {"n": "int64"}


def schema_of(columns: Sequence[Column], extra: Mapping[str, str]) -> pa.Schema:
    """The Arrow schema of a canonical table plus custom columns."""
    fields = [(c.name, ARROW_TYPES[c.type]) for c in columns]
    fields += [(name, ARROW_TYPES[typ]) for name, typ in extra.items()]
    return pa.schema(fields)


def complete(rows: Sequence[Row], schema: pa.Schema) -> list[Row]:
    """Rows with every column of the schema (missing ones None), as the reference reads them."""
    return [{name: row.get(name) for name in schema.names} for row in rows]


def _sort_key(row: Row) -> tuple[Any, ...]:
    key = [(row[c] is None, "" if row[c] is None else row[c]) for c in LEDGER_COLUMNS]
    # The factor goes last: it is compared with a tolerance, the rest exactly.
    del key[LEDGER_COLUMNS.index("factor")]
    return (*key, (row["factor"] is None, row["factor"] or 0.0))


def assert_same_scores(batch: list[Row], reference: list[Row]) -> None:
    """Scores equal column by column, floats exactly, in any row order."""
    by_lead = {r["lead_id"]: r for r in batch}
    assert len(by_lead) == len(batch) == len(reference)
    for expected in reference:
        got = by_lead[expected["lead_id"]]
        assert list(got) == list(expected), "columns differ"
        for column, value in expected.items():
            assert got[column] == value, (expected["lead_id"], column, got[column], value)
            assert type(got[column]) is type(value), (column, got[column], value)


def assert_same_ledger(batch: list[Row], reference: list[Row]) -> None:
    """Ledgers equal as multisets; factors to 1e-12 relative, everything else exactly."""
    assert len(batch) == len(reference), (sorted(batch, key=_sort_key), reference)
    for got, expected in zip(
        sorted(batch, key=_sort_key), sorted(reference, key=_sort_key), strict=True
    ):
        assert list(got) == list(LEDGER_COLUMNS)
        for column in LEDGER_COLUMNS:
            g, e = got[column], expected[column]
            if column == "factor" and g is not None and e is not None:
                assert math.isclose(g, e, rel_tol=1e-12), (got, expected)
            else:
                assert g == e and type(g) is type(e), (column, got, expected)


@dataclass
class Engines:
    """One DuckDB connection, and the two engines run on the same rows."""

    con: Any

    def table(self, name: str, schema: pa.Schema, rows: Sequence[Row]) -> ibis.Table:
        """Load rows as table `name` with exactly this schema (replacing it)."""
        data = pa.Table.from_pylist(complete(rows, schema), schema=schema)
        # `con.create_table(name, arrow_table, overwrite=True)` fails with ibis 12 + sqlglot 30
        # ("DROP VIEW IF EXISTS" without a name), so the table is made in DuckDB directly.
        raw = self.con.con
        raw.register("__leadscore_rows", data)
        try:
            raw.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM "__leadscore_rows"')
        finally:
            raw.unregister("__leadscore_rows")
        return ibis_table(self.con, name)

    def dataset(
        self,
        leads: Sequence[Row],
        events: Sequence[Row],
        accounts: Sequence[Row] | None = None,
        *,
        lead_schema: pa.Schema | None = None,
        event_schema: pa.Schema | None = None,
        account_schema: pa.Schema | None = None,
    ) -> Dataset:
        """A dataset of canonical tables (plus the custom columns) from rows."""
        return Dataset(
            leads=self.table("leads", lead_schema or schema_of(LEADS, LEAD_EXTRA), leads),
            events=self.table("events", event_schema or schema_of(EVENTS, EVENT_EXTRA), events),
            accounts=(
                None
                if accounts is None
                else self.table("accounts", account_schema or schema_of(ACCOUNTS, {}), accounts)
            ),
        )

    def batch(
        self, model: ScoringModel, dataset: Dataset, as_of: datetime, pooled: bool | None = None
    ) -> tuple[list[Row], list[Row]]:
        """Scores and ledger rows of the batch engine."""
        result: BatchResult = compile_batch(model, dataset, as_of, pooled=pooled)
        scores = self.con.to_pyarrow(result.scores).to_pylist()
        ledger = self.con.to_pyarrow(result.ledger).to_pylist()
        return scores, ledger

    def both(
        self,
        model: ScoringModel,
        leads: Sequence[Row],
        events: Sequence[Row],
        as_of: datetime,
        accounts: Sequence[Row] | None = None,
        pooled: bool | None = None,
    ) -> tuple[list[Row], list[Row], list[Row], list[Row]]:
        """(batch scores, reference scores, batch ledger, reference ledger) for the same rows."""
        dataset = self.dataset(leads, events, accounts)
        batch_scores, batch_ledger = self.batch(model, dataset, as_of, pooled)
        results = score_many(
            model,
            complete(leads, schema_of(LEADS, LEAD_EXTRA)),
            complete(events, schema_of(EVENTS, EVENT_EXTRA)),
            as_of,
            accounts=complete(accounts or [], schema_of(ACCOUNTS, {})),
        )
        ref_scores = [r.as_row() for r in results]
        ref_ledger = [line.as_row() for r in results for line in r.ledger]
        return batch_scores, ref_scores, batch_ledger, ref_ledger

    def check(
        self,
        model: ScoringModel,
        leads: Sequence[Row],
        events: Sequence[Row],
        as_of: datetime,
        accounts: Sequence[Row] | None = None,
        pooled: bool | None = None,
    ) -> tuple[dict[str, Row], list[Row]]:
        """Assert both engines agree; return the scores by lead id and the ledger."""
        batch_scores, ref_scores, batch_ledger, ref_ledger = self.both(
            model, leads, events, as_of, accounts, pooled
        )
        assert_same_scores(batch_scores, ref_scores)
        assert_same_ledger(batch_ledger, ref_ledger)
        return {r["lead_id"]: r for r in batch_scores}, batch_ledger


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """Both engines on one in-memory DuckDB connection for the whole session."""
    con = ibis.duckdb.connect()
    con.raw_sql("SET threads = 2")
    yield Engines(con)
    con.disconnect()
