"""A real leadscore service on 127.0.0.1 (uvicorn in a thread) over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leadscore.service.app import Service, Settings, create_app
from leadscore.service.keys import create_key
from servicekit import ManualClock, Running, serve


@pytest.fixture
def running(database_url: str) -> Iterator[Running]:
    """The service on a fresh database, with a manual clock and no scheduled rescoring."""
    clock = ManualClock()
    settings = Settings(database_url=database_url, rescore_interval=0, webhook_base_delay=0.05)
    service = Service(settings, clock)
    with service.store.write() as conn:
        admin_key = create_key(conn, "test admin", ["admin"], clock())
        tracking_key = create_key(conn, "test tracking", ["tracking"], clock())
    app = create_app(settings, service=service)
    server, thread, base = serve(app)
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
