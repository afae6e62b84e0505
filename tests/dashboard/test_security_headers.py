"""Every dashboard route, walked from the app's own route list (so a new page cannot escape
it), answers with the content security policy, no framing, no sniffing, a referrer policy and
no caching; the API's answers carry theirs. In a real Chromium: no page breaks the policy (the
plots render), and a page of another origin cannot frame the dashboard."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import APIRoute
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from starlette.routing import Mount

from leadscore.dashboard.auth import create_user
from leadscore.dashboard.security import fit_svg
from leadscore.service.app import Service, Settings, create_app
from leadscore.service.keys import create_key
from leadscore.store import tables as t
from servicekit import MODELS, T0, ManualClock, serve

from .conftest import PASSWORD, USER, sign_in

STARTER = (MODELS / "starter.yaml").read_text()


@dataclass
class Site:
    base: str
    app: FastAPI
    service: Service
    clock: ManualClock
    admin: httpx.Client  # an API key
    browser: httpx.Client  # signed in to the dashboard as an administrator
    ids: dict[str, str]


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post(
        "/ui/login", data={"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    )
    assert done.status_code == 303, done.text
    return client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A service on SQLite with a published model, a scored lead with an account, a job and a
    key: every page has something real to show."""
    clock = ManualClock()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/leadscore.db", rescore_interval=0)
    service = Service(settings, clock)
    with service.store.write() as conn:
        key = create_key(conn, "test admin", ["admin"], clock())
        create_user(conn, USER, PASSWORD, admin=True, now=clock())
    app = create_app(settings, service=service)
    server, thread, base = serve(app)
    admin = httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=30)
    try:
        r = admin.post("/v1/models", content=STARTER, headers={"content-type": "application/yaml"})
        model_id = str(r.json()["id"])
        assert admin.post(f"/v1/models/{model_id}/publish").status_code == 202
        assert service.jobs.wait(30)
        lead = {"lead_id": "L1", "name": "Ada", "job_title": "CEO", "account_id": "A1"}
        assert admin.put("/v1/leads/L1", json=lead).status_code < 300
        assert admin.post("/v1/accounts", json={"accounts": [{"account_id": "A1"}]}).is_success
        for n, hours in enumerate((30, 20, 5)):
            clock.set(T0 - timedelta(hours=hours))
            ts = (T0 - timedelta(hours=hours)).isoformat()
            event = {"event_id": f"e{n}", "lead_id": "L1", "type": "webinar_attended", "ts": ts}
            assert admin.post("/v1/events", json=event).status_code == 200
        clock.set(T0)
        with service.store.read() as conn:
            job_id = conn.execute(sa.select(sa.func.max(t.jobs.c.id))).scalar_one()
            key_id = conn.execute(sa.select(sa.func.max(t.api_keys.c.id))).scalar_one()
        ids = {
            "lead_id": "L1",
            "account_id": "A1",
            "model_id": model_id,
            "job_id": str(job_id),
            "key_id": str(key_id),
            "run_id": "1",  # none yet: the not-found page must carry the headers too
            "webhook_id": "1",
        }
        browser = _signed_in(base)
        yield Site(base, app, service, clock, admin, browser, ids)
        browser.close()
    finally:
        admin.close()
        server.should_exit = True
        thread.join(20)


