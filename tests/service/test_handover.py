"""Hand-over to sales: transitions, SLA tasks from the routing (S19), met and breached, and
signed webhooks to a real receiver on 127.0.0.1."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from leadscore.service.webhooks import verify_signature
from servicekit import MODELS, T0, Receiver, Running

STARTER = (MODELS / "starter.yaml").read_text()
CEO = {"lead_id": "L1", "job_title": "CEO", "employees": 500, "industry": "Software"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def subscribe(running: Running, receiver: Receiver, topics: list[str]) -> str:
    r = running.admin.post("/v1/webhooks", json={"url": receiver.url(), "topics": topics})
    assert r.status_code == 201, r.text
    return str(r.json()["secret"])


def demo(i: int = 1, lead: str = "L1", kind: str = "demo_request") -> dict[str, Any]:
    ts = (T0 - timedelta(hours=i)).isoformat()
    return {"event_id": f"{lead}-{kind}{i}", "lead_id": lead, "type": kind, "ts": ts}


def wait_for(receiver: Receiver, topic: str, count: int = 1, timeout: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in receiver.requests if r.headers.get("x-leadscore-topic") == topic]
        if len(got) >= count:
            return got
        time.sleep(0.02)
    raise AssertionError(f"no {topic} delivery in {timeout} s: {receiver.requests}")


def stage(running: Running, lead: str = "L1") -> str:
    """The lead's stage as an admin reads it (a tracking key is told no score)."""
    return str(running.admin.get(f"/v1/leads/{lead}/score").json()["score"]["stage"])


def unix(moment: datetime) -> float:
    return float(calendar.timegm(moment.timetuple()))


def test_entering_sales_opens_an_sla_task_that_is_met_when_worked(
    running: Running, receiver: Receiver
) -> None:
    running.publish(STARTER)
    secret = subscribe(running, receiver, ["stage_changed", "sla_opened", "sla_met"])
    running.admin.put("/v1/leads/L1", json=CEO)  # fit 40: MQL (72 h)
    mql = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    assert [(t["stage"], t["status"], t["sla_hours"]) for t in mql] == [("MQL", "open", 72.0)]
    running.clock.advance(hours=1)
    webinar = running.tracking.post("/v1/events", json=demo(kind="webinar_attended"))
    assert webinar.status_code == 200 and "score" not in webinar.json()  # not for a tracking key
    assert stage(running) == "MQL"  # about 50 points
    running.tracking.post("/v1/events", json=demo())  # about 80 points: SQL (24 h)
    assert stage(running) == "SQL"
    tasks = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    by_stage = {t["stage"]: t for t in tasks}
    assert by_stage["MQL"]["status"] == "cancelled" and "left stage MQL" in by_stage["MQL"]["note"]
    sql = by_stage["SQL"]
    assert sql["status"] == "open"
    assert datetime.fromisoformat(sql["deadline"]) == running.clock() + timedelta(hours=24)
    transitions = running.admin.get("/v1/leads/L1/transitions").json()["items"]
    stage_moves = [
        (t["from_value"], t["to_value"], t["cause"]) for t in transitions if t["field"] == "stage"
    ]
    assert stage_moves == [(None, "MQL", "lead"), ("MQL", "SQL", "event")]
    worked = running.admin.post("/v1/leads/L1/worked", json={"note": "called, meeting booked"})
    assert worked.json()["met"] == [sql["task_id"]]
    assert running.admin.post("/v1/leads/L1/worked").json()["met"] == []
    met = wait_for(receiver, "sla_met")[0]
    assert met.json["data"]["task_id"] == sql["task_id"] and met.json["data"]["status"] == "met"
    changes = wait_for(receiver, "stage_changed", 2)
    assert [(c.json["data"]["from"], c.json["data"]["to"]) for c in changes] == [
        (None, "MQL"),
        ("MQL", "SQL"),
    ]
    for request in receiver.requests:
        h = request.headers
        assert h["x-leadscore-signature"].startswith("sha256=")
        assert verify_signature(
            secret,
            h["x-leadscore-timestamp"],
            request.body,
            h["x-leadscore-signature"],
            now=unix(running.clock()),
        )
        assert not verify_signature(
            "wrong",
            h["x-leadscore-timestamp"],
            request.body,
            h["x-leadscore-signature"],
            now=unix(running.clock()),
        )


