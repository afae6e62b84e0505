"""A user's own sign-in page in a real headless Chromium: change the password, sign out on every
device (two browser contexts stand for two devices)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from leadscore.dashboard.auth import authenticate, create_user
from servicekit import Running

from .conftest import PASSWORD, USER, sign_in

NEW_PASSWORD = "a much better passphrase"


@pytest.fixture
def laptop(browser: Browser) -> Iterator[BrowserContext]:
    """A second device with a session of its own."""
    context = browser.new_context(locale="en-GB")
    yield context
    context.close()


def _signed_in_on(context: BrowserContext, base: str) -> bool:
    other = context.new_page()
    other.goto(f"{base}/ui/queue")
    signed_in = other.url == f"{base}/ui/queue"
    other.close()
    return signed_in


def _password_works(running: Running, password: str, user: str = USER) -> bool:
    with running.service.store.read() as conn:
        return authenticate(conn, user, password) is not None


def _fill(page: Page, current: str, new: str, again: str) -> None:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(again)
    page.get_by_role("button", name="Change your password").click()


def test_a_new_password_signs_out_every_other_session_and_keeps_this_one(
    running: Running, page: Page, laptop: BrowserContext
) -> None:
    base = running.base_url
    sign_in(laptop.new_page(), base)
    sign_in(page, base)
    page.get_by_role("link", name=USER).click()
    expect(page).to_have_url(f"{base}/ui/profile")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your sign-in")
    expect(page.get_by_text(f"Signed in as {USER}. You are an administrator.")).to_be_visible()

    # every mistake is named at its field, and nothing changes
    _fill(page, PASSWORD, "short", "short")
    expect(page.locator("#new-error")).to_have_text("At least 10 characters.")
    expect(page.get_by_label("New password", exact=True)).to_have_attribute("aria-invalid", "true")
    _fill(page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!")
    expect(page.locator("#again-error")).to_have_text("The two new passwords differ.")
    _fill(page, PASSWORD, PASSWORD, PASSWORD)
    expect(page.locator("#new-error")).to_have_text(
        "The new password is the same as the current one."
    )
    _fill(page, "not my password", NEW_PASSWORD, NEW_PASSWORD)
    expect(page.locator("#current-error")).to_have_text("This is not your current password.")
    _fill(page, "", NEW_PASSWORD, NEW_PASSWORD)
    expect(page.locator("#current-error")).to_have_text("Current password: required")
    assert _password_works(running, PASSWORD)
    assert not _password_works(running, NEW_PASSWORD)
    assert _signed_in_on(laptop, base)

    _fill(page, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    expect(page).to_have_url(f"{base}/ui/profile?changed=1")
    expect(page.get_by_role("status")).to_have_text(
        "Your password is changed. Every other session of yours is signed out."
    )
    assert _password_works(running, NEW_PASSWORD)
    assert not _password_works(running, PASSWORD)
    assert not _signed_in_on(laptop, base)  # the other device must sign in again
    page.get_by_role("link", name="Sales queue").click()
    expect(page).to_have_url(f"{base}/ui/queue")  # this browser stays signed in

    page.get_by_role("button", name="Sign out", exact=True).click()
    sign_in(page, base, USER, NEW_PASSWORD)


def test_sign_out_everywhere_ends_every_session_and_the_password_stays(
    running: Running, page: Page, laptop: BrowserContext
) -> None:
    base = running.base_url
    stolen = laptop.new_page()
    sign_in(stolen, base)
    sign_in(page, base)
    cookies = {c["name"]: c["value"] for c in laptop.cookies()}
    with httpx.Client(base_url=base, cookies=cookies) as copied:
        assert copied.get("/ui/queue").status_code == 200
    page.goto(f"{base}/ui/profile")
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(f"{base}/ui/login")
    assert not _signed_in_on(laptop, base)
    assert not _signed_in_on(page.context, base)
    with httpx.Client(base_url=base, cookies=cookies) as copied:  # a copied cookie is dead too
        assert copied.get("/ui/queue").status_code == 303
    sign_in(page, base)  # the password is unchanged


def test_the_forms_refuse_forged_and_anonymous_posts(running: Running, page: Page) -> None:
    base = running.base_url
    sign_in(page, base)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=base, cookies=cookies) as client:
        forged = client.post(
            "/ui/profile/password",
            data={"csrf": "guess", "current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD},
        )
        assert forged.status_code == 400
        assert client.post("/ui/profile/signout-everywhere", data={"csrf": "g"}).status_code == 400
    with httpx.Client(base_url=base) as anonymous:
        refused = anonymous.post(
            "/ui/profile/password", data={"current": PASSWORD, "new": NEW_PASSWORD}
        )
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/ui/login")
        assert anonymous.get("/ui/profile").headers["location"] == "/ui/login?next=/ui/profile"
    assert _password_works(running, PASSWORD)
    assert _signed_in_on(page.context, base)


def test_guessing_the_current_password_is_throttled_like_signing_in(
    running: Running, page: Page
) -> None:
    base = running.base_url
    with running.service.store.write() as conn:
        create_user(conn, "jonas", "another long password", admin=False, now=running.clock())
    sign_in(page, base, "jonas", "another long password")
    page.goto(f"{base}/ui/profile?lang=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Ihre Anmeldung")
    expect(page.get_by_text("Angemeldet als jonas. Sie sind kein Administrator.")).to_be_visible()
    for attempt in range(5):
        page.get_by_label("Aktuelles Passwort").fill(f"guess number {attempt}")
        page.get_by_label("Neues Passwort", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("Neues Passwort wiederholen").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Passwort ändern").click()
        expect(page.locator("#current-error")).to_have_text("Das ist nicht Ihr aktuelles Passwort.")
    # even the right password waits now, as it would at the sign-in form
    page.get_by_label("Aktuelles Passwort").fill("another long password")
    page.get_by_label("Neues Passwort", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Neues Passwort wiederholen").fill(NEW_PASSWORD)
    with page.expect_response(f"{base}/ui/profile/password") as answer:
        page.get_by_role("button", name="Passwort ändern").click()
    assert answer.value.status == 429
    expect(page.locator("#current-error")).to_have_text(
        "Zu viele falsche Passwörter; in 15 min erneut versuchen."
    )
    assert _password_works(running, "another long password", "jonas")
