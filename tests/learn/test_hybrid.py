"""Hybrid models: a predictive artefact's probability of winning as a lead field that rules score.

One predictor is trained per module on generated leads; a model file next to it reads its
probability through bands (`predicted_won >= 0.045: +40`, ...). The oracle for every score is
`predict` itself, run as of the same instant, with the bands applied by hand.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner, Result

from hybridkit import ARTEFACT, HYBRID, fit_points
from leadscore import api
from leadscore.cli import app
from leadscore.engine.batch import compile_batch
from leadscore.errors import DataError, EngineError
from leadscore.evaluate.backtest import backtest
from leadscore.io import generate, load_dataset
from leadscore.learn.hybrid import enrich, predictor_for
from leadscore.learn.predictive import ArtefactError, Predictor, load, predict, save, train
from leadscore.model.loader import load_model, parse_model
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

AS_OF = datetime(2026, 1, 1)
REASON = re.compile(r"^.+ = .+ \((?P<pp>[+-]\d+) pp\)$")


def grade(fit: float) -> str:
    return "A" if fit >= 40 else "B" if fit >= 15 else "C"


def cli(args: list[str]) -> Result:
    """Run the command line; wide enough that no path or message is wrapped."""
    return CliRunner().invoke(app, args, env={"COLUMNS": "400"})


def hybrid_source(artefact: str = ARTEFACT) -> str:
    return HYBRID.replace(f"artefact: {ARTEFACT}", f"artefact: {artefact}")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Gradient boosting's OpenMP threads spin when the machine is busy (2 cores shared with
    # other test runs): one thread trains 2,000 leads in about a second, two took 10-40 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hybrid-data")
    generate(2000, seed=21, out=out, as_of=AS_OF)
    return out


@pytest.fixture(scope="module")
def data(generated_dir: Path) -> Dataset:
    return load_dataset(generated_dir)


@pytest.fixture(scope="module")
def predictor(data: Dataset) -> Predictor:
    return train(data, name="hybrid-predictive", baselines=False, seed=42)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, predictor: Predictor) -> Path:
    """A model file and, next to it, the artefact it names by a relative path."""
    out = tmp_path_factory.mktemp("hybrid-model")
    save(predictor, out / ARTEFACT)
    (out / "hybrid.yaml").write_text(HYBRID)
    return out


@pytest.fixture(scope="module")
def model(folder: Path) -> ScoringModel:
    return load_model(folder / "hybrid.yaml")


@pytest.fixture(scope="module")
def probabilities(predictor: Predictor, data: Dataset) -> dict[str, float]:
    found = predict(predictor, data, AS_OF)
    return dict(zip(found.lead_ids, found.probability.tolist(), strict=True))


@pytest.fixture(scope="module")
def scores(model: ScoringModel, data: Dataset) -> api.Scores:
    return api.score(model, data, AS_OF)


@pytest.fixture(scope="module")
def rows(scores: api.Scores) -> dict[str, dict[str, Any]]:
    return {r["lead_id"]: r for r in scores.table.to_pyarrow().to_pylist()}


def _demo_leads(data: Dataset) -> set[str]:
    ev = data.events
    hits = ev.filter((ev.type == "demo_request") & (ev.ts < ibis.literal(AS_OF)))
    return set(hits.select("lead_id").distinct().to_pyarrow()["lead_id"].to_pylist())


# --- scoring through the api -------------------------------------------------------------------


def test_fit_points_are_the_bands_of_the_predicted_probability(
    rows: dict[str, dict[str, Any]], probabilities: dict[str, float], data: Dataset
) -> None:
    assert len(rows) == len(probabilities) == 2000
    # every band has leads in it, so each rule's threshold is really exercised
    bands = Counter(fit_points(p) for p in probabilities.values())
    assert set(bands) == {55.0, 15.0, 0.0, -10.0} and min(bands.values()) >= 20, bands
    demo = _demo_leads(data)
    assert 0 < len(demo) < 2000
    for lead_id, p in probabilities.items():
        row = rows[lead_id]
        want = fit_points(p)
        assert row["fit"] == want, (lead_id, p, row)
        assert row["grade"] == grade(want), (lead_id, p, row)
        assert row["behaviour"] == (25.0 if lead_id in demo else 0.0), (lead_id, row)
        assert row["total"] == want + row["behaviour"], (lead_id, row)


def test_the_ledger_adds_up_to_every_total(
    scores: api.Scores, rows: dict[str, dict[str, Any]], probabilities: dict[str, float]
) -> None:
    lines = scores.ledger.to_pyarrow().to_pylist()
    sums: dict[str, float] = {}
    fired: dict[str, set[str]] = {}
    for line in lines:
        sums[line["lead_id"]] = sums.get(line["lead_id"], 0.0) + line["points"]
        fired.setdefault(line["lead_id"], set()).add(line["rule"])
    for lead_id, row in rows.items():
        assert round(sums.get(lead_id, 0.0), 2) == row["total"], lead_id
        p = probabilities[lead_id]
        bands = {n for n, hit in (("likely", p >= 0.045), ("possible", p >= 0.03)) if hit}
        bands |= {"unlikely"} if p < 0.026 else set()
        assert fired.get(lead_id, set()) - {"demo"} == bands, (lead_id, p)


def test_explain_gives_the_batch_total_for_one_lead(
    model: ScoringModel,
    data: Dataset,
    rows: dict[str, dict[str, Any]],
    probabilities: dict[str, float],
) -> None:
    by_p = sorted(probabilities, key=lambda i: (probabilities[i], i))
    demo = sorted(_demo_leads(data))
    # the least and most likely, one in the middle, and one with a demo request
    for lead_id in (by_p[0], by_p[len(by_p) // 2], by_p[-1], demo[0]):
        found = api.explain(model, data, lead_id, AS_OF)
        assert found.total == rows[lead_id]["total"], lead_id
        assert found.fit == fit_points(probabilities[lead_id]) == rows[lead_id]["fit"]
        assert found.grade == rows[lead_id]["grade"]
        assert round(sum(line.points for line in found.ledger), 2) == found.total


def test_leads_that_already_have_the_field_keep_it(model: ScoringModel, data: Dataset) -> None:
    enriched, notes = enrich(data, model, AS_OF)
    assert "predicted_won" in enriched.leads.columns and notes == []
    again, notes = enrich(enriched, model, AS_OF)
    assert again is enriched
    assert len(notes) == 1 and "'predicted_won'" in notes[0] and "used as given" in notes[0]
    # a probability given with the data is what the rules read: 0.035 is the `possible` band
    given = dataclasses.replace(
        data, leads=data.leads.mutate(predicted_won=ibis.literal(0.035, type="float64"))
    )
    result = api.score(model, given, AS_OF)
    assert any("used as given" in note for note in result.notes)
    fits = result.table.fit.to_pyarrow().to_pylist()
    assert len(fits) == 2000 and set(fits) == {15.0}


def test_explain_takes_a_given_probability_like_score(model: ScoringModel, data: Dataset) -> None:
    given = dataclasses.replace(
        data,
        leads=data.leads.drop("industry").mutate(predicted_won=ibis.literal(0.2, type="float64")),
    )
    scored = api.score(model, given, AS_OF).table
    total = scored.filter(scored.lead_id == "L0000001").total.to_pyarrow().to_pylist()
    assert api.explain(model, given, "L0000001", AS_OF).total == total[0]


def test_a_custom_field_name_is_the_column_enrich_adds(
    folder: Path, data: Dataset, probabilities: dict[str, float]
) -> None:
    source = HYBRID.replace("predicted_won", "chance")
    two = ["L0000001", "L0000002"]
    model = parse_model(source, "custom.yaml")
    enriched, _ = enrich(data, model, AS_OF, base=folder, lead_ids=two)
    assert "chance" in enriched.leads.columns and "predicted_won" not in enriched.leads.columns
    got = enriched.leads.select("lead_id", "chance").to_pyarrow().to_pylist()
    found = {r["lead_id"]: r["chance"] for r in got if r["chance"] is not None}
    assert found == pytest.approx({i: probabilities[i] for i in two})
    # leads outside `lead_ids` get no probability (explain enriches just the lead and peers)
    assert sum(r["chance"] is None for r in got) == 2000 - 2


# --- where the artefact is, and what check says ------------------------------------------------


def test_a_relative_artefact_is_found_next_to_the_model_file(
    folder: Path,
    data: Dataset,
    rows: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # no artefact here
    model = load_model(folder / "hybrid.yaml")
    assert model.prediction is not None
    assert Path(model.prediction.artefact) == (folder / ARTEFACT).resolve()
    assert api.check(model, data) == []
    got = {
        r["lead_id"]: r["total"]
        for r in api.score(model, data, AS_OF).table.to_pyarrow().to_pylist()
    }
    assert got == {i: r["total"] for i, r in rows.items()}
    # a relative path to the model file, from its parent folder
    monkeypatch.chdir(folder.parent)
    relative = load_model(Path(folder.name) / "hybrid.yaml")
    assert relative.prediction == model.prediction
    # a model parsed from text keeps the relative path: only `base` says where it starts
    monkeypatch.chdir(tmp_path)
    parsed = parse_model(HYBRID, "hybrid.yaml")
    assert parsed.prediction is not None and parsed.prediction.artefact == ARTEFACT
    enriched, _ = enrich(data, parsed, AS_OF, base=folder)
    assert "predicted_won" in enriched.leads.columns
    with pytest.raises(ArtefactError, match=re.escape(ARTEFACT)):
        enrich(data, parsed, AS_OF)


def test_check_names_a_missing_artefact(tmp_path: Path, data: Dataset) -> None:
    path = tmp_path / "hybrid.yaml"
    path.write_text(hybrid_source("nowhere.joblib"))
    model = load_model(path)
    missing = tmp_path.resolve() / "nowhere.joblib"
    expected = f"prediction: {missing}: no such predictive model file"
    assert api.check(model) == [expected]
    assert api.check(model, data) == [expected]
    with pytest.raises(ArtefactError, match=r"nowhere\.joblib"):
        api.score(model, data, AS_OF)


def test_check_names_a_file_that_is_no_artefact(tmp_path: Path) -> None:
    (tmp_path / "notes.joblib").write_text("not a model\n")
    path = tmp_path / "hybrid.yaml"
    path.write_text(hybrid_source("notes.joblib"))
    (problem,) = api.check(load_model(path))
    assert problem.startswith("prediction: ") and "notes.joblib" in problem
    assert "not a leadscore predictive model" in problem


def test_check_names_a_lead_field_the_predictor_needs(
    model: ScoringModel, data: Dataset, predictor: Predictor
) -> None:
    assert "industry" in predictor.lead_fields
    without = dataclasses.replace(data, leads=data.leads.drop("industry"))
    assert api.check(model, without) == [
        "prediction: the leads have no 'industry', which the predictive model was trained with"
    ]
    with pytest.raises(DataError, match="'industry'"):
        api.score(model, without, AS_OF)


def test_the_batch_engine_refuses_data_that_was_not_enriched(
    model: ScoringModel, data: Dataset
) -> None:
    with pytest.raises(EngineError, match="enrich") as caught:
        compile_batch(model, data, AS_OF)
    assert "'predicted_won'" in str(caught.value)
    enriched, _ = enrich(data, model, AS_OF)
    assert compile_batch(model, enriched, AS_OF).scores.count().to_pyarrow().as_py() == 2000


def test_the_artefact_is_loaded_once_per_file_version(
    model: ScoringModel, predictor: Predictor, tmp_path: Path
) -> None:
    first = predictor_for(model)
    assert first is predictor_for(model)
    assert first is not None and first.name == predictor.name
    copy = tmp_path / ARTEFACT
    shutil.copyfile(Path(model.prediction.artefact), copy)  # type: ignore[union-attr]
    (tmp_path / "hybrid.yaml").write_text(HYBRID)
    moved = load_model(tmp_path / "hybrid.yaml")
    loaded = predictor_for(moved)
    assert loaded is not first and loaded is predictor_for(moved)
    # a new file version (train again, same path) is read again
    save(dataclasses.replace(predictor, name="retrained"), copy)
    again = predictor_for(moved)
    assert again is not None and again.name == "retrained"


# --- the command line --------------------------------------------------------------------------


def test_cli_train_writes_an_artefact_and_prints_holdout_auc_and_baselines(
    generated_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "artefacts" / "model.joblib"
    args = ["train", "--data", str(generated_dir), "--out", str(out), "--name", "cli-trained"]
    result = cli(args)
    assert result.exit_code == 0, result.output
    trained = load(out)
    assert trained.name == "cli-trained"
    metrics = trained.metrics
    assert f"cli-trained written to {out}" in result.output
    assert "holdout AUC" in result.output
    assert f"{metrics['holdout_auc']:.3f}" in result.output
    assert metrics["holdout_auc"] > 0.6
    assert f"{metrics['baselines']['logistic_auc']:.3f}" in result.output
    assert f"{metrics['baselines']['naive_bayes_auc']:.3f}" in result.output
    assert "logistic regression" in result.output and "naive Bayes" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.joblib"]  # no partial file


def test_cli_train_that_fails_writes_nothing(generated_dir: Path, tmp_path: Path) -> None:
    one_class = shutil.copytree(generated_dir, tmp_path / "data")
    outcomes = pq.read_table(one_class / "outcomes.parquet")
    # leads never won are not won within any horizon: with only losses nothing is ever won
    lost = outcomes.filter(pa.compute.equal(outcomes["outcome"], "lost"))
    assert 0 < lost.num_rows < outcomes.num_rows
    pq.write_table(lost, one_class / "outcomes.parquet")
    target = tmp_path / "out"
    target.mkdir()
    out = target / "model.joblib"
    result = cli(["train", "--data", str(one_class), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "only one class" in result.output and "Traceback" not in result.output
    assert list(target.iterdir()) == []
    # an artefact already there is left as it was
    out.write_bytes(b"the previous artefact")
    result = cli(["train", "--data", str(one_class), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert out.read_bytes() == b"the previous artefact"
    assert list(target.iterdir()) == [out]


def test_cli_predict_writes_probabilities_and_reasons(
    generated_dir: Path, folder: Path, probabilities: dict[str, float], tmp_path: Path
) -> None:
    out = tmp_path / "p.csv"
    args = ["predict", str(folder / ARTEFACT), "--data", str(generated_dir), "--out", str(out)]
    result = cli([*args, "--as-of", "2026-01-01", "--reasons", "3"])
    assert result.exit_code == 0, result.output
    assert f"predicted 2,000 leads as of 2026-01-01T00:00:00 -> {out}" in result.output
    with out.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["lead_id", "probability", "reasons_up", "reasons_down"]
        got = list(reader)
    assert len(got) == 2000
    assert {r["lead_id"]: float(r["probability"]) for r in got} == pytest.approx(probabilities)
    ups = downs = 0
    for r in got:
        up = [t for t in r["reasons_up"].split("; ") if t]
        down = [t for t in r["reasons_down"].split("; ") if t]
        assert len(up) <= 3 and len(down) <= 3
        for text in up:
            match = REASON.match(text)
            assert match and match["pp"].startswith("+"), text
        for text in down:
            match = REASON.match(text)
            assert match and match["pp"].startswith("-"), text
        ups, downs = ups + len(up), downs + len(down)
    assert ups > 2000 and downs > 2000  # most leads have reasons both ways


def test_cli_score_with_a_hybrid_model(
    generated_dir: Path,
    folder: Path,
    rows: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the artefact is found next to the model, not here
    out = tmp_path / "scores.csv"
    ledger = tmp_path / "ledger.parquet"
    args = ["score", str(folder / "hybrid.yaml"), "--data", str(generated_dir)]
    result = cli([*args, "--as-of", "2026-01-01", "--out", str(out), "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    assert "scored 2000 leads with hybrid 1" in result.output
    with out.open(newline="") as f:
        got = {r["lead_id"]: (float(r["fit"]), float(r["total"])) for r in csv.DictReader(f)}
    assert got == {i: (r["fit"], r["total"]) for i, r in rows.items()}
    rules = set(pq.read_table(ledger, columns=["rule"])["rule"].to_pylist())
    assert {"likely", "possible", "unlikely"} <= rules


def test_cli_explain_and_check_with_a_hybrid_model(
    generated_dir: Path, folder: Path, rows: dict[str, dict[str, Any]]
) -> None:
    model = str(folder / "hybrid.yaml")
    result = cli(["check", model, "--data", str(generated_dir)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    lead_id = max(rows, key=lambda i: (rows[i]["total"], i))
    args = ["explain", model, "--data", str(generated_dir), "--lead", lead_id]
    result = cli([*args, "--as-of", "2026-01-01", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["total"] == rows[lead_id]["total"] and found["fit"] == 55
    assert {"likely", "possible"} <= {line["rule"] for line in found["ledger"]}


def test_cli_backtest_predicts_as_of_the_cutoff(
    generated_dir: Path, folder: Path, model: ScoringModel, data: Dataset
) -> None:
    cutoff = datetime(2025, 9, 1)
    args = ["backtest", str(folder / "hybrid.yaml"), "--data", str(generated_dir)]
    result = cli([*args, "--cutoff", "2025-09-01", "--horizon", "90d", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "hybrid" and report["truth"]["won"] > 0
    # the probability is what was known at the cut-off, not at the data's end (a leak)
    at_cutoff = backtest(model, enrich(data, model, cutoff)[0], cutoff, timedelta(days=90))
    at_end = backtest(model, enrich(data, model, AS_OF)[0], cutoff, timedelta(days=90))
    assert at_cutoff.auc != at_end.auc
    assert report["auc"] == at_cutoff.auc


def test_cli_check_names_a_missing_artefact(tmp_path: Path, generated_dir: Path) -> None:
    path = tmp_path / "hybrid.yaml"
    path.write_text(hybrid_source("gone.joblib"))
    for extra in ([], ["--data", str(generated_dir)]):
        result = cli(["check", str(path), *extra])
        assert result.exit_code == 2, result.output
        assert "prediction:" in result.output and "gone.joblib" in result.output
        assert "no such predictive model file" in result.output
        assert "Traceback" not in result.output
