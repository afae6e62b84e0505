"""The sales queue: hot and sales-ready leads by priority, with SLA countdown and reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard.web import lang_of, poster, render, service_of, viewer, words_of
from leadscore.service import handover
from leadscore.store import tables as t

QUEUE_LIMIT: Final = 200

router = APIRouter(prefix="/ui", include_in_schema=False)

WORDS: Final = {
    "en": {
        "queue_intro": "Hot and sales-ready leads, most urgent first.",
        "overdue": "overdue by",
        "due_in": "due in",
        "no_sla": "no SLA",
        "worked": "Mark worked",
        "worked_done": "Marked {lead} as worked.",
        "empty": "No lead waits for sales.",
        "reasons": "Top reasons",
    },
    "de": {
        "queue_intro": "Heiße und vertriebsreife Leads, die dringendsten zuerst.",
        "overdue": "überfällig seit",
        "due_in": "fällig in",
        "no_sla": "kein SLA",
        "worked": "Als bearbeitet markieren",
        "worked_done": "{lead} als bearbeitet markiert.",
        "empty": "Kein Lead wartet auf den Vertrieb.",
        "reasons": "Wichtigste Gründe",
    },
}


def queue_rows(conn: sa.Connection, now: datetime) -> list[dict[str, Any]]:
    """Leads waiting for sales: an open SLA task, a hot temperature or a priority account;
    priority accounts first, then the nearest deadline, then the highest score."""
    s, tasks, leads = t.scores, t.sla_tasks, t.leads
    deadline = (
        sa.select(tasks.c.lead_id, sa.func.min(tasks.c.deadline).label("deadline"))
        .where(tasks.c.status == "open")
        .group_by(tasks.c.lead_id)
        .subquery()
    )
    query = (
        sa.select(
            s.c.lead_id,
            s.c.total,
            s.c.cell,
            s.c.temperature,
            s.c.stage,
            s.c.queue,
            s.c.priority,
            s.c.primary_interest,
            s.c.reasons,
            s.c.model_id,
            leads.c.name,
            leads.c.company,
            deadline.c.deadline,
        )
        .select_from(s.join(leads, leads.c.lead_id == s.c.lead_id))
        .outerjoin(deadline, deadline.c.lead_id == s.c.lead_id)
        .where(
            sa.or_(
                deadline.c.deadline.is_not(None), s.c.temperature == "hot", s.c.priority.is_(True)
            )
        )
        .order_by(
            s.c.priority.desc(),
            deadline.c.deadline.is_(None),
            deadline.c.deadline,
            s.c.total.desc(),
            s.c.lead_id,
        )
        .limit(QUEUE_LIMIT)
    )
    rows = []
    for r in conn.execute(query).mappings():
        row = dict(r)
        due = row["deadline"]
        row["due_minutes"] = None if due is None else int((due - now).total_seconds() // 60)
        rows.append(row)
    return rows


def countdown(minutes: int | None, w: dict[str, str]) -> str:
    """An SLA deadline as people read it: due in 3 h 20 min, overdue by 45 min."""
    if minutes is None:
        return w["no_sla"]
    left = abs(minutes)
    text = f"{left // 60} h {left % 60} min" if left >= 60 else f"{left} min"
    return f"{w['due_in']} {text}" if minutes >= 0 else f"{w['overdue']} {text}"


def reason_labels(
    request: Request, conn: sa.Connection, rows: list[dict[str, Any]], lang: str
) -> None:
    """Give each row's stored reasons the rule texts of the model that scored it."""
    registry = service_of(request).scorer.registry
    labels: dict[int, dict[str, str]] = {}
    for row in rows:
        model_id = row["model_id"]
        if model_id not in labels:
            try:
                labels[model_id] = registry.load(conn, model_id).model.rule_labels(lang)
            except KeyError:  # the model was deleted; the rule names still say something
                labels[model_id] = {}
        named = labels[model_id]
        row["reason_texts"] = [
            {"text": named.get(r["rule"], r["rule"]), "points": r["points"]}
            for r in row["reasons"] or []
        ]


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, done: str | None = None) -> Response:
    """The sales queue."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    w = words_of(request, WORDS)
    with service.store.read() as conn:
        rows = queue_rows(conn, service.clock())
        reason_labels(request, conn, rows, lang_of(request))
    for row in rows:
        row["countdown"] = countdown(row["due_minutes"], w)
    context = {
        "rows": rows,
        "done": w["worked_done"].format(lead=done) if done else None,
        "page": "queue",
    }
    return render(request, "queue.html", context, page_words=WORDS, session=session)


@router.post("/leads/{lead_id}/worked")
def worked(
    request: Request,
    lead_id: str,
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "queue",
) -> Response:
    """Sales worked the lead: its open SLA tasks are met."""
    session = poster(request, csrf)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.write() as conn:
        handover.mark_worked(conn, lead_id, service.clock(), "marked worked in the dashboard")
    service.deliverer.wake()
    if back == "lead":
        return RedirectResponse(f"/ui/leads/{quote(lead_id)}?worked=1", status_code=303)
    return RedirectResponse(f"/ui/queue?done={quote(lead_id)}", status_code=303)
