"""A key revoked from the command line (another process) fails at once in a running server."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx

from serveproc import LEADSCORE, free_port, serve_process


def _cli(*args: str) -> str:
    done = subprocess.run(
        [str(LEADSCORE), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_keys_revoke_on_the_command_line_takes_effect_at_once(
    database_url: str, tmp_path: Path
) -> None:
    ops = _cli("keys", "create", "ops", "--scope", "admin", "--db", database_url)
    leaver = _cli("keys", "create", "leaver", "--scope", "admin", "--db", database_url)
    tracker = _cli("keys", "create", "site", "--scope", "tracking", "--db", database_url)
    port = free_port()
    proc = serve_process(port, tmp_path / "serve.log", "--db", database_url, "--no-bootstrap-key")
    base = f"http://127.0.0.1:{port}"

    def client(token: str) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"})

    try:
        with client(ops) as admin, client(leaver) as gone, client(tracker) as site:
            # each key has been used (and so verified) by the running server before it is revoked
            assert gone.get("/v1/status").status_code == 200
            event = {"event_id": "e1", "lead_id": "L1", "type": "x", "ts": "2026-01-01T00:00:00"}
            assert site.post("/v1/events", json=event).status_code == 422  # unknown lead
            ids = {k["name"]: k["id"] for k in admin.get("/v1/keys").json()["items"]}
            _cli("keys", "revoke", str(ids["leaver"]), "--db", database_url)
            _cli("keys", "revoke", str(ids["site"]), "--db", database_url)

            assert gone.get("/v1/status").status_code == 401
            made = gone.post("/v1/keys", json={"name": "backdoor", "scopes": ["admin"]})
            assert made.status_code == 401, made.text
            assert site.post("/v1/events", json=event).status_code == 401
            assert site.post("/v1/track", json={"userId": "u", "event": "x"}).status_code == 401
            # the key that was not revoked still works, and no key was created
            names = [k["name"] for k in admin.get("/v1/keys").json()["items"]]
            assert names == ["ops", "leaver", "site"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
