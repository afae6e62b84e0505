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
    for st in starter[0].strata:
        if st.size > 10:
            assert set(first[st.stage]) != set(second[st.stage]), st.stage
        else:  # a stage taken whole is the same under any seed
            assert set(first[st.stage]) == set(second[st.stage]), st.stage


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


def test_small_stages_are_taken_whole_and_leads_without_a_stage_are_a_group(
    data: Dataset, starter_stages: dict[str, int]
) -> None:
    model = load_model(MODELS / "starter.yaml")
    # without its last routing entry, the leads the starter model nurtures get no stage
    no_catch_all = model.model_copy(update={"routing": model.routing[:-1]})
    sizes = {NO_STAGE if k == "nurture" else k: n for k, n in starter_stages.items()}
    per_stage = min(sizes.values()) + 1
    s = sample(no_catch_all, data, CUTOFF, per_stage=per_stage, seed=3)
    assert [st.stage for st in s.strata] == [x for x in ("SQL", "MQL", NO_STAGE) if x in sizes]
    assert {st.stage: st.size for st in s.strata} == sizes
    assert all(lead.score["stage"] is None for lead in s.strata[-1].leads)
    assert {r["stage"] for r in s.rows()} == set(sizes)
    small = {stage for stage, n in sizes.items() if n < per_stage}
    assert small
    for st in s.strata:
        assert st.whole == (st.stage in small)
        assert len(st.leads) == min(per_stage, st.size)
        said = [n for n in s.notes if repr(st.stage) in n]
        assert bool(said) == (st.stage in small)
        if st.stage in small:
            assert f"only {st.size} leads, fewer than the {per_stage} asked for" in said[0]


def test_each_ledger_sums_to_the_total_and_is_the_full_ledger(data: Dataset) -> None:
    model = load_model(MODELS / "committee.yaml")
    s = sample(model, data, CUTOFF, per_stage=10, seed=4)
    assert [st.stage for st in s.strata] == ["SQL", "MQL", "disqualified", "nurture"]
    assert any(lead.ledger for lead in s.leads)
    for lead in s.leads:
        points = sum(line["points"] for line in lead.ledger)
        assert round(points, 2) == round(lead.score["total"], 2), lead.lead_id
    # the ledgers, drawn from the sampled leads' accounts only, are those of scoring everything
    chosen = {str(lead.lead_id) for lead in s.leads}
    everything = score(model, data, CUTOFF).ledger.to_pyarrow().to_pylist()
    full = [line for line in everything if line["lead_id"] in chosen]
    columns = ("lead_id", "part", "kind", "rule", "event_id", "ts", "points", "note")

    def key(row: dict[str, object]) -> tuple[str, ...]:
        value = {**row, "ts": str(row["ts"]).replace(" ", "T")}
        return tuple(str(value[c]) for c in columns)

    assert sorted(map(key, s.ledger_rows())) == sorted(map(key, full))


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
