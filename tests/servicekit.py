"""Test support for the service: a manual clock and a real service under uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from leadscore.service.app import Service, Settings, create_app
from leadscore.service.keys import create_key

T0 = datetime(2026, 3, 2, 9, 0, 0)
MODELS = Path(__file__).resolve().parents[1] / "models"


@dataclass
class ManualClock:
    """A clock the test moves by hand (the service reads it for 'now')."""

    now: datetime = T0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> datetime:
        with self.lock:
            return self.now

    def advance(self, **delta: float) -> datetime:
        with self.lock:
            self.now += timedelta(**delta)
            return self.now

    def set(self, when: datetime) -> None:
        with self.lock:
            self.now = when


@dataclass
class Running:
    """A running service and clients with an admin and a tracking key."""

    base_url: str
    service: Service
    clock: ManualClock
    admin_key: str
    tracking_key: str
    admin: httpx.Client
    tracking: httpx.Client
    anonymous: httpx.Client

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until queued rescoring and jobs are done."""
        assert self.service.jobs.wait(timeout), "jobs did not finish"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.service.worker.wake()
            with self.service.store.read() as conn:
                left = conn.exec_driver_sql("SELECT count(*) FROM dirty_leads").scalar()
            if left == 0:
                return
            time.sleep(0.02)
        raise AssertionError("dirty leads were not rescored in time")

    def publish(self, source: str) -> int:
        """Upload and publish a model, wait for the rescoring job; returns the model id."""
        r = self.admin.post(
            "/v1/models", content=source, headers={"content-type": "application/yaml"}
        )
        assert r.status_code == 201, r.text
        model_id = int(r.json()["id"])
        r = self.admin.post(f"/v1/models/{model_id}/publish")
        assert r.status_code == 202, r.text
        self.wait_idle()
        return model_id


def serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Run an ASGI app with uvicorn on a free 127.0.0.1 port in a thread."""
    # Clients keep connections across slow in-process work (a CLI run, a rescore); with
    # uvicorn's 5 s keep-alive the server may close one just as the client reuses it.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", timeout_keep_alive=300
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@contextmanager
def running_service(settings: Settings, clock: ManualClock) -> Iterator[Running]:
    """The service on 127.0.0.1 with an admin and a tracking key, and a client for each."""
    service = Service(settings, clock)
    with service.store.write() as conn:
        admin_key = create_key(conn, "test admin", ["admin"], clock())
        tracking_key = create_key(conn, "test tracking", ["tracking"], clock())
    server, thread, base = serve(create_app(settings, service=service))
    clients = [
        httpx.Client(base_url=base, headers={"authorization": f"Bearer {admin_key}"}, timeout=30),
        httpx.Client(
            base_url=base, headers={"authorization": f"Bearer {tracking_key}"}, timeout=30
        ),
        httpx.Client(base_url=base, timeout=30),
    ]
    try:
        yield Running(base, service, clock, admin_key, tracking_key, *clients)
    finally:
        for client in clients:
            client.close()
        server.should_exit = True
        thread.join(20)


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and can fail the first N."""

    fail_first: int = 0
    on_request: Callable[[Received], None] | None = None
    requests: list[Received] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with lock:
                    receiver.requests.append(request)
                    fail = len(receiver.requests) <= receiver.fail_first
                if receiver.on_request is not None:
                    receiver.on_request(request)
                status, answer = (500, b"  internal\n error ") if fail else (200, b"ok")
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                receiver.got.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
