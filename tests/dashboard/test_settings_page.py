"""The settings page (admins only) in a real headless Chromium, on a real service on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from leadscore.dashboard.auth import create_user
from servicekit import MODELS, T0, Receiver, Running

from .conftest import sign_in

STARTER = (MODELS / "starter.yaml").read_text()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    receiver = Receiver()
    yield receiver
    receiver.close()


def _keys(running: Running) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = running.admin.get("/v1/keys").json()["items"]
    return items


def _cookies(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def test_a_new_key_is_shown_once_works_and_stops_working_when_revoked(
    running: Running, page: Page
) -> None:
    sign_in(page, running.base_url)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Settings")
    expect(page.locator("tr[data-user='maria']")).to_contain_text("yes")
    page.get_by_label("Name").fill("crm sync")
    page.get_by_label("admin (everything)").check()
    with page.expect_response(f"{running.base_url}/ui/settings/keys") as answer:
        page.get_by_role("button", name="Create key").click()
    assert answer.value.status == 200
    assert answer.value.headers["cache-control"] == "no-store"
    expect(page.get_by_role("heading", name="New API key “crm sync”")).to_be_visible()
    token = page.locator("#new-secret").inner_text()
    assert token.startswith("ls_") and token not in page.url
    again = page.reload()  # the browser sends the same form again: no second key, no secret
    assert again is not None and again.status == 409
    expect(page.get_by_role("status")).to_contain_text("This form was sent before")
    expect(page.locator("#new-secret")).to_have_count(0)

    with httpx.Client(base_url=running.base_url, timeout=30) as api:
        bearer = {"authorization": f"Bearer {token}"}
        assert api.get("/v1/leads", headers=bearer).status_code == 200
        created = [k for k in _keys(running) if k["name"] == "crm sync"]
        assert [(k["scopes"], k["revoked_at"]) for k in created] == [(["admin"], None)]

        page.goto(f"{running.base_url}/ui/settings")  # the secret is gone for good
        expect(page.locator("#new-secret")).to_have_count(0)
        assert token not in page.content()
        row = page.locator(f"tr[data-key='{created[0]['id']}']")
        expect(row).to_contain_text(created[0]["prefix"])
        expect(row).to_contain_text("active")

        row.get_by_role("link", name="Revoke: crm sync").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Revoke the API key “crm sync”?")
        page.get_by_role("link", name="Cancel").click()
        expect(page).to_have_url(f"{running.base_url}/ui/settings")
        assert api.get("/v1/leads", headers=bearer).status_code == 200  # not yet

        row.get_by_role("link", name="Revoke: crm sync").click()
        page.get_by_role("button", name="Revoke key “crm sync”").click()
        expect(page.get_by_role("status")).to_have_text("The key “crm sync” is revoked.")
        expect(row).to_contain_text("revoked 2026-03-02 09:00 UTC")
        expect(row.get_by_role("link")).to_have_count(0)
        assert api.get("/v1/leads", headers=bearer).status_code == 401
    assert running.admin.get("/v1/leads").status_code == 200  # other keys still work


def test_bad_input_gets_field_messages_and_nothing_is_saved(running: Running, page: Page) -> None:
    before = _keys(running)
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/settings")
    with page.expect_response(f"{running.base_url}/ui/settings/keys") as answer:
        page.get_by_role("button", name="Create key").click()
    assert answer.value.status == 422
    expect(page.locator("#name-error")).to_have_text("Name: required")
    expect(page.locator("#scopes-error")).to_have_text("Scopes: choose at least one")
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Name")).to_have_attribute("aria-describedby", "name-error")

    page.get_by_label("Name").fill("website")  # kept while the scope is still missing
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("Name")).to_have_value("website")
    expect(page.locator("#name-error")).to_have_count(0)
    expect(page.locator("#scopes-error")).to_be_visible()
    page.get_by_label("Name").fill("x" * 201)
    page.get_by_label("tracking (send events from a website)").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#name-error")).to_have_text("Name: at most 200 characters")
    expect(page.get_by_label("tracking (send events from a website)")).to_be_checked()
    assert _keys(running) == before

    # the webhook form applies the REST API's rules and shows its message
    page.get_by_label("URL").fill("ftp://example.com/hook")
    with page.expect_response(f"{running.base_url}/ui/settings/webhooks") as answer:
        page.get_by_role("button", name="Add webhook").click()
    assert answer.value.status == 422
    expect(page.locator("#url-error")).to_have_text(
        "URL: must be an absolute http:// or https:// URL; got 'ftp://example.com/hook'"
    )
    expect(page.get_by_label("URL")).to_have_value("ftp://example.com/hook")
    expect(page.get_by_label("URL")).to_have_attribute("aria-describedby", "url-error")
    page.get_by_label("URL").fill("https://crm.example.com/hook")
    for box in page.locator("input[name=topics]").all():
        box.uncheck()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#topics-error")).to_contain_text("Topics: choose at least one")
    expect(page.get_by_label("URL")).to_have_value("https://crm.example.com/hook")
    page.get_by_label("sla_breached").check()
    page.get_by_label("Signing secret").fill("too short")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#secret-error")).to_contain_text("Signing secret: must be at least 16")
    expect(page.get_by_label("sla_breached")).to_be_checked()
    expect(page.get_by_label("score_changed")).not_to_be_checked()

    page.goto(f"{running.base_url}/ui/settings?lang=de")
    page.get_by_label("URL").fill("kein link")
    page.get_by_role("button", name="Webhook hinzufügen").click()
    expect(page.locator("#url-error")).to_have_text(
        "URL: muss eine absolute http://- oder https://-Adresse sein"
    )
    page.get_by_role("button", name="Schlüssel erstellen").click()
    expect(page.locator("#name-error")).to_have_text("Name: fehlt")
    expect(page.locator("#scopes-error")).to_have_text("Berechtigungen: mindestens eine wählen")
    assert running.admin.get("/v1/webhooks").json() == []
    assert _keys(running) == before


def test_settings_are_for_admins_only_and_forms_need_the_session_token(
    running: Running, page: Page
) -> None:
    before = _keys(running)
    anonymous = httpx.get(f"{running.base_url}/ui/settings", follow_redirects=False)
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    posted = httpx.post(
        f"{running.base_url}/ui/settings/keys",
        data={"csrf": "x", "name": "sneaky", "scopes": "admin"},
        follow_redirects=False,
    )
    assert posted.status_code == 303 and "/ui/login" in posted.headers["location"]

    sign_in(page, running.base_url)  # an admin, but a forged form
    with httpx.Client(base_url=running.base_url, cookies=_cookies(page)) as client:
        forged = client.post(
            "/ui/settings/keys", data={"csrf": "guess", "name": "sneaky", "scopes": "admin"}
        )
        assert forged.status_code == 400
        forged = client.post(
            "/ui/settings/webhooks", data={"csrf": "guess", "url": "http://127.0.0.1:9/x"}
        )
        assert forged.status_code == 400
        forged = client.post(f"/ui/settings/keys/{before[0]['id']}/revoke", data={"csrf": "g"})
        assert forged.status_code == 400
    page.get_by_role("button", name="Sign out").click()

    with running.service.store.write() as conn:
        create_user(conn, "jonas", "another long password", admin=False, now=running.clock())
    sign_in(page, running.base_url, "jonas", "another long password")
    expect(page.get_by_role("link", name="Settings")).to_have_count(0)
    shown = page.goto(f"{running.base_url}/ui/settings")
    assert shown is not None and shown.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Only administrators may open this page."
    )
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    with httpx.Client(base_url=running.base_url, cookies=_cookies(page)) as client:
        for path, data in (
            ("/ui/settings/keys", {"name": "sneaky", "scopes": "admin"}),
            ("/ui/settings/webhooks", {"url": "http://127.0.0.1:9/x"}),
            (f"/ui/settings/keys/{before[0]['id']}/revoke", {}),
            ("/ui/settings/webhooks/1/delete", {}),
        ):
            refused = client.post(path, data={"csrf": csrf, **data})
            assert refused.status_code == 403, path
            assert "sneaky" not in refused.text
        for path in ("/ui/settings/webhooks/1", f"/ui/settings/keys/{before[0]['id']}/revoke"):
            assert client.get(path).status_code == 403, path
    assert _keys(running) == before
    assert running.admin.get("/v1/webhooks").json() == []


def _delivered(running: Running, webhook_id: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running.service.deliverer.wake()
        log = running.admin.get(f"/v1/webhooks/{webhook_id}/deliveries").json()
        if log and all(d["status"] == "delivered" for d in log):
            return list(log)
        time.sleep(0.05)
    raise AssertionError("the webhook was not delivered in time")


def _log_until(
    running: Running, webhook_id: int, done: Callable[[dict[str, Any]], bool], hours: float = 0
) -> dict[str, Any]:
    """The newest delivery of a webhook once `done` holds for it (moving the clock on)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running.clock.advance(hours=hours)
        running.service.deliverer.wake()
        log = running.admin.get(f"/v1/webhooks/{webhook_id}/deliveries").json()
        if log and done(log[0]):
            return dict(log[0])
        time.sleep(0.05)
    raise AssertionError(f"the delivery did not get there in time: {log}")


