"""Signing out ends that session for good: a copy of its cookie (taken from the browser, say)
no longer signs anyone in, while the user's other sessions go on (real server, SQLite and
PostgreSQL)."""

from __future__ import annotations

import re

import httpx

from leadscore.dashboard.web import SESSION
from servicekit import Running

from .conftest import PASSWORD, USER


def _sign_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    return client


def _csrf(client: httpx.Client) -> str:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/queue").text)
    assert token is not None
    return token.group(1)


def _signed_in(base: str, cookie: str) -> bool:
    with httpx.Client(base_url=base, cookies={SESSION: cookie}) as client:
        return client.get("/ui/queue").status_code == 200


def test_a_copied_cookie_stops_working_when_its_session_signs_out(running: Running) -> None:
    base = running.base_url
    laptop, phone = _sign_in(base), _sign_in(base)
    try:
        copied = laptop.cookies[SESSION]
        assert copied != phone.cookies[SESSION]  # one session per sign-in
        assert _signed_in(base, copied)
        done = laptop.post("/ui/logout", data={"csrf": _csrf(laptop)})
        assert done.status_code == 303 and done.headers["location"] == "/ui/login"
        assert 'ls_session=""' in done.headers["set-cookie"]  # gone from this browser
        assert not _signed_in(base, copied)  # and from wherever it was copied to
        assert phone.get("/ui/queue").status_code == 200  # the phone's own session goes on
        # the copy's form tokens died with it: nothing can be posted in its name
        again = httpx.post(
            f"{base}/ui/profile/signout-everywhere",
            data={"csrf": _csrf(phone)},
            cookies={SESSION: copied},
        )
        assert again.status_code == 303 and again.headers["location"].startswith("/ui/login")
        assert phone.get("/ui/queue").status_code == 200
    finally:
        laptop.close()
        phone.close()


def test_signing_out_everywhere_ends_every_copy(running: Running) -> None:
    base = running.base_url
    laptop, phone = _sign_in(base), _sign_in(base)
    try:
        copies = [laptop.cookies[SESSION], phone.cookies[SESSION]]
        laptop.post("/ui/profile/signout-everywhere", data={"csrf": _csrf(laptop)})
        assert [_signed_in(base, c) for c in copies] == [False, False]
    finally:
        laptop.close()
        phone.close()


def test_signing_in_again_in_a_browser_ends_its_previous_session(running: Running) -> None:
    base = running.base_url
    client = _sign_in(base)
    try:
        first = client.cookies[SESSION]
        form = client.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        data = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
        assert client.post("/ui/login", data=data).status_code == 303
        assert client.cookies[SESSION] != first
        assert not _signed_in(base, first)
        assert client.get("/ui/queue").status_code == 200
    finally:
        client.close()
