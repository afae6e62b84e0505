"""GDPR erasure leaves nothing about the lead anywhere, and the export lists exactly that.

A real service (SQLite file and PostgreSQL) with a lead that began anonymous (e-mail and name
given under the anonymous id, then merged by identify), webhook deliveries, an outcome, SLA
tasks, a stored Sample report that names it, a dashboard preview and a drawn plot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore.dashboard import leads as dashboard_leads
from leadscore.service.reports import reports_of, run_row
from leadscore.store import tables
from servicekit import MODELS, T0, Receiver, Running

STARTER = (MODELS / "starter.yaml").read_text()
# a draft under which every lead changes stage: the preview lists them all
FLAT = """
name: flat
version: "1"
behaviour:
  decay: {type: none}
  rules:
    - {name: never, event: never_sent, points: 1}
"""
LEAD = "ann-7f3e9c"
ANON = "anon-5d2b71"
EMAIL = "ann.gdpr-7f3e9c@example.org"
NAME = "Annika Gdprtestova"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def _iso(age: timedelta) -> str:
    return (T0 - age).isoformat() + "Z"


def _wait_report(running: Running, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with running.service.store.read() as conn:
            row = run_row(conn, run_id)
        assert row is not None
        if row["status"] in ("done", "failed"):
            assert row["status"] == "done", row["error"]
            return row
        time.sleep(0.1)
    raise AssertionError("report did not finish")


def _everything(running: Running) -> None:
    """The lead's data in every place the service keeps some."""
    running.publish(STARTER)
    r = running.tracking.post(
        "/v1/identify", json={"anonymousId": ANON, "traits": {"email": EMAIL, "name": NAME}}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    for i, event in enumerate(("Pricing Page", "Demo Request")):
        message = {
            "anonymousId": ANON,
            "event": event,
            "messageId": f"{ANON}-m{i}",
            "timestamp": _iso(timedelta(days=3 - i)),
        }
        assert running.tracking.post("/v1/track", json=message).json()["accepted"] == 1
    merge = {"userId": LEAD, "anonymousId": ANON, "traits": {"email": EMAIL, "title": "CEO"}}
    assert running.tracking.post("/v1/identify", json=merge).json()["accepted"] == 1
    for lead_id in (LEAD, "bob"):
        row = {"lead_id": lead_id, "job_title": "CEO", "employees": 100, "account_id": "acme"}
        assert running.admin.put(f"/v1/leads/{lead_id}", json=row).is_success
    running.admin.post(f"/v1/leads/{LEAD}/outcome", json={"outcome": "won", "value": 900})
    running.wait_idle()


def test_erasure_removes_everything_the_export_lists(
    running: Running, receiver: Receiver, tmp_path: Path
) -> None:
    r = running.admin.post("/v1/webhooks", json={"url": receiver.url()})
    assert r.status_code == 201, r.text
    _everything(running)
    assert receiver.got.wait(20)
    service = running.service
    runner = reports_of(service)
    named = _wait_report(
        running,
        runner.submit("sample", {"as_of": T0.isoformat(), "per_stage": 50, "seed": 0}, "admin"),
    )
    assert LEAD in named["result"]
    aggregate = _wait_report(running, runner.submit("channels", {"as_of": T0.isoformat()}, "admin"))
    assert LEAD not in (aggregate["result"] or "")
    r = running.admin.post("/v1/models", content=FLAT, headers={"content-type": "application/yaml"})
    draft_id = int(r.json()["id"])
    with service.store.read() as conn:
        draft = service.scorer.registry.load(conn, draft_id)
    preview = service.previews.start(draft, running.clock(), None)
    assert service.previews.wait(60) and preview.result is not None
    assert LEAD in {c.lead_id for c in preview.result.changed}
    # the lead page's trajectory plot, drawn and kept in the dashboard's cache
    h = tables.score_history
    with service.store.read() as conn:
        history = [
            {**dict(row), "order": row["id"]}
            for row in conn.execute(sa.select(h).where(h.c.lead_id == LEAD)).mappings()
        ]
    assert dashboard_leads.trajectory(history, None, "en", dashboard_leads.WORDS["en"])
    with dashboard_leads._PLOTS_LOCK:
        assert [k for k in dashboard_leads._PLOTS if k[0] == LEAD]

    # why a lead could not be scored is kept in memory too (GET /v1/status)
    service.scorer.unscored[LEAD] = f"field 'seats' of {EMAIL}: not a number"

    r = running.admin.get(f"/v1/leads/{LEAD}/export")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # the anonymous lead kept its e-mail and name: it is the user's, and in the user's export
    assert {(row["lead_id"], row["email"]) for row in data["lead"]} == {
        (LEAD, EMAIL),
        (ANON, EMAIL),
    }
    assert [row["name"] for row in data["lead"] if row["lead_id"] == ANON] == [NAME]
    assert [(m["lead_id"], m["into_id"]) for m in data["lead_merges"]] == [(ANON, LEAD)]
    assert sorted(e["event_id"] for e in data["events"]) == [f"{ANON}-m0", f"{ANON}-m1"]
    assert data["webhook_deliveries"] and data["score_history"] and data["sla_tasks"]
    assert [run["id"] for run in data["report_runs"]] == [named["id"]]
    # every table that refers to a lead is in the export (derived from the schema)
    referring = {c.table.name for c in tables.lead_columns()}
    assert set(data) == {"lead", "report_runs", "jobs"} | (referring - {"leads"})

    r = running.admin.delete(f"/v1/leads/{LEAD}")
    assert r.status_code == 200, r.text
    deleted = r.json()["deleted"]
    # erasure removed exactly what the export listed, table by table
    assert deleted == {("leads" if k == "lead" else k): len(rows) for k, rows in data.items()}

    assert running.admin.get(f"/v1/leads/{ANON}").status_code == 404
    with service.store.read() as conn:
        for column in tables.lead_columns():
            table = column.table
            left = conn.execute(sa.select(table).where(column.in_((LEAD, ANON)))).all()
            assert left == [], f"{table.name}.{column.name}"
        kept = conn.execute(sa.select(tables.report_runs.c.id)).scalars().all()
    assert kept == [aggregate["id"]]  # a report that does not name the lead stays
    run = service.previews.get(draft_id)
    assert run is not None and run.result is not None
    assert LEAD not in {c.lead_id for c in run.result.changed}
    assert "bob" in {c.lead_id for c in run.result.changed}
    with dashboard_leads._PLOTS_LOCK:
        assert not [k for k in dashboard_leads._PLOTS if k[0] in (LEAD, ANON)]
    assert LEAD not in service.scorer.unscored
    assert running.admin.get("/v1/leads/bob").status_code == 200

    if service.store.is_sqlite:
        # nothing readable is left in the file, nor in its write-ahead log
        database = Path(service.store.engine.url.database or "")
        for path in (database, database.with_name(database.name + "-wal")):
            if path.exists():
                raw = path.read_bytes()
                for secret in (EMAIL, NAME, LEAD, ANON):
                    assert secret.encode() not in raw, (path.name, secret)
