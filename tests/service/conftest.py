"""A real leadscore service on 127.0.0.1 (uvicorn in a thread) over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from leadscore.service.app import Settings
from servicekit import ManualClock, Running, running_service


@pytest.fixture
def running(database_url: str) -> Iterator[Running]:
    """The service on a fresh database, with a manual clock and no scheduled rescoring."""
    clock = ManualClock()
    settings = Settings(
        database_url=database_url,
        rescore_interval=0,
        webhook_base_delay=0.05,
        webhook_allow=("127.0.0.1",),  # the tests' receivers: allowed, not the default
    )
    with running_service(settings, clock) as running:
        yield running
