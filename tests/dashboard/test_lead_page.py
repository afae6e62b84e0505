"""The leads list and the lead page in a real headless Chromium, on a real service."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from leadscore.dashboard import leads as leads_page
from leadscore.dashboard.auth import create_user
from servicekit import MODELS, T0, Running

from .conftest import sign_in

STARTER = (MODELS / "starter.yaml").read_text()
COMMITTEE = (MODELS / "committee.yaml").read_text()
ADA = {
    "lead_id": "L1",
    "name": "Ada Lovelace",
    "email": "ada@engines.example",
    "company": "Analytical Engines",
    "job_title": "CEO",
    "employees": 500,
    "industry": "Software",
}


def _event(
    running: Running, event_id: str, lead_id: str, kind: str, hours_ago: float, **extra: Any
) -> None:
    ts = (T0 - timedelta(hours=hours_ago)).isoformat()
    event = {"event_id": event_id, "lead_id": lead_id, "type": kind, "ts": ts, **extra}
    r = running.tracking.post("/v1/events", json=event)
    assert r.status_code == 200, r.text


def _starter_leads(running: Running) -> None:
    """Ada becomes sales-ready (SQL, a 24-hour SLA); Bob is a student, Cy has no events.
    The clock moves with the events, so that Ada's score changes over two days."""
    running.clock.set(T0 - timedelta(hours=48))
    running.publish(STARTER)
    assert running.admin.put("/v1/leads/L1", json=ADA).status_code in (200, 201)
    for lead in (
        {"lead_id": "L2", "name": "Bob Student", "job_title": "Student", "company": "Uni"},
        {"lead_id": "L3", "name": "Cy Analytic", "company": "Engines & Co", "employees": 80},
    ):
        assert running.admin.put(f"/v1/leads/{lead['lead_id']}", json=lead).status_code < 300
    for hours, args in (
        (30, ("e1", "L1", "webinar_attended")),
        (20, ("e2", "L1", "page_view")),
        (5, ("e4", "L2", "page_view")),
    ):
        running.clock.set(T0 - timedelta(hours=hours, minutes=-1))
        url = "https://x.example/careers" if args[1] == "L2" else "https://x.example/pricing"
        _event(running, *args, hours, url=url)
    running.clock.set(T0)
    _event(running, "e3", "L1", "demo_request", 1)


