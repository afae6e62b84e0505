"""Hand-over to sales (S19): SLA tasks met when a lead is worked, breached at the deadline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.service.webhooks import Subscriptions
from leadscore.store import tables as t


def breach_due(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Mark every open task whose deadline has passed as breached; returns those tasks."""
    tasks = t.sla_tasks
    due = [
        dict(r)
        for r in conn.execute(
            sa.select(tasks)
            .where(tasks.c.status == "open", tasks.c.deadline <= now)
            .order_by(tasks.c.deadline, tasks.c.id)
        ).mappings()
    ]
    if not due:
        return []
    conn.execute(
        tasks.update()
        .where(tasks.c.id == sa.bindparam("i"), tasks.c.status == "open")
        .values(status="breached", closed_at=now),
        [{"i": task["id"]} for task in due],
    )
    subs = Subscriptions.load(conn)
    for task in due:
        task.update(status="breached", closed_at=now)
        if subs.wants("sla_breached"):
            subs.enqueue(conn, "sla_breached", task["lead_id"], _payload(task), now)
    return due


def mark_worked(
    conn: Connection, lead_id: str, now: datetime, note: str | None
) -> list[dict[str, Any]]:
    """Mark the lead's open tasks as met (sales acted); returns them (empty if none was open)."""
    tasks = t.sla_tasks
    open_tasks = [
        dict(r)
        for r in conn.execute(
            sa.select(tasks).where(tasks.c.lead_id == lead_id, tasks.c.status == "open")
        ).mappings()
    ]
    if not open_tasks:
        return []
    conn.execute(
        tasks.update()
        .where(tasks.c.lead_id == lead_id, tasks.c.status == "open")
        .values(status="met", closed_at=now, note=note)
    )
    subs = Subscriptions.load(conn)
    for task in open_tasks:
        task.update(status="met", closed_at=now, note=note)
        if subs.wants("sla_met"):
            subs.enqueue(conn, "sla_met", lead_id, _payload(task), now)
    return open_tasks


def list_tasks(
    conn: Connection, *, status: str | None, lead_id: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """SLA tasks, soonest deadline first."""
    tasks = t.sla_tasks
    query = sa.select(tasks)
    if status is not None:
        query = query.where(tasks.c.status == status)
    if lead_id is not None:
        query = query.where(tasks.c.lead_id == lead_id)
    query = query.order_by(tasks.c.deadline, tasks.c.id).limit(limit).offset(offset)
    return [_payload(dict(r)) for r in conn.execute(query).mappings()]


def _payload(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task["id"],
        "lead_id": task["lead_id"],
        "stage": task["stage"],
        "queue": task["queue"],
        "cell": task["cell"],
        "sla_hours": task["sla_hours"],
        "opened_at": task["opened_at"],
        "deadline": task["deadline"],
        "status": task["status"],
        "closed_at": task["closed_at"],
        "note": task["note"],
    }
