"""Evaluation endpoints give what the evaluate layer gives on the same data as files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from leadscore.evaluate.backtest import backtest
from leadscore.evaluate.channels import channels
from leadscore.io import generate, load_dataset
from leadscore.io.generate import generate_tables
from leadscore.model import load_model
from leadscore.store import records
from servicekit import MODELS, Running

AS_OF = datetime(2026, 1, 1)
CUSTOM = ("segment", "age_band", "purchasing_power")


def load_store(running: Running, tables: dict[str, Any]) -> None:
    leads = [
        {
            **{k: v for k, v in r.items() if k not in CUSTOM},
            "attributes": {k: r[k] for k in CUSTOM if r[k] is not None},
        }
        for r in tables["leads"].to_pylist()
    ]
    with running.service.store.write() as conn:
        records.upsert_accounts(conn, tables["accounts"].to_pylist(), AS_OF)
        records.upsert_leads(conn, leads, AS_OF)
        records.insert_events(conn, tables["events"].to_pylist(), AS_OF)
        for outcome in tables["outcomes"].to_pylist():
            records.add_outcome(conn, outcome, AS_OF)


def test_backtest_and_channels_match_the_files(running: Running, tmp_path: Path) -> None:
    source = (MODELS / "committee.yaml").read_text()
    running.publish(source)
    load_store(running, generate_tables(600, seed=21, as_of=AS_OF))
    generate(600, seed=21, as_of=AS_OF, out=tmp_path / "data")
    files = load_dataset(tmp_path / "data")
    model = load_model(MODELS / "committee.yaml")

    r = running.admin.get("/v1/evaluate/backtest", params={"cutoff": "2025-10-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    expected = json.loads(json.dumps(backtest(model, files, datetime(2025, 10, 1)).as_dict()))
    assert r.json() == {**expected, "conversions": []}

    r = running.admin.get("/v1/evaluate/channels", params={"as_of": "2026-01-01T00:00:00"})
    assert r.status_code == 200, r.text
    expected = json.loads(json.dumps(channels(model, files, AS_OF).as_dict(), default=str))
    got = r.json()["sources"]
    assert [row["value"] for row in got] == [row["value"] for row in expected["sources"]]
    for mine, theirs in zip(got, expected["sources"], strict=True):
        # means summed in another order differ in the last bits
        assert mine == {
            k: pytest.approx(v) if isinstance(v, float) else v for k, v in theirs.items()
        }

    r = running.admin.get("/v1/evaluate/capacity", params={"per_week": 5, "cutoff": "2025-10-01"})
    assert r.status_code == 200 and r.json()["leads_per_week"] <= 5

    draft = running.admin.post(
        "/v1/models",
        content=source.replace('version: "1.0"', 'version: "1.1"'),
        headers={"content-type": "application/yaml"},
    ).json()["id"]
    r = running.admin.get("/v1/evaluate/compare", params={"candidate": draft})
    assert r.status_code == 200 and r.json()["changed"] == 0


def test_bad_evaluation_requests_say_what_is_missing(running: Running) -> None:
    r = running.admin.get("/v1/evaluate/backtest", params={"cutoff": "2025-10-01"})
    assert r.status_code == 409 and "no model is published" in r.json()["detail"]
    running.publish((MODELS / "starter.yaml").read_text())
    r = running.admin.get("/v1/evaluate/backtest", params={"cutoff": "2025-10-01"})
    assert r.status_code == 422 and "outcomes" in r.json()["detail"]
    r = running.admin.get("/v1/evaluate/backtest", params={"cutoff": "soon"})
    assert r.status_code == 422 and "cutoff" in r.json()["detail"]
    r = running.admin.get("/v1/evaluate/compare", params={"candidate": 99})
    assert r.status_code == 404
    assert running.tracking.get("/v1/evaluate/channels").status_code == 403


# (typed, meant): the forms files accept, an offset after a space among them
INSTANTS = [
    ("2025-10-01 02:00:00 +02:00", "2025-10-01T00:00:00"),
    ("2025-10-01T05:30+05:30:00", "2025-10-01T00:00:00"),
    ("2025-10-1 00:00 UTC", "2025-10-01T00:00:00"),
    ("2025-09-30T24:00", "2025-10-01T00:00:00"),
]
# what files refuse: zone names, Unix time (which pydantic reads), other ISO 8601 forms, year 0
REFUSED = [
    "2025-10-01 00:00 CET",
    "2025-10-01 00:00 Europe/Berlin",
    "1759276800",
    "20251001",
    "0001-01-01T00:00:00+01:00",
]


def test_evaluation_instants_follow_the_timestamp_rule_of_files(running: Running) -> None:
    source = (MODELS / "starter.yaml").read_text()
    running.publish(source)
    load_store(running, generate_tables(200, seed=21, as_of=AS_OF))
    draft = running.admin.post(
        "/v1/models",
        content=source.replace('version: "1.0"', 'version: "1.1"'),
        headers={"content-type": "application/yaml"},
    ).json()["id"]
    routes: list[tuple[str, dict[str, Any], str, Any]] = [
        ("backtest", {}, "cutoff", lambda a: a["cutoff"]),
        ("capacity", {"per_week": 5}, "cutoff", lambda a: a["cutoff"]),
        ("channels", {}, "as_of", lambda a: a["as_of"]),
        ("compare", {"candidate": draft}, "cutoff", lambda a: a["backtest"]["cutoff"]),
    ]
    for route, params, name, echoed in routes:
        # every form on one route (each call evaluates every lead), one on the others
        for typed, meant in INSTANTS if route == "channels" else INSTANTS[:1]:
            r = running.admin.get(f"/v1/evaluate/{route}", params={**params, name: typed})
            assert r.status_code == 200, (route, typed, r.text)
            assert echoed(r.json()) == meant, (route, typed)
        for typed in REFUSED:
            r = running.admin.get(f"/v1/evaluate/{route}", params={**params, name: typed})
            assert r.status_code == 422, (route, typed, r.text)
            [problem] = r.json()["errors"]
            assert problem["in"] == "query" and problem["field"] == name
            assert repr(typed) in problem["message"]
            assert "accepted: a date (2026-03-01)" in problem["message"]
            assert "no zone names such as CET" in problem["message"]
