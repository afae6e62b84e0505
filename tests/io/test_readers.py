"""load_dataset and write_table on real files in tmp_path, read by a real DuckDB."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.errors import DataError
from leadscore.io import generate_tables, load_dataset, write_table
from leadscore.io.readers import MAX_REJECTIONS_PER_KIND
from leadscore.schema import TABLES, Dataset, Rejection

LEADS_CSV = """lead_id,email,job_title,employees,created_at
L1,a@example.com,CTO,120,2026-01-05T10:00:00
L2,b@example.com,Student,,2026-01-06
L3,c@example.com,VP Sales,5000,2026-01-07 08:30:00
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(table: Any) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return result


def count(table: Any) -> int:
    n: int = table.count().to_pyarrow().as_py()
    return n


def reasons(ds: Dataset, table: str) -> list[tuple[int | None, str]]:
    return [(r.row, r.reason) for r in ds.rejections if r.table == table]


@pytest.fixture(scope="module")
def sample() -> dict[str, pa.Table]:
    return generate_tables(300, seed=11, as_of=datetime(2026, 1, 1))


def _sorted(table: pa.Table, key: str) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: (r[key], str(r)))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_round_trip_every_format(tmp_path: Path, sample: dict[str, pa.Table], suffix: str) -> None:
    for name, table in sample.items():
        write_table(ibis.memtable(table), tmp_path / f"{name}{suffix}")
    ds = load_dataset(tmp_path)
    assert ds.rejections == ()
    assert ds.accounts is not None and ds.outcomes is not None
    loaded = {
        "leads": ds.leads,
        "accounts": ds.accounts,
        "events": ds.events,
        "outcomes": ds.outcomes,
    }
    keys = {"leads": "lead_id", "accounts": "account_id", "events": "event_id"}
    for name, original in sample.items():
        got = loaded[name].to_pyarrow()
        assert got.column_names == original.column_names, name
        key = keys.get(name, "lead_id")
        assert _sorted(got, key) == _sorted(original, key), name


def test_columns_are_canonical_then_custom_with_types(tmp_path: Path) -> None:
    write(
        tmp_path / "leads.csv",
        "Segment,lead_id,score,ratio,vip,signup_day,last_seen,note\n"
        "b2b,L1,3,0.5,true,2026-01-01,2026-01-01T10:00:00,hello\n"
        "b2c,L2,-4,2,false,2025-12-31,2025-12-31 23:00,\n",
    )
    ds = load_dataset(tmp_path / "leads.csv")
    schema = ds.leads.schema()
    canonical = [c.name for c in TABLES["leads"]]
    custom = ["Segment", "score", "ratio", "vip", "signup_day", "last_seen", "note"]
    assert list(schema.names) == [*canonical, *custom]
    assert str(schema["employees"]) == "int64"
    assert str(schema["created_at"]).startswith("timestamp")
    assert str(schema["score"]) == "int64"
    assert str(schema["ratio"]) == "float64"
    assert str(schema["vip"]) == "boolean"
    assert str(schema["signup_day"]) == "date"
    assert str(schema["last_seen"]).startswith("timestamp")
    assert str(schema["note"]) == "string"
    # No events file: an empty events table with the canonical columns.
    assert list(ds.events.schema().names) == [c.name for c in TABLES["events"]]
    assert count(ds.events) == 0
    assert ds.accounts is None and ds.outcomes is None


def test_missing_required_column_names_file_column_and_found(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    write(tmp_path / "events.csv", "event_id,lead_id,ts\ne1,L1,2026-01-01\n")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert "events.csv" in message
    assert "type" in message
    assert "found columns: event_id, lead_id, ts" in message


def test_unparseable_timestamps_rejected_with_row_numbers(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    write(
        tmp_path / "events.csv",
        "event_id,lead_id,type,ts\n"
        "e1,L1,page_view,2026-02-01T10:00:00\n"
        "e2,L1,page_view,yesterday\n"
        "e3,L2,email_open,2026-02-01\n"
        "e4,L2,email_open,01/02/2026\n"
        "e5,L3,download,\n",
    )
    ds = load_dataset(tmp_path)
    assert reasons(ds, "events") == [
        (
            2,
            "column ts: cannot parse 'yesterday' as a timestamp "
            "(expected ISO 8601 like 2026-03-01T12:00:00)",
        ),
        (
            4,
            "column ts: cannot parse '01/02/2026' as a timestamp "
            "(expected ISO 8601 like 2026-03-01T12:00:00)",
        ),
        (5, "column ts: missing required value"),
    ]
    assert all(r.source == "events.csv" for r in ds.rejections)
    assert sorted(r["event_id"] for r in rows(ds.events)) == ["e1", "e3"]


def test_timestamp_forms(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "lead_id\nL1\n")
    values = {
        "a": ("2026-03-01T12:00:00", datetime(2026, 3, 1, 12)),
        "b": ("2026-03-01 12:00:00", datetime(2026, 3, 1, 12)),
        "c": ("2026-03-01", datetime(2026, 3, 1)),
        "d": ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10)),
        "e": ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12)),
        "f": ("2026-03-01T12:00:00-0530", datetime(2026, 3, 1, 17, 30)),
        "g": ("2026-03-01T12:00:00.250", datetime(2026, 3, 1, 12, 0, 0, 250000)),
        "h": ("2026-03-01 12:00", datetime(2026, 3, 1, 12)),
    }
    lines = "".join(f"{k},L1,page_view,{v}\n" for k, (v, _) in values.items())
    write(tmp_path / "events.csv", "event_id,lead_id,type,ts\n" + lines)
    ds = load_dataset(tmp_path)
    assert ds.rejections == ()
    got = {r["event_id"]: r["ts"] for r in rows(ds.events)}
    assert got == {k: expected for k, (_, expected) in values.items()}


