"""The leakage guard: a field filled in after the outcome, or a tell nearly always followed by a
win, is refused by name with the numbers, unless the user allows it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from leadscore.io import load_dataset
from leadscore.learn.predictive import train
from leadscore.learn.suggest import suggest
from leadscore.schema import Dataset


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # BLAS and OpenMP workers spin while they wait for busy cores: one thread is faster here
    with threadpool_limits(limits=1):
        yield


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _funnel(directory: Path, *, segment: bool, tell: bool) -> Dataset:
    """3,000 leads over a year, a real signal (plan) and, on request, the two kinds of leak: a
    deal segment set only on won leads, and a `contract_sent` event nine days before every win."""
    directory.mkdir()
    start = datetime(2025, 1, 1)
    leads, events, outcomes = [], [], []
    for i in range(3000):
        created = start + timedelta(hours=3 * i)
        pro = i % 3 != 0
        won = (i % 5 < 2) if pro else (i % 17 == 0)
        decided = created + timedelta(days=10 + i % 40)
        leads.append(
            [
                f"L{i:04d}",
                created.isoformat(),
                "pro" if pro else "basic",
                ("retail" if i % 2 else "pets") if segment and won else "",
            ]
        )
        events.append([f"e{i}", f"L{i:04d}", created.isoformat(), "signup"])
        if tell and won:
            events.append(
                [f"t{i}", f"L{i:04d}", (decided - timedelta(days=9)).isoformat(), "contract_sent"]
            )
        if i % 5 == 0 and not won:
            events.append(
                [f"c{i}", f"L{i:04d}", (decided - timedelta(days=2)).isoformat(), "webinar"]
            )
        outcomes.append([f"L{i:04d}", "won" if won else "lost", decided.isoformat()])
    _write(directory / "leads.csv", ["lead_id", "created_at", "plan", "segment"], leads)
    _write(directory / "events.csv", ["event_id", "lead_id", "ts", "type"], events)
    _write(directory / "outcomes.csv", ["lead_id", "outcome", "ts"], outcomes)
    return load_dataset(directory)


def test_a_field_set_only_on_won_leads_is_refused_by_name(tmp_path: Path) -> None:
    data = _funnel(tmp_path / "segment", segment=True, tell=False)
    found = suggest(data)
    (refusal,) = [r for r in found.refused if r.name == "segment"]
    assert (
        "of won training leads" in refusal.reason
        and "filled in after the outcome" in refusal.reason
    )
    assert not any(r.feature.field == "segment" for r in found.rules)
    predictor = train(data, baselines=False)
    assert "segment" not in predictor.lead_fields
    assert any(r["name"] == "segment" for r in predictor.training["refused"])
    # a user who knows better keeps it
    kept = suggest(data, allow=frozenset({"segment"}))
    assert not any(r.name == "segment" for r in kept.refused)


def test_a_tell_nearly_always_followed_by_a_win_is_refused(tmp_path: Path) -> None:
    data = _funnel(tmp_path / "tell", segment=False, tell=True)
    found = suggest(data)
    refused = {r.name: r.reason for r in found.refused}
    names = [n for n in refused if n.startswith("contract_sent")]
    assert names, refused
    assert all(
        "% of the" in refused[n] and "no signal known before the outcome" in refused[n]
        for n in names
    )
    assert not any(r.feature.field == "contract_sent" for r in found.rules)
    predictor = train(data, baselines=False)
    assert "contract_sent" not in {c.field for c in predictor.columns}
    kept = suggest(data, allow=frozenset({"contract_sent"}))
    assert not any(r.name.startswith("contract_sent") for r in kept.refused)
