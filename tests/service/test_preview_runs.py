"""Previews of a model: complete counts, the biggest changes only, run in the background."""

from __future__ import annotations

from datetime import timedelta

from leadscore.service.preview import preview
from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()
YAML = {"content-type": "application/yaml"}
# e-mail clicks count double and 5 points make an MQL: leads with 2 or 3 clicks move
GENEROUS = (
    STARTER.replace('version: "1.0"', 'version: "3.0"')
    .replace("when: {min_total: 40}", "when: {min_total: 5}")
    .replace("points: 2\n", "points: 4\n")
)


def _seed(running: Running, n: int = 30) -> None:
    running.publish(STARTER)
    leads = [{"lead_id": f"L{i:02d}", "job_title": "Analyst"} for i in range(n)]
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    events = [
        {
            "event_id": f"e{i}-{j}",
            "lead_id": f"L{i:02d}",
            "type": "email_click",
            "ts": (T0 - timedelta(hours=j + 1)).isoformat(),
        }
        for i in range(n)
        for j in range(i % 4)
    ]
    assert running.tracking.post("/v1/events/batch", json={"events": events}).status_code == 200
    running.wait_idle()


def test_counts_are_complete_and_only_the_biggest_changes_are_kept(running: Running) -> None:
    _seed(running)
    draft = running.admin.post("/v1/models", content=GENEROUS, headers=YAML).json()["id"]
    with running.service.store.read() as conn:
        model = running.service.scorer.registry.load(conn, draft)
    every = preview(running.service.scorer, model, running.clock(), 1000)
    few = preview(running.service.scorer, model, running.clock(), 3)
    moving = {c.lead_id for c in every.changed}
    assert every.leads == few.leads == 30
    assert few.changed_leads == every.changed_leads == len(moving) == few.changes_stage > 3
    assert few.stage_moves == every.stage_moves == {("nurture", "MQL"): len(moving)}
    assert moving == {f"L{i:02d}" for i in range(30) if i % 4 >= 2}
    assert few.changed == every.changed[:3]  # three clicks gain the most points
    assert [c.lead_id for c in few.changed] == ["L03", "L07", "L11"]
    rest = running.admin.get(f"/v1/models/{draft}/preview", params={"limit": 3}).json()
    assert [c["lead_id"] for c in rest["changed"]] == [c.lead_id for c in few.changed]
    assert rest["changes_stage"] == len(moving)


def test_a_background_preview_runs_once_and_keeps_its_result(running: Running) -> None:
    _seed(running)
    draft = running.admin.post("/v1/models", content=GENEROUS, headers=YAML).json()["id"]
    previews = running.service.previews
    with running.service.store.read() as conn:
        model = running.service.scorer.registry.load(conn, draft)
    assert previews.get(draft) is None
    run = previews.start(model, running.clock(), against=1)
    assert previews.wait(30)
    assert previews.get(draft) is run and run.status == "done" and run.error is None
    assert run.result is not None and run.result.changes_stage > 0
    assert (run.done, run.total) == (30, 30)
    again = previews.start(model, running.clock(), against=1)  # a finished one runs anew
    assert again is not run
    assert previews.wait(30) and again.status == "done"
