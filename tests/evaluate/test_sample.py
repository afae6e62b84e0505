"""The committee's sample (S21): seeded, stratified by stage, every lead with the ledger that
sums to its total; small stages are taken whole and said so."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from leadscore.api import score
from leadscore.errors import DataError
from leadscore.evaluate.sample import NO_STAGE, Sample, sample
from leadscore.io import generate, load_dataset
from leadscore.model import load_model
from leadscore.schema import Dataset

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)
CUTOFF = datetime(2025, 10, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, seed=11, out=out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def data(data_dir: Path) -> Dataset:
    return load_dataset(data_dir)


@pytest.fixture(scope="module")
def starter_stages(data: Dataset) -> dict[str, int]:
    """Leads per stage of the starter model, counted over the whole score table."""
    t = score(load_model(MODELS / "starter.yaml"), data, CUTOFF).table
    rows = t.group_by("stage").aggregate(n=t.count()).to_pyarrow().to_pylist()
    return {r["stage"] if r["stage"] is not None else NO_STAGE: r["n"] for r in rows}


@pytest.fixture(scope="module")
def starter(data: Dataset) -> dict[int, Sample]:
    model = load_model(MODELS / "starter.yaml")
    return {seed: sample(model, data, CUTOFF, per_stage=10, seed=seed) for seed in (0, 1)}


def ids(s: Sample) -> dict[str, list[str]]:
    return {st.stage: [lead.lead_id for lead in st.leads] for st in s.strata}


def test_the_same_seed_gives_the_same_sample(data_dir: Path, starter: dict[int, Sample]) -> None:
    # a fresh load of the same files, drawn again
    again = sample(load_model(MODELS / "starter.yaml"), load_dataset(data_dir), CUTOFF, 10, 0)
    assert again.as_dict() == starter[0].as_dict()
    assert again.rows() == starter[0].rows()
    assert again.ledger_rows() == starter[0].ledger_rows()


def test_another_seed_gives_another_sample(starter: dict[int, Sample]) -> None:
    first, second = ids(starter[0]), ids(starter[1])
    assert first.keys() == second.keys()
    for stage in first:
        if len(first[stage]) == 10:  # a stage taken whole is the same under any seed
            assert set(first[stage]) != set(second[stage]), stage


def test_every_stage_present_is_sampled(
    starter: dict[int, Sample], starter_stages: dict[str, int]
) -> None:
    s = starter[0]
    assert [st.stage for st in s.strata] == [
        x for x in ("SQL", "MQL", "nurture") if x in starter_stages
    ]
    for st in s.strata:
        assert st.size == starter_stages[st.stage]
        assert len(st.leads) == min(10, st.size)
        assert len({lead.lead_id for lead in st.leads}) == len(st.leads)
        assert all(lead.score["stage"] == st.stage for lead in st.leads)


def test_small_stages_are_taken_whole_and_ledgers_add_up(data: Dataset) -> None:
    model = load_model(MODELS / "committee.yaml")
    counts = score(model, data, CUTOFF).table.stage.value_counts().to_pyarrow().to_pylist()
    sizes = {r["stage"]: r["stage_count"] for r in counts}
    per_stage = sorted(sizes.values())[1] + 1  # more than the two smallest stages hold
    s = sample(model, data, CUTOFF, per_stage=per_stage, seed=4)
    assert {st.stage: st.size for st in s.strata} == sizes
    small = {st.stage for st in s.strata if st.size < per_stage}
    assert len(small) >= 2
    for st in s.strata:
        assert st.whole == (st.stage in small)
        assert len(st.leads) == min(per_stage, st.size)
        said = [n for n in s.notes if repr(st.stage) in n]
        assert bool(said) == (st.stage in small)
        if st.stage in small:
            assert f"only {st.size} leads, fewer than the {per_stage}" in said[0]
    # every sampled lead's ledger sums to its total, to the cent
    for lead in s.leads:
        assert lead.ledger, lead.lead_id
        assert round(sum(line["points"] for line in lead.ledger), 2) == round(
            lead.score["total"], 2
        )
    # ... and is the ledger of scoring everything, line for line
    ledger = score(model, data, CUTOFF).ledger
    chosen = [str(lead.lead_id) for lead in s.leads]
    full = ledger.filter(ledger.lead_id.isin(chosen)).to_pyarrow().to_pylist()
    mine = s.ledger_rows()
    assert len(mine) == len(full)

    def key(row: dict[str, object]) -> tuple[str, ...]:
        return tuple(str(row[c]) for c in ("lead_id", "part", "kind", "rule", "event_id", "points"))

    assert sorted(map(key, mine)) == sorted(map(key, full))


def test_leads_without_a_stage_form_their_own_group(
    data: Dataset, starter_stages: dict[str, int]
) -> None:
    model = load_model(MODELS / "starter.yaml")
    no_catch_all = model.model_copy(update={"routing": model.routing[:-1]})  # no nurture
    s = sample(no_catch_all, data, CUTOFF, per_stage=5, seed=2)
    assert [st.stage for st in s.strata][-1] == NO_STAGE
    none = s.strata[-1]
    assert none.size == starter_stages["nurture"]
    assert all(lead.score["stage"] is None for lead in none.leads)
    assert {r["stage"] for r in s.rows()} == {st.stage for st in s.strata}


def test_the_record_is_json_and_the_flat_rows_line_up(starter: dict[int, Sample]) -> None:
    s = starter[0]
    record = json.loads(json.dumps(s.as_dict()))
    assert record["as_of"] == CUTOFF.isoformat()
    assert record["seed"] == 0 and record["per_stage"] == 10
    assert [x["stage"] for x in record["stages"]] == [st.stage for st in s.strata]
    rows = s.rows()
    assert [r["lead_id"] for r in rows] == [lead.lead_id for lead in s.leads]
    assert list(rows[0])[:3] == ["stage", "lead_id", "total"]
    lines = s.ledger_rows()
    assert len(lines) == sum(len(lead.ledger) for lead in s.leads)
    assert all(isinstance(r["ts"], str | None) for r in lines)
    assert {r["lead_id"] for r in lines} <= {r["lead_id"] for r in rows}


@pytest.mark.parametrize("per_stage", [0, -3])
def test_per_stage_must_be_positive(data: Dataset, per_stage: int) -> None:
    with pytest.raises(DataError, match="per_stage must be a whole number of at least 1"):
        sample(load_model(MODELS / "starter.yaml"), data, CUTOFF, per_stage=per_stage)
