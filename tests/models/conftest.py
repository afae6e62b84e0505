"""Generated data for the example-model tests (fixtures only: test modules import nothing here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from leadscore.io.generate import DEFAULT_AS_OF, generate_tables
from leadscore.io.readers import duckdb_connection, ibis_table
from leadscore.schema import Dataset

SEED = 11


@dataclass(frozen=True)
class Generated:
    """One generated dataset as row dicts (for `score_many`) and as the Arrow tables behind them."""

    tables: dict[str, pa.Table]
    leads: list[dict[str, Any]]
    events: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    outcomes: dict[str, str]  # lead_id -> won or lost (decided leads only)
    as_of: Any = DEFAULT_AS_OF

    def dataset(self) -> Dataset:
        """The same tables in a fresh in-memory DuckDB, as the batch engine reads them."""
        con = ibis.duckdb.connect()
        raw = duckdb_connection(con)
        tables: dict[str, Any] = {}
        for name, table in self.tables.items():
            raw.register(f"arrow_{name}", table)
            con.raw_sql(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM "arrow_{name}"')
            raw.unregister(f"arrow_{name}")
            tables[name] = ibis_table(con, name)
        return Dataset(
            leads=tables["leads"],
            events=tables["events"],
            accounts=tables["accounts"],
            outcomes=tables["outcomes"],
        )


def _generated(n_leads: int, segment: str | None = None) -> Generated:
    tables = generate_tables(n_leads, seed=SEED)
    if segment is not None:
        leads = tables["leads"].filter(pc.equal(tables["leads"]["segment"], segment))
        ids = leads["lead_id"]
        tables = {
            "leads": leads,
            "accounts": tables["accounts"],
            "events": tables["events"].filter(pc.is_in(tables["events"]["lead_id"], ids)),
            "outcomes": tables["outcomes"].filter(pc.is_in(tables["outcomes"]["lead_id"], ids)),
        }
    return Generated(
        tables=tables,
        leads=tables["leads"].to_pylist(),
        events=tables["events"].to_pylist(),
        accounts=tables["accounts"].to_pylist(),
        outcomes={r["lead_id"]: r["outcome"] for r in tables["outcomes"].to_pylist()},
    )


@pytest.fixture(scope="session")
def generated_mixed() -> Generated:
    """2,000 leads as `leadscore generate` makes them by default: B2B and B2C, mixed."""
    return _generated(2_000)


@pytest.fixture(scope="session")
def generated_consumers() -> Generated:
    """About 2,000 consumers: the B2C leads of a 5,000-lead mixed dataset, with their events.

    (`generate_tables(kind="b2c")` would be the direct way; it raised IndexError when written.)
    """
    return _generated(5_000, segment="b2c")