def test_bad_values_in_optional_columns_reject_the_row(tmp_path: Path) -> None:
    write(
        tmp_path / "leads.csv",
        "lead_id,employees,annual_revenue\nL1,12,1e6\nL2,many,5\nL3,12.5,5\nL4,7,lots\nL5, 8 ,\n",
    )
    ds = load_dataset(tmp_path / "leads.csv")
    assert reasons(ds, "leads") == [
        (2, "column employees: cannot parse 'many' as an integer"),
        (3, "column employees: cannot parse '12.5' as an integer"),
        (4, "column annual_revenue: cannot parse 'lots' as a number"),
    ]
    got = {r["lead_id"]: (r["employees"], r["annual_revenue"]) for r in rows(ds.leads)}
    assert got == {"L1": (12, 1_000_000.0), "L5": (8, None)}


def test_duplicate_event_ids_counted_once_and_reported(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    write(
        tmp_path / "events.csv",
        "event_id,lead_id,type,ts\n"
        "e1,L1,page_view,2026-02-01T10:00:00\n"
        "e2,L1,page_view,2026-02-01T11:00:00\n"
        "e1,L1,page_view,2026-02-01T10:00:00\n"
        "e1,L2,email_open,2026-02-03\n"
        "e3,L3,download,2026-02-04\n",
    )
    ds = load_dataset(tmp_path)
    assert reasons(ds, "events") == [
        (3, "duplicate event_id e1, row 1 is kept"),
        (4, "duplicate event_id e1 with different values, row 1 is kept"),
    ]
    events = rows(ds.events)
    assert sorted(r["event_id"] for r in events) == ["e1", "e2", "e3"]
    assert next(r for r in events if r["event_id"] == "e1")["lead_id"] == "L1"


def test_duplicate_leads_keep_the_first(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "lead_id,name\nL1,first\nL2,x\nL1,second\n,nobody\n")
    ds = load_dataset(tmp_path / "leads.csv")
    assert reasons(ds, "leads") == [
        (3, "duplicate lead_id L1, first seen at row 1"),
        (4, "column lead_id: missing required value"),
    ]
    assert {r["lead_id"]: r["name"] for r in rows(ds.leads)} == {"L1": "first", "L2": "x"}


def test_events_and_outcomes_of_unknown_leads(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    write(
        tmp_path / "events.csv",
        "event_id,lead_id,type,ts\n"
        "e1,L1,page_view,2026-02-01\n"
        "e2,L99,page_view,2026-02-01\n"
        "e3,L2,page_view,2026-02-01\n"
        "e4,L98,page_view,2026-02-01\n",
    )
    write(tmp_path / "outcomes.csv", "lead_id,outcome,ts\nL1,won,2026-03-01\nL77,lost,2026-03-01\n")
    ds = load_dataset(tmp_path)
    assert reasons(ds, "events") == [(2, "unknown lead_id L99"), (4, "unknown lead_id L98")]
    assert reasons(ds, "outcomes") == [(2, "unknown lead_id L77")]
    assert sorted(r["event_id"] for r in rows(ds.events)) == ["e1", "e3"]


def test_outcome_values(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "lead_id\nL1\nL2\nL3\nL4\nL5\nL6\nL7\n")
    write(
        tmp_path / "outcomes.csv",
        "lead_id,outcome,ts,value\n"
        "L1,WON,2026-03-01,100\n"
        "L2,lost,2026-03-01,\n"
        "L3,1,2026-03-01,\n"
        "L4,0,2026-03-01,\n"
        "L5,True,2026-03-01,\n"
        "L6,false,2026-03-01,\n"
        "L7,maybe,2026-03-01,\n"
        "L7,,2026-03-01,\n",
    )
    ds = load_dataset(tmp_path)
    assert ds.outcomes is not None
    got = {r["lead_id"]: r["outcome"] for r in rows(ds.outcomes)}
    assert got == {
        "L1": "won",
        "L2": "lost",
        "L3": "won",
        "L4": "lost",
        "L5": "won",
        "L6": "lost",
    }
    assert reasons(ds, "outcomes") == [
        (7, "column outcome: 'maybe' is not won or lost (1/0 and true/false are accepted too)"),
        (8, "column outcome: missing required value"),
    ]


def test_unknown_file_stem_and_type_are_errors(tmp_path: Path) -> None:
    leads = write(tmp_path / "leads.csv", LEADS_CSV)
    odd = write(tmp_path / "contacts.csv", LEADS_CSV)
    with pytest.raises(DataError, match=r"contacts\.csv.*leads, accounts, events, outcomes"):
        load_dataset([leads, odd])
    text = write(tmp_path / "events.txt", "x")
    with pytest.raises(DataError, match=r"events\.txt: unsupported file type"):
        load_dataset([leads, text])
    with pytest.raises(DataError, match="no leads file"):
        load_dataset([write(tmp_path / "events.csv", "event_id\n")])


def test_a_directory_with_two_files_for_one_table_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    pq.write_table(pa.table({"lead_id": ["L1"]}), tmp_path / "leads.parquet")
    with pytest.raises(DataError, match=r"leads\.csv and leads\.parquet"):
        load_dataset(tmp_path)


def test_list_of_files_and_directories(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write(data / "leads.csv", LEADS_CSV)
    events = write(tmp_path / "events.csv", "event_id,lead_id,type,ts\ne1,L1,chat,2026-02-01\n")
    ds = load_dataset([data, events])
    assert count(ds.events) == 1
    assert count(ds.leads) == 3


def test_row_numbers_follow_file_order_in_large_files(tmp_path: Path) -> None:
    n = 300_000
    bad = set(range(17, n, 9_973))
    with (tmp_path / "events.csv").open("w") as fh:
        fh.write("event_id,lead_id,type,ts\n")
        for i in range(1, n + 1):
            ts = "never" if i in bad else "2026-01-01 00:00:00"
            fh.write(f"e{i},L1,page_view,{ts}\n")
    write(tmp_path / "leads.csv", "lead_id\nL1\n")
    ds = load_dataset(tmp_path)
    assert [r.row for r in ds.rejections] == sorted(bad)
    assert count(ds.events) == n - len(bad)
    # The Parquet reader numbers rows of several row groups in file order too.
    table = pa.table(
        {
            "event_id": [f"p{i}" for i in range(1, n + 1)],
            "lead_id": ["L1"] * n,
            "type": ["chat"] * n,
            "ts": ["never" if i in bad else "2026-01-01" for i in range(1, n + 1)],
        }
    )
    pq.write_table(table, tmp_path / "events.parquet", row_group_size=10_000)
    (tmp_path / "events.csv").unlink()
    ds = load_dataset(tmp_path)
    assert [r.row for r in ds.rejections] == sorted(bad)


def test_rejections_are_capped_per_kind_but_counted_exactly(tmp_path: Path) -> None:
    n = MAX_REJECTIONS_PER_KIND + 234
    lines = "".join(f"e{i},L{i},page_view,2026-01-01\n" for i in range(n))
    write(tmp_path / "events.csv", "event_id,lead_id,type,ts\n" + lines + "x,L0,chat,bad\n")
    write(tmp_path / "leads.csv", "lead_id\nL0\n")
    ds = load_dataset(tmp_path)
    unknown = [r for r in ds.rejections if "lead_id" in r.reason]
    assert len(unknown) == MAX_REJECTIONS_PER_KIND + 1
    assert unknown[-1] == Rejection(
        "events", "events.csv", None, "... and 233 more rows rejected for unknown lead_id"
    )
    assert [r.row for r in unknown[:3]] == [2, 3, 4]
    parse = [r for r in ds.rejections if "cannot parse" in r.reason]
    assert [r.row for r in parse] == [n + 1]


def test_good_rows_of_a_file_with_bad_rows_are_all_kept(tmp_path: Path) -> None:
    good = [f"g{i},L1,page_view,2026-01-{1 + i % 28:02d}T10:00:00,/p{i}\n" for i in range(500)]
    bad = [f"b{i},L1,page_view,soon,/b\n" for i in range(50)]
    body = "".join(
        g + (bad[i // 10] if i % 10 == 0 and i // 10 < 50 else "") for i, g in enumerate(good)
    )
    write(tmp_path / "events.csv", "event_id,lead_id,type,ts,url\n" + body)
    write(tmp_path / "leads.csv", "lead_id\nL1\n")
    ds = load_dataset(tmp_path)
    got = {r["event_id"]: r["url"] for r in rows(ds.events)}
    assert got == {f"g{i}": f"/p{i}" for i in range(500)}
    assert len(ds.rejections) == 50


def test_jsonl_gzip_and_semicolons(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "leads.csv.gz", "wt") as fh:
        fh.write("lead_id;country;employees\nL1;Germany;10\nL2;France;\n")
    records = [
        {"event_id": 1, "lead_id": "L1", "type": "chat", "ts": "2026-01-01T00:00:00Z", "x": 1},
        {"event_id": 2, "lead_id": "L2", "type": "chat", "ts": "2026-01-02", "extra": {"a": 1}},
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    ds = load_dataset(tmp_path)
    assert ds.rejections == ()
    assert {r["lead_id"]: r["employees"] for r in rows(ds.leads)} == {"L1": 10, "L2": None}
    events = rows(ds.events)
    assert [r["event_id"] for r in events] == ["1", "2"]
    assert events[1]["extra"] == {"a": 1}


def test_header_names_match_case_insensitively(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "Lead_ID , Email\nL1,a@b.c\n")
    ds = load_dataset(tmp_path / "leads.csv")
    assert rows(ds.leads)[0]["lead_id"] == "L1"
    assert rows(ds.leads)[0]["email"] == "a@b.c"


def test_malformed_csv_is_a_data_error(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", "lead_id,name\nL1,a\nL2,b,c\n")
    with pytest.raises(DataError, match=r"leads\.csv: cannot read"):
        load_dataset(tmp_path)


def test_a_given_connection_is_used(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    con = ibis.duckdb.connect()
    ds = load_dataset(tmp_path, con=con)
    assert ds.leads.get_backend() is con
    again = load_dataset(tmp_path, con=con)
    assert count(again.leads) == 3 and count(ds.leads) == 3


def test_write_table_formats_and_errors(tmp_path: Path) -> None:
    t = ibis.memtable(pa.table({"lead_id": ["L1", "L2"], "n": [1, None]}))
    for suffix in (".csv", ".parquet", ".jsonl"):
        write_table(t, tmp_path / f"leads{suffix}")
        assert count(load_dataset(tmp_path / f"leads{suffix}").leads) == 2
    lines = (tmp_path / "leads.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"lead_id": "L1", "n": 1},
        {"lead_id": "L2", "n": None},
    ]
    with pytest.raises(DataError, match=r"leads\.xlsx.*\.csv, \.parquet, \.jsonl"):
        write_table(t, tmp_path / "leads.xlsx")


def test_parquet_columns_keep_or_convert_their_types(tmp_path: Path) -> None:
    utc2 = timezone(timedelta(hours=2))
    leads = pa.table(
        {
            "lead_id": pa.array([1, 2], pa.int64()),
            "employees": pa.array([10, None], pa.int32()),
            "annual_revenue": pa.array([Decimal("1.50"), Decimal("2.25")], pa.decimal128(5, 2)),
            "created_at": pa.array(
                [datetime(2026, 1, 1, 12, tzinfo=utc2), None], pa.timestamp("us", tz="+02:00")
            ),
            "seen": pa.array([datetime(2026, 1, 2, tzinfo=utc2)] * 2, pa.timestamp("ms", tz="UTC")),
            "tags": pa.array([["a"], []], pa.list_(pa.string())),
        }
    )
    pq.write_table(leads, tmp_path / "leads.parquet")
    events = pa.table(
        {
            "event_id": ["e1"],
            "lead_id": ["1"],
            "type": ["chat"],
            "ts": pa.array([datetime(2026, 1, 3)], pa.timestamp("ns")),
            "value": pa.array([3], pa.int16()),
        }
    )
    pq.write_table(events, tmp_path / "events.parquet")
    ds = load_dataset(tmp_path)
    assert ds.rejections == ()
    got = rows(ds.leads)
    assert [r["lead_id"] for r in got] == ["1", "2"]
    assert got[0]["employees"] == 10 and got[0]["annual_revenue"] == 1.5
    assert got[0]["created_at"] == datetime(2026, 1, 1, 10)
    assert got[0]["seen"] == datetime(2026, 1, 1, 22)
    assert got[0]["tags"] == ["a"]
    assert rows(ds.events)[0]["value"] == 3.0
    assert rows(ds.events)[0]["ts"] == datetime(2026, 1, 3)


def test_a_failed_load_leaves_no_tables_behind(tmp_path: Path) -> None:
    write(tmp_path / "leads.csv", LEADS_CSV)
    write(tmp_path / "events.csv", "event_id,lead_id,type,ts\ne1,L1,chat,2026-01-01,extra\n")
    con = ibis.duckdb.connect()
    with pytest.raises(DataError, match=r"events\.csv: cannot read"):
        load_dataset(tmp_path, con=con)
    assert con.raw_sql("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
