"""Accounts as people read them: the roll-up list and one account with its stakeholders.

Shared by the REST API (`/v1/accounts`) and the dashboard (`/ui/accounts`). Every query is
bounded: the list sorts accounts (not leads) and counts leads only for the accounts of
the page asked for; one account reads its own leads and their recent events only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.engine.reference import prepare_events
from leadscore.engine.timebase import micros
from leadscore.service.registry import Active
from leadscore.store import records
from leadscore.store import tables as t


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def list_accounts(
    conn: Connection,
    *,
    limit: int,
    offset: int = 0,
    priority_only: bool = False,
    search: str | None = None,
) -> dict[str, Any]:
    """Accounts with roll-up score, number of leads and priority flag, highest roll-up first;
    `total` counts every match. `search` finds a part of the name or id (any case)."""
    a, rolled, s, lead = t.accounts, t.account_scores, t.scores, t.leads
    filters: list[sa.ColumnElement[bool]] = []
    if priority_only:
        # A lead of a priority account carries the flag on its stored score (the model's
        # rule). One uncorrelated subquery: with a correlated EXISTS, SQLite picked the
        # (priority, total) index and scanned it once per account.
        flagged_ids = sa.select(s.c.account_id).where(s.c.priority.is_(True)).distinct()
        filters.append(a.c.account_id.in_(flagged_ids))
    if search:
        pattern = _like(search.strip())
        filters.append(
            sa.or_(
                sa.func.lower(a.c.account_id).like(pattern, escape="\\"),
                sa.func.lower(sa.func.coalesce(a.c.name, "")).like(pattern, escape="\\"),
            )
        )
    score = rolled.c.score.label("account_score")
    query = (
        sa.select(a, score)
        .select_from(a.outerjoin(rolled, rolled.c.account_id == a.c.account_id))
        .where(*filters)
        .order_by(rolled.c.score.desc().nulls_last(), a.c.account_id)
        .limit(limit)
        .offset(offset)
    )
    total = conn.execute(sa.select(sa.func.count()).select_from(a).where(*filters)).scalar_one()
    items = [dict(r) for r in conn.execute(query).mappings()]
    ids = [item["account_id"] for item in items]
    counts: dict[str, int] = {}
    flagged: set[str] = set()
    if ids:
        counts = {
            account_id: n
            for account_id, n in conn.execute(
                sa.select(lead.c.account_id, sa.func.count())
                .where(lead.c.account_id.in_(ids))
                .group_by(lead.c.account_id)
            )
        }
        flagged = set(
            conn.execute(
                sa.select(s.c.account_id)
                .where(s.c.account_id.in_(ids), s.c.priority.is_(True))
                .distinct()
            ).scalars()
        )
    for item in items:
        item["leads"] = counts.get(item["account_id"], 0)
        item["priority"] = item["account_id"] in flagged
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def engaged_leads(conn: Connection, active: Active, account_id: str, now: datetime) -> set[str]:
    """The account's leads the model's stakeholder rule counts as engaged as of `now`."""
    holders = active.model.account.stakeholders if active.model.account else None
    if holders is None:
        return set()
    e, lead = t.events, t.leads
    # Only events inside the stakeholder window can make a lead engaged, and the rule reads
    # nothing but their type and time: one lean, indexed query however big the account.
    since = now - timedelta(days=holders.within_days)
    rows = conn.execute(
        sa.select(e.c.lead_id, e.c.event_id, e.c.type, e.c.ts)
        .select_from(lead.join(e, e.c.lead_id == lead.c.lead_id))
        .where(lead.c.account_id == account_id, e.c.ts >= since, e.c.ts < now)
    ).mappings()
    by_lead: dict[str, list[Any]] = {}
    for ev in prepare_events((dict(r) for r in rows), now):
        by_lead.setdefault(str(ev["lead_id"]), []).append(ev)
    as_of = micros(now)
    return {i for i, evs in by_lead.items() if active.compiled.engaged(evs, as_of)}


def account_detail(
    conn: Connection,
    active: Active | None,
    account_id: str,
    now: datetime,
    limit: int | None = None,
) -> dict[str, Any] | None:
    """The account with its stakeholders (leads, best first; the first `limit` if given), who
    of them is engaged per the model's stakeholder rule, and the roll-up; None for an account
    nobody knows."""
    s, lead = t.scores, t.leads
    account = records.get_account(conn, account_id)
    query = (
        sa.select(
            lead.c.lead_id,
            lead.c.name,
            lead.c.email,
            lead.c.job_title,
            s.c.total,
            s.c.fit,
            s.c.behaviour,
            s.c.account.label("account_points"),
            s.c.grade,
            s.c.temperature,
            s.c.stage,
            s.c.priority,
            s.c.model_version,
        )
        .select_from(lead.outerjoin(s, s.c.lead_id == lead.c.lead_id))
        .where(lead.c.account_id == account_id)
        .order_by(s.c.total.desc().nulls_last(), lead.c.lead_id)
    )
    rows = [dict(r) for r in conn.execute(query.limit(limit)).mappings()]
    if account is None and not rows:
        return None
    count = len(rows)
    if limit is not None and count >= limit:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(lead).where(lead.c.account_id == account_id)
        ).scalar_one()
    # Reads the account's own scores by account id: a WHERE on `priority` made SQLite walk
    # the (priority, total) index through every priority lead instead.
    flagged = conn.execute(
        sa.select(sa.func.max(sa.case((s.c.priority.is_(True), 1), else_=0))).where(
            s.c.account_id == account_id
        )
    ).scalar()
    rolled = conn.execute(
        sa.select(t.account_scores.c.score).where(t.account_scores.c.account_id == account_id)
    ).scalar()
    holders = active.model.account.stakeholders if active and active.model.account else None
    engaged = set() if active is None else engaged_leads(conn, active, account_id, now)
    for r in rows:
        r["engaged"] = r["lead_id"] in engaged
        r["priority"] = bool(r["priority"])
    rollup = active.model.account.rollup if active and active.model.account else "sum"
    tiers = [] if holders is None else [(x.min_leads, x.points) for x in holders.tiers]
    return {
        "account": account,
        "rollup": rollup,
        "account_score": rolled,
        "leads": count,
        "stakeholders": rows,
        "engaged": len(engaged),
        "priority": bool(flagged),
        # The fewest engaged leads that earn the account signal, then every tier.
        "engaged_threshold": tiers[0][0] if tiers else None,
        "tiers": [{"min_leads": m, "points": p} for m, p in tiers],
        "within_days": None if holders is None else holders.within_days,
    }
