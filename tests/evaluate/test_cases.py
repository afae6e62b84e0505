"""Timelines agree with the engine at every step; cases pick the right leads."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from leadscore.api import explain
from leadscore.errors import DataError
from leadscore.evaluate.cases import TICK, cases, timeline
from leadscore.io import generate, load_dataset
from leadscore.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(1500, seed=9, out=out, as_of=AS_OF)
    return out


def test_every_step_is_the_engines_score_at_that_instant(data_dir: Path) -> None:
    model = load_model(MODELS / "committee.yaml")  # stakeholders: peers matter
    data = load_dataset(data_dir)
    events = pq.read_table(data_dir / "events.parquet").to_pylist()
    busiest = max(
        {e["lead_id"] for e in events}, key=lambda i: sum(e["lead_id"] == i for e in events)
    )
    steps = timeline(model, data, busiest, AS_OF)
    own = sorted(
        (e for e in events if e["lead_id"] == busiest), key=lambda e: (e["ts"], e["event_id"])
    )
    assert [s.event_id for s in steps[1:-1]] == [e["event_id"] for e in own]
    assert steps[-1].ts == AS_OF and steps[-1].event_id is None
    for step in steps[1:-1]:
        assert step.total == explain(model, data, busiest, step.ts + TICK).total
    assert steps[-1].total == explain(model, data, busiest, AS_OF).total
    assert steps[0].total == explain(model, data, busiest, steps[0].ts).total


def test_cases_are_the_latest_won_lost_and_open_leads(data_dir: Path) -> None:
    model = load_model(MODELS / "starter.yaml")
    data = load_dataset(data_dir)
    found = cases(model, data, AS_OF, won=3, lost=2, recent=2)
    assert [c.kind for c in found] == ["won"] * 3 + ["lost"] * 2 + ["recent"] * 2
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    first: dict[tuple[str, str], datetime] = {}
    for o in outcomes:
        key = (o["outcome"], o["lead_id"])
        first[key] = min(first.get(key, o["ts"]), o["ts"])
    latest_won = sorted(
        ((ts, lead) for (kind, lead), ts in first.items() if kind == "won"), reverse=True
    )[:3]
    assert [c.lead_id for c in found[:3]] == [lead for _, lead in latest_won]
    for case in found[:5]:
        assert case.before_outcome == case.steps[-1]
        assert case.before_outcome.ts == case.outcome_ts
        assert all(s.ts <= case.outcome_ts for s in case.steps)
        verdict = explain(model, data, case.lead_id, case.outcome_ts)
        assert (case.before_outcome.total, case.before_outcome.stage) == (
            verdict.total,
            verdict.stage,
        )
    decided = {o["lead_id"] for o in outcomes if o["ts"] < AS_OF}
    assert all(c.lead_id not in decided for c in found[5:])
    with pytest.raises(DataError, match="no won, lost or open leads"):
        cases(model, data, datetime(2000, 1, 1) + timedelta(days=1), recent=0)
