"""docs/evaluation.md: the learning figures are the ones suggest and train give today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leadscore.io import load_dataset
from leadscore.io.mapping import packaged_mapping
from leadscore.learn.predictive import train
from leadscore.learn.suggest import suggest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
DOC = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
CASES = {
    "X Education": ("x-education/Leads.csv", "x-education", frozenset()),
    "Online shoppers": (
        "online-shoppers/online_shoppers_intention.csv",
        "online-shoppers",
        frozenset(),
    ),
    "Online shoppers without `page_value`": (
        "online-shoppers/online_shoppers_intention.csv",
        "online-shoppers",
        frozenset({"page_value"}),
    ),
}


def _row(label: str) -> list[str]:
    """The cells of the predictive table's row for this data."""
    pattern = rf"^\| {re.escape(label)} \| [\d,]+ \| \*\*0\.\d+\*\* \|.*$"
    rows = [
        [c.strip().strip("*") for c in found.group(0).strip("|").split("|")]
        for found in re.finditer(pattern, DOC, re.M)
    ]
    # the predictive table is the one with Brier score and lift (9 columns)
    rows = [r for r in rows if len(r) == 9]
    assert len(rows) == 1, f"no single row for {label} in the predictive table"
    return rows[0]


@pytest.mark.parametrize("label", list(CASES))
def test_documented_learning_figures_are_reproduced(label: str) -> None:
    path, mapping, exclude = CASES[label]
    data = load_dataset(DATA / path, mapping=packaged_mapping(mapping))
    points = suggest(data, exclude=exclude)
    predictor = train(data, exclude=exclude)
    m = predictor.metrics
    cells = _row(label)
    assert cells[1] == f"{predictor.training['holdout_leads']:,}" == f"{points.holdout_leads:,}"
    assert cells[2] == f"{m['holdout_auc']:.3f}"
    assert cells[3] == f"{points.holdout_auc_points:.3f}"
    assert cells[4] == f"{m['baselines']['logistic_auc']:.3f}"
    assert cells[5] == f"{m['baselines']['naive_bayes_auc']:.3f}"
    assert cells[6] == f"{m['brier']:.3f}"
    assert cells[7] == f"{m['top_decile_lift']:.2f}"
    # the suggested points and the predictive model are judged on the same leads
    assert points.baselines["naive_bayes_auc"] == pytest.approx(m["baselines"]["naive_bayes_auc"])
    # both beat naive Bayes
    assert m["holdout_auc"] > m["baselines"]["naive_bayes_auc"]
    assert points.holdout_auc_points > m["baselines"]["naive_bayes_auc"]
    if label == "X Education":
        assert m["holdout_auc"] >= 0.90  # the targets
        assert points.holdout_auc_points >= 0.86
