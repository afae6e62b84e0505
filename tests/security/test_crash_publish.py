"""`kill -9` while a publish job rescores every lead, then a restart: the published model stays
live, the job runs again to its end, and every lead is scored by that model, none half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from serveproc import LEADSCORE, free_port, serve_process

LEADS = 3000

FIRST = """
name: counting
version: "1"
behaviour:
  decay: {type: none}
  rules:
    - {name: download, event: download, points: 1}
"""
# Three points a download instead of one: every lead's total tells which model scored it.
SECOND = FIRST.replace('version: "1"', 'version: "2"').replace("points: 1", "points: 3")


def start(db: str, port: int, model: Path, log: Path) -> subprocess.Popen[bytes]:
    return serve_process(
        port, log, "--db", db, "--model", str(model), "--rescore-every", "0", "--no-bootstrap-key"
    )


def all_leads(client: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.get("/v1/leads", params={"limit": 500, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"]:
            return items


def test_kill_9_during_a_publish_job_then_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/leadscore.db"
    key = subprocess.run(
        [LEADSCORE, "keys", "create", "crash", "--scope", "admin", "--db", db],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    first = tmp_path / "first.yaml"
    first.write_text(FIRST)
    port = free_port()
    log = tmp_path / "serve.log"
    headers = {"authorization": f"Bearer {key}"}
    now = datetime.now(UTC).replace(tzinfo=None)
    downloads = {f"L{i}": 1 + i % 3 for i in range(LEADS)}
    proc = start(db, port, first, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
            leads = [{"lead_id": lead} for lead in downloads]
            for i in range(0, LEADS, 1000):
                r = c.post("/v1/leads", json={"leads": leads[i : i + 1000]})
                assert r.status_code == 200, r.text
            events = [
                {
                    "event_id": f"{lead}-{n}",
                    "lead_id": lead,
                    "type": "download",
                    "ts": (now - timedelta(hours=n + 1)).isoformat(),
                }
                for lead, count in downloads.items()
                for n in range(count)
            ]
            for i in range(0, len(events), 2000):
                r = c.post("/v1/events/batch", json={"events": events[i : i + 2000]})
                assert r.status_code == 200, r.text
            r = c.post("/v1/models", content=SECOND, headers={"content-type": "application/yaml"})
            assert r.status_code == 201, r.text
            second_id = r.json()["id"]
            r = c.post(f"/v1/models/{second_id}/publish")
            assert r.status_code == 202, r.text
            job = r.json()["job_id"]
            # kill as soon as the job has written some leads' scores but not all of them
            deadline = time.monotonic() + 60
            while True:
                state = c.get(f"/v1/jobs/{job}").json()
                if state["status"] == "running" and state["done"] > 0:
                    break
                assert state["status"] != "done", "the job ended before the kill: more leads"
                assert time.monotonic() < deadline, state
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # the restart names the first model again: the live one (published by the API) must win
    proc = start(db, port, first, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as c:
            assert c.get("/v1/models").json()["active"] == second_id
            deadline = time.monotonic() + 120
            while (state := c.get(f"/v1/jobs/{job}").json())["status"] != "done":
                assert state["status"] in ("queued", "running"), state
                assert time.monotonic() < deadline, state
                time.sleep(0.1)
            items = all_leads(c)
            assert len(items) == LEADS
            assert {i["lead_id"]: i["total"] for i in items} == {
                lead: 3 * n for lead, n in downloads.items()
            }
            assert {i["model_version"] for i in items} == {"2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
