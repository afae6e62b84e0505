"""Keeping stored scores current with the engine's reference evaluator (the same semantics).

A rescoring computes outside any write transaction, then writes in a short one: the current
score, a history line for each change, stage and temperature transitions, SLA tasks and the
webhook outbox. A score computed as of an earlier instant never overwrites a newer one.

A lead the engine cannot score (whatever the cause) never stops the others: it is left out
with the reason (`Computed.failed`), its stored score stays as it was, and the scorer keeps
the reasons (`Scorer.unscored`) until the lead is scored again.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.engine.reference import score_many
from leadscore.engine.result import LeadScore
from leadscore.learn.predictive import predict_records
from leadscore.service.clock import Clock
from leadscore.service.registry import Active, Registry
from leadscore.service.webhooks import Subscriptions
from leadscore.store import records
from leadscore.store import tables as t
from leadscore.store.database import Store

log = logging.getLogger("leadscore.service")
# Causes of a change, as recorded in the history.
EVENT: Final = "event"
LEAD: Final = "lead"
ACCOUNT: Final = "account"
JOB: Final = "job"
SCHEDULE: Final = "schedule"

_LABELS: Final = ("grade", "engagement", "cell", "temperature", "stage", "queue")
TOP_REASONS: Final = 3
UNSCORED_KEPT: Final = 1000  # reasons kept for leads that could not be scored


def _cents(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


def top_reasons(score: LeadScore, count: int = TOP_REASONS) -> list[dict[str, Any]]:
    """The rules that gave the lead the most points (summed over their ledger lines)."""
    by_rule: dict[str, float] = {}
    for line in score.ledger:
        by_rule[line.rule] = by_rule.get(line.rule, 0.0) + line.points
    best = sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))
    return [
        {"rule": rule, "points": round(points, 2)} for rule, points in best[:count] if points > 0
    ]


def score_row(score: LeadScore, model_id: int) -> dict[str, Any]:
    """The stored form of a score."""
    return {
        "lead_id": score.lead_id,
        "total": score.total,
        "fit": score.fit,
        "behaviour": score.behaviour,
        "account": score.account,
        "grade": score.grade,
        "engagement": score.engagement,
        "cell": score.cell,
        "temperature": score.temperature,
        "stage": score.stage,
        "queue": score.queue,
        "sla_hours": score.sla_hours,
        "priority": score.priority,
        "account_id": score.account_id,
        "primary_interest": score.primary_interest,
        "interests": score.interests,
        "reasons": top_reasons(score),
        "model_id": model_id,
        "model_version": score.model_version,
        "as_of": score.as_of,
    }


@dataclass
class Computed:
    """Scores and, per lead, the newest event (arrival order) they include."""

    scores: list[LeadScore]
    seqs: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)  # lead id -> why it has no score


@dataclass
class Applied:
    """What one write of scores changed."""

    written: int = 0
    changed: int = 0
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # as stored, by lead
    skipped: int = 0  # a newer score was already stored
    transitions: int = 0
    sla_opened: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # lead id -> why it was not scored


@dataclass
class _Batch:
    history: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    opened: list[dict[str, Any]] = field(default_factory=list)
    cancel: list[tuple[str, str]] = field(default_factory=list)


def _is_change(old: dict[str, Any] | None, new: dict[str, Any], coarse: bool) -> bool:
    if old is None:
        return True
    if any(old[name] != new[name] for name in _LABELS):
        return True
    if old["model_id"] != new["model_id"]:
        return True
    # Decay moves every total a little each tick; scheduled rescoring records whole points.
    if coarse:
        return bool(round(old["total"]) != round(new["total"]))
    return _cents(old["total"]) != _cents(new["total"])


class Scorer:
    """Rescoring of leads: by id (events, edits), queued (dirty leads) and all at once (jobs)."""

    def __init__(self, store: Store, clock: Clock, registry: Registry | None = None) -> None:
        self.store = store
        self.clock = clock
        self.registry = registry or Registry()
        self._subscriptions: Subscriptions | None = None
        # Leads the engine could not score, with the reason, until they are scored again.
        self.unscored: dict[str, str] = {}
        self._unscored_lock = threading.Lock()

    def subscriptions(self, conn: Connection) -> Subscriptions:
        """Webhook subscriptions, loaded once until `forget_subscriptions`."""
        if self._subscriptions is None:
            self._subscriptions = Subscriptions.load(conn)
        return self._subscriptions

    def forget_subscriptions(self) -> None:
        """Load subscriptions again next time (a webhook was added or removed)."""
        self._subscriptions = None

    # -- computing --------------------------------------------------------------------------------

    def compute(
        self,
        conn: Connection,
        active: Active,
        lead_ids: Sequence[str],
        as_of: datetime,
        *,
        leads: list[dict[str, Any]] | None = None,
    ) -> Computed:
        """Scores of these leads as of `as_of`, plus their account peers when the model counts
        engaged stakeholders (one lead's events change the others' points then)."""
        if leads is None:
            leads = records.lead_records(conn, lead_ids)
        accounts = {str(r["account_id"]) for r in leads if r.get("account_id") is not None}
        if accounts and active.compiled.stakeholders is not None:
            known = {str(r["lead_id"]) for r in leads}
            peers = [i for i in records.account_lead_ids(conn, accounts) if i not in known]
            leads.extend(records.lead_records(conn, peers))
        ids = [str(r["lead_id"]) for r in leads]
        seqs: dict[str, int] = {}
        events = records.event_records(conn, ids, before=as_of, seqs=seqs)
        account_rows = records.account_records(conn, accounts) if accounts else []
        try:
            scores = self._score(active, leads, events, as_of, account_rows)
            failed: dict[str, str] = {}
        except Exception:
            scores, failed = self._isolate(active, leads, events, as_of, account_rows)
        return Computed(scores, seqs, failed)

    def _score(
        self,
        active: Active,
        leads: list[dict[str, Any]],
        events: list[dict[str, Any]],
        as_of: datetime,
        accounts: list[dict[str, Any]],
    ) -> list[LeadScore]:
        if active.predictor is not None and active.model.prediction is not None:
            field = active.model.prediction.field
            chances = predict_records(active.predictor, leads, events, as_of, accounts)
            # as in batch scoring, a probability the lead brings (a CRM attribute) is used as given
            leads = [
                r if r.get(field) is not None else {**r, field: float(p)}
                for r, p in zip(leads, chances, strict=True)
            ]
        return score_many(active.compiled, leads, events, as_of, accounts=accounts)

    def _isolate(
        self,
        active: Active,
        leads: list[dict[str, Any]],
        events: list[dict[str, Any]],
        as_of: datetime,
        accounts: list[dict[str, Any]],
    ) -> tuple[list[LeadScore], dict[str, str]]:
        # Some lead broke the pass: find which by scoring each alone, then score the others
        # together again (stakeholder counts need the account's leads side by side).
        by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ev in events:
            by_lead[str(ev["lead_id"])].append(ev)
        alone: list[LeadScore] = []
        failed: dict[str, str] = {}
        for lead in leads:
            lead_id = str(lead["lead_id"])
            try:
                alone.extend(self._score(active, [lead], by_lead[lead_id], as_of, accounts))
            except Exception as exc:
                failed[lead_id] = f"{type(exc).__name__}: {exc}"[:500]
        good = [r for r in leads if str(r["lead_id"]) not in failed]
        kept = [ev for ev in events if str(ev["lead_id"]) not in failed]
        try:
            scores = self._score(active, good, kept, as_of, accounts) if good else []
        except Exception:
            scores = alone  # fail only together: each as scored alone
        for lead_id, reason in list(failed.items())[:10]:
            log.warning("lead %s could not be scored with %s: %s", lead_id, active.name, reason)
        if len(failed) > 10:
            log.warning("%d more leads could not be scored", len(failed) - 10)
        return scores, failed

    def note(self, computed: Computed) -> None:
        """Keep the reasons of leads that could not be scored; forget those scored now."""
        with self._unscored_lock:
            for score in computed.scores:
                self.unscored.pop(score.lead_id, None)
            for lead_id, reason in computed.failed.items():
                self.unscored.pop(lead_id, None)
                self.unscored[lead_id] = reason
            while len(self.unscored) > UNSCORED_KEPT:  # the oldest reasons go first
                del self.unscored[next(iter(self.unscored))]

    def forget(self, lead_ids: Collection[str]) -> None:
        """Drop what is kept in memory about these leads (they were erased)."""
        with self._unscored_lock:
            for lead_id in lead_ids:
                self.unscored.pop(lead_id, None)

    # -- writing ----------------------------------------------------------------------------------

    def apply(
        self,
        conn: Connection,
        active: Active,
        computed: Computed,
        cause: str,
        cause_ids: dict[str, str | None] | None = None,
        *,
        computed_here: bool = False,
    ) -> Applied:
        """Store scores with their history, transitions, SLA tasks and webhooks.

        A score is written only if it is at least as new as the stored one in both time
        (as_of) and events seen; when neither dominates, the lead is queued again so that a
        fresh computation includes everything. Scores computed outside this transaction
        (`computed_here` False) are dropped for leads erased or merged away meanwhile.
        """
        result = Applied()
        scores = computed.scores
        if not scores:
            return result
        if not computed_here:
            alive = records.existing_ids(conn, t.leads, "lead_id", [s.lead_id for s in scores])
            scores = [s for s in scores if s.lead_id in alive]
        cause_ids = cause_ids or {}
        ids = [s.lead_id for s in scores]
        current: dict[str, dict[str, Any]] = {}
        for part in records.chunks(ids):
            for r in conn.execute(
                sa.select(t.scores).where(records.among(conn, t.scores.c.lead_id, part))
            ).mappings():
                current[r["lead_id"]] = dict(r)
        subs = self.subscriptions(conn)
        now = self.clock()
        batch = _Batch()
        rows: list[dict[str, Any]] = []
        accounts: set[str] = set()
        coarse = cause == SCHEDULE
        again: list[str] = []
        for score in scores:
            old = current.get(score.lead_id)
            seq = computed.seqs.get(score.lead_id, 0)
            if old is not None and (old["as_of"] > score.as_of or old["events_seq"] > seq):
                result.skipped += 1
                if old["as_of"] < score.as_of or old["events_seq"] < seq:
                    again.append(score.lead_id)
                continue
            new = score_row(score, active.model_id)
            new["events_seq"] = seq
            rows.append(new)
            for acc in (new["account_id"], old["account_id"] if old else None):
                if acc is not None:
                    accounts.add(acc)
            cause_id = cause_ids.get(score.lead_id)
            if not _is_change(old, new, coarse):
                continue
            result.changed += 1
            self._record_change(conn, subs, batch, old, new, cause, cause_id, now)
        if rows:
            stmt = records.upsert(conn, t.scores, "lead_id")
            rows.sort(key=itemgetter("lead_id"))  # one lock order for all writers
            for part in records.chunks(rows, 500):
                conn.execute(stmt, list(part))
        result.written = len(rows)
        result.rows = {row["lead_id"]: row for row in rows}
        if again:
            records.mark_dirty(conn, again, cause)
        self._write_batch(conn, subs, batch, now)
        result.transitions = len(batch.transitions)
        result.sla_opened = len(batch.opened)
        rolled = self.roll_up(conn, active, accounts) if accounts else {}
        for row in result.rows.values():
            row["account_score"] = rolled.get(row["account_id"]) if row["account_id"] else None
        return result

    def _record_change(
        self,
        conn: Connection,
        subs: Subscriptions,
        batch: _Batch,
        old: dict[str, Any] | None,
        new: dict[str, Any],
        cause: str,
        cause_id: str | None,
        now: datetime,
    ) -> None:
        lead_id = new["lead_id"]
        previous = old["total"] if old is not None else 0.0
        batch.history.append(
            {
                "lead_id": lead_id,
                "as_of": new["as_of"],
                "total": new["total"],
                "delta": round(new["total"] - previous, 2),
                "grade": new["grade"],
                "temperature": new["temperature"],
                "stage": new["stage"],
                "model_id": new["model_id"],
                "model_version": new["model_version"],
                "cause": cause,
                "cause_id": cause_id,
            }
        )
        summary = {
            "lead_id": lead_id,
            "total": new["total"],
            "previous_total": old["total"] if old is not None else None,
            "grade": new["grade"],
            "temperature": new["temperature"],
            "stage": new["stage"],
            "queue": new["queue"],
            "model_version": new["model_version"],
            "as_of": new["as_of"],
            "cause": cause,
            "cause_id": cause_id,
        }
        if _cents(previous) != _cents(new["total"]) and subs.wants("score_changed"):
            subs.enqueue(conn, "score_changed", lead_id, summary, now)
        for name in ("temperature", "stage"):
            before = old[name] if old is not None else None
            if before == new[name]:
                continue
            batch.transitions.append(
                {
                    "lead_id": lead_id,
                    "field": name,
                    "from_value": before,
                    "to_value": new[name],
                    "at": new["as_of"],
                    "model_version": new["model_version"],
                    "cause": cause,
                    "cause_id": cause_id,
                }
            )
            if subs.wants(f"{name}_changed"):
                subs.enqueue(
                    conn,
                    f"{name}_changed",
                    lead_id,
                    {**summary, "from": before, "to": new[name]},
                    now,
                )
        stage_before = old["stage"] if old is not None else None
        if stage_before != new["stage"]:
            batch.cancel.append((lead_id, f"left stage {stage_before} for {new['stage']}"))
            if new["sla_hours"] is not None:
                batch.opened.append(
                    {
                        "lead_id": lead_id,
                        "stage": new["stage"],
                        "queue": new["queue"],
                        "cell": new["cell"],
                        "sla_hours": new["sla_hours"],
                        "opened_at": new["as_of"],
                        "deadline": new["as_of"] + timedelta(hours=new["sla_hours"]),
                        "status": "open",
                    }
                )

    def _write_batch(
        self, conn: Connection, subs: Subscriptions, batch: _Batch, now: datetime
    ) -> None:
        for table, rows in ((t.score_history, batch.history), (t.transitions, batch.transitions)):
            for part in records.chunks(rows, 500):
                conn.execute(table.insert(), list(part))
        tasks = t.sla_tasks
        for lead_id, note in batch.cancel:
            conn.execute(
                tasks.update()
                .where(tasks.c.lead_id == lead_id, tasks.c.status == "open")
                .values(status="cancelled", closed_at=now, note=note)
            )
        if batch.opened:
            ids = conn.execute(
                tasks.insert().returning(tasks.c.id, sort_by_parameter_order=True), batch.opened
            ).scalars()
            if subs.wants("sla_opened"):
                for task_id, task in zip(ids, batch.opened, strict=True):
                    subs.enqueue(
                        conn, "sla_opened", task["lead_id"], {"task_id": task_id, **task}, now
                    )

    def roll_up(
        self, conn: Connection, active: Active, account_ids: Iterable[str]
    ) -> dict[str, float]:
        """Recompute these accounts' roll-up scores from their leads' stored totals."""
        acc = active.model.account
        rollup = acc.rollup if acc is not None else "sum"
        s = t.scores
        wanted = sorted(set(account_ids))
        totals: dict[str, list[int]] = {a: [] for a in wanted}
        for part in records.chunks(wanted):
            for account_id, total in conn.execute(
                sa.select(s.c.account_id, s.c.total).where(
                    records.among(conn, s.c.account_id, part)
                )
            ):
                totals[account_id].append(round(total * 100))
        rolled = {a: (sum(v) if rollup == "sum" else max(v)) / 100 for a, v in totals.items() if v}
        rows = [{"account_id": a, "score": rolled[a], "leads": len(totals[a])} for a in rolled]
        if rows:
            conn.execute(records.upsert(conn, t.account_scores, "account_id"), rows)
        gone = [a for a, v in totals.items() if not v]
        for part in records.chunks(gone):
            conn.execute(
                t.account_scores.delete().where(
                    records.among(conn, t.account_scores.c.account_id, part)
                )
            )
        return rolled

    # -- entry points -----------------------------------------------------------------------------

    def process_dirty(self, limit: int = 5000, lead_ids: Sequence[str] | None = None) -> int:
        """Rescore queued leads (at most `limit`, or those of `lead_ids`); returns how many."""
        with self.store.read() as conn:
            queued = records.dirty(conn, limit, lead_ids)
            if not queued:
                return 0
            active = self.registry.active(conn)
            as_of = self.clock()
            computed = (
                self.compute(conn, active, [q[0] for q in queued], as_of)
                if active
                else Computed([], {})
            )
        self.note(computed)
        causes: dict[str, tuple[str, str | None]] = {q[0]: (q[2], q[3]) for q in queued}
        by_cause: dict[str, list[LeadScore]] = defaultdict(list)
        for s in computed.scores:
            by_cause[causes.get(s.lead_id, (ACCOUNT, None))[0]].append(s)
        with self.store.write() as conn:
            if active is not None:
                for cause, group in by_cause.items():
                    self.apply(
                        conn,
                        active,
                        Computed(group, computed.seqs),
                        cause,
                        {s.lead_id: causes.get(s.lead_id, (ACCOUNT, None))[1] for s in group},
                    )
            records.clear_dirty(conn, [(q[0], q[1]) for q in queued])
        return len(queued)

    def rescore_all(
        self,
        active: Active,
        cause: str,
        cause_id: str | None,
        progress: Callable[[int, int, int], None] | None = None,
        *,
        chunk: int = 2000,
    ) -> Applied:
        """Rescore every lead with `active`, chunk by chunk, each chunk as of its own now."""
        groups = self.lead_groups(chunk)
        count = sum(len(g) for g in groups)
        total = Applied()
        done = 0
        for group in groups:
            with self.store.read() as conn:
                computed = self.compute(conn, active, group, self.clock())
            with self.store.write() as conn:
                applied = self.apply(conn, active, computed, cause, dict.fromkeys(group, cause_id))
            done += len(group)
            self.note(computed)
            total.failed.update(computed.failed)
            for name in ("written", "changed", "skipped", "transitions", "sla_opened"):
                setattr(total, name, getattr(total, name) + getattr(applied, name))
            if progress is not None:
                progress(done, count, total.changed)
        return total

    def lead_groups(self, chunk: int = 2000) -> list[list[str]]:
        """Every lead id in groups of about `chunk`, bounding the memory a full pass needs.

        Leads of one account stay in one group, so stakeholder counts and roll-ups are whole.
        """
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(t.leads.c.lead_id, t.leads.c.account_id).order_by(
                    t.leads.c.account_id, t.leads.c.lead_id
                )
            ).all()
        groups: list[list[str]] = []
        current: list[str] = []
        last_account: object = object()
        for lead_id, account_id in rows:
            if len(current) >= chunk and (account_id is None or account_id != last_account):
                groups.append(current)
                current = []
            current.append(lead_id)
            last_account = account_id
        if current:
            groups.append(current)
        return groups
