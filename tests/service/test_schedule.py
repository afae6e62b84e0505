"""The scheduler rescores as of now with the same results as `leadscore score` for that instant."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.io.generate import generate, generate_tables
from servicekit import MODELS, Running

AS_OF = datetime(2026, 1, 1)
CUSTOM = ("segment", "age_band", "purchasing_power")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}


def load(running: Running, tables: dict[str, Any]) -> None:
    """Send the generated tables through the REST API."""
    accounts = [_jsonable(r) for r in tables["accounts"].to_pylist()]
    leads = []
    for r in tables["leads"].to_pylist():
        row = _jsonable(r)
        attributes = {k: row.pop(k) for k in CUSTOM}
        leads.append({**row, "attributes": {k: v for k, v in attributes.items() if v is not None}})
    events = [_jsonable(r) for r in tables["events"].to_pylist()]
    assert running.admin.post("/v1/accounts", json={"accounts": accounts}).status_code == 200
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    for start in range(0, len(events), 2000):
        r = running.tracking.post("/v1/events/batch", json={"events": events[start : start + 2000]})
        assert r.status_code == 200 and not r.json()["rejected"], r.text
    running.wait_idle()


def cli_scores(model: Path, data: Path, as_of: datetime, out: Path) -> dict[str, dict[str, str]]:
    result = CliRunner().invoke(
        app,
        ["score", str(model), "--data", str(data), "--as-of", as_of.isoformat(), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        return {row["lead_id"]: row for row in csv.DictReader(f)}


def same(ours: Any, theirs: str) -> bool:
    if ours is None:
        return theirs == ""
    if isinstance(ours, bool):
        return str(ours).lower() == theirs.lower()
    if isinstance(ours, float):
        return theirs != "" and round(ours, 2) == round(float(theirs), 2)
    return str(ours) == theirs


@pytest.mark.parametrize("model_name", ["committee.yaml", "fit-engagement.yaml"])
def test_scheduled_rescoring_equals_leadscore_score(
    running: Running, tmp_path: Path, model_name: str
) -> None:
    tables = generate_tables(150, seed=3, as_of=AS_OF)
    generate(150, seed=3, as_of=AS_OF, out=tmp_path / "data", format="csv")
    running.clock.set(AS_OF - timedelta(days=30))
    load(running, tables)
    running.publish((MODELS / model_name).read_text())
    when = AS_OF + timedelta(days=3, hours=5)
    running.clock.set(when)  # decay and inactivity moved on: no event since
    assert running.admin.post("/v1/rescore").status_code == 202
    running.wait_idle()
    theirs = cli_scores(MODELS / model_name, tmp_path / "data", when, tmp_path / "s.csv")
    items = running.admin.get("/v1/leads", params={"limit": 1000}).json()["items"]
    assert len(items) == len(theirs) == 150
    columns = ("total", "fit", "behaviour", "account", "grade", "engagement", "cell")
    columns += ("temperature", "stage", "queue", "sla_hours", "priority", "account_score")
    for item in items:
        ours = running.admin.get(f"/v1/leads/{item['lead_id']}").json()["score"]
        assert ours["as_of"] == when.isoformat()
        row = theirs[item["lead_id"]]
        wrong = {c: (ours[c], row[c]) for c in columns if not same(ours[c], row[c])}
        assert not wrong, (item["lead_id"], wrong)
        interests = {
            k.removeprefix("interest_"): v for k, v in row.items() if k.startswith("interest_")
        }
        assert all(same(ours["interests"].get(k), v) for k, v in interests.items()), (ours, row)
    history = running.admin.get(f"/v1/leads/{items[0]['lead_id']}/history").json()["items"]
    assert {h["cause"] for h in history} <= {"lead", "account", "event", "job", "schedule"}
    assert json.dumps(history)  # plain JSON
