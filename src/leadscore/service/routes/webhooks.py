"""Admin endpoints for webhooks: subscribe, list, delete, and read the delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from leadscore.service import webhooks as wh
from leadscore.service.deps import Admin, ServiceDep
from leadscore.service.inputs import Integer

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

MAX_LIMIT = 1000


class WebhookIn(BaseModel):
    """A new webhook: where to send, which topics, and optionally the signing secret."""

    # A misspelt field (say "topic") would otherwise silently subscribe to everything.
    model_config = ConfigDict(extra="forbid")

    url: str
    topics: list[str] = Field(default_factory=lambda: list(wh.TOPICS))
    secret: str | None = None


@router.post("", status_code=201)
def create_webhook(body: WebhookIn, service: ServiceDep, _: Admin) -> dict[str, Any]:
    """Subscribe a URL to topics; the answer holds the secret, which is not shown again.
    The URL must be public unless `--webhook-allow` names its host (see service/urls.py)."""
    try:
        with service.store.write() as conn:
            created = wh.create_webhook(
                conn, body.url, body.topics, body.secret, service.clock(), policy=service.url_policy
            )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    service.scorer.forget_subscriptions()
    return created


@router.get("")
def list_webhooks(service: ServiceDep, _: Admin) -> list[dict[str, Any]]:
    """Every webhook, without secrets."""
    with service.store.read() as conn:
        return wh.list_webhooks(conn)


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: Integer, service: ServiceDep, _: Admin) -> Response:
    """Delete a webhook together with its pending deliveries and delivery log."""
    with service.store.write() as conn:
        deleted = wh.delete_webhook(conn, webhook_id)
    service.scorer.forget_subscriptions()
    if not deleted:
        raise HTTPException(404, f"no webhook {webhook_id}")
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
def list_deliveries(
    webhook_id: Integer,
    service: ServiceDep,
    _: Admin,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[dict[str, Any]]:
    """A webhook's delivery log, newest first; `status` is pending, delivered or failed."""
    if status is not None and status not in wh.STATUSES:
        raise HTTPException(422, f"status: must be one of {', '.join(wh.STATUSES)}; got {status!r}")
    with service.store.read() as conn:
        if wh.get_webhook(conn, webhook_id) is None:
            raise HTTPException(404, f"no webhook {webhook_id}")
        return wh.deliveries(conn, webhook_id, limit, status)
