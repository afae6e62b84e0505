"""One timestamp rule on every path: the readers' SQL, mappings, the REST API and Segment."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadscore.io import apply_mapping, load_dataset, load_mapping
from leadscore.io.readers import timestamp_in_range, timestamp_sql
from leadscore.service.inputs import EventIn
from leadscore.service.segment import parse_time
from leadscore.timestamps import TimestampError, parse_timestamp

OFFSET_FORMS = {
    "2025-05-31 23:30:00 +02:00": datetime(2025, 5, 31, 21, 30),
    "2025-05-31T23:30:00+02:00:00": datetime(2025, 5, 31, 21, 30),
    "2025-05-31 23:30:00 -0530": datetime(2025, 6, 1, 5, 0),
    "2025-05-31T23:30:00-053015": datetime(2025, 6, 1, 5, 0, 15),
    "2025-05-31 23:30 +02": datetime(2025, 5, 31, 21, 30),
    "2025-05-31 23:30:00 UTC": datetime(2025, 5, 31, 23, 30),
    "2025-05-31t23:30:00.5z": datetime(2025, 5, 31, 23, 30, 0, 500000),
    "2025-5-31": datetime(2025, 5, 31),
    "2025-05-31T2:00:00": datetime(2025, 5, 31, 2),
    "2025-05-31T24:00": datetime(2025, 6, 1),
    "2025-05-31T23:30:00.1234567": datetime(2025, 5, 31, 23, 30, 0, 123456),
}
# Offsets the rule does not know, or times that do not exist: rejected, never dropped.
REFUSED = (
    "2025-05-31 23:30:00 CET",
    "2025-05-31 23:30:00 Europe/Berlin",
    "2025-05-31 23:30:00 BC",
    "2025-05-31T23:30:00+24:00",
    "2025-05-31T23:30:00+02:60",
    "2025-05-31T24:00:01",
    "2025-02-30",
    "2025-05-31  23:30",
    "1740830400",
)
OUTSIDE = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "0000-06-01", "10000-01-01")


def sql_read(texts: list[str]) -> list[tuple[datetime | None, bool | None]]:
    """Each text read by the readers' SQL: (value, whether it lies in years 1-9999)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(texts)))
    w = timestamp_sql("x")
    # the readers trim values before they parse them (and Python strips spaces alike)
    found = con.execute(
        f"SELECT CAST(w AS VARCHAR), {timestamp_in_range('w')} FROM "
        f"(SELECT i, {w} AS w FROM (SELECT i, NULLIF(TRIM(x), '') AS x FROM t)) ORDER BY i"
    ).fetchall()
    out: list[tuple[datetime | None, bool | None]] = []
    for text, inside in found:
        value = datetime.fromisoformat(text) if inside else None
        out.append((value, inside))
    return out


def python_read(text: str) -> datetime | None:
    try:
        return parse_timestamp(text)
    except TimestampError:
        return None


def test_offset_forms_are_honoured_and_others_refused_in_sql_and_python() -> None:
    texts = [*OFFSET_FORMS, *REFUSED, *OUTSIDE]
    got = sql_read(texts)
    for text, (value, inside) in zip(texts, got, strict=True):
        expected = OFFSET_FORMS.get(text)
        assert value == expected == python_read(text), text
        if text in OUTSIDE:
            assert inside is False, text
        if text in REFUSED:
            assert inside is None, text


_digits = st.text("0123456789", min_size=1, max_size=3)
_zone = st.one_of(
    st.just(""),
    st.sampled_from(["Z", "z", "UTC", "utc", "GMT", "CET", "BC", "+", "-"]),
    st.builds(
        lambda sign, h, sep, m, s: f"{sign}{h}{sep}{m}{sep if s else ''}{s}",
        st.sampled_from("+-"),
        st.sampled_from(["00", "02", "05", "12", "23", "24", "7"]),
        st.sampled_from(["", ":"]),
        st.sampled_from(["", "00", "30", "45", "59", "60"]),
        st.sampled_from(["", "00", "15", "59", "61"]),
    ),
)
_time = st.one_of(
    st.just(""),
    st.builds(
        lambda sep, h, m, s, f, space, zone: f"{sep}{h}:{m}{s}{f}{space}{zone}",
        st.sampled_from(["T", "t", " ", "  ", "x"]),
        st.sampled_from(["0", "2", "09", "12", "23", "24", "25"]),
        st.sampled_from(["00", "05", "59", "60", "7"]),
        st.sampled_from(["", ":00", ":30", ":59", ":60"]),
        st.sampled_from(["", ".0", ".5", ".000", ".123456", ".1234567", ".999999999"]),
        st.sampled_from(["", " ", "  "]),
        _zone,
    ),
)
_around = st.sampled_from(["", " ", "  ", "\t", "\n"])
_texts = st.builds(
    lambda y, m, d, time, before, after: f"{before}{y}-{m}-{d}{time}{after}",
    st.sampled_from(["0000", "0001", "2024", "2025", "9999", "10000", "202"]),
    st.sampled_from(["1", "01", "02", "12", "13", "00"]),
    st.sampled_from(["1", "01", "28", "29", "30", "31", "32"]),
    _time,
    _around,
    _around,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_texts, min_size=1, max_size=40))
