"""The sales queue's order, taken by bounded index walks, equals sorting every lead (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore.dashboard.queue import queue_rows
from leadscore.store import tables as t
from leadscore.store.database import Store, open_store

NOW = datetime(2026, 12, 2, 9, 0)

lead = st.fixed_dictionaries(
    {
        "priority": st.booleans(),
        "temperature": st.sampled_from(["hot", "warm", "cold", None]),
        "total": st.integers(-20, 120).map(float),
        # (status, hours from now) of each SLA task; several open ones are possible
        "tasks": st.lists(
            st.tuples(st.sampled_from(["open", "met", "breached"]), st.integers(-48, 48)),
            max_size=3,
        ),
    }
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('queue')}/queue.db")
    yield store
    store.close()


def _load(store: Store, leads: list[dict[str, object]]) -> None:
    with store.write() as conn:
        for table in (t.sla_tasks, t.scores, t.leads):
            conn.execute(table.delete())
        for i, spec in enumerate(leads):
            lead_id = f"L{i:03d}"
            conn.execute(t.leads.insert().values(lead_id=lead_id, attributes={}, updated_at=NOW))
            conn.execute(
                t.scores.insert().values(
                    lead_id=lead_id,
                    total=spec["total"],
                    fit=0.0,
                    behaviour=0.0,
                    account=0.0,
                    temperature=spec["temperature"],
                    priority=spec["priority"],
                    interests={},
                    model_id=1,
                    model_version="1",
                    as_of=NOW,
                    events_seq=0,
                )
            )
            for status, hours in spec["tasks"]:  # type: ignore[attr-defined]
                deadline = NOW + timedelta(hours=hours)
                conn.execute(
                    t.sla_tasks.insert().values(
                        lead_id=lead_id,
                        sla_hours=24.0,
                        opened_at=deadline - timedelta(hours=24),
                        deadline=deadline,
                        status=status,
                    )
                )


def _reference(leads: list[dict[str, object]], limit: int) -> list[tuple[str, datetime | None]]:
    """Every lead sorted by the queue's rule, the plain way."""
    rows = []
    for i, spec in enumerate(leads):
        due = [NOW + timedelta(hours=h) for s, h in spec["tasks"] if s == "open"]  # type: ignore[attr-defined]
        deadline = min(due) if due else None
        if deadline is None and spec["temperature"] != "hot" and not spec["priority"]:
            continue
        key = (not spec["priority"], deadline is None, deadline or datetime.max)
        rows.append((*key, -float(spec["total"]), f"L{i:03d}", deadline))  # type: ignore[arg-type]
    rows.sort()
    return [(r[4], r[5]) for r in rows[:limit]]


@given(leads=st.lists(lead, max_size=25), limit=st.integers(1, 8))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_queue_order_equals_sorting_every_lead(
    store: Store, leads: list[dict[str, object]], limit: int
) -> None:
    _load(store, leads)
    with store.read() as conn:
        got = [(r["lead_id"], r["deadline"]) for r in queue_rows(conn, NOW, limit)]
        assert conn.execute(sa.select(sa.func.count()).select_from(t.leads)).scalar() == len(leads)
    assert got == _reference(leads, limit)
