"""Hybrid models in the service: the artefact is found in --artefacts, loaded at upload (422 when
it cannot be), and every stored score reads the probability the batch path computes."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_limits

from hybridkit import ARTEFACT, HYBRID, fit_points
from leadscore import api
from leadscore.errors import LeadscoreError
from leadscore.io import generate, load_dataset
from leadscore.learn.predictive import Predictor, predict_records, save, train
from leadscore.model.loader import load_model
from leadscore.schema import Dataset
from leadscore.service.app import Service, Settings, create_app
from servicekit import T0, ManualClock, Running, running_service

GENERATED_AS_OF = datetime(2026, 1, 1)
# fields the service takes as columns of a lead; the others travel as attributes
LEAD_COLUMNS = {
    "job_title",
    "industry",
    "employees",
    "annual_revenue",
    "country",
    "source",
    "stage",
}
EVENT_FIELDS = ("url", "asset", "campaign", "channel", "content_stage", "topic", "value")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    # Gradient boosting's OpenMP threads spin when the machine is busy; one is fast enough.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    out = tmp_path_factory.mktemp("hybrid-service-data")
    generate(1500, seed=33, out=out, as_of=GENERATED_AS_OF)
    return load_dataset(out)


@pytest.fixture(scope="module")
def predictor(data: Dataset) -> Predictor:
    # the service here is sent leads and events, no accounts: the predictor learns without
    # account fields, so both paths read the same inputs
    without_accounts = dataclasses.replace(data, accounts=None)
    return train(without_accounts, name="service-predictive", baselines=False, seed=42)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory, predictor: Predictor) -> Path:
    out = tmp_path_factory.mktemp("artefacts")
    save(predictor, out / ARTEFACT)
    return out


@pytest.fixture
def running(artefacts: Path, tmp_path: Path) -> Iterator[Running]:
    """The service on a fresh SQLite file, artefacts in their own folder, manual clock."""
    clock = ManualClock()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/leadscore.db", rescore_interval=0, artefacts=artefacts
    )
    with running_service(settings, clock) as running:
        yield running


# --- helpers -----------------------------------------------------------------------------------


def _lead_bodies(data: Dataset, ids: list[str]) -> list[dict[str, Any]]:
    leads = data.leads.filter(data.leads.lead_id.isin(ids)).to_pyarrow().to_pylist()
    fields = [c for c in data.leads.columns if c in LEAD_COLUMNS]
    extra = ("segment", "age_band", "purchasing_power")
    out = []
    for row in leads:
        body: dict[str, Any] = {"lead_id": row["lead_id"]}
        body.update({f: row[f] for f in fields if row[f] is not None})
        body["attributes"] = {f: row[f] for f in extra if row[f] is not None}
        out.append(body)
    return out


def _event_bodies(data: Dataset, ids: list[str]) -> list[dict[str, Any]]:
    ev = data.events
    rows = ev.filter(ev.lead_id.isin(ids)).order_by("event_id").to_pyarrow().to_pylist()
    out = []
    for row in rows:
        body: dict[str, Any] = {
            "event_id": row["event_id"],
            "lead_id": row["lead_id"],
            "type": row["type"],
            "ts": row["ts"].isoformat() + "Z",
        }
        body.update({f: row[f] for f in EVENT_FIELDS if row[f] is not None})
        out.append(body)
    return out


def _record(body: dict[str, Any]) -> dict[str, Any]:
    """A lead as the service hands it to the engine: attributes read like fields."""
    return {**{k: v for k, v in body.items() if k != "attributes"}, **body["attributes"]}


def _as_records(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "ts": datetime.fromisoformat(e["ts"].removesuffix("Z"))} for e in events]


def _publish(running: Running) -> int:
    """Upload and publish HYBRID (201, 202) and wait for its rescoring job."""
    r = running.admin.post(
        "/v1/models", content=HYBRID, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    model_id = int(r.json()["id"])
    assert running.admin.post(f"/v1/models/{model_id}/publish").status_code == 202
    # generous: gradient boosting's OpenMP threads crawl on a machine busy with other work
    running.wait_idle(timeout=120)
    return model_id


def _stored(running: Running, lead_id: str) -> dict[str, Any]:
    r = running.admin.get(f"/v1/leads/{lead_id}")
    assert r.status_code == 200, r.text
    score: dict[str, Any] = r.json()["score"]
    return score


# --- tests -------------------------------------------------------------------------------------


def test_stored_scores_read_the_predicted_probability(
    running: Running, data: Dataset, predictor: Predictor, artefacts: Path, tmp_path: Path
) -> None:
    # the batch path with the same artefact, as of the service's instant
    path = tmp_path / "hybrid.yaml"
    path.write_text(HYBRID)
    shutil.copyfile(artefacts / ARTEFACT, tmp_path / ARTEFACT)  # the same file, next to the model
    batch = api.score(load_model(path), data, T0)
    rows = batch.table.order_by("lead_id").to_pyarrow().to_pylist()
    # ten leads of each band of the predicted probability
    per_band: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        per_band.setdefault(row["fit"], []).append(row)
    assert set(per_band) == {55.0, 15.0, 0.0, -10.0}
    expected = {r["lead_id"]: r for band in per_band.values() for r in band[:10]}
    ids = sorted(expected)

    leads = _lead_bodies(data, ids)
    events = _event_bodies(data, ids)
    assert any(e["type"] == "demo_request" for e in events)
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    for start in range(0, len(events), 1000):
        part = events[start : start + 1000]
        r = running.tracking.post("/v1/events/batch", json={"events": part})
        assert r.status_code == 200 and len(r.json()["accepted"]) == len(part), r.text
    running.wait_idle()
    # published once the data is in: one rescoring job predicts every lead at once
    model_id = _publish(running)

    # what was sent, through the records path and the bands by hand
    records = [_record(lead) for lead in leads]
    chances = predict_records(predictor, records, _as_records(events), T0)
    for lead, p in zip(records, chances, strict=True):
        got = _stored(running, lead["lead_id"])
        want = expected[lead["lead_id"]]
        assert got["fit"] == fit_points(float(p)) == want["fit"], (lead["lead_id"], p)
        assert got["total"] == want["total"] and got["grade"] == want["grade"], lead["lead_id"]
        assert got["model_id"] == model_id and got["model_version"] == "1"


def test_a_new_event_is_predicted_again(
    running: Running, data: Dataset, predictor: Predictor
) -> None:
    # a lead without a demo request: asking for one moves its probability and its behaviour
    ev = data.events
    with_demo = ev.filter(ev.type == "demo_request").lead_id
    candidates = data.leads.filter(~data.leads.lead_id.isin(with_demo)).lead_id
    lead_id = candidates.to_pyarrow().to_pylist()[0]
    (lead,) = _lead_bodies(data, [lead_id])
    assert running.admin.put(f"/v1/leads/{lead_id}", json=lead).status_code == 200
    events = _event_bodies(data, [lead_id])
    if events:
        r = running.tracking.post("/v1/events/batch", json={"events": events})
        assert r.status_code == 200, r.text
    _publish(running)
    record = _record(lead)
    (before,) = predict_records(predictor, [record], _as_records(events), T0)
    assert _stored(running, lead_id)["fit"] == fit_points(float(before))

    demo = {
        "event_id": f"{lead_id}-demo",
        "lead_id": lead_id,
        "type": "demo_request",
        "ts": (T0 - timedelta(hours=1)).isoformat() + "Z",
    }
    r = running.tracking.post("/v1/events", json=demo)
    assert r.status_code == 200, r.text
    score = running.admin.get(f"/v1/leads/{lead_id}/score").json()["score"]  # admins read it
    (after,) = predict_records(predictor, [record], _as_records([*events, demo]), T0)
    # the stored score is the one predicted with the new event (one demo request may or may
    # not move the probability: the predictor learnt what it learnt)
    assert score["fit"] == fit_points(float(after))
    assert score["behaviour"] == 25.0 and score["total"] == score["fit"] + 25.0


def test_an_artefact_that_cannot_be_loaded_is_refused_at_upload(
    running: Running, artefacts: Path, tmp_path: Path
) -> None:
    missing = HYBRID.replace(f"artefact: {ARTEFACT}", "artefact: nowhere.joblib")
    r = running.admin.post(
        "/v1/models", content=missing, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert f"{artefacts / 'nowhere.joblib'}: no such predictive model file" in detail
    assert running.admin.get("/v1/models").json() == {"active": None, "items": []}

    # a file that is no artefact: refused without a word of its content
    (artefacts / "garbage.joblib").write_text("postgresql://leadscore:s3cret@db/leadscore\n")
    garbage = HYBRID.replace(f"artefact: {ARTEFACT}", "artefact: garbage.joblib")
    r = running.admin.post(
        "/v1/models", content=garbage, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 422, r.text
    assert "garbage.joblib" in r.json()["detail"]
    assert "not a leadscore predictive model" in r.json()["detail"]
    assert "s3cret" not in r.json()["detail"] and "postgresql" not in r.json()["detail"]
    assert running.admin.get("/v1/models").json()["items"] == []

    # an artefact outside the --artefacts folder is never loaded (unpickling runs code):
    # absolute paths, `..` and symbolic links that lead out are refused
    shutil.copyfile(artefacts / ARTEFACT, tmp_path / "elsewhere.joblib")
    (artefacts / "link.joblib").symlink_to(tmp_path / "elsewhere.joblib")
    for path in (tmp_path / "elsewhere.joblib", f"../{tmp_path.name}/elsewhere.joblib"):
        outside = HYBRID.replace(f"artefact: {ARTEFACT}", f"artefact: {path}")
        r = running.admin.post(
            "/v1/models", content=outside, headers={"content-type": "application/yaml"}
        )
        assert r.status_code == 422, r.text
        assert "must be a path inside the artefacts folder" in r.json()["detail"]
    linked = HYBRID.replace(f"artefact: {ARTEFACT}", "artefact: link.joblib")
    r = running.admin.post(
        "/v1/models", content=linked, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 422, r.text
    assert "leads outside the artefacts folder" in r.json()["detail"]
    assert running.admin.get("/v1/models").json()["items"] == []
    # inside the folder, in a subfolder too, is fine
    (artefacts / "sub").mkdir(exist_ok=True)
    shutil.copyfile(artefacts / ARTEFACT, artefacts / "sub" / ARTEFACT)
    inside = HYBRID.replace(f"artefact: {ARTEFACT}", f"artefact: sub/{ARTEFACT}")
    r = running.admin.post(
        "/v1/models", content=inside, headers={"content-type": "application/yaml"}
    )
    assert r.status_code == 201, r.text
    assert [m["status"] for m in running.admin.get("/v1/models").json()["items"]] == ["draft"]


def test_serve_with_a_model_whose_artefact_is_missing_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "hybrid.yaml"
    path.write_text(HYBRID.replace(f"artefact: {ARTEFACT}", "artefact: gone.joblib"))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/leadscore.db", rescore_interval=0, artefacts=tmp_path
    )
    service = Service(settings, ManualClock())
    try:
        with pytest.raises(LeadscoreError, match=r"gone\.joblib"):
            create_app(settings, model=path, service=service)
    finally:
        with service.store.read() as conn:
            published = conn.exec_driver_sql(
                "SELECT count(*) FROM models WHERE status = 'published'"
            ).scalar()
        service.stop()
    assert published == 0
