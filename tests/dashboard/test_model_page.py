"""The model page in a real Chromium: drafts, validation, diff, preview, publish, rollback."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from leadscore.dashboard.auth import create_user
from servicekit import MODELS, T0, Running

from .conftest import sign_in

STARTER = (MODELS / "starter.yaml").read_text()
# demo_request is the first behaviour rule and its points are the first "points: 30"
RAISED = STARTER.replace("points: 30\n", "points: 40\n", 1).replace(
    'version: "1.0"', 'version: "1.1"'
)
BROKEN = STARTER.replace("points: 30\n", "points: lots\n", 1)
BROKEN_LINE = next(i for i, text in enumerate(BROKEN.splitlines(), 1) if "points: lots" in text)
JONAS, JONAS_PASSWORD = "jonas", "another long password"


def _leads(running: Running) -> int:
    """Publish the starter model with three leads; L1 is an MQL just short of SQL."""
    first = running.publish(STARTER)
    leads = [
        {"lead_id": "L1", "job_title": "CEO", "employees": 500, "industry": "Software"},
        {"lead_id": "L2", "job_title": "Student"},
        {"lead_id": "L3", "job_title": "Analyst"},
    ]
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    ts = (T0 - timedelta(hours=1)).isoformat()
    event = {"event_id": "e1", "lead_id": "L1", "type": "demo_request", "ts": ts}
    assert running.tracking.post("/v1/events", json=event).status_code in (200, 201, 202)
    running.wait_idle()
    assert _score(running, "L1")["stage"] == "MQL"  # 40 fit + 30 demo (decayed a little) < 70
    return first


def _score(running: Running, lead: str) -> dict[str, Any]:
    score: dict[str, Any] = running.admin.get(f"/v1/leads/{lead}").json()["score"]
    return score


def _models(running: Running) -> dict[str, Any]:
    models: dict[str, Any] = running.admin.get("/v1/models").json()
    return models


def test_edit_validate_save_preview_publish_and_roll_back(running: Running, page: Page) -> None:
    first = _leads(running)
    base = running.base_url
    sign_in(page, base)
    page.get_by_role("link", name="Model", exact=True).click()
    expect(page).to_have_url(f"{base}/ui/model")
    expect(page.get_by_role("heading", level=1)).to_have_text("Model")
    expect(page.locator("pre.yaml")).to_contain_text("name: starter")
    expect(page.locator(".facts")).to_contain_text("1.0")
    editor = page.get_by_label("Model YAML")
    assert editor.input_value() == STARTER  # the active YAML, ready to edit

    # a wrong value: the loader's line and field next to the editor, the text kept, nothing saved
    editor.fill(BROKEN)
    page.get_by_role("button", name="Save draft").click()
    error = page.locator("#source-error")
    expect(error).to_contain_text(f"Line {BROKEN_LINE}, field behaviour.rules[0].points")
    expect(editor).to_have_attribute("aria-invalid", "true")
    expect(editor).to_have_attribute("aria-describedby", "source-error")
    assert editor.input_value() == BROKEN
    assert len(_models(running)["items"]) == 1

    # validating a good one saves nothing either
    editor.fill(RAISED)
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_role("status")).to_have_text("The model is valid. Nothing was saved.")
    assert page.get_by_label("Model YAML").input_value() == RAISED
    assert len(_models(running)["items"]) == 1

    page.get_by_role("button", name="Save draft").click()
    expect(page).to_have_url(re.compile(rf"{base}/ui/model/\d+$"))
    draft = int(page.url.rsplit("/", 1)[1])
    stored = running.admin.get(f"/v1/models/{draft}").json()
    assert stored["status"] == "draft" and stored["source"] == RAISED  # no CRLF from the form
    diff = page.locator("table.diff")
    expect(diff.locator("tr.del del")).to_contain_text(['version: "1.0"', "points: 30"])
    expect(diff.locator("tr.add ins")).to_contain_text(['version: "1.1"', "points: 40"])
    expect(diff.locator("tr.add .visually-hidden").first).to_have_text("added")

    # the preview runs in the background; the page reloads itself until it is there
    with running.service.previews._one:  # another preview holds the turn for now
        page.get_by_role("button", name="Preview changes").click()
        expect(page.locator("#preview [role=status]")).to_contain_text("waits for another")
        expect(page.locator("meta[http-equiv=refresh]")).to_have_attribute(
            "content", f"2; url=/ui/model/{draft}"
        )
    moved = page.locator("#preview table.changed tr[data-lead='L1']")
    expect(moved).to_contain_text("MQL → SQL", timeout=30_000)
    expect(moved).to_contain_text("warm → hot")
    expect(moved.get_by_role("link", name="L1")).to_have_attribute("href", "/ui/leads/L1")
    expect(page.locator("#preview table.changed tbody tr")).to_have_count(1)
    expect(page.locator("#preview")).to_contain_text("3 leads scored")
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    assert _score(running, "L1")["stage"] == "MQL"  # a preview changes nothing

    page.get_by_role("link", name="Publish", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Publish version 1.1 (#{draft})?")
    expect(page.locator("table.changed tr[data-lead='L1']")).to_contain_text("MQL → SQL")
    page.get_by_role("button", name="Publish").click()
    expect(page).to_have_url(re.compile(rf"{base}/ui/model/jobs/\d+\?started=publish$"))
    expect(page.locator("p.notice")).to_have_text("Publishing started.")
    # the job page reloads itself until the job is done
    expect(page.locator("[data-status]")).to_have_text("done", timeout=30_000)
    expect(page.get_by_role("status")).to_contain_text("Done: 3 leads rescored")
    running.wait_idle()
    after = _score(running, "L1")
    assert (after["stage"], after["temperature"], after["model_version"]) == ("SQL", "hot", "1.1")
    assert _models(running)["active"] == draft
    page.goto(f"{base}/ui/model")
    expect(page.locator(".facts")).to_contain_text(f"1.1 (#{draft})")
    expect(page.locator("table.jobs tbody tr").first).to_contain_text("done")
    expect(page.locator(f"table.versions tr[data-model='{first}']")).to_contain_text(
        "previously published"
    )

    page.get_by_role("link", name="Roll back").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Roll back to the previous version?")
    expect(page.locator("main")).to_contain_text(f"Version 1.0 (#{first})")
    page.get_by_role("button", name="Roll back").click()
    expect(page).to_have_url(re.compile(rf"{base}/ui/model/jobs/\d+\?started=rollback$"))
    running.wait_idle()
    back = _score(running, "L1")
    assert (back["stage"], back["model_version"]) == ("MQL", "1.0")
    assert _models(running)["active"] == first


def test_non_admins_read_only_and_forms_need_the_session_token(
    running: Running, page: Page
) -> None:
    first = _leads(running)
    draft = running.admin.post(
        "/v1/models", content=RAISED, headers={"content-type": "application/yaml"}
    ).json()["id"]
    with running.service.store.write() as conn:
        create_user(conn, JONAS, JONAS_PASSWORD, admin=False, now=running.clock())
    base = running.base_url
    sign_in(page, base, JONAS, JONAS_PASSWORD)
    page.goto(f"{base}/ui/model")
    expect(page.locator("pre.yaml")).to_contain_text("name: starter")
    expect(page.locator(f"table.versions tr[data-model='{draft}']")).to_contain_text("draft")
    expect(page.locator("textarea")).to_have_count(0)
    expect(page.get_by_role("button", name="Save draft")).to_have_count(0)
    expect(page.get_by_role("link", name="Roll back")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("Only administrators may edit")
    page.goto(f"{base}/ui/model/{draft}")
    expect(page.locator("table.diff tr.add ins")).to_contain_text(["1.1", "points: 40"])
    expect(page.get_by_role("link", name="Publish", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Preview changes")).to_have_count(0)

    csrf = page.locator("form.signout input[name=csrf]").get_attribute("value")
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    posts = {
        "/ui/model/drafts": {"source": RAISED, "action": "save"},
        f"/ui/model/{draft}/preview": {},
        f"/ui/model/{draft}/publish": {},
        "/ui/model/rollback": {},
    }
    with httpx.Client(base_url=base, cookies=cookies) as client:
        for path, form in posts.items():
            assert client.post(path, data={"csrf": csrf, **form}).status_code == 403, path
        assert client.get(f"/ui/model/{draft}/publish").status_code == 403
        assert client.get("/ui/model/rollback").status_code == 403
    assert running.service.previews.get(draft) is None

    # an admin's session with a forged token, and no session at all
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, base)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=base, cookies=cookies) as client:
        for path, form in posts.items():
            assert client.post(path, data={"csrf": "guess", **form}).status_code == 400, path
    for path, form in posts.items():
        anonymous = httpx.post(f"{base}{path}", data={"csrf": "x", **form})
        assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    models = _models(running)
    assert models["active"] == first and len(models["items"]) == 2
    assert _score(running, "L1")["stage"] == "MQL"


def test_the_model_page_in_german(running: Running, page: Page) -> None:
    _leads(running)
    base = running.base_url
    sign_in(page, base)
    page.goto(f"{base}/ui/model?lang=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Modell")
    expect(page.get_by_role("heading", name="Aktives Modell")).to_be_visible()
    editor = page.get_by_label("Modell-YAML")
    editor.fill(BROKEN)
    page.get_by_role("button", name="Entwurf speichern").click()
    expect(page.locator("#source-error")).to_contain_text(
        f"Zeile {BROKEN_LINE}, Feld behaviour.rules[0].points"
    )
    editor.fill("")
    page.get_by_role("button", name="Prüfen").click()
    expect(page.locator("#source-error")).to_contain_text("Das YAML ist leer.")
    page.get_by_role(
        "link", name="EN", exact=True
    ).click()  # the answer's address leads back to the page
    expect(page).to_have_url(f"{base}/ui/model?lang=en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Model")
    page.goto(f"{base}/ui/model/rollback?lang=de")
    expect(page.get_by_role("alert")).to_have_text(
        "Es gibt keine früher veröffentlichte Version zum Zurückrollen."
    )
    missing = page.goto(f"{base}/ui/model/999")
    assert missing is not None and missing.status == 404
    expect(page.locator("main")).to_contain_text("Es gibt kein Modell #999.")
    no_job = page.goto(f"{base}/ui/model/jobs/999")
    assert no_job is not None and no_job.status == 404
