"""Operations: API keys, SLA tasks, and a rescoring run on demand."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from pydantic import Field

from leadscore.service import handover, keys, registry
from leadscore.service.deps import Admin, ServiceDep
from leadscore.service.inputs import Body, Id, Integer, Offset
from leadscore.store import tables as t

router = APIRouter(prefix="/v1", tags=["operations"])


class KeyIn(Body):
    """A new API key: a name to recognise it by and its scopes."""

    name: Id
    scopes: list[Literal["tracking", "admin"]] = Field(min_length=1)


@router.post("/keys", status_code=201)
def create_key(body: KeyIn, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Create a key; the token is in this response only (the store keeps its hash)."""
    with service.store.write() as conn:
        token = keys.create_key(conn, body.name, list(body.scopes), service.clock())
        created = keys.verify(conn, token)
    assert created is not None
    return {
        "id": created.id,
        "name": body.name,
        "scopes": sorted(set(body.scopes)),
        "token": token,
    }


@router.get("/keys")
def list_keys(service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Every key (without secrets)."""
    with service.store.read() as conn:
        return {"items": keys.list_keys(conn)}


@router.delete("/keys/{key_id}")
def revoke_key(key_id: Integer, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Revoke a key; requests with it fail with 401 from now on."""
    with service.store.write() as conn:
        if not keys.revoke(conn, key_id, service.clock()):
            raise HTTPException(404, f"no active key {key_id}")
    return {"id": key_id, "revoked": True}


@router.get("/sla")
def sla_tasks(
    service: ServiceDep,
    _: Admin,
    status: Literal["open", "met", "breached", "cancelled"] | None = None,
    lead_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """SLA tasks (S19), soonest deadline first."""
    with service.store.read() as conn:
        items = handover.list_tasks(
            conn, status=status, lead_id=lead_id, limit=limit, offset=offset
        )
    return {"items": items}


@router.post("/rescore", status_code=202)
def rescore(service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Rescore every lead as of now with the published model (what the schedule does)."""
    job_id = service.scheduler.tick()
    if job_id is None:
        raise HTTPException(409, "no model is published yet")
    return {"job_id": job_id}


@router.get("/status")
def status(service: ServiceDep, _: Admin) -> dict[str, Any]:
    """What the service holds and how far behind it is: counts, queued rescoring, jobs."""
    counts: dict[str, int] = {}
    with service.store.read() as conn:
        for table in (t.leads, t.accounts, t.events, t.scores, t.dirty_leads):
            counts[table.name] = conn.execute(
                sa.select(sa.func.count()).select_from(table)
            ).scalar_one()
        running = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.jobs)
            .where(t.jobs.c.status.in_(("queued", "running")))
        ).scalar_one()
        active = registry.active_id(conn)
    unscored = dict(service.scorer.unscored)
    return {
        "active_model": active,
        "counts": {k: v for k, v in counts.items() if k != "dirty_leads"},
        "queued_leads": counts["dirty_leads"],
        "jobs_pending": running,
        "worker_errors": service.worker.errors,
        # leads the engine could not score (they keep their last score), with the reason
        "unscored_leads": len(unscored),
        "unscored": [{"lead_id": k, "reason": v} for k, v in list(unscored.items())[:20]],
    }


health = APIRouter(tags=["operations"])


@health.get("/healthz")
def healthz(service: ServiceDep) -> dict[str, str]:
    """Liveness and store reachability, without a key (for load balancers)."""
    with service.store.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
