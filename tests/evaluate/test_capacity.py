"""Capacity (S20): the lowest threshold on the total that sends sales no more leads a week than
it can take, what the leads above it were worth, and clear messages for data that cannot say."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from leadscore.api import score
from leadscore.errors import DataError
from leadscore.evaluate.capacity import Capacity, capacity
from leadscore.io import generate, load_dataset
from leadscore.model import load_model
from leadscore.schema import Dataset

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)
CUTOFF = datetime(2025, 10, 1)
WEEKS = 12
HORIZON = timedelta(days=90)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, seed=8, out=out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def data(data_dir: Path) -> Dataset:
    return load_dataset(data_dir)


@pytest.fixture(scope="module")
def window(data_dir: Path, data: Dataset) -> list[dict[str, Any]]:
    """The leads created in the 12 weeks before the cut-off, counted by hand: the starter
    model's totals and stages as of the cut-off, and the truth read from the outcomes file."""
    start = CUTOFF - timedelta(weeks=WEEKS)
    created = {
        r["lead_id"]: r["created_at"] for r in pq.read_table(data_dir / "leads.parquet").to_pylist()
    }
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    decided = {o["lead_id"] for o in outcomes if o["ts"] <= CUTOFF}
    won = {
        o["lead_id"]
        for o in outcomes
        if o["outcome"] == "won" and CUTOFF < o["ts"] <= CUTOFF + HORIZON
    }
    model = load_model(MODELS / "starter.yaml")
    table = score(model, data, CUTOFF).table.select("lead_id", "total", "stage")
    return [
        {**r, "decided": r["lead_id"] in decided, "won": r["lead_id"] in won}
        for r in table.to_pyarrow().to_pylist()
        if created[r["lead_id"]] is not None and start <= created[r["lead_id"]] < CUTOFF
    ]


@pytest.fixture(scope="module")
def results(data: Dataset) -> dict[float, Capacity]:
    model = load_model(MODELS / "starter.yaml")
    return {pw: capacity(model, data, CUTOFF, pw) for pw in (4, 10)}


@pytest.mark.parametrize("per_week", [4, 10])
def test_the_threshold_is_the_lowest_that_fits(
    results: dict[float, Capacity], window: list[dict[str, Any]], per_week: float
) -> None:
    result = results[per_week]
    totals = [r["total"] for r in window]
    assert result.leads == len(window)
    assert result.threshold is not None
    above = sum(t >= result.threshold for t in totals)
    assert result.leads_above == above
    assert result.leads_per_week == above / WEEKS
    assert above / WEEKS <= per_week
    # the next lower total any lead has would send more than sales can take
    lower = max(t for t in totals if t < result.threshold)
    assert sum(t >= lower for t in totals) / WEEKS > per_week


def test_more_capacity_gives_a_lower_or_equal_threshold(
    results: dict[float, Capacity],
) -> None:
    small, large = results[4].threshold, results[10].threshold
    assert small is not None and large is not None
    assert large <= small
    assert results[10].leads_above >= results[4].leads_above


def test_the_conversion_is_the_hand_count(
    results: dict[float, Capacity], window: list[dict[str, Any]]
) -> None:
    result = results[10]
    assert result.threshold is not None
    judged = [r for r in window if not r["decided"]]
    assert result.decided_before == len(window) - len(judged)
    for side, part in (
        (result.above, [r for r in judged if r["total"] >= result.threshold]),
        (result.below, [r for r in judged if r["total"] < result.threshold]),
    ):
        won = sum(r["won"] for r in part)
        assert (side.leads, side.won) == (len(part), won)
        assert side.conversion == won / len(part)
    assert result.above.won > 0  # the test can tell a wrong count from a right one
    # the model's own hand-over stages, a week
    for h in result.handover:
        assert h.leads == sum(r["stage"] == h.stage for r in window)
        assert h.per_week == h.leads / WEEKS
    assert [h.stage for h in result.handover] == ["SQL", "MQL"]
    assert result.handover_per_week == sum(h.leads for h in result.handover) / WEEKS
    assert any("the model's routing hands" in n for n in result.notes)
    record = result.as_dict()
    assert record["cutoff"] == CUTOFF.isoformat()
    assert record["window_start"] == (CUTOFF - timedelta(weeks=WEEKS)).isoformat()
    assert record["above"] == result.above.as_dict()


def test_when_every_lead_fits_or_none_does(data: Dataset) -> None:
    model = load_model(MODELS / "starter.yaml")
    everyone = capacity(model, data, CUTOFF, 10_000)
    assert everyone.leads_above == everyone.leads
    assert everyone.below.leads == 0 and everyone.below.conversion is None
    assert any("sales can take every lead" in n for n in everyone.notes)
    # 0.01 a week is not one lead in 12 weeks: no threshold fits, nobody is sent
    nobody = capacity(model, data, CUTOFF, 0.01)
    assert nobody.threshold is None
    assert nobody.leads_above == 0 and nobody.leads_per_week == 0
    assert nobody.above.leads == 0 and nobody.above.conversion is None
    assert any("no threshold fits" in n for n in nobody.notes)


def test_no_outcome_after_the_cutoff_gives_no_conversion(data: Dataset) -> None:
    result = capacity(load_model(MODELS / "starter.yaml"), data, AS_OF, 10)
    assert result.leads > 0 and result.threshold is not None
    assert result.above.conversion is None and result.below.conversion is None
    assert any(n.startswith("no conversion") for n in result.notes)


@pytest.mark.parametrize("per_week", [0, -5, float("nan")])
def test_per_week_must_be_positive(data: Dataset, per_week: float) -> None:
    with pytest.raises(DataError, match="per_week must be more than 0 leads a week"):
        capacity(load_model(MODELS / "starter.yaml"), data, CUTOFF, per_week)


def test_weeks_must_be_whole_and_positive(data: Dataset) -> None:
    with pytest.raises(DataError, match="weeks must be a whole number of at least 1"):
        capacity(load_model(MODELS / "starter.yaml"), data, CUTOFF, 5, weeks=0)


def test_creation_times_are_needed(data: Dataset) -> None:
    model = load_model(MODELS / "starter.yaml")
    undated = replace(data, leads=data.leads.drop("created_at"))
    with pytest.raises(DataError, match="capacity needs creation times"):
        capacity(model, undated, CUTOFF, 5)


def test_a_window_without_new_leads_is_refused(data: Dataset) -> None:
    model = load_model(MODELS / "starter.yaml")
    with pytest.raises(DataError, match=r"no lead was created in the 12 weeks before the cut-off"):
        capacity(model, data, datetime(2024, 6, 1), 5)


def test_outcomes_are_needed(data: Dataset) -> None:
    model = load_model(MODELS / "starter.yaml")
    with pytest.raises(DataError, match="no outcomes table: capacity needs won/lost outcomes"):
        capacity(model, replace(data, outcomes=None), CUTOFF, 5)
    assert data.outcomes is not None
    empty = replace(data, outcomes=data.outcomes.limit(0))
    with pytest.raises(DataError, match="the outcomes table is empty"):
        capacity(model, empty, CUTOFF, 5)