def _texts(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def test_search_open_a_lead_read_its_ledger_and_timeline_and_mark_it_worked(
    running: Running, page: Page
) -> None:
    _starter_leads(running)
    base = running.base_url
    sign_in(page, base)
    page.get_by_role("link", name="Leads", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Leads")
    # highest score first; a student's negative fit puts Bob last
    expect(page.locator("table.leads tbody tr")).to_have_count(3)
    order = [row.get_attribute("data-lead") for row in page.locator("table.leads tbody tr").all()]
    assert order[0] == "L1" and order[-1] == "L2", order
    expect(page.locator("tr[data-lead='L1']")).to_contain_text("SQL")
    expect(page.locator("tr[data-lead='L1']")).to_contain_text("hot")

    # a search finds a part of the name, e-mail, company, or the start of the id
    page.get_by_label("Search leads").fill("lovel")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{base}/ui/leads?q=lovel")
    expect(page.locator("table.leads tbody tr")).to_have_count(1)
    page.get_by_label("Search leads").fill("ENGINES")  # any case: Ada's e-mail, Cy's company
    page.get_by_label("Search leads").press("Enter")
    expect(page.locator("table.leads tbody tr")).to_have_count(2)
    page.get_by_label("Search leads").fill("100%_")  # LIKE wildcards are plain text
    page.get_by_label("Search leads").press("Enter")
    expect(page.get_by_text("No lead matches “100%_”.")).to_be_visible()
    page.get_by_label("Search leads").fill("L")
    page.get_by_label("Search leads").press("Enter")
    expect(page.locator("table.leads tbody tr")).to_have_count(3)

    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page).to_have_url(f"{base}/ui/leads/L1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ada Lovelace")
    card = running.admin.get("/v1/leads/L1/score").json()
    total = f"{card['score']['total']:.2f}"
    expect(page.locator("#score-total")).to_have_text(total)
    expect(page.locator("#score-stage")).to_have_text("SQL")
    expect(page.locator("#score-temperature")).to_have_text("hot")
    expect(page.locator(".score-card")).to_contain_text("starter 1.0")

    # the ledger: every line in the model's words, summing to the total shown above
    labels = _texts(page, "table.ledger tbody th")
    for text in (
        "Decision maker",
        "50 to 5,000 employees",
        "Target industry",
        "Requested a demo",
        "Attended a webinar",
        "Looked at pricing",
    ):
        assert any(label.startswith(text) for label in labels), (text, labels)
    assert len(labels) == len(card["ledger"])
    points = [float(p) for p in _texts(page, "table.ledger tbody td.num")]
    assert round(sum(points), 2) == float(total)
    expect(page.locator("#ledger-sum")).to_have_text(total)
    expect(page.locator("table.ledger tfoot")).to_contain_text(f"equals the total of {total}")
    demo = page.locator("table.ledger tr[data-rule='demo_request']")
    expect(demo.locator("td")).to_have_text(["Behaviour", "event", re.compile("^e3"), "+29.99"])

    # the timeline: the events, newest first, with the score changes and stage moves
    expect(page.locator("figure[data-plot='trajectory'] svg")).to_be_visible()
    expect(page.locator("figure[data-plot] svg")).to_have_attribute("role", "img")
    events = page.locator("table.timeline tr[data-kind='event']")
    expect(events).to_have_count(3)
    assert [e.get_attribute("data-event") for e in events.all()] == ["e3", "e2", "e1"]
    expect(page.locator("tr[data-event='e2']")).to_contain_text("/pricing")
    moves = page.locator("table.timeline tr[data-kind='transition']")
    expect(moves.filter(has_text="→ SQL")).to_have_count(1)
    history = running.admin.get("/v1/leads/L1/history").json()["items"]
    expect(page.locator("table.timeline tr[data-kind='score']")).to_have_count(len(history))

    # the SLA task of the SQL stage, worked from here
    task = page.locator("table.tasks tr[data-status='open']")
    expect(task).to_contain_text("due in 24 h 0 min")
    expect(page.get_by_text("No outcome recorded.")).to_be_visible()
    page.get_by_role("button", name="Mark worked").click()
    expect(page).to_have_url(f"{base}/ui/leads/L1?worked=1")
    expect(page.get_by_role("status")).to_have_text("Marked as worked: the open SLA tasks are met.")
    expect(page.locator("table.tasks tr[data-status='met']")).to_have_count(1)
    expect(page.get_by_role("button", name="Mark worked")).to_have_count(0)
    tasks = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    assert {t["stage"]: t["status"] for t in tasks} == {"SQL": "met", "MQL": "cancelled"}


def test_pages_of_leads(running: Running, page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    leads = [{"lead_id": f"P{i:03d}", "employees": i} for i in range(120)]
    running.publish(STARTER)
    assert running.admin.post("/v1/leads", json={"leads": leads}).status_code == 200
    running.wait_idle()
    # one lead the scorer has not reached: it comes after every scored one
    with running.service.store.write() as conn:
        conn.exec_driver_sql("DELETE FROM scores WHERE lead_id = 'P000'")
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/leads")
    expect(page.locator("p.count")).to_have_text("120 leads")
    expect(page.locator("table.leads tbody tr")).to_have_count(50)
    expect(page.get_by_text("Page 1 of 3")).to_be_visible()
    expect(page.get_by_role("link", name="Previous page")).to_have_count(0)
    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_text("Page 2 of 3")).to_be_visible()
    page.get_by_role("link", name="Next page").click()
    expect(page).to_have_url(f"{running.base_url}/ui/leads?page=3")
    rows = page.locator("table.leads tbody tr")
    expect(rows).to_have_count(20)
    expect(rows.last).to_have_attribute("data-lead", "P000")
    expect(rows.last).to_contain_text("not scored")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    seen = set()
    for n in (1, 2, 3):
        page.goto(f"{running.base_url}/ui/leads?page={n}")
        seen |= {r.get_attribute("data-lead") for r in rows.all()}
    assert len(seen) == 120  # every lead once, none twice
    # a search matching more leads than it sorts: the best-scored ones by the score index
    monkeypatch.setattr(leads_page, "COUNT_CAP", 100)
    monkeypatch.setattr(leads_page, "SHOWN_CAP", 60)
    page.goto(f"{running.base_url}/ui/leads?q=p")
    expect(page.locator("p.count")).to_have_text(
        "More than 100 leads match; the 60 with the highest scores are listed. "
        "A longer search text finds the others."
    )
    expect(rows).to_have_count(50)
    shown = {r.get_attribute("data-lead") for r in rows.all()}
    # 70 leads of 50 employees or more have 10 points, the others none
    assert set(page.locator("table.leads tbody td.num").all_inner_texts()) == {"10.00"}
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(10)
    assert set(page.locator("table.leads tbody td.num").all_inner_texts()) == {"10.00"}
    shown |= {r.get_attribute("data-lead") for r in rows.all()}
    assert len(shown) == 60
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    # page numbers edited by hand: the nearest page there is
    page.goto(f"{running.base_url}/ui/leads?page=99")
    expect(page).to_have_url(f"{running.base_url}/ui/leads?page=3")
    expect(rows.last).to_have_attribute("data-lead", "P000")
    page.goto(f"{running.base_url}/ui/leads?q=p&page=9")
    expect(page).to_have_url(f"{running.base_url}/ui/leads?q=p&page=2")
    page.goto(f"{running.base_url}/ui/leads?page={'9' * 5000}")
    expect(page).to_have_url(f"{running.base_url}/ui/leads?page=3")
    for wrong in ("0", "-1", "two", "²"):
        page.goto(f"{running.base_url}/ui/leads?page={wrong}")
        expect(page.get_by_text("Page 1 of 3")).to_be_visible()


def test_stakeholders_interests_and_outcomes_on_the_lead_page(running: Running, page: Page) -> None:
    running.publish(COMMITTEE)
    account = {"account_id": "A1", "name": "Globex", "employees": 1200, "industry": "Software"}
    assert running.admin.put("/v1/accounts/A1", json=account).status_code < 300
    people = [
        {"lead_id": "P1", "name": "Pia Chief", "job_title": "CMO", "account_id": "A1"},
        {
            "lead_id": "P2",
            "name": "Paul Manager",
            "job_title": "Marketing manager",
            "account_id": "A1",
        },
        {"lead_id": "P3", "name": "Petra Quiet", "job_title": "Analyst", "account_id": "A1"},
        {"lead_id": "X1", "name": "Xavier Elsewhere", "job_title": "CEO"},
    ]
    for lead in people:
        assert running.admin.put(f"/v1/leads/{lead['lead_id']}", json=lead).status_code < 300
    _event(running, "p1a", "P1", "download", 10, topic="crm", asset="crm-guide")
    _event(running, "p1b", "P1", "page_view", 5, url="https://x.example/pricing", topic="analytics")
    _event(running, "p2a", "P2", "webinar_attended", 3)
    _event(running, "p3a", "P3", "page_view", 24 * 60)  # two months ago: outside the 30-day window
    r = running.admin.post(
        "/v1/leads/P1/outcome", json={"outcome": "won", "value": 12500.0, "ts": T0.isoformat()}
    )
    assert r.status_code == 201, r.text
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/leads/P1")
    section = page.locator("section[aria-labelledby='stakeholders-h']")
    expect(section.get_by_role("heading")).to_have_text("Account stakeholders")
    expect(section).to_contain_text("Other leads of Globex: 1 of 2 engaged.")
    expect(section.locator("tr[data-lead='P2'] td.engaged")).to_have_text("yes")
    expect(section.locator("tr[data-lead='P3'] td.engaged")).to_have_text("no")
    expect(section.locator("tr[data-lead='P1']")).to_have_count(0)  # not among the others
    expect(section.locator("tr[data-lead='X1']")).to_have_count(0)
    expect(section.get_by_role("link", name="Open the account: Globex")).to_have_attribute(
        "href", "/ui/accounts/A1"
    )
    view = running.admin.get("/v1/accounts/A1").json()
    engaged = {s["lead_id"] for s in view["stakeholders"] if s["engaged"]}
    assert engaged == {"P1", "P2"}
    # the account part of the score is in the ledger too, and it still sums
    card = running.admin.get("/v1/leads/P1/score").json()
    expect(page.locator("#score-account")).to_have_text(f"{card['score']['account']:.2f}")
    expect(page.locator("#ledger-sum")).to_have_text(page.locator("#score-total").inner_text())
    interests = page.locator("table.interests")
    expect(interests.locator("tbody tr")).to_have_count(3)
    expect(interests).to_contain_text("CRM")
    expect(interests).to_contain_text("Marketing automation")
    outcomes = page.locator("table.outcomes tbody tr")
    expect(outcomes).to_have_count(1)
    expect(outcomes).to_contain_text("won")
    expect(outcomes).to_contain_text("12,500.00")
    # the primary interest in the model's words, in the list as on the score card
    primary = {"analytics": "Analytics", "crm": "CRM"}[card["score"]["primary_interest"]]
    expect(page.locator(".score-card .card")).to_contain_text(primary)
    page.goto(f"{running.base_url}/ui/leads?q=pia")
    expect(page.locator("tr[data-lead='P1'] td").last).to_have_text(primary)
    page.goto(f"{running.base_url}/ui/leads/P1?lang=en")
    section.get_by_role("link", name="Paul Manager").click()
    expect(page).to_have_url(f"{running.base_url}/ui/leads/P2")
    expect(page.get_by_role("heading", level=1)).to_have_text("Paul Manager")


def test_the_lead_page_in_german(running: Running, page: Page) -> None:
    _starter_leads(running)
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/leads/L1?lang=de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    for heading in ("Score-Karte", "Punkteliste", "Verlauf", "SLA-Aufgaben", "Ergebnisse"):
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.locator("table.ledger tr[data-rule='decision_maker'] th")).to_have_text(
        "Entscheider"
    )
    expect(page.locator("table.ledger tr[data-rule='demo_request'] td").first).to_have_text(
        "Verhalten"
    )
    expect(page.locator("table.ledger tfoot")).to_contain_text("gleich dem Gesamtscore von")
    expect(page.get_by_role("button", name="Als bearbeitet markieren")).to_be_visible()
    expect(page.locator("figure[data-plot] figcaption")).to_contain_text("Stufenlinie")
    page.get_by_role("link", name="Leads", exact=True).click()  # the language stays
    expect(page.get_by_label("Leads suchen")).to_be_visible()
    expect(page.get_by_role("button", name="Suchen")).to_be_visible()
    expect(page.locator("p.count")).to_have_text("3 Leads")


