"""The sales queue in a real headless Chromium (Playwright), on a real service on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from servicekit import MODELS, T0, Running

from .conftest import PASSWORD, USER, sign_in

STARTER = (MODELS / "starter.yaml").read_text()
CEO = {"lead_id": "L1", "job_title": "CEO", "employees": 500, "industry": "Software"}


def _sales_ready(running: Running) -> None:
    running.publish(STARTER)
    assert running.admin.put("/v1/leads/L1", json=CEO).status_code in (200, 201)
    ts = (T0 - timedelta(hours=1)).isoformat()
    for i, kind in enumerate(("webinar_attended", "demo_request")):
        event = {"event_id": f"e{i}", "lead_id": "L1", "type": kind, "ts": ts}
        assert running.tracking.post("/v1/events", json=event).status_code == 200
    card = running.admin.get("/v1/leads/L1/score").json()  # a tracking key is told no score
    assert card["score"]["stage"] == "SQL", card  # SQL: a 24-hour SLA
    running.admin.put("/v1/leads/L2", json={"lead_id": "L2", "job_title": "Student"})


def _sign_in(page: Page, base: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/ui/queue")
    expect(page).to_have_url(f"{base}/ui/login?next=/ui/queue")
    page.get_by_label("Username").fill(USER)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_see_the_queue_and_mark_a_lead_worked(running: Running, page: Page) -> None:
    _sales_ready(running)
    _sign_in(page, running.base_url, "wrong password!")
    expect(page.get_by_role("alert")).to_have_text("Unknown username or wrong password.")
    expect(page.get_by_label("Username")).to_have_value(USER)  # kept for another try
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{running.base_url}/ui/queue")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sales queue")
    row = page.locator("tr[data-lead='L1']")
    expect(row).to_contain_text("SQL")
    expect(row).to_contain_text("due in 24 h 0 min")
    # the rules that gave the most points, in the model's words
    reasons = ["Requested a demo +30", "Decision maker +20", "50 to 5,000 employees +10"]
    expect(row.locator("td.reasons li")).to_have_text(reasons)
    expect(page.locator("tr[data-lead='L2']")).to_have_count(0)  # a student is not sales-ready
    row.get_by_role("button", name="Mark worked").click()
    expect(page.get_by_role("status")).to_have_text("Marked L1 as worked.")
    tasks = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    assert [t["status"] for t in tasks if t["stage"] == "SQL"] == ["met"]
    expect(page.locator("tr[data-lead='L1'] button")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{running.base_url}/ui/login")
    page.goto(f"{running.base_url}/ui/queue")  # the session is over
    expect(page).to_have_url(f"{running.base_url}/ui/login?next=/ui/queue")


def test_the_dashboard_speaks_german_and_works_from_the_keyboard(
    running: Running, page: Page
) -> None:
    _sales_ready(running)
    page.goto(f"{running.base_url}/ui/login?lang=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Anmelden")
    page.keyboard.type(USER)  # the username field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vertriebs-Warteschlange")
    expect(page.locator("tr[data-lead='L1'] button")).to_have_text("Als bearbeitet markieren")
    reason = page.locator("tr[data-lead='L1'] td.reasons li").first
    expect(reason).to_have_text("Demo angefragt +30")
    expect(page.locator("html")).to_have_attribute("lang", "de")


def test_a_lead_is_marked_worked_with_the_keyboard_alone(running: Running, page: Page) -> None:
    _sales_ready(running)
    sign_in(page, running.base_url)
    page.keyboard.press("Tab")  # the first stop is the skip link, on screen once focused
    skip = page.get_by_role("link", name="Skip to the content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, box
    button = page.locator("tr[data-lead='L1']").get_by_role("button", name="Mark worked")
    for _ in range(80):  # the nav, the language links, the lead's link, then its button
        if button.evaluate("b => b === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Marked L1 as worked.")
    tasks = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    assert [t["status"] for t in tasks if t["stage"] == "SQL"] == ["met"]


def test_forms_without_the_session_token_are_refused(running: Running, page: Page) -> None:
    _sales_ready(running)
    sign_in(page, running.base_url)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=running.base_url, cookies=cookies) as client:
        forged = client.post("/ui/leads/L1/worked", data={"csrf": "guess"})
        assert forged.status_code == 400
        anonymous = httpx.post(f"{running.base_url}/ui/leads/L1/worked", data={"csrf": "x"})
        assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    tasks: list[dict[str, Any]] = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()[
        "items"
    ]
    assert [t["status"] for t in tasks if t["stage"] == "SQL"] == ["open"]


def test_an_empty_form_gets_field_messages(running: Running, page: Page) -> None:
    page.goto(f"{running.base_url}/ui/login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#username-error")).to_have_text("Username: required")
    expect(page.locator("#password-error")).to_have_text("Password: required")
    expect(page.get_by_label("Username")).to_have_attribute("aria-invalid", "true")
