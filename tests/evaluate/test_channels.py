"""Channels (S6, S27): the per-source, per-campaign and per-content-stage figures are the ones a
hand count over the raw rows gives, a lead counts for every campaign it touched, repeat
purchases and lifetime value add up, and data without outcomes gets a clear message."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from leadscore.api import score
from leadscore.errors import DataError
from leadscore.evaluate.channels import NONE, ChannelRow, Channels, channels
from leadscore.io import generate, load_dataset
from leadscore.io.mapping import packaged_mapping
from leadscore.model import load_model, parse_model

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
X_EDUCATION = ROOT.parent / "shared/data/x-education/Leads.csv"
GENERATED_AS_OF = datetime(2026, 1, 1)
AS_OF = datetime(2025, 10, 1)  # inside the generated year: later leads, events and outcomes exist


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, seed=11, out=out, as_of=GENERATED_AS_OF)
    return out


def by_value(rows: list[ChannelRow]) -> dict[str, ChannelRow]:
    return {r.value: r for r in rows}


def hand_rows(
    groups: dict[str, set[str]],
    won: set[str],
    hot: set[str],
    totals: dict[str, float],
    wins: dict[str, list[float | None]] | None,
) -> dict[str, dict[str, Any]]:
    """The figures of each group, counted in Python from per-lead facts."""
    out: dict[str, dict[str, Any]] = {}
    for name, ids in groups.items():
        n = len(ids)
        row: dict[str, Any] = {
            "leads": n,
            "won": len(ids & won),
            "conversion": len(ids & won) / n,
            "hot": len(ids & hot),
            "mean_score": sum(totals[i] for i in ids) / n,
        }
        if wins is not None:
            known = {i: [v for v in wins[i] if v is not None] for i in ids & won}
            value = sum(sum(v) for v in known.values())
            valued = [i for i, v in known.items() if v]
            row["won_value"] = value
            row["value_per_lead"] = value / n
            row["repeat_purchases"] = sum(1 for i in ids & won if len(wins[i]) > 1)
            row["lifetime_value"] = value / len(valued) if valued else None
        out[name] = row
    return out


def assert_matches(rows: list[ChannelRow], expected: dict[str, dict[str, Any]]) -> None:
    got = by_value(rows)
    assert set(got) == set(expected)
    for name, want in expected.items():
        row = got[name].as_row()
        for key, value in want.items():
            assert row[key] == pytest.approx(value), (name, key)
    # sorted by won, most first
    assert [r.won for r in rows] == sorted((r.won for r in rows), reverse=True)


def touched(
    events: Iterable[dict[str, Any]], column: str, as_of: datetime, leads: set[str]
) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["ts"] < as_of and e[column] is not None and e["lead_id"] in leads:
            groups[e[column]].add(e["lead_id"])
    reached = set().union(*groups.values())
    if leads - reached:
        groups[NONE] = leads - reached
    return dict(groups)


def test_generated_figures_match_a_hand_count(data_dir: Path) -> None:
    model = load_model(MODELS / "committee.yaml")
    data = load_dataset(data_dir)
    result = channels(model, data, AS_OF)

    leads = pq.read_table(data_dir / "leads.parquet").to_pylist()
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    events = pq.read_table(
        data_dir / "events.parquet", columns=["lead_id", "ts", "campaign", "content_stage"]
    ).to_pylist()
    existing = {
        r["lead_id"]: r for r in leads if r["created_at"] is None or r["created_at"] < AS_OF
    }
    wins: dict[str, list[float | None]] = defaultdict(list)
    for o in outcomes:
        if o["outcome"] == "won" and o["ts"] <= AS_OF:
            wins[o["lead_id"]].append(o["value"])
    won = set(wins) & set(existing)
    scored = score(model, data, AS_OF).table.to_pyarrow().to_pylist()
    hot = {r["lead_id"] for r in scored if r["temperature"] == "hot"}
    totals = {r["lead_id"]: r["total"] for r in scored}

    by_source: dict[str, set[str]] = defaultdict(set)
    for lead_id, r in existing.items():
        by_source[r["source"] if r["source"] is not None else NONE].add(lead_id)
    assert_matches(result.sources, hand_rows(by_source, won, hot, totals, wins))
    ids = set(existing)
    campaigns = touched(events, "campaign", AS_OF, ids)
    assert_matches(result.campaigns, hand_rows(campaigns, won, hot, totals, wins))
    stages = touched(events, "content_stage", AS_OF, ids)
    assert_matches(result.content_stages, hand_rows(stages, won, hot, totals, wins))

    # the cut is real: later leads and outcomes exist in the data and are left out
    assert 0 < result.not_yet_created == len(leads) - len(existing)
    assert any(o["outcome"] == "won" and o["ts"] > AS_OF for o in outcomes)
    assert result.leads == len(existing) and result.won == len(won) > 0
    assert result.has_values and result.hot_basis == "temperature == 'hot'"
    # a lead that touched several campaigns counts in each
    assert sum(r.leads for r in result.campaigns) > result.leads
    out = result.as_dict()
    assert out["sources"][0] == result.sources[0].as_row() and out["as_of"] == AS_OF.isoformat()


def test_x_education_per_source_matches_the_raw_file() -> None:
    data = load_dataset(X_EDUCATION, mapping=packaged_mapping("x-education"))
    result = channels(load_model(ROOT / "examples/x-education.yaml"), data, datetime(2020, 1, 3))

    raw = pacsv.read_csv(
        X_EDUCATION,
        convert_options=pacsv.ConvertOptions(
            include_columns=["Lead Source", "Converted"],
            column_types={"Lead Source": pa.string(), "Converted": pa.int64()},
            null_values=["", "Select"],
            strings_can_be_null=True,
        ),
    ).to_pylist()
    renamed = {"google": "Google", "bing": "Bing"}  # the mapping's value map
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in raw:
        source = r["Lead Source"]
        key = NONE if source is None else renamed.get(source, source)
        expected[key][0] += 1
        expected[key][1] += r["Converted"]
    got = {r.value: [r.leads, r.won] for r in result.sources}
    assert got == dict(expected)
    assert result.leads == len(raw) == 9240 and result.won == 3561
    for row in result.sources:
        assert row.conversion == pytest.approx(row.won / row.leads)
        assert row.won_value is None and row.repeat_purchases is None
        assert row.lifetime_value is None and row.value_per_lead is None
    assert not result.has_values
    # the mapping tags only the last-activity event with a campaign, and no content stage
    assert {r.value for r in result.campaigns} == {"last_activity", NONE}
    assert sum(r.leads for r in result.campaigns) == result.leads
    assert [(r.value, r.leads) for r in result.content_stages] == [(NONE, 9240)]


TINY_MODEL = """
name: tiny
version: "1"
behaviour:
  rules:
    - {name: demo, event: demo_request, points: 50}
    - {name: visit, event: page_view, points: 10}
