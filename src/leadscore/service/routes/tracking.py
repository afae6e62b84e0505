"""Segment-compatible tracking endpoints: existing Segment SDKs feed leadscore unchanged.

Point an SDK's host at the service and use a leadscore key with the tracking (or admin) scope
as the write key: SDKs send it as `Authorization: Basic base64("<key>:")`. Like Segment, the
answer is 200 whenever the request could be read, saying per message what was taken; invalid
JSON is a 400, bodies too large (also once un-gzipped) a 413, too deep or with overlong
texts a 422 (see `leadscore.service.bodies`). The mapping of messages to
leads, accounts and events is in `leadscore.service.segment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from leadscore.service import bodies, ingest, permits, scoring, segment
from leadscore.service.deps import ServiceDep, Tracking
from leadscore.service.keys import ApiKey
from leadscore.store import records
from leadscore.store import tables as t

if TYPE_CHECKING:
    from leadscore.service.app import Service

router = APIRouter(prefix="/v1", tags=["tracking"])

Report = dict[str, Any]


# -- reading the body -----------------------------------------------------------------------------


async def json_body(request: Request) -> Any:
    """The request body as JSON (un-gzipped, bounded and parsed by `bodies.BodyGuard`)."""
    parsed: bodies.Parsed | None = request.scope.get(bodies.PARSED)
    if parsed is None:  # no object or list: a scalar, empty or no JSON at all
        data = await request.body()
        try:
            parsed = await run_in_threadpool(bodies.parse_json, data)
        except bodies.BodyError as exc:
            raise HTTPException(exc.status, exc.detail) from None
        except ValueError as exc:
            raise HTTPException(400, f"invalid JSON: {exc}") from None
    if parsed.problem is not None:
        # NaN, infinity and overlong numbers are no JSON, and the database refuses them.
        raise HTTPException(400, f"invalid JSON: {parsed.problem}")
    return parsed.value


Payload = Annotated[Any, Depends(json_body)]


# -- merging identities ---------------------------------------------------------------------------

# A lead dropped after a merge takes its scores with it; its webhook deliveries stay, as they
# are the record of what subscribers were told.
_DROPPED_WITH_LEAD = (
    t.scores,
    t.score_history,
    t.transitions,
    t.sla_tasks,
    t.dirty_leads,
    t.leads,
)


def _is_bare(conn: sa.Connection, lead: dict[str, Any]) -> bool:
    # Bare: nothing but its id, as `ensure_leads` creates it for an anonymous visitor.
    if any(lead[name] is not None for name in records.LEAD_FIELDS if name != "lead_id"):
        return False
    if lead["attributes"]:
        return False
    outcome = conn.execute(
        sa.select(t.outcomes.c.id).where(t.outcomes.c.lead_id == lead["lead_id"]).limit(1)
    ).first()
    return outcome is None


def merge_leads(tx: ingest.Transaction, merges: Sequence[tuple[str, str]]) -> None:
    """Move the events of each first id to the second, in order, and queue both leads.

    The first lead is dropped if nothing else is known about it (no fields, attributes or
    outcomes), else kept without its events.
    """
    conn = tx.conn
    emptied: list[str] = []  # kept leads whose events left
    gained: list[str] = []
    for source, target in merges:
        if source == target:
            continue
        records.ensure_leads(conn, [target], tx.now)
        moved = conn.execute(
            t.events.update().where(t.events.c.lead_id == source).values(lead_id=target)
        ).rowcount
        lead = records.get_lead(conn, source)
        if lead is not None or moved:
            # what stays under the first id is the person's: GDPR export and erasure follow it
            records.record_merge(conn, source, target, tx.now)
        if lead is not None and _is_bare(conn, lead):
            for table in _DROPPED_WITH_LEAD:
                conn.execute(table.delete().where(table.c.lead_id == source))
        elif lead is not None and moved:
            emptied.append(source)
        if moved:
            gained.append(target)
    # A score that saw fewer events normally never replaces one that saw more; after a
    # merge it must, or the kept lead would keep the points of events it no longer has.
    tx.queue(emptied, scoring.LEAD, events_moved=True)
    tx.queue(gained, scoring.LEAD)


# -- processing -----------------------------------------------------------------------------------


def process(
    service: Service,
    messages: Sequence[Any],
    *,
    kind: str | None = None,
    sent_at: object = None,
    context: object = None,
    sync: bool,
    restricted: bool = True,
) -> Report:
    """Take messages in order: accounts, leads and merges first, then all events in one go.

    With `restricted` (a tracking key without admin scope), messages that would change what
    such a key may not change are rejected (see `leadscore.service.permits`).
    """
    received = service.clock()
    taken: list[tuple[int, segment.Mapped]] = []
    rejected: list[ingest.Rejected] = []
    ids: dict[int, str | None] = {}
    for index, raw in enumerate(messages):
        message = segment.with_batch_context(raw, context)
        ids[index] = segment.message_id(raw)
        try:
            mapped = segment.map_message(message, received=received, kind=kind, sent_at=sent_at)
        except segment.MappingError as exc:
            rejected.append(ingest.Rejected(index, str(exc), ids[index]))
            continue
        taken.append((index, mapped))
    duplicates: list[str] = []
    only_events = all(not (m.leads or m.accounts or m.merges) for _, m in taken)
    events = [(i, row) for i, m in taken for row in m.events]
    if sync and len(events) == 1 and only_events:
        # One event (/v1/track, /v1/page): stored and scored in one transaction, as
        # POST /v1/events does. Events of users not yet known create bare leads: SDKs
        # send events before identify.
        result, _ = ingest.ingest_one(service, events[0][1], create_leads=True)
        duplicates = result.duplicates
        rejected.extend(result.rejected)
    elif taken:
        # Everything a request carries commits together or not at all.
        with ingest.transaction(service, sync=sync) as tx:
            if restricted and not only_events:
                taken, refused = permits.screen(tx.conn, taken)
                rejected.extend(ingest.Rejected(i, why, ids[i]) for i, why in refused)
            accounts = [row for _, m in taken for row in m.accounts]
            leads = [row for _, m in taken for row in m.leads]
            merges = [pair for _, m in taken for pair in m.merges]
            # An anonymous id merged anywhere in this batch is the user already: its events of
            # this batch go straight to the user (the stored ones move in `merge_leads`).
            final = segment.resolve(merges)
            events = [
                (i, {**row, "lead_id": final.get(row["lead_id"], row["lead_id"])})
                for i, m in taken
                for row in m.events
            ]
            if accounts:
                tx.upsert_accounts(accounts)
            if leads:
                tx.upsert_leads(leads)
            if merges:
                merge_leads(tx, merges)
            if events:
                result = tx.add_events(events, create_leads=True)
                duplicates = result.duplicates
                rejected.extend(result.rejected)
    rejected.sort(key=lambda r: r.index)
    return {
        # As Segment: the request was read; what happened to each message follows.
        "success": True,
        "accepted": len(messages) - len(rejected) - len(duplicates),
        "duplicates": duplicates,
        "rejected": [
            {"index": r.index, "message_id": r.event_id, "reason": r.reason} for r in rejected
        ],
    }


def _restricted(key: ApiKey) -> bool:
    # Tracking keys are held by browsers: they fill in, never rewrite (service.permits).
    return not key.allows("admin")


def _single(payload: Any) -> Any:
    if not isinstance(payload, dict):
        raise HTTPException(422, "field 'body': a message must be a JSON object")
    return payload


# -- endpoints ------------------------------------------------------------------------------------
# The key is checked before the body is read (parameters resolve in order).


@router.post("/identify")
def identify(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Create or update a lead from its traits; with userId and anonymousId, merge the two."""
    return process(
        service, [_single(payload)], kind="identify", sync=True, restricted=_restricted(key)
    )


