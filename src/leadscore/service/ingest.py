"""Taking in leads, accounts and events: one transaction each, then the scores follow.

Every write marks the leads it affects as dirty in the same transaction, so a crash right
after the acknowledgement still ends with current scores once the service is back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from leadscore.service import scoring
from leadscore.store import records
from leadscore.store import tables as t

if TYPE_CHECKING:
    from leadscore.service.app import Service


@dataclass
class Rejected:
    """One item not taken, with its position in the request and why."""

    index: int
    reason: str
    event_id: str | None = None


@dataclass
class EventsResult:
    """What an events request did."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)


class Transaction:
    """One write transaction taking in leads, accounts and events; the leads it touches are
    queued for rescoring in it and scored after it commits (see `transaction`)."""

    def __init__(self, conn: sa.Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.affected: list[str] = []

    def queue(
        self,
        lead_ids: Sequence[str],
        cause: str,
        cause_id: str | None = None,
        *,
        cause_ids: Mapping[str, str | None] | None = None,
        events_moved: bool = False,
    ) -> None:
        """Queue leads for rescoring (committed with everything else)."""
        records.mark_dirty(
            self.conn, lead_ids, cause, cause_id, cause_ids=cause_ids, events_moved=events_moved
        )
        self.affected.extend(lead_ids)

    def upsert_accounts(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert or merge accounts and queue their leads; returns the ids that were new."""
        before = records.upsert_accounts(self.conn, rows, self.now)
        for account_id in before:
            self.queue(
                records.account_lead_ids(self.conn, [account_id]), scoring.ACCOUNT, account_id
            )
        return [account_id for account_id, old in before.items() if old is None]

    def upsert_leads(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert or merge leads and queue them; returns the ids that were new."""
        before = records.upsert_leads(self.conn, rows, self.now)
        self.queue(list(before), scoring.LEAD)
        # A lead that moved to another account leaves its old account's roll-up and
        # stakeholder count behind: those leads are rescored too.
        sent = {str(row["lead_id"]): row for row in rows if "account_id" in row}
        moved = {
            str(old["account_id"])
            for lead_id, old in before.items()
            if old is not None
            and old["account_id"] is not None
            and lead_id in sent
            and sent[lead_id]["account_id"] != old["account_id"]
        }
        if moved:
            self.queue(records.account_lead_ids(self.conn, moved), scoring.ACCOUNT)
        return [lead_id for lead_id, old in before.items() if old is None]

    def add_events(
        self,
        items: Sequence[tuple[int, Mapping[str, Any]]],
        *,
        create_leads: bool,
        rejected: Sequence[Rejected] = (),
    ) -> EventsResult:
        """Store valid events (indexed as in the request) and queue their leads.

        With `create_leads`, events of unknown leads create bare leads (tracking SDKs send
        events before identify); otherwise such events are rejected.
        """
        result = EventsResult(rejected=list(rejected))
        wanted = {str(row["lead_id"]) for _, row in items}
        if create_leads:
            records.ensure_leads(self.conn, wanted, self.now)
            keep = list(items)
        else:
            known = records.existing_ids(self.conn, t.leads, "lead_id", sorted(wanted))
            keep = []
            for index, row in items:
                if row["lead_id"] in known:
                    keep.append((index, row))
                else:
                    reason = _unknown(str(row["lead_id"]))
                    result.rejected.append(Rejected(index, reason, str(row["event_id"])))
        ingested = records.insert_events(self.conn, [row for _, row in keep], self.now)
        result.accepted = ingested.accepted
        result.duplicates = ingested.duplicates
        result.lead_ids = ingested.lead_ids
        if ingested.lead_ids:
            causes = _newest_event_by_lead(keep, set(ingested.accepted))
            self.queue(ingested.lead_ids, scoring.EVENT, cause_ids=causes)
        result.rejected.sort(key=lambda r: r.index)
        return result


@contextmanager
def transaction(service: Service, *, sync: bool) -> Iterator[Transaction]:
    """A write transaction; after it commits, its leads are rescored (now, or by the worker)."""
    with service.store.write() as conn:
        tx = Transaction(conn, service.clock())
        yield tx
    _follow(service, sync, list(dict.fromkeys(tx.affected)))


def ingest_events(
    service: Service,
    items: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    create_leads: bool,
    rejected: Sequence[Rejected] = (),
    sync: bool,
) -> EventsResult:
    """Store valid events in one transaction; their leads' scores follow (see `add_events`)."""
    with transaction(service, sync=sync) as tx:
        return tx.add_events(items, create_leads=create_leads, rejected=rejected)


def upsert_leads(service: Service, rows: Sequence[Mapping[str, Any]], *, sync: bool) -> list[str]:
    """Insert or merge leads in one transaction; returns the ids that were new."""
    with transaction(service, sync=sync) as tx:
        return tx.upsert_leads(rows)


def upsert_accounts(
    service: Service, rows: Sequence[Mapping[str, Any]], *, sync: bool
) -> list[str]:
    """Insert or merge accounts in one transaction; returns the ids that were new."""
    with transaction(service, sync=sync) as tx:
        return tx.upsert_accounts(rows)


def ingest_one(
    service: Service, row: Mapping[str, Any], *, create_leads: bool
) -> tuple[EventsResult, dict[str, Any] | None]:
    """Store one event and its lead's new score in one transaction; returns the stored score.

    The fast path for single events: no queue, the score commits with the event.
    """
    result = EventsResult()
    now = service.clock()
    scorer = service.scorer
    lead_id, event_id = str(row["lead_id"]), str(row["event_id"])
    with service.store.write() as conn:
        leads = records.lead_records(conn, [lead_id])
        if not leads:
            if not create_leads:
                result.rejected.append(Rejected(0, _unknown(lead_id), event_id))
                return result, None
            records.ensure_leads(conn, [lead_id], now)
            leads = records.lead_records(conn, [lead_id])
        ingested = records.insert_events(conn, [row], now)
        result.accepted, result.duplicates = ingested.accepted, ingested.duplicates
        result.lead_ids = ingested.lead_ids
        active = scorer.registry.active(conn)
        written: dict[str, Any] | None = None
        if ingested.accepted and active is not None:
            computed = scorer.compute(conn, active, [lead_id], now, leads=leads)
            scorer.note(computed)
            mine = [s for s in computed.scores if s.lead_id == lead_id]
            peers = [s for s in computed.scores if s.lead_id != lead_id]
            applied = scorer.apply(
                conn,
                active,
                scoring.Computed(mine, computed.seqs),
                scoring.EVENT,
                {lead_id: event_id},
                computed_here=True,
            )
            written = applied.rows.get(lead_id)
            if peers:
                others = scoring.Computed(peers, computed.seqs)
                scorer.apply(conn, active, others, scoring.ACCOUNT, computed_here=True)
        if written is None:  # a duplicate, no model, or a newer score already stored
            written = records.score_of(conn, lead_id)
    return result, written


def _unknown(lead_id: str) -> str:
    return f"field 'lead_id': unknown lead '{lead_id}'; create it first (PUT /v1/leads/{{lead_id}})"


def _newest_event_by_lead(
    items: Sequence[tuple[int, Mapping[str, Any]]], accepted: set[str]
) -> dict[str, str]:
    # The history names the newest accepted event of each lead as the cause.
    out: dict[str, str] = {}
    for _, row in items:
        if row["event_id"] in accepted:
            out[str(row["lead_id"])] = str(row["event_id"])
    return out


def _follow(service: Service, sync: bool, lead_ids: Sequence[str]) -> None:
    # Single requests wait for their scores; batches leave them to the worker (< 1 s).
    if sync and lead_ids:
        service.scorer.process_dirty(lead_ids=lead_ids)
    elif lead_ids:
        service.worker.wake()
