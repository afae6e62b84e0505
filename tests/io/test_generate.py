"""The data generator: deterministic, fast, realistic enough to test scoring models on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.errors import DataError
from leadscore.io import generate, generate_dataset, generate_tables, load_dataset
from leadscore.io.generate import EVENT_TYPES
from leadscore.schema import TABLES

AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def mixed() -> dict[str, pa.Table]:
    return generate_tables(20_000, seed=3, as_of=AS_OF)


@pytest.fixture(scope="module")
def db(mixed: dict[str, pa.Table]) -> Any:
    con = duckdb.connect()
    for name, table in mixed.items():
        con.register(name, table)
    return con


def one(con: Any, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = generate(3_000, seed=5, out=tmp_path / "a", as_of=AS_OF)
    b = generate(3_000, seed=5, out=tmp_path / "b", as_of=AS_OF)
    generate(3_000, seed=6, out=tmp_path / "c", as_of=AS_OF)
    assert a.counts == b.counts
    for name in ("leads", "accounts", "events", "outcomes"):
        first = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        assert first == (tmp_path / "b" / f"{name}.parquet").read_bytes(), name
        assert first != (tmp_path / "c" / f"{name}.parquet").read_bytes(), name
    assert set(a.files) == {"leads", "accounts", "events", "outcomes"}
    csv = generate(3_000, seed=5, out=tmp_path / "csv", as_of=AS_OF, format="csv")
    generate(3_000, seed=5, out=tmp_path / "csv2", as_of=AS_OF, format="csv")
    assert csv.counts == a.counts
    for name in ("leads", "events"):
        text = (tmp_path / "csv" / f"{name}.csv").read_bytes()
        assert text == (tmp_path / "csv2" / f"{name}.csv").read_bytes()


def test_files_match_the_in_memory_tables(tmp_path: Path) -> None:
    summary = generate(2_000, seed=9, out=tmp_path, as_of=AS_OF)
    tables = generate_tables(2_000, seed=9, as_of=AS_OF)
    for name, table in tables.items():
        assert pq.read_table(tmp_path / f"{name}.parquet").equals(table), name
        assert summary.counts[name] == table.num_rows
    assert summary.won + summary.lost == tables["outcomes"].num_rows
    assert summary.open == 2_000 - tables["outcomes"].num_rows
    assert "2,000 leads" in str(summary)


def test_generated_files_load_without_rejections(tmp_path: Path) -> None:
    for fmt in ("parquet", "csv"):
        generate(1_500, seed=2, out=tmp_path / fmt, as_of=AS_OF, format=fmt)
        ds = load_dataset(tmp_path / fmt)
        assert ds.rejections == (), fmt
        assert ds.accounts is not None and ds.outcomes is not None
        assert ds.leads.count().to_pyarrow().as_py() == 1_500


def test_columns_are_canonical(mixed: dict[str, pa.Table]) -> None:
    for name, table in mixed.items():
        canonical = [c.name for c in TABLES[name]]
        assert table.column_names[: len(canonical)] == canonical, name
    assert mixed["leads"].column_names[len(TABLES["leads"]) :] == [
        "segment",
        "age_band",
        "purchasing_power",
    ]


def test_sizes(mixed: dict[str, pa.Table], db: Any) -> None:
    assert mixed["leads"].num_rows == 20_000
    per_lead = mixed["events"].num_rows / 20_000
    assert 8.5 <= per_lead <= 11.5
    assert one(db, "SELECT count(DISTINCT event_id) = count(*) FROM events")
    assert (
        one(db, "SELECT count(*) FROM events WHERE lead_id NOT IN (SELECT lead_id FROM leads)") == 0
    )
    # Some leads never come back after signing up; some are very active.
    assert one(db, "SELECT max(n) FROM (SELECT count(*) n FROM events GROUP BY lead_id)") > 60


def test_times_are_in_the_year_before_as_of(db: Any) -> None:
    start = AS_OF - timedelta(days=365)
    for table, column in (("events", "ts"), ("leads", "created_at"), ("outcomes", "ts")):
        low, high = db.execute(f"SELECT min({column}), max({column}) FROM {table}").fetchone()
        assert start <= low and high < AS_OF, table
    # No activity before the lead existed; every outcome after the lead's last event.
    assert (
        one(db, "SELECT count(*) FROM events JOIN leads USING (lead_id) WHERE ts < created_at") == 0
    )
    late = """SELECT count(*) FROM outcomes o
              JOIN (SELECT lead_id, max(ts) AS last FROM events GROUP BY lead_id) e USING (lead_id)
              WHERE o.ts <= e.last"""
    assert one(db, late) == 0


def test_outcomes(db: Any) -> None:
    decided = one(db, "SELECT count(*) FROM outcomes")
    won = one(db, "SELECT count(*) FROM outcomes WHERE outcome = 'won'")
    assert 0.10 <= won / decided <= 0.20
    assert 0.2 <= 1 - decided / 20_000 <= 0.6  # open leads exist
    assert one(db, "SELECT count(*) FROM outcomes WHERE outcome = 'won' AND value IS NULL") == 0
    assert one(db, "SELECT count(DISTINCT lead_id) = count(*) FROM outcomes")


def win_rate(db: Any, where: str) -> float:
    sql = f"""SELECT avg((outcome = 'won')::int) FROM outcomes JOIN leads USING (lead_id)
              WHERE {where}"""
    rate: float = one(db, sql)
    return rate


def test_outcomes_follow_behaviour_and_fit(db: Any) -> None:
    demo = "lead_id IN (SELECT lead_id FROM events WHERE type = 'demo_request')"
    assert win_rate(db, demo) > 1.5 * win_rate(db, f"NOT {demo}")
    juniors = "job_title IN ('Student', 'Intern')"
    deciders = "job_title IN ('CEO', 'CTO', 'CIO', 'VP Sales', 'VP Marketing')"
    assert win_rate(db, deciders) > 3 * win_rate(db, juniors)
    assert win_rate(db, "segment = 'b2b'") > win_rate(db, "segment = 'b2c'")


def test_accounts_have_several_stakeholders(db: Any) -> None:
    sizes = db.execute(
        "SELECT count(*) FROM leads WHERE account_id IS NOT NULL GROUP BY account_id"
    ).fetchall()
    counts = [n for (n,) in sizes]
    assert min(counts) >= 1 and max(counts) == 6
    assert sum(counts) / len(counts) > 2
    assert len(counts) == one(db, "SELECT count(*) FROM accounts")
    assert (
        one(db, "SELECT count(*) FROM leads WHERE segment = 'b2c' AND account_id IS NOT NULL") == 0
    )
    assert one(db, "SELECT count(*) FROM leads WHERE segment = 'b2b' AND account_id IS NULL") == 0
    assert one(db, "SELECT count(*) FROM leads WHERE segment = 'b2c' AND age_band IS NULL") == 0
    priorities = {p for (p,) in db.execute("SELECT DISTINCT priority FROM accounts").fetchall()}
    assert priorities == {"tier1", "tier2", "tier3", None}


def test_events_look_like_marketing_data(db: Any) -> None:
    types = {t for (t,) in db.execute("SELECT DISTINCT type FROM events").fetchall()}
    assert types == set(EVENT_TYPES)
    stages = {s for (s,) in db.execute("SELECT DISTINCT content_stage FROM events").fetchall()}
    assert stages == {"TOFU", "MOFU", "BOFU", None}
    urls = {u for (u,) in db.execute("SELECT DISTINCT url FROM events").fetchall()}
    assert {"/pricing", "/careers", "/careers/apply", "/demo", "/product/crm"} <= urls
    assert any(u and u.startswith("/blog/") for u in urls)
    topics = {t for (t,) in db.execute("SELECT DISTINCT topic FROM events").fetchall()}
    assert topics == {"analytics", "crm", "automation", None}
    downloads = """SELECT count(*) FROM events
                   WHERE type = 'download' AND (asset IS NULL OR content_stage IS NULL)"""
    assert one(db, downloads) == 0
    titles = {t for (t,) in db.execute("SELECT DISTINCT job_title FROM leads").fetchall()}
    assert {"CEO", "CTO", "CFO", "CIO", "VP Sales", "Marketing Manager", "Engineer"} <= titles
    assert {"Student", "Intern", "Consultant"} <= titles
    # Job seekers apply for jobs; buyers hardly ever do.
    applications = """SELECT avg((job_title IN ('Student', 'Intern'))::int) FROM events
                      JOIN leads USING (lead_id) WHERE url = '/careers/apply'"""
    assert one(db, applications) > 0.5


def test_unsubscribed_leads_get_no_more_email(db: Any) -> None:
    sql = """SELECT count(*) FROM events e JOIN (
               SELECT lead_id, min(ts) AS at FROM events WHERE type = 'unsubscribe' GROUP BY 1
             ) u USING (lead_id)
             WHERE e.type IN ('email_open', 'email_click') AND e.ts > u.at"""
    assert one(db, sql) == 0
    assert one(db, "SELECT count(*) FROM events WHERE type = 'unsubscribe'") > 0


def test_activity_comes_in_bursts_and_some_leads_go_quiet(db: Any) -> None:
    quiet = """SELECT count(*) FROM (SELECT lead_id, max(ts) AS last FROM events GROUP BY 1)
               WHERE last < TIMESTAMP '2026-01-01' - INTERVAL 90 DAY"""
    assert one(db, quiet) > 2_000
    # Sessions: most events follow another of the same lead within the hour.
    gaps = """SELECT avg((ts - prev < INTERVAL 1 HOUR)::int) FROM (
                SELECT ts, lag(ts) OVER (PARTITION BY lead_id ORDER BY ts) AS prev FROM events)
              WHERE prev IS NOT NULL"""
    assert one(db, gaps) > 0.5


@pytest.mark.parametrize("kind", ["b2b", "b2c"])
def test_kinds(kind: str) -> None:
    tables = generate_tables(1_000, seed=1, kind=kind, as_of=AS_OF)  # type: ignore[arg-type]
    segments = set(tables["leads"].column("segment").to_pylist())
    assert segments == {kind}
    if kind == "b2c":
        assert tables["accounts"].num_rows == 0
        assert tables["leads"].column("account_id").null_count == 1_000
    else:
        assert tables["leads"].column("account_id").null_count == 0


def test_dataset_without_files() -> None:
    ds = generate_dataset(500, seed=4, as_of=AS_OF)
    assert ds.leads.count().to_pyarrow().as_py() == 500
    assert ds.accounts is not None and ds.outcomes is not None
    assert list(ds.events.schema().names) == [c.name for c in TABLES["events"]]


def test_as_of_with_a_time_zone_means_that_instant() -> None:
    local = datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert local.astimezone(UTC).replace(tzinfo=None) == AS_OF
    a = generate_tables(300, seed=1, as_of=local)
    b = generate_tables(300, seed=1, as_of=AS_OF)
    assert a["events"].equals(b["events"])


def test_bad_arguments() -> None:
    with pytest.raises(DataError, match="n_leads"):
        generate_tables(0)
    with pytest.raises(DataError, match="seed"):
        generate_tables(10, seed=-1)
    with pytest.raises(DataError, match="kind"):
        generate_tables(10, kind="b2x")  # type: ignore[arg-type]


def test_a_hundred_thousand_leads_take_seconds() -> None:
    started = time.perf_counter()
    summary = generate(100_000, seed=8, as_of=AS_OF)
    assert time.perf_counter() - started < 15
    assert summary.counts["leads"] == 100_000
    assert 850_000 <= summary.counts["events"] <= 1_150_000
