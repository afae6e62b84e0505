"""A lead the engine cannot score never stops scoring for the others: not in a single call, a
worker pass, a rescore or a publish job; it keeps its last score and is named with the reason."""

from __future__ import annotations

from typing import Any

from servicekit import Running

SEATS = """
name: seats
version: "{version}"
fit:
  rules:
    - {{name: many_seats, when: {{field: seats, gt: 10}}, points: 10}}
    - {{name: paid_plan, when: {{field: plan, contains: pro}}, points: 5}}
behaviour:
  decay: {{type: none}}
  rules:
    - {{name: download, event: download, points: {points}}}
"""


def _model(version: int, points: int = 1) -> str:
    return SEATS.format(version=version, points=points)


def _identify(running: Running, user: str, traits: dict[str, Any]) -> dict[str, Any]:
    r = running.tracking.post("/v1/identify", json={"userId": user, "traits": traits})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _total(running: Running, lead_id: str) -> float | None:
    score = running.admin.get(f"/v1/leads/{lead_id}").json()["score"]
    return None if score is None else float(score["total"])


def _job(running: Running, job_id: int) -> dict[str, Any]:
    running.wait_idle()
    job: dict[str, Any] = running.admin.get(f"/v1/jobs/{job_id}").json()
    return job


def test_a_lead_of_the_wrong_type_stops_nobody(running: Running) -> None:
    running.publish(_model(1))
    assert _identify(running, "good", {"seats": 20, "plan": "pro"})["accepted"] == 1
    assert _total(running, "good") == 15
    # text where the rule compares numbers, a number where it looks for text: a 500 before,
    # then every pass, rescore and publish failed for everyone
    assert _identify(running, "odd", {"seats": "many"})["accepted"] == 1
    assert _identify(running, "odder", {"seats": 3, "plan": 5})["accepted"] == 1

    # a batch for everyone, scored by the worker
    batch = [
        {
            "type": "track",
            "userId": u,
            "event": "download",
            "messageId": f"{u}-1",
            "timestamp": "2026-03-01T09:00:00Z",
        }
        for u in ("good", "odd", "later")
    ]
    r = running.tracking.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    running.wait_idle()
    assert _total(running, "good") == 16
    assert _total(running, "later") == 1
    assert running.service.worker.errors == 0

    r = running.admin.post("/v1/rescore")
    assert r.status_code == 202, r.text
    job = _job(running, r.json()["job_id"])
    assert job["status"] == "done", job
    assert job["done"] == job["total"] == 4

    # a new model goes live for every lead that can be scored; the job says who could not
    model_id = running.admin.post(
        "/v1/models", content=_model(2, points=3), headers={"content-type": "application/yaml"}
    ).json()["id"]
    job = _job(running, running.admin.post(f"/v1/models/{model_id}/publish").json()["job_id"])
    assert job["status"] == "done", job
    assert _total(running, "good") == 18 and _total(running, "later") == 3
    for lead_id in ("good", "later"):
        score = running.admin.get(f"/v1/leads/{lead_id}").json()["score"]
        assert score["model_id"] == model_id
    status = running.admin.get("/v1/status").json()
    assert running.admin.get("/v1/models").json()["items"][0]["id"] == model_id
    if job["error"] is not None:  # only when the engine still refuses such values
        assert "could not be scored" in job["error"] and "odd" in job["error"]
        assert {u["lead_id"] for u in status["unscored"]} <= {"odd", "odder"}
    assert status["queued_leads"] == 0 and status["worker_errors"] == 0


def test_a_lead_whose_data_cannot_be_scored_keeps_a_readable_card(running: Running) -> None:
    running.publish(_model(1))
    _identify(running, "L1", {"seats": 20})
    assert _total(running, "L1") == 10
    _identify(running, "L1", {"seats": "many"})  # a trait a tracking key may change
    r = running.admin.get("/v1/leads/L1/score")
    assert r.status_code == 200, r.text  # a 500 (StopIteration) while the engine refuses it
    card = r.json()
    if "problem" in card:
        assert card["ledger"] == [] and "TypeError" in card["problem"]
        assert card["score"]["total"] == 10  # the last score is kept
    else:
        assert card["ledger_sum"] == card["score"]["total"]


def test_a_publish_job_that_fails_as_a_whole_puts_the_previous_model_back(
    running: Running,
) -> None:
    first = running.publish(_model(1))
    _identify(running, "L1", {"seats": 20})
    # a version that cannot be loaded when its job runs (here: one that is not stored)
    job_id = running.service.jobs.publish(9999)
    job = _job(running, job_id)
    assert job["status"] == "failed"
    assert f"model {first} is published again" in job["error"], job["error"]
    assert running.admin.get("/v1/status").json()["active_model"] == first
    jobs = running.admin.get("/v1/jobs").json()["items"]
    revert = next(j for j in jobs if j["kind"] == "revert")
    assert revert["status"] == "done" and revert["model_id"] == first
    score = running.admin.get("/v1/leads/L1").json()["score"]
    assert score["model_id"] == first and score["total"] == 10
