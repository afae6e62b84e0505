"""Lead and account ids are one path segment in every dashboard URL: an id like
`../../ui/leads/X` links to its own page and its "Mark worked" acts for it, never for X (real
server, real Chromium)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from leadscore.store import tables as t
from servicekit import MODELS, T0, Running

from .conftest import PASSWORD, USER, sign_in

STARTER = (MODELS / "starter.yaml").read_text()
EVIL = "../../ui/leads/X"
ODD = ("a/b", "q?x#y", "100%2F")  # "/", query, fragment, an encoded slash
# URLs cannot hold "." or ".." as a segment: browsers drop them even when written %2E, so the
# API refuses them as ids
DOTS = (".", "..")
ACCOUNT = "acme/emea"


def _sales_ready(running: Running, *lead_ids: str) -> None:
    running.publish(STARTER)
    leads = [
        {"lead_id": i, "name": f"Lead {i}", "job_title": "CEO", "employees": 500} for i in lead_ids
    ]
    leads[0]["account_id"] = ACCOUNT
    r = running.admin.post("/v1/leads", json={"leads": leads})
    assert r.status_code == 200, r.text
    r = running.admin.post("/v1/accounts", json={"accounts": [{"account_id": ACCOUNT}]})
    assert r.status_code == 200, r.text
    ts = (T0 - timedelta(hours=1)).isoformat()
    for n, lead_id in enumerate(lead_ids):
        for kind in ("webinar_attended", "demo_request"):
            event = {"event_id": f"{kind}-{n}", "lead_id": lead_id, "type": kind, "ts": ts}
            assert running.tracking.post("/v1/events", json=event).status_code == 200
    running.wait_idle()


def _open_tasks(running: Running) -> set[str]:
    sla = t.sla_tasks
    with running.service.store.read() as conn:
        rows = conn.execute(sa.select(sla.c.lead_id).where(sla.c.status == "open"))
        return {r[0] for r in rows}


def _client(running: Running) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=running.base_url, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    page = client.get("/ui/queue")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return client, csrf.group(1)


def test_mark_worked_on_a_climbing_id_marks_that_lead_and_no_other(
    running: Running, page: Page
) -> None:
    _sales_ready(running, EVIL, "X")
    assert _open_tasks(running) == {EVIL, "X"}
    base = running.base_url
    sign_in(page, base)
    row = page.locator(f'tr[data-lead="{EVIL}"]')
    row.get_by_role("button", name="Mark worked").click()
    expect(page.get_by_role("status")).to_have_text(f"Marked {EVIL} as worked.")
    assert _open_tasks(running) == {"X"}  # X's task is still open

    # the same from the lead's own page, reached by its link
    page.goto(f"{base}/ui/leads")
    page.get_by_role("link", name="Lead X", exact=True).click()
    expect(page).to_have_url(f"{base}/ui/leads/X")
    page.goto(f"{base}/ui/leads")
    page.get_by_role("link", name=f"Lead {EVIL}").click()
    expect(page).to_have_url(f"{base}/ui/leads/..%2F..%2Fui%2Fleads%2FX")
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Lead {EVIL}")
    page.locator('a[href="/ui/accounts/acme%2Femea"]').first.click()
    expect(page).to_have_url(f"{base}/ui/accounts/acme%2Femea")
    expect(page.get_by_role("heading", level=1)).to_contain_text(ACCOUNT)


def test_every_odd_id_is_one_encoded_segment_and_reaches_its_own_page(running: Running) -> None:
    _sales_ready(running, *ODD)
    client, csrf = _client(running)
    try:
        queue = client.get("/ui/queue").text
        for lead_id in ODD:
            encoded = {"a/b": "a%2Fb", "q?x#y": "q%3Fx%23y", "100%2F": "100%252F"}
            href = f"/ui/leads/{encoded[lead_id]}"
            assert f'href="{href}"' in queue and f'action="{href}/worked"' in queue, lead_id
            shown = client.get(href)
            assert shown.status_code == 200 and f"Lead {lead_id}" in shown.text, lead_id
        # sent unencoded, "a/b" is two segments: no page, and no form acts for anyone
        assert client.get("/ui/leads/a/b").status_code == 404
        refused = client.post("/ui/leads/a/b/worked", data={"csrf": csrf})
        assert refused.status_code == 404 and "%2F" in refused.text
        assert "a/b" in _open_tasks(running)
        done = client.post("/ui/leads/a%2Fb/worked", data={"csrf": csrf, "back": "lead"})
        assert done.status_code == 303 and done.headers["location"] == "/ui/leads/a%2Fb?worked=1"
        assert "a/b" not in _open_tasks(running)
        # signing in again brings the browser back to the page it asked for, id encoded
        anonymous = httpx.get(f"{running.base_url}/ui/leads/q%3Fx%23y")
        assert anonymous.headers["location"] == "/ui/login?next=/ui/leads/q%253Fx%2523y"
    finally:
        client.close()


def test_dot_ids_cannot_enter_the_store(running: Running) -> None:
    for dots in DOTS:
        lead = running.admin.post("/v1/leads", json={"leads": [{"lead_id": dots}]})
        assert lead.status_code == 422 and "cannot be an id" in lead.text, lead.text
        account = running.admin.post("/v1/accounts", json={"accounts": [{"account_id": dots}]})
        assert account.status_code == 422 and "cannot be an id" in account.text, account.text
        event = {"event_id": "e1", "lead_id": dots, "type": "download", "ts": T0.isoformat()}
        refused = running.tracking.post("/v1/events", json=event)
        assert refused.status_code == 422 and "cannot be an id" in refused.text, refused.text
        identify = running.tracking.post("/v1/identify", json={"userId": dots, "traits": {}})
        # Segment's answer: the message is rejected by index, the call itself succeeds
        assert identify.status_code == 200, identify.text
        [rejected] = identify.json()["rejected"]
        assert "userId" in rejected["reason"] and "cannot be an id" in rejected["reason"]
    with running.service.store.read() as conn:
        assert conn.execute(sa.select(t.leads.c.lead_id)).all() == []