@router.post("/track")
def track(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Store one event (`event` in snake_case as its type); the score is current on return."""
    return process(
        service, [_single(payload)], kind="track", sync=True, restricted=_restricted(key)
    )


@router.post("/page")
def page(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Store one `page_view` event; the score is current on return."""
    return process(service, [_single(payload)], kind="page", sync=True, restricted=_restricted(key))


@router.post("/screen")
def screen(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Store one `screen_view` event; the score is current on return."""
    return process(
        service, [_single(payload)], kind="screen", sync=True, restricted=_restricted(key)
    )


@router.post("/group")
def group(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Create or update an account from its traits and make it the lead's account."""
    return process(
        service, [_single(payload)], kind="group", sync=True, restricted=_restricted(key)
    )


@router.post("/alias")
def alias(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Merge `previousId` into `userId`: its events move to the user."""
    return process(
        service, [_single(payload)], kind="alias", sync=True, restricted=_restricted(key)
    )


@router.post("/batch")
def batch(key: Tracking, payload: Payload, service: ServiceDep) -> Report:
    """Take many messages in order (what SDKs send); scores follow within a second."""
    if not isinstance(payload, dict):
        raise HTTPException(422, "field 'body': expected a JSON object with a 'batch' list")
    items = payload.get("batch")
    if not isinstance(items, list):
        raise HTTPException(422, "field 'batch': required, a list of messages")
    limit = service.settings.max_batch
    if len(items) > limit:
        raise HTTPException(
            422, f"field 'batch': {len(items)} messages in one batch; at most {limit}"
        )
    return process(
        service,
        items,
        sent_at=payload.get("sentAt"),
        context=payload.get("context"),
        sync=False,
        restricted=_restricted(key),
    )
