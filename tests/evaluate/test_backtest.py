"""Backtests: nothing after the cut-off leaks in, the truth is who was won afterwards, and
data that cannot answer gets a clear message instead of a number."""

from __future__ import annotations

import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.errors import DataError
from leadscore.evaluate.backtest import backtest, handover_stages
from leadscore.io import generate, load_dataset
from leadscore.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)
CUTOFF = datetime(2025, 10, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, seed=5, out=out, as_of=AS_OF)
    return out


def with_events(src: Path, dst: Path, extra: list[dict[str, object]]) -> Path:
    shutil.copytree(src, dst)
    events = pq.read_table(dst / "events.parquet")
    more = pa.Table.from_pylist(extra, schema=events.schema)
    pq.write_table(pa.concat_tables([events, more]), dst / "events.parquet")
    return dst


def test_events_after_the_cutoff_cannot_change_the_result(data_dir: Path, tmp_path: Path) -> None:
    model = load_model(MODELS / "committee.yaml")
    before = backtest(model, load_dataset(data_dir), CUTOFF).as_dict()
    leads = pq.read_table(data_dir / "leads.parquet")["lead_id"].to_pylist()
    rng = random.Random(1)
    kinds = ["demo_request", "pricing_view", "page_view", "form_submit", "unsubscribe"]
    extra = [
        {
            "event_id": f"future-{i}",
            "lead_id": rng.choice(leads),
            "type": rng.choice(kinds),
            # exactly at the cut-off, and any time after it
            "ts": CUTOFF + timedelta(seconds=0 if i % 10 == 0 else rng.randint(1, 10**7)),
            "url": "/pricing",
        }
        for i in range(5000)
    ]
    leaky = load_dataset(with_events(data_dir, tmp_path / "leaky", extra))
    assert backtest(model, leaky, CUTOFF).as_dict() == before
    # ... while the same events a second earlier do change it: the test can fail
    earlier = [{**e, "ts": CUTOFF - timedelta(seconds=1)} for e in extra]
    moved = load_dataset(with_events(data_dir, tmp_path / "earlier", earlier))
    assert backtest(model, moved, CUTOFF).as_dict() != before


def test_the_truth_counts_who_existed_and_who_was_decided(data_dir: Path) -> None:
    model = load_model(MODELS / "committee.yaml")
    result = backtest(model, load_dataset(data_dir), CUTOFF, timedelta(days=60))
    leads = pq.read_table(data_dir / "leads.parquet").to_pylist()
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    decided = {o["lead_id"] for o in outcomes if o["ts"] <= CUTOFF}
    later = {
        r["lead_id"] for r in leads if r["created_at"] is not None and r["created_at"] >= CUTOFF
    }
    counted = {r["lead_id"] for r in leads} - decided - later
    horizon = CUTOFF + timedelta(days=60)
    won = {
        o["lead_id"]
        for o in outcomes
        if o["outcome"] == "won" and CUTOFF < o["ts"] <= horizon and o["lead_id"] in counted
    }
    truth = result.truth
    assert truth.leads == len(counted) and truth.won == len(won)
    assert truth.decided_before == len(decided)
    assert truth.not_yet_created == len(later - decided)
    assert result.base_rate == pytest.approx(len(won) / len(counted))
    assert 0.5 < result.auc < 1  # the generator's buyers act like buyers
    assert result.deciles[0].lift > 1.5
    stages = {r["threshold"] for r in result.thresholds}
    assert stages == {"SQL", "MQL or better"} and handover_stages(model) == ["SQL", "MQL"]
    by_stage = {r["value"]: r for r in result.conversion["stage"]}
    assert sum(r["leads"] for r in by_stage.values()) == truth.leads


def test_data_that_cannot_answer_gets_a_clear_message(data_dir: Path, tmp_path: Path) -> None:
    model = load_model(MODELS / "starter.yaml")
    data = load_dataset(data_dir)
    with pytest.raises(DataError, match="before the first event"):
        backtest(model, data, datetime(2020, 1, 1))
    with pytest.raises(DataError, match="at or after the last outcome"):
        backtest(model, data, datetime(2030, 1, 1))
    no_outcomes = tmp_path / "no-outcomes"
    shutil.copytree(data_dir, no_outcomes)
    (no_outcomes / "outcomes.parquet").unlink()
    with pytest.raises(DataError, match="no outcomes table"):
        backtest(model, load_dataset(no_outcomes), CUTOFF)
    # only lost deals after the cut-off: no AUC, said so, and the rest still reported
    lost_only = tmp_path / "lost-only"
    shutil.copytree(data_dir, lost_only)
    outcomes = pq.read_table(lost_only / "outcomes.parquet").to_pylist()
    for o in outcomes:
        o["outcome"] = "lost"
    pq.write_table(pa.Table.from_pylist(outcomes), lost_only / "outcomes.parquet")
    result = backtest(model, load_dataset(lost_only), CUTOFF)
    assert result.auc is None and result.truth.won == 0
    assert any("every one of the" in n and "is not won" in n for n in result.notes)