def test_unknown_leads_unscored_leads_and_who_may_see_them(running: Running, page: Page) -> None:
    base = running.base_url
    # not signed in: to the sign-in page, and back afterwards
    page.goto(f"{base}/ui/leads/L9")
    expect(page).to_have_url(f"{base}/ui/login?next=/ui/leads/L9")
    page.goto(f"{base}/ui/leads")
    expect(page).to_have_url(f"{base}/ui/login?next=/ui/leads")

    # no model is published yet: the lead's data and events, and a note instead of a score
    lead = {"lead_id": "L9", "name": "Nina New", "company": "Newco", "employees": 12}
    assert running.admin.put("/v1/leads/L9", json=lead).status_code < 300
    _event(running, "n1", "L9", "download", 2, asset="ebook")
    with running.service.store.write() as conn:
        create_user(conn, "jonas", "another long password", admin=False, now=running.clock())
    sign_in(page, base, "jonas", "another long password")  # not an admin: may read leads
    page.goto(f"{base}/ui/leads/L9")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nina New")
    expect(page.locator("#no-score")).to_contain_text("no model is published")
    expect(page.locator("table.ledger")).to_have_count(0)
    expect(page.locator("tr[data-event='n1']")).to_contain_text("ebook")
    expect(page.locator(".lead-details")).to_contain_text("Newco")
    page.goto(f"{base}/ui/leads")
    expect(page.locator("tr[data-lead='L9']")).to_contain_text("not scored")

    response = page.goto(f"{base}/ui/leads/nobody")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("There is no lead “nobody”.")).to_be_visible()
    expect(page.get_by_role("link", name="Leads", exact=True)).to_have_attribute(
        "aria-current", "page"
    )


def test_mark_worked_from_the_lead_page_needs_the_session_token(
    running: Running, page: Page
) -> None:
    _starter_leads(running)
    sign_in(page, running.base_url)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=running.base_url, cookies=cookies) as client:
        forged = client.post("/ui/leads/L1/worked", data={"csrf": "guess", "back": "lead"})
        assert forged.status_code == 400
        page.goto(f"{running.base_url}/ui/leads/L1")
        token = page.locator("form[action='/ui/leads/L1/worked'] input[name='csrf']")
        real = client.post(
            "/ui/leads/L1/worked", data={"csrf": token.get_attribute("value"), "back": "lead"}
        )
        assert real.status_code == 303
        assert real.headers["location"] == "/ui/leads/L1?worked=1"
    anonymous = httpx.post(
        f"{running.base_url}/ui/leads/L1/worked", data={"csrf": "x", "back": "lead"}
    )
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    tasks = running.admin.get("/v1/sla", params={"lead_id": "L1"}).json()["items"]
    assert {t["stage"]: t["status"] for t in tasks} == {"SQL": "met", "MQL": "cancelled"}
