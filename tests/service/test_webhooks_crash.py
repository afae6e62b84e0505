"""`kill -9` during webhook delivery, then a restart: every delivery arrives, soon, and the few
sent twice carry the same delivery id (at least once, duplicates bounded and harmless)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from leadscore.service import urls
from leadscore.service import webhooks as wh
from leadscore.store import tables as t
from leadscore.store.database import open_store
from servicekit import Received, Receiver

SECRET = "s3cret-for-tests-0123456789"
WORKERS = 4
LEASE = 2.0

# The real deliverer in a process of its own, as `leadscore serve` runs it, with a short lease.
DELIVERER = textwrap.dedent(
    f"""
    import sys, time
    from leadscore.service import urls, webhooks as wh
    from leadscore.service.clock import utc_now
    from leadscore.store.database import open_store

    store = open_store(sys.argv[1])
    deliverer = wh.Deliverer(
        store, utc_now, policy=urls.Policy(["127.0.0.1"]),
        workers={WORKERS}, lease={LEASE}, timeout=5.0, poll_interval=0.1,
    )
    deliverer.start()
    print("delivering", flush=True)
    time.sleep(3600)
    """
)


def start(database_url: str, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-c", DELIVERER, database_url],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "delivering", log.read_text()
    return proc


def end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(10)
    assert proc.stdout is not None
    proc.stdout.close()


def delivered(database_url: str) -> int:
    store = open_store(database_url)
    try:
        with store.read() as conn:
            query = sa.select(sa.func.count()).where(t.webhook_deliveries.c.status == "delivered")
            return int(conn.execute(query).scalar() or 0)
    finally:
        store.close()


def test_kill_9_during_delivery_then_restart(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "deliverer.log"
    receiver = Receiver()
    arrived = threading.Event()

    def slow(request: Received) -> None:
        time.sleep(0.02)  # a receiver that takes a moment, so that the kill lands mid-send
        if len(receiver.requests) >= 60:
            arrived.set()

    receiver.on_request = slow
    store = open_store(database_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with store.write() as conn:
            for path in ("/a", "/b", "/c"):
                wh.create_webhook(
                    conn, receiver.url(path), None, SECRET, now, policy=urls.Policy(["127.0.0.1"])
                )
            subs = wh.Subscriptions.load(conn)
            events = [wh.Notification("score_changed", f"L{i}", {"n": i}, now) for i in range(60)]
            assert subs.enqueue_many(conn, events) == 180
            ids = {str(r[0]) for r in conn.execute(sa.select(t.webhook_deliveries.c.id))}
    finally:
        store.close()

    first = start(database_url, log)
    try:
        assert arrived.wait(60), "deliveries did not start"
        os.kill(first.pid, signal.SIGKILL)
    finally:
        end(first)
    at_kill = len(receiver.requests)
    assert at_kill < 180, "everything was sent before the kill: the test proves nothing"

    restarted = time.monotonic()
    second = start(database_url, log)
    try:
        while delivered(database_url) < 180:
            # The dead process's claims come back within the lease, not half an hour later.
            assert time.monotonic() - restarted < LEASE + 30, (
                f"{delivered(database_url)} of 180 delivered"
            )
            time.sleep(0.1)
    finally:
        end(second)
        receiver.close()
    assert "Traceback" not in log.read_text()

    sent = Counter(r.headers["x-leadscore-delivery"] for r in receiver.requests)
    assert set(sent) == ids  # every delivery arrived
    twice = [d for d, n in sent.items() if n > 1]
    # Only what was in flight when the process died is sent again: one per worker at most.
    assert all(sent[d] == 2 for d in twice)
    assert len(twice) <= WORKERS, twice
    for delivery in twice:
        bodies = {
            r.body for r in receiver.requests if r.headers["x-leadscore-delivery"] == delivery
        }
        assert len(bodies) == 1  # the same event, so a receiver de-duplicates on the id
