"""A real service on 127.0.0.1 with a dashboard user, and a real headless Chromium for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadscore.dashboard.auth import create_user
from leadscore.service.app import Settings
from servicekit import ManualClock, Running, running_service

USER, PASSWORD = "maria", "correct horse battery"


@pytest.fixture
def running(database_url: str) -> Iterator[Running]:
    """The service on a fresh database with one dashboard user (maria)."""
    clock = ManualClock()
    settings = Settings(database_url=database_url, rescore_interval=0, webhook_base_delay=0.05)
    with running_service(settings, clock) as running:
        with running.service.store.write() as conn:
            create_user(conn, USER, PASSWORD, admin=True, now=clock())
        yield running
