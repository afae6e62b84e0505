"""As-of examples: the leads a backtest judges, at cut-offs derived from the data and printed."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore.errors import DataError
from leadscore.evaluate.backtest import labelled
from leadscore.io import generate, load_dataset
from leadscore.io.mapping import packaged_mapping
from leadscore.learn import examples as ex
from leadscore.model.loader import parse_model
from leadscore.schema import Dataset

AS_OF = datetime(2026, 1, 1)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ANY_MODEL = parse_model(
    "name: any\nversion: '1'\nfit: {rules: [{name: r, when: {field: source, exists: true}, "
    "points: 1}]}\n",
    "any.yaml",
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(2000, seed=14, out=out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def generated(data_dir: Path) -> Dataset:
    return load_dataset(data_dir)


def test_the_defaults_are_derived_from_the_data_and_said(generated: Dataset) -> None:
    fr = ex.frame(generated)
    assert fr.split == "time" and fr.timed and fr.evaluation is not None
    assert fr.horizon.days in ex.HORIZONS
    # every training example's horizon ends by the evaluation cut-off: its label was known
    assert all(c + fr.horizon <= fr.evaluation for c in fr.cutoffs)
    assert list(fr.cutoffs) == sorted(fr.cutoffs) and len(fr.cutoffs) > 1
    assert fr.evaluation == fr.evaluation.replace(hour=0, minute=0, second=0, microsecond=0)
    said = " ".join(fr.derived)
    assert "horizon" in said and "evaluation cut-off" in said and "apart" in said
    assert "judged on the leads open at" in fr.describe()


def test_the_holdout_is_the_backtests_population_with_its_labels(generated: Dataset) -> None:
    fr = ex.frame(generated)
    assert fr.evaluation is not None
    found = ex.examples(generated, fr)
    held = found.holdout
    arrays, truth = labelled(ANY_MODEL, generated, fr.evaluation, fr.horizon)
    assert sorted(np.asarray(found.lead_ids, dtype=object)[held].tolist()) == sorted(
        arrays["lead_id"].tolist()
    )
    by_lead = dict(zip(arrays["lead_id"].tolist(), arrays["won"].tolist(), strict=True))
    ids = np.asarray(found.lead_ids, dtype=object)[held]
    assert found.y[held].tolist() == [by_lead[i] for i in ids]
    assert int(found.y[held].sum()) == truth.won
    # each training cut-off holds the backtest's population at that cut-off too
    c = fr.cutoffs[-1]
    at_c = found.at == np.datetime64(c, "us")
    arrays, _ = labelled(ANY_MODEL, generated, c, fr.horizon)
    assert sorted(np.asarray(found.lead_ids, dtype=object)[at_c].tolist()) == sorted(
        arrays["lead_id"].tolist()
    )


def test_given_cutoff_and_horizon_are_used_as_given(generated: Dataset) -> None:
    fr = ex.frame(
        generated,
        cutoff=datetime(2025, 10, 1),
        horizon=timedelta(days=30),
        every=timedelta(days=30),
    )
    assert fr.evaluation == datetime(2025, 10, 1) and fr.horizon == timedelta(days=30)
    assert fr.cutoffs[-1] == datetime(2025, 9, 1)
    assert all(b - a == timedelta(days=30) for a, b in itertools.pairwise(fr.cutoffs))
    assert not any("horizon" in d for d in fr.derived)


def test_no_holdout_learns_up_to_the_last_known_period(generated: Dataset) -> None:
    fr = ex.frame(generated, holdout=0)
    assert fr.split == "none" and fr.evaluation is None
    found = ex.examples(generated, fr)
    assert not found.holdout.any()
    last = generated.outcomes.ts.max().to_pyarrow().as_py()  # type: ignore[union-attr]
    assert fr.cutoffs[-1] + fr.horizon <= last


def test_undated_exports_get_one_cutoff_and_a_stratified_holdout() -> None:
    x = load_dataset(DATA / "x-education" / "Leads.csv", mapping=packaged_mapping("x-education"))
    fr = ex.frame(x)
    assert (fr.split, fr.timed, fr.cutoffs) == ("stratified", False, (datetime(2020, 1, 1, 12),))
    assert "optimistic" not in fr.describe()  # no times, so nothing to be optimistic about
    found = ex.examples(x, fr)
    assert (int((~found.holdout).sum()), int(found.holdout.sum())) == (7392, 1848)
    with pytest.raises(DataError, match="a split by time needs outcomes spread over time"):
        ex.frame(x, split="time")


def test_a_stratified_split_on_dated_data_is_labelled_optimistic(generated: Dataset) -> None:
    assert "optimistic" in ex.frame(generated, split="stratified").describe()


def test_bad_frames_are_refused_with_the_reason(
    generated: Dataset, data_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="at or after the last outcome"):
        ex.frame(generated, cutoff=datetime(2030, 1, 1))
    with pytest.raises(DataError, match=r"holdout 1\.5"):
        ex.frame(generated, holdout=1.5)
    with pytest.raises(DataError, match="has outcomes within 30 days after it"):
        ex.frame(generated, cutoff=datetime(2025, 1, 3), horizon=timedelta(days=30))
    # a data folder without outcomes
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("leads", "events"):
        pq.write_table(pq.read_table(data_dir / f"{name}.parquet"), bare / f"{name}.parquet")
    with pytest.raises(DataError, match="no outcomes table"):
        ex.frame(load_dataset(bare))


def test_too_few_won_examples_are_refused_with_the_numbers(data_dir: Path, tmp_path: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for name in ("leads", "events", "accounts"):
        pq.write_table(pq.read_table(data_dir / f"{name}.parquet"), few / f"{name}.parquet")
    outcomes = pq.read_table(data_dir / "outcomes.parquet").to_pylist()
    won = [o for o in outcomes if o["outcome"] == "won"][:5]
    lost = [o for o in outcomes if o["outcome"] == "lost"]
    pq.write_table(pa.Table.from_pylist(won + lost), few / "outcomes.parquet")
    data = load_dataset(few)
    with pytest.raises(DataError, match=r"^\d won and \d+ other training examples .* at least 20"):
        ex.examples(data, ex.frame(data))


def test_times_with_fractions_of_a_second_derive_a_horizon(tmp_path: Path) -> None:
    rows = 300
    (tmp_path / "leads.csv").write_text(
        "lead_id,created_at,plan\n"
        + "".join(
            f"L{i},2025-01-{1 + i % 28:02d}T08:00:00.123456,{'pro' if i % 2 else 'basic'}\n"
            for i in range(rows)
        )
    )
    (tmp_path / "outcomes.csv").write_text(
        "lead_id,outcome,ts\n"
        + "".join(
            f"L{i},{'won' if i % 3 == 0 else 'lost'},2025-{2 + i % 9:02d}-15T10:30:00.654321\n"
            for i in range(rows)
        )
    )
    fr = ex.frame(load_dataset(tmp_path))
    assert fr.timed and fr.horizon.days in ex.HORIZONS
