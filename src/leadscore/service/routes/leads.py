"""Leads, accounts and outcomes; score cards with their ledger, history and hand-over."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import AfterValidator, BaseModel, Field

from leadscore.service import accounts, erasure, handover, ingest, scorecard
from leadscore.service.deps import Admin, ServiceDep
from leadscore.service.inputs import AccountIn, LeadIn, Offset, OutcomeIn, fields_set, no_nul
from leadscore.service.inputs import Body as Strict
from leadscore.store import records
from leadscore.store import tables as t

router = APIRouter(prefix="/v1", tags=["leads"])

MAX_PAGE = 1000


class Upserted(BaseModel):
    """Which ids were written, and which of them were new."""

    count: int
    created: list[str]


class LeadsBody(Strict):
    """Many leads at once."""

    leads: list[LeadIn] = Field(max_length=10_000)


class AccountsBody(Strict):
    """Many accounts at once."""

    accounts: list[AccountIn] = Field(max_length=10_000)


class Worked(Strict):
    """Sales acted on the lead (a call, a meeting); closes its open SLA tasks as met."""

    note: Annotated[str, Field(max_length=2000), AfterValidator(no_nul)] | None = None


def _lead_or_404(conn: sa.Connection, lead_id: str) -> dict[str, Any]:
    lead = records.get_lead(conn, lead_id)
    if lead is None:
        raise HTTPException(404, f"unknown lead '{lead_id}'")
    return lead


def _score(conn: sa.Connection, lead_id: str) -> dict[str, Any] | None:
    return records.score_of(conn, lead_id)


# -- leads ----------------------------------------------------------------------------------------


@router.put("/leads/{lead_id}", response_model=Upserted)
def put_lead(lead_id: str, lead: LeadIn, service: ServiceDep, _: Admin) -> Upserted:
    """Create or update one lead; its score is current when this returns."""
    if lead.lead_id != lead_id:
        raise HTTPException(
            422, f"field 'lead_id': '{lead.lead_id}' differs from the path '{lead_id}'"
        )
    created = ingest.upsert_leads(service, [fields_set(lead)], sync=True)
    return Upserted(count=1, created=created)


@router.post("/leads", response_model=Upserted)
def post_leads(body: LeadsBody, service: ServiceDep, _: Admin) -> Upserted:
    """Create or update many leads in one transaction; scores follow within a second."""
    rows = [fields_set(lead) for lead in body.leads]
    created = ingest.upsert_leads(service, rows, sync=False)
    return Upserted(count=len(rows), created=created)


@router.get("/leads/{lead_id}")
def get_lead(lead_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """One lead with its current score (no ledger; see /score)."""
    with service.store.read() as conn:
        lead = _lead_or_404(conn, lead_id)
        return {"lead": lead, "score": _score(conn, lead_id)}


SortKey = Literal["score", "-score", "lead_id", "updated"]


@router.get("/leads")
def list_leads(
    service: ServiceDep,
    _: Admin,
    temperature: str | None = None,
    stage: str | None = None,
    grade: str | None = None,
    queue: str | None = None,
    account_id: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    sort: SortKey = "-score",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Leads with their scores, filtered and paged; `total` counts every match."""
    s, lead = t.scores, t.leads
    query = sa.select(
        lead.c.lead_id,
        lead.c.name,
        lead.c.email,
        lead.c.company,
        lead.c.account_id,
        s.c.total,
        s.c.fit,
        s.c.behaviour,
        s.c.grade,
        s.c.temperature,
        s.c.stage,
        s.c.queue,
        s.c.model_version,
        s.c.as_of,
    ).select_from(lead.outerjoin(s, s.c.lead_id == lead.c.lead_id))
    filters: list[sa.ColumnElement[bool]] = []
    for column, value in (
        (s.c.temperature, temperature),
        (s.c.stage, stage),
        (s.c.grade, grade),
        (s.c.queue, queue),
        (lead.c.account_id, account_id),
    ):
        if value is not None:
            filters.append(column == value)
    if min_score is not None:
        filters.append(s.c.total >= min_score)
    if max_score is not None:
        filters.append(s.c.total < max_score)
    if filters:
        query = query.where(*filters)
    # Leads not scored yet come last either way, on SQLite and PostgreSQL alike.
    orders: dict[str, list[Any]] = {
        "score": [s.c.total.asc().nulls_last(), lead.c.lead_id],
        "-score": [s.c.total.desc().nulls_last(), lead.c.lead_id],
        "lead_id": [lead.c.lead_id],
        "updated": [lead.c.updated_at.desc(), lead.c.lead_id],
    }
    order = orders[sort]
    with service.store.read() as conn:
        count_query = sa.select(sa.func.count()).select_from(
            lead.outerjoin(s, s.c.lead_id == lead.c.lead_id)
        )
        if filters:
            count_query = count_query.where(*filters)
        total = conn.execute(count_query).scalar_one()
        rows = conn.execute(query.order_by(*order).limit(limit).offset(offset)).mappings()
        items = [dict(r) for r in rows]
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.delete("/leads/{lead_id}")
def delete_lead(lead_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Erase a lead with all its data (GDPR right to erasure); says what was deleted."""
    counts = erasure.erase_lead(service, lead_id)
    if counts is None:
        raise HTTPException(404, f"unknown lead '{lead_id}'")
    return {"lead_id": lead_id, "deleted": counts}


@router.get("/leads/{lead_id}/export")
def export_lead(lead_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Everything stored about a lead, table by table (GDPR right of access): exactly what
    erasure deletes, including leads merged into it and stored reports that name it."""
    data = erasure.export_lead(service, lead_id)
    if data is None:
        raise HTTPException(404, f"unknown lead '{lead_id}'")
    return {"lead_id": lead_id, "data": data}


# -- scores ---------------------------------------------------------------------------------------


@router.get("/leads/{lead_id}/score")
def score_card(
    lead_id: str, service: ServiceDep, _: Admin, lang: Literal["en", "de"] = "en"
) -> dict[str, Any]:
    """The lead's current score card: the stored score and the ledger that sums to it."""
    with service.store.read() as conn:
        _lead_or_404(conn, lead_id)
        card = scorecard.score_card(conn, service.scorer, lead_id, lang)
    if card is None:
        raise HTTPException(404, f"lead '{lead_id}' has no score yet (no model is published)")
    return card.as_dict()


@router.get("/leads/{lead_id}/history")
def score_history(
    lead_id: str,
    service: ServiceDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every change of the lead's score, newest first, with the event or job that caused it."""
    h = t.score_history
    with service.store.read() as conn:
        _lead_or_404(conn, lead_id)
        rows = conn.execute(
            sa.select(h)
            .where(h.c.lead_id == lead_id)
            .order_by(h.c.id.desc())
            .limit(limit)
            .offset(offset)
        ).mappings()
        return {"lead_id": lead_id, "items": [dict(r) for r in rows]}


@router.get("/leads/{lead_id}/transitions")
def lead_transitions(lead_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Every stage and temperature the lead entered or left, oldest first."""
    tr = t.transitions
    with service.store.read() as conn:
        _lead_or_404(conn, lead_id)
        rows = conn.execute(
            sa.select(tr).where(tr.c.lead_id == lead_id).order_by(tr.c.id)
        ).mappings()
        return {"lead_id": lead_id, "items": [dict(r) for r in rows]}


@router.post("/leads/{lead_id}/worked")
def worked(
    lead_id: str, service: ServiceDep, _: Admin, body: Annotated[Worked | None, Body()] = None
) -> dict[str, Any]:
    """Sales worked the lead: its open SLA tasks are met (an empty list if none was open)."""
    with service.store.write() as conn:
        _lead_or_404(conn, lead_id)
        met = handover.mark_worked(conn, lead_id, service.clock(), body.note if body else None)
    service.deliverer.wake()
    return {"lead_id": lead_id, "met": [m["id"] for m in met]}


@router.post("/leads/{lead_id}/outcome", status_code=201)
def record_outcome(lead_id: str, body: OutcomeIn, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Record that the lead was won or lost (with the deal value)."""
    now = service.clock()
    with service.store.write() as conn:
        _lead_or_404(conn, lead_id)
        row = {
            "lead_id": lead_id,
            "outcome": body.outcome,
            "ts": body.ts or now,
            "value": body.value,
        }
        outcome_id = records.add_outcome(conn, row, now)
    return {"id": outcome_id, **row}


@router.get("/leads/{lead_id}/outcomes")
def lead_outcomes(lead_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """The lead's recorded outcomes, oldest first."""
    o = t.outcomes
    with service.store.read() as conn:
        _lead_or_404(conn, lead_id)
        rows = conn.execute(
            sa.select(o).where(o.c.lead_id == lead_id).order_by(o.c.ts, o.c.id)
        ).mappings()
        return {"lead_id": lead_id, "items": [dict(r) for r in rows]}


# -- accounts -------------------------------------------------------------------------------------


@router.put("/accounts/{account_id}", response_model=Upserted)
def put_account(account_id: str, account: AccountIn, service: ServiceDep, _: Admin) -> Upserted:
    """Create or update one account; its leads are rescored before this returns."""
    if account.account_id != account_id:
        raise HTTPException(
            422, f"field 'account_id': '{account.account_id}' differs from the path '{account_id}'"
        )
    created = ingest.upsert_accounts(service, [fields_set(account)], sync=True)
    return Upserted(count=1, created=created)


@router.post("/accounts", response_model=Upserted)
def post_accounts(body: AccountsBody, service: ServiceDep, _: Admin) -> Upserted:
    """Create or update many accounts; their leads' scores follow within a second."""
    rows = [fields_set(a) for a in body.accounts]
    created = ingest.upsert_accounts(service, rows, sync=False)
    return Upserted(count=len(rows), created=created)


@router.get("/accounts")
def list_accounts(
    service: ServiceDep,
    _: Admin,
    priority: bool = False,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Accounts with their roll-up score, number of leads and priority flag, highest roll-up
    first; `priority=true` keeps priority accounts only, `q` finds a part of name or id."""
    with service.store.read() as conn:
        return accounts.list_accounts(
            conn, limit=limit, offset=offset, priority_only=priority, search=q
        )


@router.get("/accounts/{account_id}")
def account_view(account_id: str, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """The account with its stakeholders (leads, best first), their signals and the roll-up."""
    with service.store.read() as conn:
        active = service.scorer.registry.active(conn)
        view = accounts.account_detail(conn, active, account_id, service.clock())
    if view is None:
        raise HTTPException(404, f"unknown account '{account_id}'")
    return view


@router.delete("/accounts/{account_id}", status_code=204)
def delete_account(account_id: str, service: ServiceDep, _: Admin) -> Response:
    """Delete an account record (its leads stay, without account data)."""
    with service.store.write() as conn:
        deleted = conn.execute(
            t.accounts.delete().where(t.accounts.c.account_id == account_id)
        ).rowcount
        if not deleted:
            raise HTTPException(404, f"unknown account '{account_id}'")
        records.mark_dirty(
            conn, records.account_lead_ids(conn, [account_id]), "account", account_id
        )
    service.worker.wake()
    return Response(status_code=204)
