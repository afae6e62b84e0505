"""Hand-over over time: weekly entries from snapshots, and days from hand-over to won."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from leadscore.api import score
from leadscore.evaluate.cases import timeline
from leadscore.evaluate.handover import per_week, to_won
from leadscore.io import generate, load_dataset
from leadscore.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
CUTOFF = datetime(2025, 10, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(1500, seed=12, out=out, as_of=datetime(2026, 1, 1))
    return out


def handed_over(model: object, data: object, when: datetime) -> set[str]:
    rows = score(model, data, when).table.to_pyarrow().to_pylist()  # type: ignore[arg-type]
    return {r["lead_id"] for r in rows if r["stage"] in ("SQL", "MQL")}


def test_weekly_entries_are_the_difference_of_snapshots(data_dir: Path) -> None:
    model = load_model(MODELS / "starter.yaml")
    data = load_dataset(data_dir)
    weeks = per_week(model, data, CUTOFF, 2)
    assert [w["week_end"] for w in weeks] == [
        (CUTOFF - timedelta(weeks=1)).isoformat(),
        CUTOFF.isoformat(),
    ]
    for w in weeks:
        start = handed_over(model, data, datetime.fromisoformat(w["week_start"]))
        end = handed_over(model, data, datetime.fromisoformat(w["week_end"]))
        assert w["entered"] == len(end - start) and w["at_week_end"] == len(end)
    assert per_week(model, data, CUTOFF, 0) == []


def test_days_from_hand_over_to_won(data_dir: Path) -> None:
    model = load_model(MODELS / "starter.yaml")
    data = load_dataset(data_dir)
    found = to_won(model, data, CUTOFF, timedelta(days=90), limit=15)
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    won: dict[str, datetime] = {}
    for o in outcomes:
        if o["outcome"] == "won" and CUTOFF < o["ts"] <= CUTOFF + timedelta(days=90):
            won[o["lead_id"]] = min(won.get(o["lead_id"], o["ts"]), o["ts"])
    latest = sorted(won.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:15]
    days = []
    never = 0
    for lead_id, ts in latest:
        first = next(
            (s for s in timeline(model, data, lead_id, ts) if s.stage in ("SQL", "MQL")), None
        )
        if first is None:
            never += 1
        else:
            days.append((ts - first.ts).total_seconds() / 86400)
    assert found == {
        "median_days": statistics.median(days) if days else None,
        "measured": len(days),
        "never_handed_over": never,
    }
    assert found["measured"] + found["never_handed_over"] == 15
