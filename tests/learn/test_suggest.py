"""Suggested points: judged as a backtest judges them, readable, and refused when hopeless."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits
from typer.testing import CliRunner

from leadscore.api import score
from leadscore.cli import app
from leadscore.errors import DataError
from leadscore.evaluate.backtest import backtest
from leadscore.io import generate, load_dataset
from leadscore.io.mapping import packaged_mapping
from leadscore.learn import examples as ex
from leadscore.learn.features import Feature, build
from leadscore.learn.suggest import HOT, NoSignal, Suggestion, slug, suggest
from leadscore.model.loader import parse_model
from leadscore.schema import Dataset

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
LEADS = DATA / "x-education" / "Leads.csv"
OLIST = DATA / "olist-funnel"
EVIDENCE = re.compile(r"# evidence: .*?([\d.]+)% won with it vs ([\d.]+)% without")
CELL = re.compile(
    r"# evidence: ([\d.]+)% of the ([\d,]+) training examples .* \(base rate ([\d.]+)%\)"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # BLAS and OpenMP workers spin while they wait for busy cores: one thread is faster here
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def x_education() -> Dataset:
    return load_dataset(LEADS, mapping=packaged_mapping("x-education"))


@pytest.fixture(scope="module")
def x_suggested(x_education: Dataset) -> Suggestion:
    return suggest(x_education, name="x-suggested")


@pytest.fixture(scope="module")
def olist() -> Dataset:
    return load_dataset(OLIST, mapping=packaged_mapping("olist-funnel"))


@pytest.fixture(scope="module")
def olist_suggested(olist: Dataset) -> Suggestion:
    return suggest(olist, name="olist-suggested")


def _readable(found: Suggestion) -> None:
    """What a committee can read: signs that agree with the evidence, round thresholds,
    routing that only sends cells converting above the base rate to sales."""
    for r in found.rules:
        assert np.sign(r.points) == np.sign(r.won_with - r.won_without), r
    # thresholds on one field all earn points: its points rise monotonically with the field
    for r in found.rules:
        if r.feature.kind in ("at_least", "below", "value_at_least", "value_below"):
            assert r.points > 0, r
    model = parse_model(found.yaml, "suggested.yaml")
    points = {r.name: r.points for r in [*model.fit.rules, *model.behaviour.rules]}  # type: ignore[union-attr]
    commented = re.findall(
        r"# evidence: [\d,]+ training examples, ([\d.]+)% won with it vs ([\d.]+)% without\n"
        r"\s*- name: (\S+)",
        found.yaml,
    )
    assert len(commented) == len(found.rules)
    for won_with, won_without, name in commented:
        if won_with != won_without:  # equal when rounded to the comment's one decimal
            assert np.sign(points[name]) == np.sign(float(won_with) - float(won_without)), name
    assert model.fit is not None
    for band in [*model.fit.grades, *model.engagement]:
        if band.min is not None:
            assert band.min >= 0 and float(band.min) == round(float(band.min), 1)
    cells = CELL.findall(found.yaml)
    routed = [r for r in model.routing if r.when.grade]
    assert len(cells) == len(routed)
    for rate, _, base in cells:
        assert float(rate) > float(base)
    hot = sum(
        int(n.replace(",", ""))
        for (_, n, _), r in zip(cells, routed, strict=True)
        if r.temperature == "hot"
    )
    assert hot <= HOT * found.train_leads + 1


def test_x_education_stays_at_its_figures(x_suggested: Suggestion, x_education: Dataset) -> None:
    found = x_suggested
    assert found.holdout_auc_points is not None and found.holdout_auc_points >= 0.890
    assert found.holdout_auc_points > found.baselines["naive_bayes_auc"]
    assert (found.train_leads, found.holdout_leads) == (7392, 1848)  # 20 %, stratified
    assert found.frame.split == "stratified" and found.backtest is None
    assert len(found.rules) <= 40
    _readable(found)
    # the engine scores exactly the regression's integer points, on every lead
    model = parse_model(found.yaml, "suggested.yaml")
    features = build(x_education, ex.examples(x_education, found.frame))
    columns = [features.names.index(r.feature.name) for r in found.rules]
    expected = features.X[:, columns] @ np.array([r.points for r in found.rules])
    when = found.frame.cutoffs[0]
    rows = score(model, x_education, when).table.to_pyarrow().to_pylist()
    totals = {r["lead_id"]: r["total"] for r in rows}
    assert np.allclose([totals[i] for i in features.lead_ids], expected)
    assert not any("differ" in n for n in found.notes)


def test_the_printed_figure_is_the_backtest_of_the_written_model(
    olist_suggested: Suggestion, olist: Dataset
) -> None:
    found = olist_suggested
    fr = found.frame
    assert fr.split == "time" and fr.evaluation is not None
    run = backtest(parse_model(found.yaml, "s.yaml"), olist, fr.evaluation, fr.horizon)
    assert run.auc is not None and found.holdout_auc_points is not None
    assert found.holdout_auc_points == pytest.approx(run.auc, abs=1e-12)
    assert found.holdout_leads == run.truth.leads
    # at least as good as a plain logistic regression on the same as-of features
    assert found.holdout_auc_points >= found.baselines["logistic_auc"]
    assert found.base_rates["holdout"] != found.base_rates["training"]
    _readable(found)


def test_readable_names_keep_their_meaning() -> None:
    below = Feature("emp.var.rate < -1.8", "below", "emp.var.rate", threshold=-1.8)
    assert slug(below) == "emp_var_rate_below_minus_1.8"
    above = Feature("employees >= 50", "at_least", "employees", threshold=50)
    assert slug(above) == "employees_50_or_more"
    recent = Feature("demo in the last 7 days", "recent", "demo", days=7)
    assert slug(recent) == "demo_last_7_days"


def test_at_most_the_requested_rules(x_education: Dataset) -> None:
    assert len(suggest(x_education, rules=6).rules) <= 6


def test_the_same_data_suggests_the_same_model(tmp_path: Path) -> None:
    generate(4000, seed=2, out=tmp_path / "data")
    data = load_dataset(tmp_path / "data")
    first, second = suggest(data, seed=7), suggest(data, seed=7)
    assert first.yaml == second.yaml


def test_no_holdout_learns_from_every_example(olist: Dataset) -> None:
    found = suggest(olist, holdout=0)
    assert found.holdout_auc_points is None and found.holdout_leads == 0
    assert found.frame.split == "none"
    assert any("no holdout" in n for n in found.notes)
    parse_model(found.yaml, "s.yaml")


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _fields_only(directory: Path, plans: list[str], won: list[bool]) -> Dataset:
    directory.mkdir()
    _csv(directory / "leads.csv", ["lead_id", "plan"], [[f"L{i}", p] for i, p in enumerate(plans)])
    _csv(
        directory / "outcomes.csv",
        ["lead_id", "outcome", "ts"],
        [[f"L{i}", "won" if w else "lost", "2025-03-01T00:00:00"] for i, w in enumerate(won)],
    )
    return load_dataset(directory)


def test_data_with_no_signal_writes_no_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    plans = [str(p) for p in rng.choice(["basic", "pro", "team"], 3000)]
    won = [bool(w) for w in rng.random(3000) < 0.3]
    with pytest.raises(NoSignal, match=r"^no signal: holdout AUC 0\.\d\d .*no model was written"):
        suggest(_fields_only(tmp_path / "noise", plans, won))


def test_a_fields_only_export_learns_or_names_what_is_missing(tmp_path: Path) -> None:
    plans = ["pro" if i % 3 else "basic" for i in range(600)]
    won = [p == "pro" and i % 2 == 0 for i, p in enumerate(plans)]
    found = suggest(_fields_only(tmp_path / "fields", plans, won))
    assert [r.feature.name for r in found.rules] and all(r.feature.fit for r in found.rules)
    with pytest.raises(DataError, match="no lead field that describes leads and no events"):
        suggest(_fields_only(tmp_path / "constant", ["pro"] * 600, won))


def test_the_cli_prints_the_backtest_it_equals(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s.yaml"
    args = ["--data", str(OLIST), "--mapping", "olist-funnel"]
    page = tmp_path / "suggested.html"
    made = runner.invoke(
        app, ["suggest", *args, "--out", str(out), "--rules", "10", "--report", str(page)]
    )
    assert made.exit_code == 0, made.output
    html = page.read_text(encoding="utf-8")
    assert "Calibration" in html and "backtest" in html.lower() and "evidence" in html.lower()
    text = " ".join(made.output.split())
    printed = re.search(r"held-out examples: AUC (0\.\d{3})", text)
    line = re.search(
        r"= leadscore backtest \S+ --cutoff (\S+) --horizon (\S+): AUC (0\.\d{3})", text
    )
    assert printed and line and printed.group(1) == line.group(3)
    judged = runner.invoke(
        app, ["backtest", str(out), *args, "--cutoff", line.group(1), "--horizon", line.group(2)]
    )
    assert judged.exit_code == 0, judged.output
    assert f"AUC {printed.group(1)}" in judged.output


def test_the_cli_refuses_a_hopeless_fit_and_writes_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    plans = [str(p) for p in rng.choice(["basic", "pro", "team"], 3000)]
    won = [bool(w) for w in rng.random(3000) < 0.3]
    _fields_only(tmp_path / "noise", plans, won)
    out = tmp_path / "s.yaml"
    done = CliRunner().invoke(
        app, ["suggest", "--data", str(tmp_path / "noise"), "--out", str(out)]
    )
    assert done.exit_code == 2 and "no signal" in done.output and not out.exists()
    assert "Traceback" not in done.output
