"""Cases (S22): won, lost and recent leads, each rebuilt as a timeline of its events with the
score, temperature and stage after each one — and where the model would have placed a lead
just before it was won or lost.

A timeline is computed with the reference evaluator: as of just after each event, the lead is
scored with everything known by then (its account's other leads included, so that stakeholder
signals are as the batch engine gives them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis

from leadscore.engine.reference import CompiledModel, score_many
from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

# An instant just after an event: the engine counts events strictly before as_of.
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Step:
    """The lead's score right after one of its events (or at the start)."""

    ts: datetime
    event_id: str | None
    event_type: str | None
    total: float
    grade: str | None
    temperature: str | None
    stage: str | None

    def as_row(self) -> dict[str, Any]:
        """The step as a flat record."""
        return {
            "ts": self.ts.isoformat(),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "total": self.total,
            "grade": self.grade,
            "temperature": self.temperature,
            "stage": self.stage,
        }


@dataclass
class Case:
    """One lead's story: its steps, its outcome and the model's verdict before it."""

    lead_id: str
    kind: str  # won, lost or recent
    outcome_ts: datetime | None
    steps: list[Step] = field(default_factory=list)
    before_outcome: Step | None = None  # scored just before the outcome was recorded

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "lead_id": self.lead_id,
            "kind": self.kind,
            "outcome_ts": self.outcome_ts.isoformat() if self.outcome_ts else None,
            "before_outcome": self.before_outcome.as_row() if self.before_outcome else None,
            "steps": [s.as_row() for s in self.steps],
        }


def _rows(table: ibis.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return rows


def timelines(
    model: ScoringModel | CompiledModel,
    data: Dataset,
    wanted: Sequence[tuple[str, datetime]],
) -> dict[str, list[Step]]:
    """Timelines of many leads, each up to its own instant, from three queries in all.

    Each lead's timeline holds its score at its start, after each of its events before its
    instant, and at the instant (the last step, without an event: decay and inactivity).
    """
    compiled = model if isinstance(model, CompiledModel) else CompiledModel(model)
    if not wanted:
        return {}
    ids = sorted({lead_id for lead_id, _ in wanted})
    leads = data.leads
    mine = _rows(leads.filter(leads.lead_id.isin(ids)))
    missing = sorted(set(ids) - {r["lead_id"] for r in mine})
    if missing:
        raise DataError(f"no lead with lead_id {missing[0]!r} in the data")
    account_ids = sorted({r["account_id"] for r in mine if r.get("account_id") is not None})
    peers = _rows(leads.filter(leads.account_id.isin(account_ids))) if account_ids else []
    every = {r["lead_id"]: r for r in [*mine, *peers]}
    accounts: dict[str, dict[str, Any]] = {}
    if account_ids and data.accounts is not None:
        a = data.accounts
        accounts = {r["account_id"]: r for r in _rows(a.filter(a.account_id.isin(account_ids)))}
    latest = max(until for _, until in wanted)
    e = data.events
    events_by_lead: dict[str, list[dict[str, Any]]] = {i: [] for i in every}
    for ev in _rows(e.filter(e.lead_id.isin(sorted(every)) & (e.ts < latest))):
        events_by_lead[ev["lead_id"]].append(ev)
    by_account: dict[str, list[str]] = {}
    for lead_id, row in every.items():
        if row.get("account_id") is not None:
            by_account.setdefault(row["account_id"], []).append(lead_id)
    out: dict[str, list[Step]] = {}
    for lead_id, until in wanted:
        me = every[lead_id]
        account_id = me.get("account_id")
        group = by_account[account_id] if account_id is not None else [lead_id]
        rows = [every[i] for i in group]
        events = [ev for i in group for ev in events_by_lead[i] if ev["ts"] < until]
        account = accounts.get(account_id) if account_id is not None else None
        out[lead_id] = _steps(compiled, lead_id, rows, events, [account] if account else [], until)
    return out


def _steps(
    compiled: CompiledModel,
    lead_id: str,
    leads: list[dict[str, Any]],
    events: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    until: datetime,
) -> list[Step]:
    own = sorted(
        (ev for ev in events if ev["lead_id"] == lead_id), key=lambda ev: (ev["ts"], ev["event_id"])
    )
    me = next(r for r in leads if r["lead_id"] == lead_id)
    start = me.get("created_at") or (own[0]["ts"] if own else until - TICK)
    # (when it is shown, as of when it is scored, the event); at the start nothing the lead
    # did counts yet (events strictly before it)
    moments: list[tuple[datetime, datetime, dict[str, Any] | None]] = [(start, start, None)]
    moments += [(ev["ts"], ev["ts"] + TICK, ev) for ev in own]
    moments.append((until, until, None))
    steps = []
    for ts, at, ev in moments:
        scored = score_many(compiled, leads, events, at, accounts=accounts)
        s = next(x for x in scored if x.lead_id == lead_id)
        steps.append(
            Step(
                ts=ts,
                event_id=str(ev["event_id"]) if ev else None,
                event_type=str(ev["type"]) if ev else None,
                total=s.total,
                grade=s.grade,
                temperature=s.temperature,
                stage=s.stage,
            )
        )
    return steps


def timeline(
    model: ScoringModel | CompiledModel, data: Dataset, lead_id: str, until: datetime
) -> list[Step]:
    """One lead's timeline up to `until` (see `timelines`)."""
    return timelines(model, data, [(lead_id, until)])[lead_id]


def cases(
    model: ScoringModel,
    data: Dataset,
    as_of: datetime,
    *,
    won: int = 10,
    lost: int = 10,
    recent: int = 10,
) -> list[Case]:
    """The most recently won and lost leads and the most recently created open ones, with
    their timelines (everything before `as_of`)."""
    as_of = utc_naive(as_of)
    if data.outcomes is None and (won or lost):
        raise DataError(
            "no outcomes table: won and lost cases need outcomes (use --won 0 --lost 0)"
        )
    compiled = CompiledModel(model)
    picked: list[tuple[str, str, datetime | None]] = []
    if data.outcomes is not None:
        o = data.outcomes.filter(data.outcomes.ts < as_of)
        for kind, n in (("won", won), ("lost", lost)):
            if n <= 0:
                continue
            first = o.filter(o.outcome == kind).group_by("lead_id").aggregate(ts=o.ts.min())
            top = first.order_by([ibis.desc("ts"), "lead_id"]).limit(n)
            picked += [(r["lead_id"], kind, r["ts"]) for r in _rows(top)]
    if recent > 0:
        leads = data.leads
        open_leads = leads
        if data.outcomes is not None:
            decided = data.outcomes.filter(data.outcomes.ts < as_of).select("lead_id")
            open_leads = leads.anti_join(decided, "lead_id")
        if "created_at" in leads.columns:
            open_leads = open_leads.filter(
                open_leads.created_at.isnull() | (open_leads.created_at < as_of)
            )
            order = [ibis.desc("created_at"), "lead_id"]
        else:
            order = ["lead_id"]
        top = open_leads.order_by(order).select("lead_id").limit(recent)
        picked += [(r["lead_id"], "recent", None) for r in _rows(top)]
    if not picked:
        raise DataError(f"no won, lost or open leads before {as_of.isoformat()}")
    built = timelines(compiled, data, [(lead, ts or as_of) for lead, _, ts in picked])
    out = []
    for lead_id, kind, outcome_ts in picked:
        steps = built[lead_id]
        case = Case(lead_id, kind, outcome_ts, steps)
        if outcome_ts is not None:
            case.before_outcome = steps[-1]
        out.append(case)
    return out
