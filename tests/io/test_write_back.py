"""Scores and ledgers written back as tables where the data lives (issue #6).

`leadscore score --backend URL --table NAME` writes into a DuckDB file, a real PostgreSQL
server and local Spark's catalog; the tables hold exactly the scores the files give.
"""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.io.backends import close_all, connect
from leadscore.io.generate import generate

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "committee.yaml")
AS_OF = datetime(2026, 1, 1)
LEADS = 300
KEY = ["lead_id", "total", "fit", "behaviour", "grade", "stage", "queue", "model", "as_of"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated canonical tables as Parquet files."""
    folder = tmp_path_factory.mktemp("write-back")
    generate(LEADS, seed=11, out=folder, as_of=AS_OF)
    return folder


@pytest.fixture(scope="module")
def expected(files: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The scores `leadscore score --data` writes to a file."""
    out = tmp_path_factory.mktemp("expected") / "scores.parquet"
    done = _score(["--data", str(files), "--out", str(out)])
    assert done.exit_code == 0, done.output
    return _key(pq.read_table(out))


def _score(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["score", MODEL, "--as-of", "2026-01-01", *args])


def _key(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.select(KEY).to_pylist()
    for row in rows:  # drivers give timestamps back as datetimes or text
        row["as_of"] = str(row["as_of"])[:19].replace("T", " ")
    return sorted(rows, key=lambda r: str(r["lead_id"]))


def _tables(files: Path) -> dict[str, pa.Table]:
    return {p.stem: pq.read_table(p) for p in files.glob("*.parquet")}


def test_scores_and_ledger_go_back_into_a_duckdb_file(
    files: Path, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "crm.db"
    with duckdb.connect(str(db)) as con:
        for name, rows in _tables(files).items():
            con.register("rows", rows)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM rows")
            con.unregister("rows")
    url = f"duckdb:///{db}"
    args = ["--backend", url, "--table", "lead_scores", "--ledger-table", "lead_ledger"]
    for _ in range(2):  # the second run replaces the tables
        done = _score(args)
        assert done.exit_code == 0, done.output
        assert "table lead_scores" in " ".join(done.output.split())
    close_all()  # DuckDB lets one process hold a database file
    with duckdb.connect(str(db), read_only=True) as con:
        assert _key(con.table("lead_scores").arrow().read_all()) == expected
        ledger = con.execute("SELECT lead_id, sum(points) FROM lead_ledger GROUP BY 1").fetchall()
    totals = {r["lead_id"]: r["total"] for r in expected}
    assert len(ledger) == LEADS
    assert all(totals[lead] == pytest.approx(points, abs=1e-9) for lead, points in ledger)


@pytest.fixture
def postgres_db(postgres_server: str, files: Path) -> Iterator[str]:
    """A fresh database with the generated tables and an `analytics` schema."""
    name = f"leadscore_write_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{postgres_server}/{name}"
    con = connect(url.replace("postgresql://", "postgres://"))
    for table, rows in _tables(files).items():
        con.create_table(table, rows)
    con.raw_sql("CREATE SCHEMA analytics")
    try:
        yield url
    finally:
        close_all()
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_scores_go_back_into_postgresql_in_another_schema(
    postgres_db: str, expected: list[dict[str, Any]]
) -> None:
    for _ in range(2):
        done = _score(["--backend", postgres_db, "--table", "analytics.lead_scores"])
        assert done.exit_code == 0, done.output
    with psycopg.connect(postgres_db) as conn:
        cur = conn.execute(f"SELECT {', '.join(KEY)} FROM analytics.lead_scores")
        names = [d.name for d in cur.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert _key(pa.Table.from_pylist(rows)) == expected


def test_a_table_that_cannot_be_written_is_named(postgres_db: str) -> None:
    done = _score(["--backend", postgres_db, "--table", "nowhere.lead_scores"])
    assert done.exit_code == 2
    assert "cannot write table 'nowhere.lead_scores'" in done.output
    assert "nowhere" in done.output.split("cannot write table", 1)[1]


@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_scores_go_back_into_the_spark_catalog(files: Path, expected: list[dict[str, Any]]) -> None:
    try:
        # twice, each time in a new session (as two runs of the command would be): the catalog
        # in memory forgets the table, and its files must not stand in the next run's way
        for _ in range(2):
            close_all()
            args = ["--backend", "local[2]", "--data", str(files), "--table", "lead_scores"]
            done = _score(args)
            assert done.exit_code == 0, done.output
        written = connect("local[2]").table("lead_scores").to_pyarrow()
        assert _key(written) == expected
    finally:
        with warnings.catch_warnings():  # py4j's sockets: see tests/engine/test_backends.py
            warnings.simplefilter("ignore", ResourceWarning)
            close_all()
            gc.collect()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "in", "--table", "scores"], "write into the --backend database"),
        (["--data", "in"], "say where the scores go"),
        (["--backend", "duckdb:///x.db", "--table", "drop table; x"], "expected letters, digits"),
        (["--backend", "duckdb:///x.db", "--out", "s.csv", "--ledger-table", "a.b.c"], "a.b.c"),
    ],
)
def test_bad_write_back_requests_are_refused_before_any_work(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = _score([str(tmp_path / a) if a in ("in", "s.csv") else a for a in args])
    assert done.exit_code == 2
    assert message in " ".join(done.output.split())
    assert not list(tmp_path.iterdir())  # nothing was read or written
