"""Events: one at a time (scored before the response) or in batches (scored within a second)."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from leadscore.service import ingest
from leadscore.service.deps import Admin, ServiceDep, Tracking
from leadscore.service.inputs import EventIn, Offset, describe, fields_set
from leadscore.store import tables as t

router = APIRouter(prefix="/v1", tags=["events"])

_EVENT = TypeAdapter(EventIn)


class EventsBody(BaseModel):
    """A batch of events; each is checked on its own, so one bad event rejects only itself."""

    model_config = ConfigDict(extra="forbid")

    events: list[dict[str, Any]] = Field(min_length=1)


def _report(result: ingest.EventsResult) -> dict[str, Any]:
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [
            {"index": r.index, "event_id": r.event_id, "reason": r.reason} for r in result.rejected
        ],
    }


@router.post("/events")
def post_event(event: EventIn, service: ServiceDep, key: Tracking) -> dict[str, Any]:
    """Take one event; the lead's score is current when this returns (and is included for
    admin keys: a tracking key, held by browsers, reads no score)."""
    result, score = ingest.ingest_one(service, fields_set(event), create_leads=False)
    if result.rejected:
        raise HTTPException(422, result.rejected[0].reason)
    if not key.allows("admin"):
        return _report(result)
    return {**_report(result), "score": score}


@router.post("/events/batch")
def post_events(body: EventsBody, service: ServiceDep, _: Tracking) -> dict[str, Any]:
    """Take a batch in one transaction; says what was accepted, duplicate or rejected and why."""
    limit = service.settings.max_batch
    if len(body.events) > limit:
        raise HTTPException(
            422, f"field 'events': {len(body.events)} events in one batch; at most {limit}"
        )
    valid: list[tuple[int, dict[str, Any]]] = []
    rejected: list[ingest.Rejected] = []
    for index, raw in enumerate(body.events):
        try:
            valid.append((index, fields_set(_EVENT.validate_python(raw))))
        except ValidationError as exc:
            event_id = raw.get("event_id")
            rejected.append(
                ingest.Rejected(
                    index, describe(exc), event_id if isinstance(event_id, str) else None
                )
            )
    result = ingest.ingest_events(service, valid, create_leads=False, rejected=rejected, sync=False)
    return _report(result)


@router.get("/events")
def list_events(
    lead_id: str,
    service: ServiceDep,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """A lead's events, newest first."""
    e = t.events
    with service.store.read() as conn:
        rows = conn.execute(
            sa.select(e)
            .where(e.c.lead_id == lead_id)
            .order_by(e.c.ts.desc(), e.c.seq.desc())
            .limit(limit)
            .offset(offset)
        ).mappings()
        return {"lead_id": lead_id, "items": [dict(r) for r in rows]}
