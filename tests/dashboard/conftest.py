"""A real service on 127.0.0.1 with a dashboard user, and a real headless Chromium for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from leadscore.dashboard.auth import create_user
from leadscore.service.app import Settings
from servicekit import ManualClock, Running, running_service

USER, PASSWORD = "maria", "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def running(database_url: str) -> Iterator[Running]:
    """The service on a fresh database with one dashboard user (maria)."""
    clock = ManualClock()
    settings = Settings(
        database_url=database_url,
        rescore_interval=0,
        webhook_base_delay=0.05,
        webhook_allow=("127.0.0.1",),  # the tests' receivers: allowed, not the default
    )
    with running_service(settings, clock) as running:
        with running.service.store.write() as conn:
            create_user(conn, USER, PASSWORD, admin=True, now=clock())
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (installed by `make test`), headless, with no background traffic."""
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found; run `make test` (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab; a full-page screenshot of where it ended is kept as an artefact."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    yield page
    ARTEFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTEFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


def sign_in(page: Page, base: str, user: str = USER, password: str = PASSWORD) -> None:
    """Sign in through the form, starting from the sales queue, and land there."""
    page.goto(f"{base}/ui/queue")
    expect(page).to_have_url(f"{base}/ui/login?next=/ui/queue")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/ui/queue")
