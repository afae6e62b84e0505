"""The sales queue: hot and sales-ready leads by priority, with SLA countdown and reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard.web import (
    lang_of,
    one_segment,
    poster,
    render,
    segment,
    service_of,
    viewer,
    words_of,
)
from leadscore.service import handover
from leadscore.store import records
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


def _candidates(conn: sa.Connection, limit: int) -> dict[str, datetime | None]:
    """Lead ids that can be among the first `limit` of the queue, with their nearest open
    deadline: four bounded index walks instead of sorting every score (100,000 leads)."""
    s, tasks = t.scores, t.sla_tasks
    is_open = tasks.c.status == "open"
    # one set of the leads with open tasks, not a lookup per score row
    no_task = s.c.lead_id.not_in(sa.select(tasks.c.lead_id).where(is_open))
    found: dict[str, datetime | None] = {}
    for priority in (True, False):
        # a lead may have more than one open task: twice the rows leave `limit` leads
        due = (
            sa.select(s.c.lead_id, tasks.c.deadline)
            .select_from(tasks.join(s, s.c.lead_id == tasks.c.lead_id))
            .where(is_open, s.c.priority.is_(priority))
            .order_by(tasks.c.deadline, s.c.lead_id)
            .limit(2 * limit)
        )
        for lead_id, deadline in conn.execute(due):
            found.setdefault(lead_id, deadline)  # the first is the nearest
    # `IS NOT`, not `IS false`: an equality on priority would walk that index for the hot ones
    waiting = (s.c.priority.is_(True), sa.and_(s.c.temperature == "hot", s.c.priority.is_not(True)))
    for which in waiting:
        best = (
            sa.select(s.c.lead_id)
            .where(which, no_task)
            .order_by(s.c.total.desc(), s.c.lead_id)
            .limit(limit)
        )
        for (lead_id,) in conn.execute(best):
            found.setdefault(lead_id, None)
    return found


def queue_rows(
    conn: sa.Connection, now: datetime, limit: int = QUEUE_LIMIT
) -> list[dict[str, Any]]:
    """Leads waiting for sales: an open SLA task, a hot temperature or a priority account;
    priority accounts first, then the nearest deadline, then the highest score."""
    s, leads = t.scores, t.leads
    due = _candidates(conn, limit)
    rows = []
    for part in records.chunks(list(due)):
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
            )
            .select_from(s.join(leads, leads.c.lead_id == s.c.lead_id))
            .where(records.among(conn, s.c.lead_id, part))
        )
        rows += [dict(r) for r in conn.execute(query).mappings()]
    far = datetime.max

    def order(row: dict[str, Any]) -> tuple[bool, bool, datetime, float, str]:
        deadline = due[row["lead_id"]]
        return (
            not row["priority"],
            deadline is None,
            deadline or far,
            -row["total"],
            row["lead_id"],
        )

    rows.sort(key=order)
    del rows[limit:]
    for row in rows:
        deadline = row["deadline"] = due[row["lead_id"]]
        row["due_minutes"] = (
            None if deadline is None else int((deadline - now).total_seconds() // 60)
        )
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


# `path`, so that an id with "/" (sent encoded) reaches the form; `one_segment` checks it
@router.post("/leads/{lead_id:path}/worked")
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
    if not one_segment(request, lead_id, from_end=1):
        # "../../ui/leads/X" unencoded: the form would act for another lead than it names
        return Response(
            "a lead id in a URL is one path segment (its / written as %2F)", status_code=404
        )
    service = service_of(request)
    with service.store.write() as conn:
        handover.mark_worked(conn, lead_id, service.clock(), "marked worked in the dashboard")
    service.deliverer.wake()
    if back == "lead":
        return RedirectResponse(f"/ui/leads/{segment(lead_id)}?worked=1", status_code=303)
    return RedirectResponse(f"/ui/queue?done={segment(lead_id)}", status_code=303)
