"""`leadscore serve` as users run it: a first admin key, and acknowledged events that survive
`kill -9` with scores that catch up on restart."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

LEADSCORE = Path(sys.executable).with_name("leadscore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# One point per download, no cap, no decay: a score is current iff it counts every event.
COUNTING = """
name: counting
version: "1"
behaviour:
  decay: {type: none}
  rules:
    - {name: download, event: download, points: 1}
"""


def start(db: str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                str(LEADSCORE),
                "serve",
                "--db",
                db,
                "--port",
                str(port),
                "--model",
                str(log.with_name("counting.yaml")),
                "--rescore-every",
                "0",
                *(extra or ("--no-bootstrap-key",)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("leadscore serve did not start: " + log.read_text())


def batch(n: int, size: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"b{n}-{i}",
            "lead_id": f"L{i % 40}",
            "type": "download",
            "ts": (now - timedelta(minutes=n * size + i)).isoformat(),
        }
        for i in range(size)
    ]


def test_acknowledged_events_survive_kill_9(database_url: str, tmp_path: Path) -> None:
    created = subprocess.run(
        [str(LEADSCORE), "keys", "create", "crash test", "--scope", "admin", "--db", database_url],
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    (tmp_path / "counting.yaml").write_text(COUNTING)
    proc = start(database_url, port, log)
    headers = {"authorization": f"Bearer {key}"}
    now = datetime.now(UTC).replace(tzinfo=None)
    acknowledged: list[str] = []
    in_flight: list[str] = []
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            leads = [{"lead_id": f"L{i}", "job_title": "CEO"} for i in range(40)]
            assert client.post("/v1/leads", json={"leads": leads}).status_code == 200
            for n in range(15):
                events = batch(n, 300, now)
                assert client.post("/v1/events/batch", json={"events": events}).status_code == 200
                acknowledged += [e["event_id"] for e in events]
            # one more batch, killed while it may be half way through
            last = batch(99, 2000, now)
            in_flight = [e["event_id"] for e in last]

            def send() -> None:
                with contextlib.suppress(httpx.TransportError):
                    client.post("/v1/events/batch", json={"events": last})

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            sender.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    proc = start(database_url, port, log)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            stored: set[str] = set()
            for i in range(40):
                r = client.get("/v1/events", params={"lead_id": f"L{i}", "limit": 1000})
                stored.update(e["event_id"] for e in r.json()["items"])
            assert set(acknowledged) <= stored
            # the killed batch is all or nothing: a transaction, never half written
            assert stored - set(acknowledged) in (set(), set(in_flight))
            # scores catch up with everything stored, including what was queued at the kill
            per_lead = {f"L{i}": 0 for i in range(40)}
            for event_id in stored:
                per_lead[f"L{int(event_id.split('-')[1]) % 40}"] += 1
            deadline = time.monotonic() + 20
            while True:
                items = client.get("/v1/leads", params={"limit": 100}).json()["items"]
                if {i["lead_id"]: i["total"] for i in items} == per_lead:
                    break
                assert time.monotonic() < deadline, (items, per_lead)
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_fresh_store_gets_one_admin_key_printed_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/fresh.db"
    log = tmp_path / "serve.log"
    (tmp_path / "counting.yaml").write_text(COUNTING)
    port = free_port()
    for run in range(2):
        proc = start(db, port, log, "--bootstrap-key")
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        # uvicorn shuts down gracefully, then re-raises the signal it caught
        assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
        if run == 0:
            lines = [x for x in log.read_text().splitlines() if "created admin API key" in x]
            assert len(lines) == 1
            key = lines[0].rsplit(" ", 1)[1]
    assert log.read_text().count("created admin API key") == 1  # not again on restart
    proc = start(db, port, log)
    try:
        base = f"http://127.0.0.1:{port}"
        status = httpx.get(f"{base}/v1/status", headers={"authorization": f"Bearer {key}"})
        assert status.status_code == 200 and status.json()["active_model"] == 1
        assert httpx.get(f"{base}/v1/status").status_code == 401
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_a_published_model_the_loader_now_refuses_stops_serve_with_the_way_out(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path}/old.db"
    (tmp_path / "counting.yaml").write_text(COUNTING)
    port = free_port()
    proc = start(db, port, tmp_path / "serve.log")
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    # A model an older leadscore accepted and published: `repeatable: false` with
    # `keep: latest`, which the loader refuses today.
    from leadscore.store.database import Store

    old = COUNTING.replace('version: "1"', 'version: "0"').replace(
        "points: 1}", "points: 1, repeatable: false, keep: latest}"
    )
    store = Store(db)
    with store.write() as conn:
        model_id = conn.exec_driver_sql(
            "INSERT INTO models (name, version, source, status, uploaded_at) "
            "VALUES ('counting', '0', ?, 'draft', '2026-01-01 00:00:00') RETURNING id",
            (old,),
        ).scalar_one()
        conn.exec_driver_sql(
            "UPDATE meta SET value = ? WHERE key = 'active_model'", (str(model_id),)
        )
    store.close()
    served = subprocess.run(
        [str(LEADSCORE), "serve", "--db", db, "--port", str(port), "--no-bootstrap-key"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2, served.stderr
    assert f"the published model {model_id} no longer loads" in served.stderr
    assert "repeatable" in served.stderr and "--republish" in served.stderr
    assert "Traceback" not in served.stderr
    # the way out the message names works: the server starts, with the file's model live
    proc = start(db, port, tmp_path / "serve.log", "--republish", "--no-bootstrap-key")
    proc.send_signal(signal.SIGTERM)
    proc.wait(20)
    store = Store(db)
    with store.read() as conn:
        live = conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'active_model'")
        assert int(live.scalar_one()) > model_id
    store.close()