routing:
  - {name: hot, when: {min_total: 50}, temperature: hot, stage: SQL, sla_hours: 24}
  - {name: rest, temperature: cold, stage: nurture}
"""
TINY_AS_OF = datetime(2025, 12, 1)


def tiny_dataset(root: Path, outcomes: list[dict[str, Any]] | None) -> Path:
    """Five leads, a handful of events and outcomes, written as parquet files."""
    root.mkdir()
    d = datetime
    leads = [
        ("L1", "paid", d(2025, 1, 1)),
        ("L2", "social", d(2025, 1, 1)),
        ("L3", None, d(2025, 1, 1)),
        ("L4", "paid", d(2025, 1, 1)),
        ("L5", "paid", d(2025, 12, 15)),  # created after as_of
    ]
    pq.write_table(
        pa.Table.from_pylist(
            [{"lead_id": i, "source": s, "created_at": c} for i, s, c in leads],
            schema=pa.schema(
                [
                    ("lead_id", pa.string()),
                    ("source", pa.string()),
                    ("created_at", pa.timestamp("us")),
                ]
            ),
        ),
        root / "leads.parquet",
    )
    events = [
        ("e1", "L1", "page_view", d(2025, 1, 10), "spring", "TOFU"),
        ("e2", "L1", "demo_request", d(2025, 2, 1), "summer", "BOFU"),
        ("e3", "L2", "page_view", d(2025, 1, 15), "spring", None),
        ("e4", "L3", "page_view", d(2025, 3, 1), None, None),
        ("e5", "L4", "page_view", TINY_AS_OF, "autumn", "MOFU"),  # at as_of: not before it
        ("e6", "L2", "page_view", d(2025, 12, 2), "summer", "BOFU"),  # after as_of
        ("e7", "L5", "page_view", d(2025, 12, 20), "winter", None),
    ]
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "event_id": e,
                    "lead_id": lead,
                    "type": t,
                    "ts": ts,
                    "campaign": c,
                    "content_stage": s,
                }
                for e, lead, t, ts, c, s in events
            ],
            schema=pa.schema(
                [
                    ("event_id", pa.string()),
                    ("lead_id", pa.string()),
                    ("type", pa.string()),
                    ("ts", pa.timestamp("us")),
                    ("campaign", pa.string()),
                    ("content_stage", pa.string()),
                ]
            ),
        ),
        root / "events.parquet",
    )
    if outcomes is not None:
        schema = pa.schema(
            [
                ("lead_id", pa.string()),
                ("outcome", pa.string()),
                ("ts", pa.timestamp("us")),
                ("value", pa.float64()),
            ]
        )
        pq.write_table(pa.Table.from_pylist(outcomes, schema=schema), root / "outcomes.parquet")
    return root


def outcome(lead: str, result: str, ts: datetime, value: float | None) -> dict[str, Any]:
    return {"lead_id": lead, "outcome": result, "ts": ts, "value": value}


TINY_OUTCOMES = [
    outcome("L1", "won", datetime(2025, 3, 1), 100.0),
    outcome("L1", "won", datetime(2025, 6, 1), 250.0),  # a repeat purchase
    outcome("L1", "won", datetime(2026, 2, 1), 999.0),  # after as_of: not counted
    outcome("L2", "won", datetime(2025, 4, 1), None),  # won, value unknown
    outcome("L3", "lost", datetime(2025, 5, 1), 500.0),  # lost deals bring no value
    outcome("L4", "won", datetime(2025, 5, 1), 40.0),
]


def rows(result: Channels, table: Callable[[Channels], list[ChannelRow]]) -> list[Any]:
    return [
        (r.value, r.leads, r.won, r.hot, r.won_value, r.repeat_purchases, r.lifetime_value)
        for r in table(result)
    ]


def test_repeat_purchases_lifetime_value_and_campaign_touches(tmp_path: Path) -> None:
    data = load_dataset(tiny_dataset(tmp_path / "tiny", TINY_OUTCOMES))
    result = channels(parse_model(TINY_MODEL), data, TINY_AS_OF)
    assert (result.leads, result.won, result.not_yet_created) == (4, 3, 1)
    # paid: L1 (two wins up to as_of: 100 + 250, hot with 60 points) and L4 (won 40; its only
    # event is at as_of, so 0 points). Lifetime value: (350 + 40) / 2 won leads.
    # social: L2 won without a value: no lifetime value. (none): L3, lost.
    assert rows(result, lambda c: c.sources) == [
        ("paid", 2, 2, 1, 390.0, 1, 195.0),
        ("social", 1, 1, 0, 0.0, 0, None),
        (NONE, 1, 0, 0, 0.0, 0, None),
    ]
    paid = result.sources[0]
    assert paid.conversion == 1.0 and paid.hot_share == 0.5 and paid.value_per_lead == 195.0
    assert paid.mean_score == 30.0
    # L1 touched spring and summer before as_of: it counts in both. L2's summer event came after
    # as_of, L4's autumn event at it: neither counts, and L4 (with L3) has no campaign.
    assert rows(result, lambda c: c.campaigns) == [
        ("spring", 2, 2, 1, 350.0, 1, 350.0),
        (NONE, 2, 1, 0, 40.0, 0, 40.0),
        ("summer", 1, 1, 1, 350.0, 1, 350.0),
    ]
    assert rows(result, lambda c: c.content_stages) == [
        (NONE, 3, 2, 0, 40.0, 0, 40.0),
        ("BOFU", 1, 1, 1, 350.0, 1, 350.0),
        ("TOFU", 1, 1, 1, 350.0, 1, 350.0),
    ]


def test_without_temperatures_hot_means_a_hand_over_stage(tmp_path: Path) -> None:
    data = load_dataset(tiny_dataset(tmp_path / "tiny", TINY_OUTCOMES))
    staged = TINY_MODEL.replace("temperature: hot, ", "").replace("temperature: cold, ", "")
    result = channels(parse_model(staged), data, TINY_AS_OF)
    assert result.hot_basis is not None and result.hot_basis.startswith("stage in SQL")
    assert [(r.value, r.hot) for r in result.sources] == [("paid", 1), ("social", 0), (NONE, 0)]
    # neither temperatures nor hand-over: no hot share, said so
    bare = staged.replace(", sla_hours: 24", "")
    plain = channels(parse_model(bare), data, TINY_AS_OF)
    assert plain.hot_basis is None and all(r.hot_share is None for r in plain.sources)
    assert any("no hot share" in n for n in plain.notes)


def test_outcomes_without_values_leave_the_value_columns_empty(tmp_path: Path) -> None:
    valueless = [{**o, "value": None} for o in TINY_OUTCOMES]
    data = load_dataset(tiny_dataset(tmp_path / "tiny", valueless))
    result = channels(parse_model(TINY_MODEL), data, TINY_AS_OF)
    assert not result.has_values
    assert [(r.value, r.leads, r.won) for r in result.sources] == [
        ("paid", 2, 2),
        ("social", 1, 1),
        (NONE, 1, 0),
    ]
    for r in result.sources + result.campaigns + result.content_stages:
        assert r.won_value is None and r.value_per_lead is None
        assert r.repeat_purchases is None and r.lifetime_value is None


def test_no_outcomes_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    model = parse_model(TINY_MODEL)
    with pytest.raises(DataError, match="no outcomes table: channel conversion needs won/lost"):
        channels(model, load_dataset(tiny_dataset(tmp_path / "none", None)), TINY_AS_OF)
    with pytest.raises(DataError, match="the outcomes table is empty"):
        channels(model, load_dataset(tiny_dataset(tmp_path / "empty", [])), TINY_AS_OF)
    with pytest.raises(DataError, match="no outcome at or before 2025-01-01"):
        data = load_dataset(tiny_dataset(tmp_path / "early", TINY_OUTCOMES))
        channels(model, data, datetime(2025, 1, 1))
    # the same for generated data once its outcomes file is gone
    no_outcomes = tmp_path / "gen-no-outcomes"
    shutil.copytree(data_dir, no_outcomes)
    (no_outcomes / "outcomes.parquet").unlink()
    with pytest.raises(DataError, match="no outcomes table"):
        channels(load_model(MODELS / "committee.yaml"), load_dataset(no_outcomes), AS_OF)
