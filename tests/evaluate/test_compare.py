"""Comparing two models counts exactly the leads that change, and backtests both alike."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from leadscore.api import score
from leadscore.evaluate.backtest import backtest
from leadscore.evaluate.compare import compare
from leadscore.io import generate, load_dataset
from leadscore.model import load_model, parse_model

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(2000, seed=4, out=out, as_of=AS_OF)
    return out


def test_changes_are_counted_lead_by_lead(data_dir: Path) -> None:
    data = load_dataset(data_dir)
    current = load_model(MODELS / "starter.yaml")
    source = (MODELS / "starter.yaml").read_text()
    candidate = parse_model(
        source.replace('version: "1.0"', 'version: "2.0"').replace(
            "when: {min_total: 40}", "when: {min_total: 30}"
        )
    )
    report = compare(current, candidate, data, AS_OF, cutoff=datetime(2025, 10, 1))
    a = {r["lead_id"]: r for r in score(current, data, AS_OF).table.to_pyarrow().to_pylist()}
    b = {r["lead_id"]: r for r in score(candidate, data, AS_OF).table.to_pyarrow().to_pylist()}
    changed = [
        i for i in a if (a[i]["stage"], a[i]["temperature"]) != (b[i]["stage"], b[i]["temperature"])
    ]
    assert report["leads"] == len(a) == 2000
    assert report["changed"] == len(changed) > 0
    assert report["stage_moves"] == [{"from": "nurture", "to": "MQL", "leads": len(changed)}]
    assert report["changed_per"] == "grade"  # the starter model has no matrix
    assert sum(r["leads"] for r in report["changed_per_band"]) == len(changed)
    assert all(e["lead_id"] in changed for e in report["examples"])
    metrics = report["backtest"]["metrics"]
    assert metrics[0]["auc"] == backtest(current, data, datetime(2025, 10, 1)).auc
    # a lower MQL bar hands more leads over
    assert metrics[1]["thresholds"][1]["leads"] > metrics[0]["thresholds"][1]["leads"]


def test_a_model_compared_with_itself_changes_nothing(data_dir: Path) -> None:
    data = load_dataset(data_dir)
    model = load_model(MODELS / "fit-engagement.yaml")
    report = compare(model, model, data, AS_OF)
    assert report["changed"] == 0 and report["stage_moves"] == [] and "backtest" not in report
