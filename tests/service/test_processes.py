"""Several processes on one SQLite file, for real: a second `leadscore serve` refuses to start,
and `leadscore users` / `leadscore keys` run beside a busy server with nothing lost."""

from __future__ import annotations

import signal
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from serveproc import LEADSCORE, free_port, serve_process

COUNTING = """
name: counting
version: "1"
behaviour:
  decay: {type: none}
  rules:
    - {name: download, event: download, points: 1}
"""
OTHER = COUNTING.replace('version: "1"', 'version: "2"')


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LEADSCORE, *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def start(db: str, port: int, model: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return serve_process(
        port,
        log,
        *("--db", db, "--model", str(model), "--rescore-every", "0", "--no-bootstrap-key"),
        *extra,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture()
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/leadscore.db"


def _admin_key(db: str) -> str:
    created = cli("keys", "create", "admin", "--scope", "admin", "--db", db)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


def test_a_second_server_on_the_same_sqlite_file_refuses_to_start(
    sqlite_db: str, tmp_path: Path
) -> None:
    key = _admin_key(sqlite_db)
    (tmp_path / "counting.yaml").write_text(COUNTING)
    (tmp_path / "other.yaml").write_text(OTHER)
    port = free_port()
    first = start(sqlite_db, port, tmp_path / "counting.yaml", tmp_path / "first.log")
    try:
        second = subprocess.run(
            [
                *(LEADSCORE, "serve", "--db", sqlite_db, "--port", str(free_port())),
                *("--model", str(tmp_path / "other.yaml"), "--rescore-every", "0"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        message = " ".join(second.stderr.split())
        assert f"{tmp_path}/leadscore.db" in message
        assert "another leadscore serve is running" in message
        assert f"pid {first.pid}" in message
        assert "Traceback" not in second.stderr
        # the second server changed nothing: no model of its own, no bootstrap key
        headers = {"authorization": f"Bearer {key}"}
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=headers).json()
        assert [(m["name"], m["version"]) for m in models["items"]] == [("counting", "1")]
        keys = cli("keys", "list", "--db", sqlite_db)
        assert "bootstrap" not in keys.stdout
        # a second server on another file is fine, beside the first
        other_db = f"sqlite:///{tmp_path}/other.db"
        other = start(other_db, free_port(), tmp_path / "other.yaml", tmp_path / "other.log")
        stop(other)
    finally:
        # kill -9: the operating system frees the lock with the process
        first.kill()
        first.wait(10)
    again = start(sqlite_db, port, tmp_path / "counting.yaml", tmp_path / "again.log")
    stop(again)


def test_users_and_keys_commands_beside_a_busy_server(sqlite_db: str, tmp_path: Path) -> None:
    key = _admin_key(sqlite_db)
    (tmp_path / "counting.yaml").write_text(COUNTING)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(sqlite_db, port, tmp_path / "counting.yaml", tmp_path / "serve.log")
    acked: list[str] = []
    failures: list[str] = []
    done = threading.Event()
    now = datetime.now(UTC).replace(tzinfo=None)

    def ingest() -> None:
        # one writer keeping the server's write lock busy, as trackers do
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as client:
            n = 0
            while not done.is_set():
                events = [
                    {
                        "event_id": f"e{n}-{i}",
                        "lead_id": f"L{i % 20}",
                        "type": "download",
                        "ts": (now - timedelta(seconds=n * 100 + i)).isoformat(),
                    }
                    for i in range(100)
                ]
                r = client.post("/v1/events/batch", json={"events": events}, timeout=60)
                if r.status_code == 200 and not r.json()["rejected"]:
                    acked.extend(e["event_id"] for e in events)
                else:
                    failures.append(f"{r.status_code} {r.text[:300]}")
                n += 1

    sender = threading.Thread(target=ingest)
    try:
        with httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as client:
            leads = [{"lead_id": f"L{i}", "job_title": "CEO"} for i in range(20)]
            assert client.post("/v1/leads", json={"leads": leads}).status_code == 200
        sender.start()
        tokens = []
        for i in range(3):
            added = cli("users", "add", f"user{i}", "--db", sqlite_db, stdin="a long password 1\n")
            assert added.returncode == 0, added.stderr
            created = cli("keys", "create", f"tracker{i}", "--scope", "tracking", "--db", sqlite_db)
            assert created.returncode == 0, created.stderr
            tokens.append(created.stdout.strip())
        done.set()
        sender.join(60)
        assert failures == []
        assert len(acked) >= 300  # the server kept taking events all the while
        users = cli("users", "list", "--db", sqlite_db)
        assert all(f"user{i}" in users.stdout for i in range(3)), users.stdout
        with httpx.Client(base_url=base) as client:
            # every key the CLI made works at once in the running server
            for token in tokens:
                event = {
                    "event_id": f"by-{token[-6:]}",
                    "lead_id": "L1",
                    "type": "download",
                    "ts": now.isoformat(),
                }
                r = client.post(
                    "/v1/events", json=event, headers={"authorization": f"Bearer {token}"}
                )
                assert r.status_code == 200, r.text
            stored: set[str] = set()
            headers = {"authorization": f"Bearer {key}"}
            for i in range(20):
                offset = 0
                while True:
                    page = client.get(
                        "/v1/events",
                        params={"lead_id": f"L{i}", "limit": 1000, "offset": offset},
                        headers=headers,
                    ).json()["items"]
                    stored.update(e["event_id"] for e in page)
                    if len(page) < 1000:
                        break
                    offset += 1000
        assert set(acked) <= stored
    finally:
        done.set()
        if sender.is_alive():
            sender.join(60)
        stop(proc)
    assert "database is locked" not in (tmp_path / "serve.log").read_text()


def test_a_restart_never_undoes_a_model_published_through_the_api(
    sqlite_db: str, tmp_path: Path
) -> None:
    key = _admin_key(sqlite_db)
    first = tmp_path / "counting.yaml"
    first.write_text(COUNTING)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {key}"}

    def live() -> tuple[str, list[str]]:
        models = httpx.get(f"{base}/v1/models", headers=headers).json()
        active = next(m for m in models["items"] if m["id"] == models["active"])
        return active["version"], [m["version"] for m in models["items"]]

    proc = start(sqlite_db, port, first, tmp_path / "1.log")
    try:
        assert live() == ("1", ["1"])  # the file is the first model
        r = httpx.post(
            f"{base}/v1/models",
            content=OTHER,
            headers={**headers, "content-type": "application/yaml"},
        )
        assert r.status_code == 201, r.text
        r = httpx.post(f"{base}/v1/models/{r.json()['id']}/publish", headers=headers)
        assert r.status_code == 202, r.text
        assert live() == ("2", ["2", "1"])
    finally:
        stop(proc)

    proc = start(sqlite_db, port, first, tmp_path / "2.log")
    try:
        assert live() == ("2", ["2", "1"])  # the restart kept what the API published
    finally:
        stop(proc)
    notice = " ".join((tmp_path / "2.log").read_text().split())
    assert "notice: the store's live model is 'counting' version 2 (model 2, published" in notice
    assert f"--model {first} ('counting' version 1), which is not published again" in notice
    assert f"leadscore serve --model {first} --republish" in notice

    proc = start(sqlite_db, port, first, tmp_path / "3.log", "--republish")
    try:
        assert live() == ("1", ["1", "2", "1"])  # asked for: the file is live again
    finally:
        stop(proc)
    assert "notice" not in (tmp_path / "3.log").read_text()

    proc = start(sqlite_db, port, first, tmp_path / "4.log")
    try:
        assert live() == ("1", ["1", "2", "1"])  # the same source live: nothing to do
    finally:
        stop(proc)
    assert "notice" not in (tmp_path / "4.log").read_text()
