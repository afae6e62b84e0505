"""The reports' date fields read the one timestamp rule of files, the API and the CLI (real
server, SQLite and PostgreSQL, signed in over HTTP)."""

from __future__ import annotations

import html
import re
import time

import httpx
import sqlalchemy as sa

from leadscore.store import tables as t
from servicekit import Running

from .conftest import PASSWORD, USER

# (typed, stored): an offset after a space is honoured, as in files
ACCEPTED = [
    ("2026-03-01 02:00 +02:00", "2026-03-01T00:00:00"),
    ("2026-03-01T05:30:00+05:30:00", "2026-03-01T00:00:00"),
    ("2026-3-1 00:00 UTC", "2026-03-01T00:00:00"),
    ("2026-02-28 24:00", "2026-03-01T00:00:00"),
    ("2026-03-01", "2026-03-01T00:00:00"),
]
# zone names and forms files refuse (some of which Python's fromisoformat reads)
REFUSED = [
    "2026-03-01 12:00 CET",
    "2026-03-01 12:00 Europe/Berlin",
    "20260301",
    "2026-03-01x12:00",
    "2026-W09-7",
    "0001-01-01 00:00 +01:00",
]


def _sign_in(running: Running) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=running.base_url, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert token is not None
    data = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/reports").text)
    assert csrf is not None
    return client, csrf.group(1)


def _stored(running: Running) -> list[dict[str, object]]:
    runs = t.report_runs
    with running.service.store.read() as conn:
        rows = conn.execute(sa.select(runs.c.params, runs.c.status).order_by(runs.c.id))
        return [dict(r._mapping) for r in rows]


def _settled(running: Running) -> None:
    # no model is published: each run fails at once; wait so that none counts as waiting
    deadline = time.monotonic() + 30
    while any(r["status"] in ("queued", "running") for r in _stored(running)):
        assert time.monotonic() < deadline, "report runs did not finish"
        time.sleep(0.05)


def test_report_dates_follow_the_timestamp_rule(running: Running) -> None:
    client, csrf = _sign_in(running)
    try:
        for typed, stored in ACCEPTED:
            for kind, field in (("channels", "as_of"), ("backtest", "cutoff")):
                data = {"csrf": csrf, "kind": kind, field: typed, "horizon_days": "90"}
                done = client.post("/ui/reports", data=data)
                assert done.status_code == 303, (typed, done.text)
                assert _stored(running)[-1]["params"] == {
                    field: stored,
                    **({"horizon_days": 90} if kind == "backtest" else {}),
                }
                _settled(running)
        before = len(_stored(running))
        for typed in REFUSED:
            data = {"csrf": csrf, "kind": "backtest", "cutoff": typed, "horizon_days": "90"}
            refused = client.post("/ui/reports?lang=en", data=data)
            assert refused.status_code == 422, typed
            page = html.unescape(refused.text)
            assert (
                "Cut-off (UTC): enter a date like 2025-10-01 or a date and time like "
                "2025-10-01 14:30, optionally with a UTC offset (Z, +02:00); not a zone name "
                "such as CET" in page
            )
            assert f'value="{typed}"' in page  # what was typed stays
            german = client.post("/ui/reports?lang=de", data=data)
            assert german.status_code == 422
            assert "keinen Zonennamen wie CET" in html.unescape(german.text)
        assert len(_stored(running)) == before  # nothing refused was stored
    finally:
        client.close()
