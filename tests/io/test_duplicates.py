"""Duplicate event ids: one rule for files and databases, and a bad copy never hides a good one."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
from pyarrow import csv

from eventkit import with_duplicates
from leadscore.engine.batch import compile_batch
from leadscore.io import generate_tables, load_dataset
from leadscore.io.readers import arrow_table
from leadscore.model import load_model
from leadscore.schema import Dataset

ROOT = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 1, 1)


def rows(table: Any, keys: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return sorted(found, key=lambda r: tuple("" if r[k] is None else str(r[k]) for k in keys))


def write(path: Path, text: str) -> None:
    path.write_text(text)


def test_a_bad_first_copy_never_hides_a_good_later_one(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "lead_id\nL1\nL2\n")
    write(
        tmp_path / "events.csv",
        "event_id,lead_id,type,ts\n"
        "e1,L9,page_view,2026-02-01T09:00:00\n"  # unknown lead: rejected, hides nothing
        "e1,L1,page_view,2026-02-01T10:00:00\n"
        "e2,L1,page_view,soon\n"  # bad time: rejected, hides nothing
        "e2,L2,download,2026-02-02\n"
        "e3,L1,page_view,2026-02-05\n"
        "e3,L1,page_view,2026-02-04\n"  # earlier: this copy counts, as in a database
        "e3,L1,page_view,2026-02-04\n",
    )
    data = load_dataset(tmp_path)
    kept = rows(data.events, ["event_id"])
    assert [(r["event_id"], r["lead_id"], r["ts"]) for r in kept] == [
        ("e1", "L1", datetime(2026, 2, 1, 10)),
        ("e2", "L2", datetime(2026, 2, 2)),
        ("e3", "L1", datetime(2026, 2, 4)),
    ]
    assert [(r.row, r.reason) for r in data.rejections] == [
        (1, "unknown lead_id L9"),
        (
            3,
            "column ts: cannot parse 'soon' as a timestamp "
            "(expected ISO 8601 like 2026-03-01T12:00:00)",
        ),
        (5, "duplicate event_id e3 with different values, row 6 is kept"),
        (7, "duplicate event_id e3, row 6 is kept"),
    ]


def _database(tables: dict[str, pa.Table]) -> Dataset:
    """The tables as they are, in DuckDB: nothing rejected, as `--backend` reads a database."""
    con = ibis.duckdb.connect()
    t = {name: arrow_table(con, name, rows) for name, rows in tables.items()}
    return Dataset(t["leads"], t["events"], t["accounts"], t["outcomes"])


def test_files_and_a_database_count_the_same_copy(tmp_path: Path) -> None:
    """The engine's rule in a database (tests/engine/test_backends.py: on every backend) is
    the readers' rule for files."""
    tables = generate_tables(200, seed=3, as_of=AS_OF)
    tables["events"] = with_duplicates(tables["events"])
    for name, table in tables.items():
        csv.write_csv(table, tmp_path / f"{name}.csv")
    files = load_dataset(tmp_path)
    assert sum("duplicate event_id" in r.reason for r in files.rejections) > 50
    model = load_model(ROOT / "models" / "starter.yaml")
    here = compile_batch(model, files, AS_OF)
    there = compile_batch(model, _database(tables), AS_OF)
    assert rows(here.scores, ["lead_id"]) == rows(there.scores, ["lead_id"])
    keys = ["lead_id", "part", "rule", "event_id", "points"]
    ledger = rows(here.ledger, keys)
    assert ledger == rows(there.ledger, keys)
    assert len({r["total"] for r in rows(here.scores, ["lead_id"])}) > 10
