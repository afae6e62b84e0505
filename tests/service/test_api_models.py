"""Models: drafts validated like `leadscore check`, a preview of what publishing changes,
publishing as a background job that rescores every lead, rollback, versions on every score."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()
YAML = {"content-type": "application/yaml"}


def stricter(source: str) -> str:
    """The starter model, version 2.0, with a much higher bar for SQL and MQL."""
    out = source.replace('version: "1.0"', 'version: "2.0"')
    sql = "when: {min_total: 70, grade: [A, B]}"
    out = out.replace(sql, sql.replace("70", "500"))
    return out.replace("when: {min_total: 40}", "when: {min_total: 400}")


def seed(running: Running, n: int = 12) -> None:
    leads = [
        {"lead_id": f"L{i:02d}", "job_title": "CEO" if i % 2 else "Analyst", "employees": 300}
        for i in range(n)
    ]
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    events: list[dict[str, Any]] = []
    for i in range(n):
        for j in range(i % 4):
            kind = ("demo_request", "form_submit", "webinar_attended")[j]
            ts = (T0 - timedelta(days=2, hours=j)).isoformat()
            events.append({"event_id": f"e{i}-{j}", "lead_id": f"L{i:02d}", "type": kind, "ts": ts})
    assert running.tracking.post("/v1/events/batch", json={"events": events}).status_code == 200
    running.wait_idle()


def stages(running: Running) -> dict[str, tuple[str, str]]:
    items = running.admin.get("/v1/leads", params={"limit": 1000}).json()["items"]
    return {i["lead_id"]: (i["stage"], i["model_version"]) for i in items}


def test_an_invalid_model_is_refused_with_line_and_field(running: Running) -> None:
    bad = STARTER.replace("points: 30\n", "points: lots\n", 1)
    r = running.admin.post("/v1/models", content=bad, headers=YAML)
    assert r.status_code == 422
    detail = r.json()["detail"]
    line = next(i for i, text in enumerate(bad.splitlines(), 1) if "points: lots" in text)
    assert f":{line}" in detail and "points" in detail
    assert running.admin.get("/v1/models").json()["items"] == []
    broken = running.admin.post("/v1/models", content="name: [unclosed", headers=YAML)
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("<upload>:1: not valid YAML")


def test_publish_rescores_every_lead_and_records_the_version(running: Running) -> None:
    seed(running)  # no model yet: leads and events are kept, nothing is scored
    assert all(s == (None, None) for s in stages(running).values())
    first = running.publish(STARTER)
    models = running.admin.get("/v1/models").json()
    assert models["active"] == first and models["items"][0]["status"] == "published"
    scored = stages(running)
    assert len(scored) == 12 and {v for _, v in scored.values()} == {"1.0"}
    assert {s for s, _ in scored.values()} >= {"SQL", "nurture"}
    jobs = running.admin.get("/v1/jobs").json()["items"]
    job = running.admin.get(f"/v1/jobs/{jobs[0]['id']}").json()
    assert job["status"] == "done" and job["done"] == job["total"] == 12 and job["progress"] == 1
    history = running.admin.get("/v1/leads/L01/history").json()["items"]
    assert history[0]["cause"] == "job" and history[0]["cause_id"] == f"job:{job['id']}"


def test_preview_says_which_leads_would_change_and_publishing_does_exactly_that(
    running: Running,
) -> None:
    seed(running)
    running.publish(STARTER)
    before = stages(running)
    r = running.admin.post("/v1/models", content=stricter(STARTER), headers=YAML)
    assert r.status_code == 201 and r.json()["status"] == "draft"
    draft = r.json()["id"]
    preview = running.admin.get(f"/v1/models/{draft}/preview").json()
    moved = {c["lead_id"] for c in preview["changed"]}
    leaving = {lead for lead, (stage, _) in before.items() if stage in ("SQL", "MQL")}
    assert moved == leaving and preview["changes_stage"] == len(leaving) > 0
    assert sum(m["leads"] for m in preview["stage_moves"]) == len(leaving)
    assert all(m["to"] == "nurture" for m in preview["stage_moves"])
    assert stages(running) == before  # a preview changes nothing
    r = running.admin.post(f"/v1/models/{draft}/publish")
    assert r.status_code == 202
    running.wait_idle()
    after = stages(running)
    assert {lead for lead in after if after[lead][0] != before[lead][0]} == moved
    assert {v for _, v in after.values()} == {"2.0"}


def test_rollback_restores_the_previous_version(running: Running) -> None:
    seed(running)
    first = running.publish(STARTER)
    before = stages(running)
    running.publish(stricter(STARTER))
    assert stages(running) != before
    r = running.admin.post("/v1/models/rollback")
    assert r.status_code == 202 and r.json()["model_id"] == first
    running.wait_idle()
    assert stages(running) == before
    assert running.admin.get("/v1/models").json()["active"] == first
    transitions = running.admin.get("/v1/leads/L01/transitions").json()["items"]
    assert [t["model_version"] for t in transitions if t["field"] == "stage"][-2:] == ["2.0", "1.0"]


def test_rollback_without_an_earlier_version_is_refused(running: Running) -> None:
    assert running.admin.post("/v1/models/rollback").status_code == 409
    running.publish(STARTER)
    assert running.admin.post("/v1/models/rollback").status_code == 409
    assert running.admin.post("/v1/models/99/publish").status_code == 404
    assert running.admin.get("/v1/models/99/preview").status_code == 404


def test_the_score_card_ledger_sums_to_the_stored_score(running: Running) -> None:
    seed(running)
    running.publish(STARTER)
    running.clock.advance(days=3)  # the card is as of the score's instant, not of now
    for lead in ("L01", "L02", "L03"):
        card = running.admin.get(f"/v1/leads/{lead}/score", params={"lang": "de"}).json()
        assert card["ledger_sum"] == card["score"]["total"]
        assert card["model"]["version"] == card["score"]["model_version"] == "1.0"
        assert any(line["label"] == "Entscheider" for line in card["ledger"]) == (lead != "L02")


# --- hostile uploads ---------------------------------------------------------------------------


def test_hostile_yaml_uploads_are_refused_with_4xx_and_the_server_stays_responsive(
    running: Running,
) -> None:
    bomb = 'name: m\nversion: "1"\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n'
    previous = "a"
    for name in "bcdefghi":
        bomb += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    started = time.monotonic()
    r = running.admin.post("/v1/models", content=bomb, headers=YAML)
    assert r.status_code == 422, r.text
    assert time.monotonic() - started < 10
    assert r.json()["detail"].startswith("<upload>:3: ") and "values" in r.json()["detail"]

    deep = 'name: m\nversion: "1"\nfit: ' + "[" * 1000 + "]" * 1000 + "\n"
    r = running.admin.post("/v1/models", content=deep, headers=YAML)
    assert r.status_code == 422, r.text  # was a 500 (RecursionError)
    assert (
        r.json()["detail"] == "<upload>:3: nested more than 64 levels deep; a model needs far fewer"
    )

    # over the model's limit, under the service's body limit: the loader's 413
    big = STARTER + "# " + "x" * 1_100_000 + "\n"
    r = running.admin.post("/v1/models", content=big, headers=YAML)
    assert r.status_code == 413, r.text
    assert "more than the 1,048,576 bytes a model may have" in r.json()["detail"]

    assert running.admin.get("/v1/models").json()["items"] == []
    assert running.admin.post("/v1/models", content=STARTER, headers=YAML).status_code == 201
