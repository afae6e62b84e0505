"""Settings (admins only): API keys shown once, webhooks with their delivery log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