def test_a_webhook_is_added_its_deliveries_are_logged_and_it_can_be_deleted(
    running: Running, page: Page, receiver: Receiver
) -> None:
    running.publish(STARTER)
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/settings")
    page.get_by_label("URL").fill(receiver.url())
    for topic in ("score_changed", "temperature_changed"):
        page.get_by_label(topic, exact=True).uncheck()
    with page.expect_response(f"{running.base_url}/ui/settings/webhooks") as answer:
        page.get_by_role("button", name="Add webhook").click()
    assert answer.value.headers["cache-control"] == "no-store"
    secret = page.locator("#new-hook-secret").inner_text()
    again = page.reload()  # sent again: subscribed once, the secret not shown again
    assert again is not None and again.status == 409
    expect(page.locator("#new-hook-secret")).to_have_count(0)
    hooks = running.admin.get("/v1/webhooks").json()
    assert [(h["url"], h["topics"]) for h in hooks] == [
        (receiver.url(), ["stage_changed", "sla_opened", "sla_met", "sla_breached"])
    ]
    assert len(secret) >= 16 and "secret" not in hooks[0]

    # a sales-ready lead: its stage changes and an SLA opens, each announced once
    ceo = {"lead_id": "L1", "job_title": "CEO", "employees": 500, "industry": "Software"}
    assert running.admin.put("/v1/leads/L1", json=ceo).is_success
    ts = (T0 - timedelta(hours=1)).isoformat()
    for i, kind in enumerate(("webinar_attended", "demo_request")):
        event = {"event_id": f"e{i}", "lead_id": "L1", "type": kind, "ts": ts}
        assert running.tracking.post("/v1/events", json=event).is_success
    log = _delivered(running, hooks[0]["id"])
    assert receiver.got.wait(10)
    assert {r.json["topic"] for r in receiver.requests} == {d["topic"] for d in log}
    assert {"stage_changed", "sla_opened"} <= {d["topic"] for d in log}

    page.goto(f"{running.base_url}/ui/settings")
    page.get_by_role("link", name=f"Delivery log of {receiver.url()}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Delivery log of {receiver.url()}")
    rows = page.locator("table.deliveries tbody tr")
    assert [r.get_attribute("data-delivery") for r in rows.all()] == [str(d["id"]) for d in log]
    newest = rows.first
    expect(newest).to_contain_text(log[0]["topic"])
    expect(newest.locator("td.status-delivered")).to_have_text("delivered")
    expect(newest.locator("td.num").first).to_have_text("1")  # attempts
    expect(newest.locator("td.num").nth(1)).to_have_text("200")  # the receiver's answer
    expect(newest.get_by_role("link", name="L1")).to_have_attribute("href", "/ui/leads/L1")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No deliveries yet.")).to_be_visible()

    # a receiver that is gone: every attempt is logged with its error and the next try
    dead = running.admin.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/gone", "topics": ["sla_met"]}
    ).json()
    assert running.admin.post("/v1/leads/L1/worked").is_success
    tried = _log_until(running, dead["id"], lambda d: d["attempts"] >= 1)
    assert tried["status"] == "pending" and tried["last_error"], tried
    page.goto(f"{running.base_url}/ui/settings/webhooks/{dead['id']}")
    row = page.locator(f"tr[data-delivery='{tried['id']}']")
    expect(row.locator("td").nth(3)).to_have_text("pending")
    expect(row.locator("td").nth(6)).to_have_text(tried["last_error"])
    due = tried["next_attempt_at"].replace("T", " ")[:19]
    expect(row.locator("td").nth(8)).to_have_text(f"{due} UTC")
    # the retries wait on the service's clock: move it on until the delivery gives up
    failed = _log_until(running, dead["id"], lambda d: d["status"] == "failed", hours=2)
    sign_in(page, running.base_url)  # that many hours on, the session had expired
    page.goto(f"{running.base_url}/ui/settings/webhooks/{dead['id']}?status=failed")
    expect(row.locator("td.status-failed")).to_have_text("failed")
    expect(row.locator("td.num").first).to_have_text(str(failed["attempts"]))
    expect(row.locator("td").nth(8)).to_have_text("")  # no next try

    page.goto(f"{running.base_url}/ui/settings")
    page.get_by_role("link", name=f"Delete: {receiver.url()}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Delete the webhook to {receiver.url()}?"
    )
    page.get_by_role("button", name=f"Delete webhook to {receiver.url()}").click()
    expect(page.get_by_role("status")).to_have_text(f"The webhook to {receiver.url()} is deleted.")
    assert [h["id"] for h in running.admin.get("/v1/webhooks").json()] == [dead["id"]]
    gone = page.goto(f"{running.base_url}/ui/settings/webhooks/{hooks[0]['id']}")
    assert gone is not None and gone.status == 404
