"""Report runs are bounded: a few waiting per user and in all (with a clear message when the
limit is reached), and only the newest runs kept (real server, SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time

import httpx
import sqlalchemy as sa

from leadscore.dashboard.auth import create_user
from leadscore.service import reports
from leadscore.store import tables as t
from servicekit import Running

from .conftest import PASSWORD, USER

OTHERS = ("jonas", "anna", "ben")


def _sign_in(running: Running, username: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=running.base_url, timeout=30)
    form = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    data = {"username": username, "password": PASSWORD, "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/reports").text)
    assert csrf is not None
    return client, csrf.group(1)


def _ask(client: httpx.Client, csrf: str) -> httpx.Response:
    return client.post(
        "/ui/reports", data={"csrf": csrf, "kind": "channels", "as_of": "2026-03-01"}
    )


def _count(running: Running, *statuses: str) -> int:
    runs = t.report_runs
    query = sa.select(sa.func.count()).select_from(runs)
    if statuses:
        query = query.where(runs.c.status.in_(statuses))
    with running.service.store.read() as conn:
        return int(conn.execute(query).scalar_one())


def test_runs_waiting_are_bounded_per_user_and_in_all(running: Running) -> None:
    with running.service.store.write() as conn:
        for name in OTHERS:
            create_user(conn, name, PASSWORD, admin=False, now=running.clock())
    clients = {name: _sign_in(running, name) for name in (USER, *OTHERS)}
    try:
        _limits(running, clients)
    finally:
        for client, _ in clients.values():
            client.close()


def _limits(running: Running, clients: dict[str, tuple[httpx.Client, str]]) -> None:
    runner = reports.reports_of(running.service)
    # the runner is busy: every run asked for now waits
    with runner._one_at_a_time:
        maria, csrf = clients[USER]
        for _ in range(reports.WAITING_PER_USER):
            assert _ask(maria, csrf).status_code == 303
        refused = _ask(maria, csrf)
        assert refused.status_code == 429
        assert (
            "3 of your reports are already waiting or running, as many as may wait at once. "
            "Run this one when one of them has finished." in refused.text
        )
        assert 'value="2026-03-01"' in refused.text  # what was typed stays
        for name in ("jonas", "anna"):
            client, token = clients[name]
            for _ in range(reports.WAITING_PER_USER):
                assert _ask(client, token).status_code == 303
        ben, token = clients["ben"]
        assert _ask(ben, token).status_code == 303  # the tenth
        everyone = _ask(ben, token)
        assert everyone.status_code == 429
        assert "10 reports are already waiting or running" in everyone.text
        sample = {"kind": "sample", "per_stage": "1", "seed": "0", "as_of": "2026-03-01"}
        german = ben.post("/ui/reports?lang=de", data={"csrf": token, **sample})
        assert german.status_code == 429
        assert "10 Berichte warten oder laufen schon" in german.text
        assert _count(running) == reports.WAITING_IN_ALL  # the refused ones left nothing
    deadline = time.monotonic() + 60
    while _count(running, "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(running, "queued", "running") == 0
    assert _ask(maria, csrf).status_code == 303  # room again


def test_only_the_newest_runs_are_kept(running: Running) -> None:
    now = running.clock()
    old = [
        {
            "kind": "channels",
            "params": {"as_of": "2026-03-01T00:00:00"},
            "requested_by": USER,
            "status": "done",
            "created_at": now,
            "result": "<p>old</p>",
        }
        for _ in range(reports.KEPT_RUNS + 50)
    ]
    with running.service.store.write() as conn:
        conn.execute(t.report_runs.insert(), old)
    client, csrf = _sign_in(running, USER)
    try:
        done = _ask(client, csrf)
    finally:
        client.close()
    assert done.status_code == 303
    newest = int(done.headers["location"].rsplit("/", 1)[1])
    runs = t.report_runs
    with running.service.store.read() as conn:
        ids = [r[0] for r in conn.execute(sa.select(runs.c.id).order_by(runs.c.id))]
    assert len(ids) == reports.KEPT_RUNS
    assert ids[-1] == newest and ids[0] == newest - reports.KEPT_RUNS + 1
