"""Guessing passwords is throttled per name and per address; a right password still works after."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx

from leadscore.dashboard.auth import Throttle
from servicekit import Running

from .conftest import PASSWORD, USER

T = datetime(2026, 12, 2, 9, 0)


def _try(client: httpx.Client, username: str, password: str) -> httpx.Response:
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": username, "password": password, "csrf": token.group(1)}
    return client.post("/ui/login", data=data)


def test_five_wrong_passwords_make_the_name_wait_fifteen_minutes(running: Running) -> None:
    with httpx.Client(base_url=running.base_url) as client:
        for _ in range(5):
            assert _try(client, USER, "not the password").status_code == 401
        refused = _try(client, USER, PASSWORD)  # even the right one: the name is locked
        assert refused.status_code == 429
        assert "Too many failed sign-ins; try again in 15 min." in refused.text
        assert "ls_session" not in refused.cookies
        running.clock.advance(minutes=15)
        done = _try(client, USER, PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/ui/queue"
        assert client.get("/ui/queue").status_code == 200


def test_the_wait_counts_from_the_oldest_failure_in_the_window() -> None:
    throttle = Throttle(limit=3, window=timedelta(minutes=10))
    for minute in (0, 4, 8):
        assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=minute)) == 0
        throttle.failed("maria", "10.0.0.1", T + timedelta(minutes=minute))
    assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=9)) == 60  # until minute 10
    assert throttle.wait("MARIA", "10.0.0.2", T + timedelta(minutes=9)) == 60  # names ignore case
    assert throttle.wait("jonas", "10.0.0.1", T + timedelta(minutes=9)) == 0  # address: limit 12
    assert throttle.wait("maria", "10.0.0.1", T + timedelta(minutes=10)) == 0


def test_one_address_trying_many_names_is_stopped_too() -> None:
    throttle = Throttle(limit=2, window=timedelta(minutes=10))
    for i in range(8):
        throttle.failed(f"name{i}", "10.0.0.9", T)
    assert throttle.wait("someone-else", "10.0.0.9", T) == 600
    assert throttle.wait("someone-else", "10.0.0.8", T) == 0


def test_a_right_password_clears_the_names_failures() -> None:
    throttle = Throttle(limit=2, window=timedelta(minutes=10))
    throttle.failed("maria", "10.0.0.1", T)
    throttle.succeeded("maria", "10.0.0.1")
    throttle.failed("maria", "10.0.0.1", T)
    assert throttle.wait("maria", "10.0.0.1", T) == 0
