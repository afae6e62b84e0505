"""Events in: scored before the response (single) or within a second (batch), idempotent,
out-of-order and late events scored as if they had arrived in order."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import Any

from leadscore.engine.reference import score_many
from leadscore.model import load_model
from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()
CEO = {"lead_id": "L1", "job_title": "CEO", "employees": 500, "industry": "Software"}


def event(i: int, lead: str = "L1", kind: str = "page_view", **kw: Any) -> dict[str, Any]:
    ts = kw.pop("ts", T0 - timedelta(days=10, hours=i))
    return {
        "event_id": f"{lead}-e{i}",
        "lead_id": lead,
        "type": kind,
        "ts": ts.isoformat() + "Z",
        **kw,
    }


def expected(
    leads: list[dict[str, Any]], events: list[dict[str, Any]], as_of: datetime
) -> dict[str, float]:
    """Totals the engine's reference evaluator gives for the same data (the oracle)."""
    model = load_model(MODELS / "starter.yaml")
    evs = [{**e, "ts": datetime.fromisoformat(e["ts"].removesuffix("Z"))} for e in events]
    return {s.lead_id: s.total for s in score_many(model, leads, evs, as_of)}


def stored_total(running: Running, lead_id: str) -> float | None:
    body = running.admin.get(f"/v1/leads/{lead_id}").json()
    return body["score"]["total"] if body["score"] else None


def test_a_single_event_is_scored_before_the_response(running: Running) -> None:
    running.publish(STARTER)
    assert running.admin.put("/v1/leads/L1", json=CEO).status_code == 200
    r = running.admin.post("/v1/events", json=event(1, url="/pricing"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == ["L1-e1"] and body["duplicates"] == [] and body["rejected"] == []
    assert body["score"]["total"] == expected([CEO], [event(1, url="/pricing")], T0)["L1"]
    assert body["score"]["behaviour"] > 0 and body["score"]["model_version"] == "1.0"
    history = running.admin.get("/v1/leads/L1/history").json()["items"]
    assert history[0]["cause"] == "event" and history[0]["cause_id"] == "L1-e1"


def test_a_duplicate_event_counts_once(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/leads/L1", json=CEO)
    first = running.admin.post("/v1/events", json=event(1, kind="demo_request")).json()
    again = running.admin.post("/v1/events", json=event(1, kind="demo_request")).json()
    assert first["accepted"] == ["L1-e1"]
    assert again["accepted"] == [] and again["duplicates"] == ["L1-e1"]
    assert again["score"]["total"] == first["score"]["total"]
    batch = running.tracking.post(
        "/v1/events/batch", json={"events": [event(1, kind="demo_request"), event(2), event(2)]}
    ).json()
    assert batch["accepted"] == ["L1-e2"]
    assert batch["duplicates"] == ["L1-e1", "L1-e2"]


def test_a_batch_is_scored_by_the_worker_without_being_asked(running: Running) -> None:
    # How soon (within a second) is measured in benchmarks/service.py, not here.
    running.publish(STARTER)
    leads = [{**CEO, "lead_id": f"L{i}"} for i in range(50)]
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    running.wait_idle()
    events = [event(i, lead=f"L{i % 50}", kind="webinar_attended") for i in range(200)]
    sent = time.monotonic()
    r = running.tracking.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 200 and len(r.json()["accepted"]) == 200
    want = expected(leads, events, T0)
    while True:
        got = {
            item["lead_id"]: item["total"]
            for item in running.admin.get("/v1/leads", params={"limit": 100}).json()["items"]
        }
        if got == want:
            break
        assert time.monotonic() - sent < 30, "batch scores never became current"
        time.sleep(0.02)


def test_out_of_order_and_late_events_give_the_in_order_score(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/leads/L1", json=CEO)
    kinds = ["page_view", "download", "email_click", "form_submit", "webinar_attended"]
    events = [
        event(i, kind=kinds[i % len(kinds)], url="/pricing" if i % 3 == 0 else "/blog")
        for i in range(30)
    ]
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    for part in (shuffled[:10], shuffled[10:25]):
        running.tracking.post("/v1/events/batch", json={"events": part})
    running.wait_idle()
    # late: arrives after others that happened after it, and after time moved on
    running.clock.advance(hours=5)
    for e in shuffled[25:]:
        assert running.tracking.post("/v1/events", json=e).status_code == 200
    running.wait_idle()
    assert stored_total(running, "L1") == expected([CEO], events, running.clock())["L1"]


def test_an_event_from_the_future_counts_once_its_time_has_come(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/leads/L1", json=CEO)
    future = event(1, kind="demo_request", ts=T0 + timedelta(hours=2))
    before = running.admin.post("/v1/events", json=future).json()["score"]["total"]
    assert before == expected([CEO], [], T0)["L1"]
    running.clock.advance(hours=3)
    r = running.admin.post("/v1/rescore")
    assert r.status_code == 202
    running.wait_idle()
    assert stored_total(running, "L1") == expected([CEO], [future], running.clock())["L1"] > before


def test_events_of_unknown_leads_are_rejected_and_the_rest_kept(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/leads/L1", json=CEO)
    body = running.tracking.post(
        "/v1/events/batch",
        json={"events": [event(1), event(2, lead="ghost"), {"event_id": "x", "lead_id": "L1"}]},
    ).json()
    assert body["accepted"] == ["L1-e1"]
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert "unknown lead 'ghost'" in body["rejected"][0]["reason"]
    assert "field 'type'" in body["rejected"][1]["reason"]
    assert "field 'ts'" in body["rejected"][1]["reason"]
    single = running.tracking.post("/v1/events", json=event(3, lead="ghost"))
    assert single.status_code == 422 and "lead_id" in single.json()["detail"]
    listed = running.admin.get("/v1/events", params={"lead_id": "L1"}).json()["items"]
    assert [e["event_id"] for e in listed] == ["L1-e1"]


def test_the_answer_carries_the_account_roll_up(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/accounts/A1", json={"account_id": "A1", "name": "Acme"})
    running.admin.put("/v1/leads/L1", json={**CEO, "account_id": "A1"})
    running.admin.put(
        "/v1/leads/L2", json={"lead_id": "L2", "job_title": "CTO", "account_id": "A1"}
    )
    score = running.admin.post("/v1/events", json=event(1, kind="demo_request")).json()["score"]
    other = running.admin.get("/v1/leads/L2").json()["score"]
    assert score["account_score"] == round(score["total"] + other["total"], 2)
    assert other["account_score"] == score["account_score"]