def test_a_deadline_passing_breaches_the_task_and_tells_subscribers(
    running: Running, receiver: Receiver
) -> None:
    running.publish(STARTER)
    subscribe(running, receiver, ["sla_breached"])
    running.admin.put("/v1/leads/L1", json=CEO)
    running.tracking.post("/v1/events", json=demo(kind="webinar_attended"))
    running.tracking.post("/v1/events", json=demo())
    assert stage(running) == "SQL"
    running.clock.advance(hours=23, minutes=59)
    running.service.worker.wake()
    running.wait_idle()
    time.sleep(0.2)
    open_tasks = running.admin.get("/v1/sla", params={"status": "open"}).json()["items"]
    assert [t["stage"] for t in open_tasks] == ["SQL"]
    running.clock.advance(minutes=2)
    deadline = time.monotonic() + 15
    while running.admin.get("/v1/sla", params={"status": "breached"}).json()["items"] == []:
        assert time.monotonic() < deadline, "the SLA task was not breached at its deadline"
        running.service.worker.wake()
        time.sleep(0.05)
    breached = wait_for(receiver, "sla_breached")[0].json["data"]
    assert breached["lead_id"] == "L1" and breached["stage"] == "SQL"
    assert running.admin.post("/v1/leads/L1/worked").json()["met"] == []


def test_failed_deliveries_are_retried_and_logged(running: Running, receiver: Receiver) -> None:
    receiver.fail_first = 2
    running.publish(STARTER)
    subscribe(running, receiver, ["score_changed"])
    running.admin.put("/v1/leads/L1", json=CEO)
    wait_for(receiver, "score_changed", 1)
    hook = running.admin.get("/v1/webhooks").json()[0]

    def attempts() -> list[tuple[str, int]]:
        deliveries = running.admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()
        found = deliveries if isinstance(deliveries, list) else deliveries["items"]
        return [(d["status"], d["attempts"]) for d in found]

    def settle(expected: list[tuple[str, int]]) -> None:
        deadline = time.monotonic() + 15
        while attempts() != expected:
            assert time.monotonic() < deadline, attempts()
            time.sleep(0.02)

    settle([("pending", 1)])
    for attempt in (2, 3):  # the retry is due after the backoff, on the service's clock
        running.clock.advance(minutes=10)
        running.service.deliverer.wake()
        settle([("pending" if attempt < 3 else "delivered", attempt)])
    assert len(receiver.requests) == 3
    deliveries = running.admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()
    items = deliveries if isinstance(deliveries, list) else deliveries["items"]
    assert items[0]["payload"]["data"]["total"] == 40.0


def test_the_delivery_log_is_kept_thirty_days(running: Running, receiver: Receiver) -> None:
    running.publish(STARTER)
    subscribe(running, receiver, ["score_changed"])
    running.admin.put("/v1/leads/L1", json=CEO)
    wait_for(receiver, "score_changed")
    hook = running.admin.get("/v1/webhooks").json()[0]["id"]

    def log() -> list[Any]:
        deliveries = running.admin.get(f"/v1/webhooks/{hook}/deliveries").json()
        return deliveries if isinstance(deliveries, list) else deliveries["items"]

    deadline = time.monotonic() + 15
    while [d["status"] for d in log()] != ["delivered"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    running.clock.advance(days=29)
    running.admin.post("/v1/rescore")
    running.wait_idle()
    assert [d["status"] for d in log()][-1] == "delivered"  # still there
    running.clock.advance(days=2)
    running.admin.post("/v1/rescore")
    running.wait_idle()
    assert all(d["created_at"] > (T0 + timedelta(days=1)).isoformat() for d in log())
