"""Models: upload drafts, preview what publishing would change, publish, roll back; jobs."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, HTTPException, Query

from leadscore.errors import ModelError
from leadscore.learn.predictive import ArtefactError
from leadscore.model.loader import ModelTooLarge, parse_model
from leadscore.service import registry
from leadscore.service.deps import Admin, ServiceDep
from leadscore.service.inputs import Integer
from leadscore.service.preview import preview as preview_changes
from leadscore.store import tables as t

router = APIRouter(prefix="/v1", tags=["models"])

YamlBody = Annotated[
    str,
    Body(
        media_type="application/yaml",
        description="The model as YAML, exactly as `leadscore check` reads it.",
    ),
]


def _model_or_404(conn: sa.Connection, model_id: int) -> dict[str, Any]:
    row = registry.get_model_row(conn, model_id)
    if row is None:
        raise HTTPException(404, f"unknown model {model_id}")
    return row


@router.post("/models", status_code=201)
def upload_model(source: YamlBody, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Store a model as a draft after validating it; errors name line and field."""
    try:
        # checked before the write lock is taken: a slow upload must not hold up ingest
        parse_model(source, "<upload>")
        with service.store.write() as conn:
            model_id = registry.add_draft(conn, source, service.clock())
            # a hybrid model's artefact must load now, not when it is published
            service.scorer.registry.load(conn, model_id)
            row = _model_or_404(conn, model_id)
    except ModelTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except (ModelError, ArtefactError) as exc:
        raise HTTPException(422, str(exc)) from exc
    row.pop("source")
    return row


@router.get("/models")
def list_models(service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Every model version, newest first; `active` is the published one."""
    with service.store.read() as conn:
        return {"active": registry.active_id(conn), "items": registry.list_models(conn)}


@router.get("/models/{model_id}")
def get_model(model_id: Integer, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """One model version with its YAML source."""
    with service.store.read() as conn:
        return _model_or_404(conn, model_id)


@router.get("/models/{model_id}/preview")
def preview(
    model_id: Integer,
    service: ServiceDep,
    _: Admin,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> dict[str, Any]:
    """What publishing would change: how many and which leads change temperature or stage.

    Every lead is scored with the draft as of now and compared with its current score.
    """
    with service.store.read() as conn:
        _model_or_404(conn, model_id)
        draft = service.scorer.registry.load(conn, model_id)
    return preview_changes(service.scorer, draft, service.clock(), limit).to_json()


@router.post("/models/{model_id}/publish", status_code=202)
def publish(model_id: Integer, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Publish a version (a draft, or an earlier one to roll back); every lead is rescored
    in a background job whose progress is at /v1/jobs/{id}."""
    with service.store.read() as conn:
        _model_or_404(conn, model_id)
    job_id = service.jobs.publish(model_id)
    return {"model_id": model_id, "job_id": job_id}


@router.post("/models/rollback", status_code=202)
def rollback(service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Publish again the version that was live before the current one."""
    with service.store.read() as conn:
        previous = registry.previous_published(conn)
    if previous is None:
        raise HTTPException(409, "no earlier published model to roll back to")
    job_id = service.jobs.publish(previous)
    return {"model_id": previous, "job_id": job_id}


@router.get("/jobs/{job_id}")
def get_job(job_id: Integer, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """A background job with its progress (done of total leads)."""
    with service.store.read() as conn:
        row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise HTTPException(404, f"unknown job {job_id}")
    job = dict(row)
    job["progress"] = round(job["done"] / job["total"], 4) if job["total"] else None
    return job


@router.get("/jobs")
def list_jobs(
    service: ServiceDep, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> dict[str, Any]:
    """Recent jobs, newest first."""
    with service.store.read() as conn:
        rows = conn.execute(sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit)).mappings()
        return {"items": [dict(r) for r in rows]}