def test_sql_and_python_read_every_generated_form_alike(texts: list[str]) -> None:
    """Whatever the form, the files' SQL and the API's Python give the same instant or refuse."""
    got = sql_read(texts)
    for text, (value, _) in zip(texts, got, strict=True):
        assert value == python_read(text), text


def events_file(tmp_path: Path, fmt: str, values: list[str]) -> Path:
    """An events file of format `fmt` with one event per value (ids e1, e2, ...)."""
    rows = [
        {"event_id": f"e{i}", "lead_id": "L1", "type": "page_view", "ts": v}
        for i, v in enumerate(values, 1)
    ]
    path = tmp_path / f"events.{fmt}"
    if fmt == "csv":
        path.write_text(
            "event_id,lead_id,type,ts\n"
            + "".join(f"{r['event_id']},L1,page_view,{r['ts']}\n" for r in rows)
        )
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_files_honour_every_offset_form_or_reject_the_row(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n")
    values = [*OFFSET_FORMS, "2025-05-31 23:30:00 CET", *OUTSIDE[:2]]
    events_file(tmp_path, fmt, values)
    data = load_dataset(tmp_path)
    got = {r["event_id"]: r["ts"] for r in data.events.to_pyarrow().to_pylist()}
    assert got == {f"e{i}": v for i, v in enumerate(OFFSET_FORMS.values(), 1)}
    n = len(OFFSET_FORMS)
    assert [(r.row, r.reason) for r in data.rejections] == [
        (
            n + 1,
            "column ts: cannot parse '2025-05-31 23:30:00 CET' as a timestamp "
            "(expected ISO 8601 like 2026-03-01T12:00:00)",
        ),
        (
            n + 2,
            "column ts: '0001-01-01T00:00:00+01:00' is outside the years 1-9999 "
            "(as written or in UTC)",
        ),
        (
            n + 3,
            "column ts: '9999-12-31T23:30:00-01:00' is outside the years 1-9999 "
            "(as written or in UTC)",
        ),
    ]


def test_typed_parquet_times_outside_years_1_to_9999_are_rejected(tmp_path: Path) -> None:
    """DuckDB holds year 10000; Python and explain cannot, so the row is rejected with its row."""
    # 10000-01-01 in microseconds since 1970
    late = ((datetime(9999, 12, 31) - datetime(1970, 1, 1)).days + 1) * 86_400_000_000
    leads = pa.table(
        {
            "lead_id": ["L1", "L2"],
            "seen": pa.array([0, late], type=pa.timestamp("us")),
        }
    )
    pq.write_table(leads, tmp_path / "leads.parquet")
    data = load_dataset(tmp_path)
    assert [r["lead_id"] for r in data.leads.to_pyarrow().to_pylist()] == ["L1"]
    ((table, row, reason),) = [(r.table, r.row, r.reason) for r in data.rejections]
    assert (table, row) == ("leads", 2)
    assert reason.startswith("column seen: '10000-01-01") and "outside the years 1-9999" in reason


def test_mapping_honours_offsets_of_its_format_and_of_iso_text(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "Id,Signed Up,Seen\n"
        "1,31/05/2025 23:30 +0200,2025-05-31 23:30:00 +02:00\n"
        "2,31/05/2025 23:30 -0100,2025-05-31 23:30:00 CET\n"
    )
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "leads:\n"
        "  lead_id: Id\n"
        '  created_at: {from: Signed Up, format: "%d/%m/%Y %H:%M %z"}\n'
        "  seen: {from: Seen, type: timestamp}\n"
    )
    con: Any = ibis.duckdb.connect()
    # strftime shows a time with a zone in the session's zone: the offset must not go there
    con.raw_sql("SET TimeZone = 'Europe/Berlin'")
    data = apply_mapping(load_mapping(spec), export, con)
    leads = data.leads.to_pyarrow().to_pylist()
    assert [(r["lead_id"], r["created_at"], r["seen"]) for r in leads] == [
        ("1", datetime(2025, 5, 31, 21, 30), datetime(2025, 5, 31, 21, 30))
    ]
    assert [(r.row, r.reason.split(":")[0]) for r in data.rejections] == [(2, "column seen")]


def test_the_api_and_segment_read_timestamps_by_the_same_rule() -> None:
    def event(ts: object) -> datetime:
        return EventIn(event_id="e", lead_id="L", type="t", ts=ts).ts

    for text, expected in OFFSET_FORMS.items():
        assert event(text) == expected == parse_time(text, "timestamp"), text
    for text in (*REFUSED, *OUTSIDE):
        with pytest.raises(ValidationError):
            event(text)
        with pytest.raises(ValueError, match="timestamp"):
            parse_time(text, "timestamp")
    with pytest.raises(ValidationError, match="ISO 8601"):
        event(1740830400)  # pydantic alone would read Unix seconds, no file does