def _dashboard_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path pattern) of every route the app serves under /ui."""
    found = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's included routers
                walk(route.original_router.routes)
            elif isinstance(route, APIRoute) and route.path.startswith("/ui"):
                found.extend((method, route.path) for method in sorted(route.methods))
            elif isinstance(route, Mount) and route.path.startswith("/ui"):
                found.append(("GET", route.path + "/dashboard.css"))

    walk(app.routes)
    return found


def _url(pattern: str, ids: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"a new route parameter {name!r} in {pattern}: give this test an id"
        return ids[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, pattern)


def _check(response: httpx.Response, *, cached: bool = False) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    csp = response.headers.get("content-security-policy", "")
    for part in (
        "default-src 'self'",
        "script-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ):
        assert part in csp, f"{where}: CSP {csp!r} lacks {part!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") in ("same-origin", "no-referrer"), where
    if not cached:
        assert response.headers.get("cache-control") == "no-store", where


def test_every_dashboard_route_sends_the_security_headers(site: Site) -> None:
    routes = _dashboard_routes(site.app)
    assert len(routes) >= 30  # the walk really walks the dashboard
    anonymous = httpx.Client(base_url=site.base, timeout=30)
    with anonymous:
        for method, pattern in routes:
            url = _url(pattern, site.ids)
            static = pattern.startswith("/ui/static")
            if method == "GET":
                page = site.browser.get(url)
                assert page.status_code < 500, (url, page.text)
                _check(page, cached=static)
                _check(anonymous.get(url), cached=static)  # signed out: sign in, or static
            else:
                # without the form's token: refused, and still with every header
                refused = site.browser.request(method, url, data={})
                assert refused.status_code in (400, 422), (method, url, refused.text)
                _check(refused)
        # a page that does not exist, and a lead id the store does not have
        _check(site.browser.get("/ui/no-such-page"))
        _check(site.browser.get("/ui/leads/nobody"))


def test_api_answers_load_nothing_and_are_not_cached(site: Site) -> None:
    lead = site.admin.get("/v1/leads/L1")
    assert lead.status_code == 200
    assert lead.headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in lead.headers["content-security-policy"]
    assert lead.headers["x-content-type-options"] == "nosniff"
    assert lead.headers["x-frame-options"] == "DENY"
    assert lead.headers["cache-control"] == "no-store"
    refused = site.admin.post("/v1/leads", content=b"x" * (6 * 1024 * 1024))  # over the limit
    assert refused.status_code == 413
    assert refused.headers["x-content-type-options"] == "nosniff"
    # the API docs keep FastAPI's scripts, but are not framed either
    docs = site.admin.get("/docs")
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-frame-options"] == "DENY"


def test_plots_inline_css_becomes_presentation_attributes() -> None:
    svg = (
        '<figure><svg xmlns="http://www.w3.org/2000/svg"><defs><style type="text/css">'
        "*{stroke-linejoin: round; stroke-linecap: butt}</style></defs>"
        '<path d="M0 0" style="fill: none; stroke: #0072b2; stroke-width: 1.5"/>'
        "<text style=\"font-size: 9px; font-family: 'DejaVu Sans', sans-serif; "
        'text-anchor: end">a &lt;b&gt; style="x"</text></svg></figure>'
        '<p class="note">style="fill: red"</p>'
    )
    fitted = str(fit_svg(svg))
    assert "<style" not in fitted
    assert '<svg stroke-linejoin="round" stroke-linecap="butt" xmlns=' in fitted
    assert '<path d="M0 0" fill="none" stroke="#0072b2" stroke-width="1.5"/>' in fitted
    assert 'font-family="&#x27;DejaVu Sans&#x27;, sans-serif" text-anchor="end"' in fitted
    assert 'a &lt;b&gt; style="x"</text>' in fitted  # text is text
    assert fitted.endswith('<p class="note">style="fill: red"</p>')  # outside any plot


# -- in the browser ------------------------------------------------------------------------------


def _violations(page: Page) -> list[str]:
    found: list[str] = []

    def seen(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            found.append(f"{page.url}: {message.text}")

    page.on("console", seen)
    return found


def test_no_dashboard_page_breaks_the_policy_and_plots_keep_their_colours(
    site: Site, page: Page
) -> None:
    found = _violations(page)
    sign_in(page, site.base)
    for method, pattern in _dashboard_routes(site.app):
        if method == "GET" and "{" not in pattern and not pattern.startswith("/ui/static"):
            page.goto(site.base + pattern)
    for pattern in ("/ui/leads/{lead_id}", "/ui/accounts/{account_id}", "/ui/model/{model_id}"):
        page.goto(site.base + _url(pattern, site.ids))
    page.goto(f"{site.base}/ui/leads/L1")
    line = page.locator("figure[data-plot] svg path[stroke='#0072b2']").first
    expect(line).to_be_attached()
    colour = line.evaluate("e => getComputedStyle(e).stroke")
    assert colour == "rgb(0, 114, 178)"  # the step line, drawn as matplotlib said
    assert found == []


class _Framer(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        body = f'<!doctype html><iframe id="f" src="{self.target}"></iframe>'.encode()
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_page_of_another_origin_cannot_frame_the_signed_in_dashboard(
    site: Site, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, site.base)
    target = f"{site.base}/ui/settings/keys/{site.ids['key_id']}/revoke"
    page.goto(target)
    expect(page.get_by_role("button", name=re.compile("Revoke"))).to_be_visible()  # it is there
    # same site (127.0.0.1), another port: the probe's framing page
    handler = type("Framer", (_Framer,), {"target": target})
    framer = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=framer.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{framer.server_address[1]}/")
        page.wait_for_timeout(500)
        frame = page.frame_locator("#f")
        expect(frame.get_by_role("button", name=re.compile("Revoke"))).to_have_count(0)
    finally:
        framer.shutdown()
        framer.server_close()
        context.close()
