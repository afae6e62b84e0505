"""Taking in leads, accounts and events: one transaction each, then the scores follow.

Every write marks the leads it affects as dirty in the same transaction, so a crash right
after the acknowledgement still ends with current scores once the service is back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


def ingest_events(
    service: Service,
    items: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    create_leads: bool,
    rejected: Sequence[Rejected] = (),
    sync: bool,
) -> EventsResult:
    """Store valid events (indexed as in the request) and queue or compute their leads' scores.

    With `create_leads`, events of unknown leads create bare leads (tracking SDKs send events
    before identify); otherwise such events are rejected.
    """
    result = EventsResult(rejected=list(rejected))
    now = service.clock()
    with service.store.write() as conn:
        wanted = {str(row["lead_id"]) for _, row in items}
        if create_leads:
            records.ensure_leads(conn, wanted, now)
            keep = list(items)
        else:
            known = records.existing_ids(conn, t.leads, "lead_id", sorted(wanted))
            keep = []
            for index, row in items:
                if row["lead_id"] in known:
                    keep.append((index, row))
                else:
                    result.rejected.append(
                        Rejected(index, _unknown(str(row["lead_id"])), str(row["event_id"]))
                    )
        ingested = records.insert_events(conn, [row for _, row in keep], now)
        result.accepted = ingested.accepted
        result.duplicates = ingested.duplicates
        result.lead_ids = ingested.lead_ids
        if ingested.lead_ids:
            first = _first_event_by_lead(keep, set(ingested.accepted))
            for lead_id in ingested.lead_ids:
                records.mark_dirty(conn, [lead_id], scoring.EVENT, first.get(lead_id))
    result.rejected.sort(key=lambda r: r.index)
    _follow(service, sync, result.lead_ids)
    return result


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
        if ingested.accepted and active is not None:
            computed = scorer.compute(conn, active, [lead_id], now, leads=leads)
            mine = [s for s in computed.scores if s.lead_id == lead_id]
            peers = [s for s in computed.scores if s.lead_id != lead_id]
            scorer.apply(
                conn,
                active,
                scoring.Computed(mine, computed.seqs),
                scoring.EVENT,
                {lead_id: event_id},
            )
            if peers:
                scorer.apply(conn, active, scoring.Computed(peers, computed.seqs), scoring.ACCOUNT)
        stored = conn.execute(sa.select(t.scores).where(t.scores.c.lead_id == lead_id))
        score = stored.mappings().first()
    return result, dict(score) if score is not None else None


def _unknown(lead_id: str) -> str:
    return f"field 'lead_id': unknown lead '{lead_id}'; create it first (PUT /v1/leads/{{lead_id}})"


def _first_event_by_lead(
    items: Sequence[tuple[int, Mapping[str, Any]]], accepted: set[str]
) -> dict[str, str]:
    # The history names the newest accepted event of each lead as the cause.
    out: dict[str, str] = {}
    for _, row in items:
        if row["event_id"] in accepted:
            out[str(row["lead_id"])] = str(row["event_id"])
    return out


def upsert_leads(service: Service, rows: Sequence[Mapping[str, Any]], *, sync: bool) -> list[str]:
    """Insert or merge leads; returns the ids that were new."""
    now = service.clock()
    with service.store.write() as conn:
        before = records.upsert_leads(conn, rows, now)
        affected = list(before)
        records.mark_dirty(conn, affected, scoring.LEAD)
        # A lead that moved to another account leaves its old account's roll-up and
        # stakeholder count behind: those leads are rescored too.
        moved = {
            str(old["account_id"])
            for lead_id, old in before.items()
            if old is not None and old["account_id"] is not None
            for row in rows
            if row["lead_id"] == lead_id
            and "account_id" in row
            and row["account_id"] != old["account_id"]
        }
        if moved:
            peers = records.account_lead_ids(conn, moved)
            records.mark_dirty(conn, peers, scoring.ACCOUNT)
            affected.extend(peers)
    _follow(service, sync, affected)
    return [lead_id for lead_id, old in before.items() if old is None]


def upsert_accounts(
    service: Service, rows: Sequence[Mapping[str, Any]], *, sync: bool
) -> list[str]:
    """Insert or merge accounts and rescore their leads; returns the ids that were new."""
    now = service.clock()
    with service.store.write() as conn:
        before = records.upsert_accounts(conn, rows, now)
        affected: list[str] = []
        for account_id in before:
            leads = records.account_lead_ids(conn, [account_id])
            records.mark_dirty(conn, leads, scoring.ACCOUNT, account_id)
            affected.extend(leads)
    _follow(service, sync, affected)
    return [account_id for account_id, old in before.items() if old is None]


def erase_lead(service: Service, lead_id: str) -> dict[str, int] | None:
    """Delete a lead and all its data; its account's other leads are rescored. None if unknown."""
    with service.store.write() as conn:
        lead = records.get_lead(conn, lead_id)
        if lead is None:
            return None
        counts = records.erase_lead(conn, lead_id)
        peers: list[str] = []
        if lead["account_id"] is not None:
            peers = records.account_lead_ids(conn, [lead["account_id"]])
            records.mark_dirty(conn, peers, scoring.ACCOUNT, lead["account_id"])
    _follow(service, True, peers)
    return counts


def _follow(service: Service, sync: bool, lead_ids: Sequence[str]) -> None:
    # Single requests wait for their scores; batches leave them to the worker (< 1 s).
    if sync and lead_ids:
        service.scorer.process_dirty(lead_ids=lead_ids)
    elif lead_ids:
        service.worker.wake()
