"""The webhook endpoints on a running service, and a score change delivered to a receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from leadscore.service import webhooks as wh

STARTER = Path(__file__).resolve().parents[2] / "models" / "starter.yaml"


class Catcher:
    """An HTTP receiver on 127.0.0.1 that keeps (headers, body) of every POST."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.got = threading.Event()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                catcher.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()
                catcher.got.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    catcher = Catcher()
    yield catcher
    catcher.close()


def test_webhook_crud_and_validation(running: Any) -> None:
    admin = running.admin
    r = admin.post("/v1/webhooks", json={"url": "https://example.com/in"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["topics"] == list(wh.TOPICS)
    assert made["active"] is True
    assert len(made["secret"]) >= 40

    r = admin.post(
        "/v1/webhooks",
        json={"url": "https://example.com/stages", "topics": ["stage_changed"], "secret": "x" * 20},
    )
    assert r.status_code == 201, r.text
    assert r.json()["secret"] == "x" * 20

    listed = admin.get("/v1/webhooks").json()
    assert [w["url"] for w in listed] == ["https://example.com/in", "https://example.com/stages"]
    assert all("secret" not in w for w in listed)

    for body, field in [
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "https://example.com/", "topics": ["lead_created"]}, "topics"),
        ({"url": "https://example.com/", "topics": []}, "topics"),
        ({"url": "https://example.com/", "secret": "short"}, "secret"),
        ({"url": "https://example.com/", "topic": ["sla_met"]}, "topic"),
        ({"topics": ["sla_met"]}, "url"),
    ]:
        r = admin.post("/v1/webhooks", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["detail"], (body, r.text)
    assert len(admin.get("/v1/webhooks").json()) == 2

    hook = made["id"]
    assert admin.get(f"/v1/webhooks/{hook}/deliveries").json() == []
    r = admin.get(f"/v1/webhooks/{hook}/deliveries", params={"status": "sent"})
    assert r.status_code == 422 and "status" in r.json()["detail"]
    r = admin.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    assert admin.get("/v1/webhooks/999/deliveries").status_code == 404

    assert running.tracking.get("/v1/webhooks").status_code == 403
    assert running.anonymous.post("/v1/webhooks", json={"url": "https://e.com/"}).status_code == 401

    r = admin.delete(f"/v1/webhooks/{hook}")
    assert r.status_code == 204 and r.content == b""
    assert admin.delete(f"/v1/webhooks/{hook}").status_code == 404
    assert [w["url"] for w in admin.get("/v1/webhooks").json()] == ["https://example.com/stages"]


def test_a_score_change_is_delivered_signed_and_logged(running: Any, catcher: Catcher) -> None:
    r = running.admin.post("/v1/webhooks", json={"url": catcher.url, "topics": ["score_changed"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    running.publish(STARTER.read_text(encoding="utf-8"))
    r = running.admin.put(
        "/v1/leads/L1", json={"lead_id": "L1", "job_title": "CEO", "employees": 500}
    )
    assert r.status_code == 200, r.text
    running.wait_idle()
    assert catcher.got.wait(10), "no webhook arrived"

    headers, body = catcher.requests[0]
    assert headers["x-leadscore-topic"] == "score_changed"
    signature = headers["x-leadscore-signature"]
    timestamp = headers["x-leadscore-timestamp"]
    assert wh.verify_signature(hook["secret"], timestamp, body, signature, now=int(timestamp))
    event = json.loads(body)
    assert event["topic"] == "score_changed"
    assert event["data"]["lead_id"] == "L1"

    # The outcome is recorded after the receiver has answered: wait for it.
    delivery_id = int(headers["x-leadscore-delivery"])
    deadline = time.monotonic() + 10
    while True:
        log = running.admin.get(f"/v1/webhooks/{hook['id']}/deliveries").json()
        delivered = [d for d in log if d["id"] == delivery_id]
        assert len(delivered) == 1
        if delivered[0]["status"] != "pending" or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert delivered[0]["status"] == "delivered"
    assert delivered[0]["attempts"] == 1
    assert delivered[0]["last_status"] == 204
    assert delivered[0]["lead_id"] == "L1"
    assert delivered[0]["payload"] == event
