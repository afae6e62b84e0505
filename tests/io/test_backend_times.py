"""Times in a database (`--backend`): read as UTC whatever the server's zone, and refused with
the row's id when they leave years 1-9999, as files reject such rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.engine.batch import compile_batch
from leadscore.errors import DataError
from leadscore.io.backends import close_all, dataset_from
from leadscore.model.loader import parse_model

MODEL = """
name: recent
version: "1"
behaviour:
  rules:
    - {name: visit, event: page_view, points: 10, within_days: 1}
"""


def duckdb_file(tmp_path: Path, ts: str) -> str:
    db = tmp_path / "crm.db"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE leads AS SELECT 'L1' AS lead_id")
        con.execute(
            "CREATE TABLE events AS SELECT 'e1' AS event_id, 'L1' AS lead_id, "
            f"'page_view' AS type, {ts} AS ts"
        )
    return f"duckdb:///{db}"


def test_a_time_outside_years_1_to_9999_is_refused_with_its_event(tmp_path: Path) -> None:
    url = duckdb_file(tmp_path, "TIMESTAMP '9999-12-31 23:30:00' + INTERVAL 1 HOUR")
    try:
        with pytest.raises(DataError, match=r"events\.ts of event_id e1 is 10000-01-01 00:30:00"):
            dataset_from(url)
        # the CLI says so, with no traceback
        model = tmp_path / "m.yaml"
        model.write_text(MODEL)
        args = ["score", str(model), "--backend", url, "--as-of", "2026-01-02"]
        done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "s.csv")])
        assert done.exit_code != 0 and isinstance(done.exception, SystemExit), done.output
        assert "outside the years 1-9999" in " ".join(done.output.split())
    finally:
        close_all()


def test_duckdb_sessions_read_times_with_a_zone_as_utc(tmp_path: Path) -> None:
    url = duckdb_file(tmp_path, "TIMESTAMPTZ '2026-01-01 23:30:00+02:00'")
    try:
        data = dataset_from(url)
        con = data.events.get_backend()
        assert con.raw_sql("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
        (row,) = data.events.select(ts=data.events.ts.cast("timestamp")).to_pyarrow().to_pylist()
        assert row["ts"] == datetime(2026, 1, 1, 21, 30)
    finally:
        close_all()


@pytest.fixture
def berlin_db(postgres_server: str) -> Iterator[str]:
    """A database whose sessions are in Europe/Berlin, holding one event as TIMESTAMPTZ."""
    name = f"leadscore_tz_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET timezone TO 'Europe/Berlin'").format(
                sql.Identifier(name)
            )
        )
    url = f"{postgres_server}/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE leads (lead_id text)")
        conn.execute("INSERT INTO leads VALUES ('L1')")
        conn.execute("CREATE TABLE events (event_id text, lead_id text, type text, ts timestamptz)")
        # 00:30 UTC is 01:30 on a Berlin wall clock
        conn.execute("INSERT INTO events VALUES ('e1', 'L1', 'page_view', '2026-01-01 00:30Z')")
    try:
        yield url
    finally:
        close_all()
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_postgresql_times_with_a_zone_are_utc_whatever_the_server_zone(berlin_db: str) -> None:
    data = dataset_from(berlin_db)
    (row,) = data.events.select(ts=data.events.ts.cast("timestamp")).to_pyarrow().to_pylist()
    assert row["ts"] == datetime(2026, 1, 1, 0, 30)
    model = parse_model(MODEL)

    def total(as_of: datetime) -> float:
        scores = compile_batch(model, data, as_of).scores.to_pyarrow().to_pylist()
        return float(scores[0]["total"])

    assert total(datetime(2026, 1, 2, 0, 0)) == 10.0  # 23.5 hours old: within the day
    assert total(datetime(2026, 1, 2, 1, 0)) == 0.0  # 24.5 hours old (Berlin's clock: 23.5)
