"""The accounts pages in a real headless Chromium, on a real service on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from leadscore.dashboard.auth import create_user
from servicekit import MODELS, T0, Running

from .conftest import sign_in

COMMITTEE = (MODELS / "committee.yaml").read_text()
ACME = {
    "account_id": "acme",
    "name": "Acme",
    "employees": 1000,
    "industry": "Software",
    "annual_revenue": 20_000_000,
    "priority": "tier1",  # the committee model's target accounts
}
LEADS = [
    {"lead_id": "a1", "account_id": "acme", "name": "Ada", "job_title": "CEO"},
    {"lead_id": "a2", "account_id": "acme", "job_title": "Marketing Manager"},
    {"lead_id": "a3", "account_id": "acme"},
    {"lead_id": "b1", "account_id": "beta", "job_title": "Student"},
]
# Accounts with no leads and so no roll-up: they come after every scored account.
EMPTY = [{"account_id": f"z{i:03d}", "name": f"Zeta {i}"} for i in range(55)]


def _event(event_id: str, lead_id: str, age: timedelta) -> dict[str, Any]:
    ts = (T0 - age).isoformat() + "Z"
    return {"event_id": event_id, "lead_id": lead_id, "type": "page_view", "ts": ts,
            "url": "/pricing"}  # fmt: skip


def _committee(running: Running) -> None:
    running.publish(COMMITTEE)
    accounts = [ACME, {"account_id": "beta", "name": "Beta"}, *EMPTY]
    assert running.admin.post("/v1/accounts", json={"accounts": accounts}).is_success
    assert running.admin.post("/v1/leads", json={"leads": LEADS}).is_success
    # a1 and a2 looked at pricing yesterday, a3 forty days ago: two engaged stakeholders
    events = [
        _event("p1", "a1", timedelta(days=1)),
        _event("p2", "a2", timedelta(days=1, hours=2)),
        _event("p3", "a3", timedelta(days=40)),
    ]
    assert running.tracking.post("/v1/events/batch", json={"events": events}).is_success
    running.wait_idle()


def _listed(page: Page) -> list[str]:
    return [
        str(row.get_attribute("data-account"))
        for row in page.locator("table.accounts tbody tr").all()
    ]


def test_accounts_are_listed_by_roll_up_filtered_searched_and_paged(
    running: Running, page: Page
) -> None:
    _committee(running)
    api = running.admin.get("/v1/accounts", params={"limit": 3}).json()
    # the REST API answers from the same function, with the same filters
    only = running.admin.get("/v1/accounts", params={"priority": "true"}).json()
    assert only["total"] == 1 and [a["priority"] for a in only["items"]] == [True]
    found = running.admin.get("/v1/accounts", params={"q": "ZETA 5"}).json()
    ids = [a["account_id"] for a in found["items"]]
    assert ids == ["z005", *(f"z{i:03d}" for i in range(50, 55))]
    sign_in(page, running.base_url)
    page.get_by_role("link", name="Accounts", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accounts")
    expect(page.get_by_role("status")).to_have_text("Accounts 1 to 50 of 57")
    listed = _listed(page)
    assert listed[:3] == ["acme", "beta", "z000"] == [a["account_id"] for a in api["items"]]
    assert len(listed) == 50
    acme = page.locator("tr[data-account='acme']")
    expect(acme.locator("td").nth(0)).to_have_text(f"{api['items'][0]['account_score']:.2f}")
    expect(acme.locator("td").nth(1)).to_have_text("3")
    expect(acme).to_contain_text("priority account")
    expect(page.locator("tr[data-account='beta']")).not_to_contain_text("priority account")
    expect(page.locator("tr[data-account='z000'] td").nth(0)).to_have_text("not scored yet")

    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_role("status")).to_have_text("Accounts 51 to 57 of 57")
    assert _listed(page) == [f"z{i:03d}" for i in range(48, 55)]
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect(page.get_by_role("status")).to_have_text("Accounts 1 to 50 of 57")

    page.get_by_label("Priority accounts only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{running.base_url}/ui/accounts?q=&priority=1")
    assert _listed(page) == ["acme"]
    expect(page.get_by_label("Priority accounts only")).to_be_checked()

    page.get_by_label("Priority accounts only").uncheck()
    page.get_by_label("Search name or id").fill("BET")
    page.get_by_role("button", name="Filter").click()
    assert _listed(page) == ["beta"]
    expect(page.get_by_label("Search name or id")).to_have_value("BET")
    page.get_by_label("Search name or id").fill("zeta 1")
    page.get_by_label("Search name or id").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Accounts 1 to 11 of 11")
    page.get_by_label("Search name or id").fill("100%_")  # wildcards are plain text
    page.get_by_label("Search name or id").press("Enter")
    expect(page.get_by_text("No account matches.")).to_be_visible()


def test_an_account_shows_its_roll_up_priority_and_engaged_stakeholders(
    running: Running, page: Page
) -> None:
    _committee(running)
    view = running.admin.get("/v1/accounts/acme").json()
    assert view["engaged"] == 2 and view["engaged_threshold"] == 2 and view["priority"]
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/accounts")
    page.get_by_role("link", name="Acme", exact=True).click()
    expect(page).to_have_url(f"{running.base_url}/ui/accounts/acme")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme")
    expect(page.locator("#rollup-score")).to_have_text(f"{view['account_score']:.2f}")
    expect(page.locator("#rollup")).to_have_text("The sum of its leads' totals.")
    expect(page.locator("#priority-flag")).to_have_text("yes")
    expect(page.locator("table.fields")).to_contain_text("Target tier")
    expect(page.locator("table.fields")).to_contain_text("tier1")
    expect(page.locator("#engaged-summary")).to_contain_text("2 of 3 stakeholders engaged.")
    expect(page.locator("#engaged-summary")).to_contain_text("from 2 engaged stakeholders")
    expect(page.locator("ul.tiers li.reached")).to_have_count(1)
    rows = page.locator("table.stakeholders tbody tr")
    order = [s["lead_id"] for s in view["stakeholders"]]
    assert [r.get_attribute("data-lead") for r in rows.all()] == order
    engaged = {lead: page.locator(f"tr[data-lead='{lead}'] td.engaged") for lead in order}
    expect(engaged["a1"]).to_have_text("yes")
    expect(engaged["a2"]).to_have_text("yes")
    expect(engaged["a3"]).to_have_text("no")  # its visit is older than the 30-day window
    a1 = page.locator("tr[data-lead='a1']")
    expect(a1.get_by_role("link", name="Ada")).to_have_attribute("href", "/ui/leads/a1")
    expect(a1).to_contain_text("CEO")
    expect(a1).to_contain_text(view["stakeholders"][0]["stage"])
    expect(a1).to_contain_text(f"{view['stakeholders'][0]['total']:.2f}")

    page.get_by_role("link", name="All accounts").click()
    expect(page).to_have_url(f"{running.base_url}/ui/accounts")
    missing = page.goto(f"{running.base_url}/ui/accounts/nobody")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_accounts_speak_german_to_any_signed_in_user(running: Running, page: Page) -> None:
    _committee(running)
    with running.service.store.write() as conn:
        create_user(conn, "jonas", "another long password", admin=False, now=running.clock())
    anonymous = httpx.get(f"{running.base_url}/ui/accounts/acme", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/ui/login?next=/ui/accounts/acme"
    sign_in(page, running.base_url, "jonas", "another long password")
    page.goto(f"{running.base_url}/ui/accounts?lang=de")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("columnheader", name="Gesamtscore")).to_be_visible()
    expect(page.locator("tr[data-account='acme']")).to_contain_text("Zielkunde")
    expect(page.get_by_label("Nur Zielkunden")).not_to_be_checked()
    expect(page.get_by_role("button", name="Filtern")).to_be_visible()
    page.get_by_role("link", name="Acme", exact=True).click()
    expect(page.locator("#rollup")).to_have_text("Die Summe der Scores seiner Leads.")
    expect(page.locator("#engaged-summary")).to_contain_text("2 von 3 Ansprechpartnern aktiv.")
    expect(page.get_by_role("heading", name="Ansprechpartner")).to_be_visible()
    expect(page.locator("tr[data-lead='a3'] td.engaged")).to_have_text("nein")
    expect(page.locator("table.fields")).to_contain_text("Mitarbeitende")

    # a very large account lists its best stakeholders and says so; the count covers all
    many = [{"lead_id": f"m{i:03d}", "account_id": "many"} for i in range(205)]
    assert running.admin.post("/v1/leads", json={"leads": many}).is_success
    running.wait_idle()
    page.goto(f"{running.base_url}/ui/accounts/many?lang=en")
    expect(page.locator("#best-shown")).to_have_text("The 200 best of 205 stakeholders are listed.")
    expect(page.locator("table.stakeholders tbody tr")).to_have_count(200)
    expect(page.locator("#engaged-summary")).to_contain_text("0 of 205 stakeholders engaged.")
