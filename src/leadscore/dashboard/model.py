"""The model page: the active YAML, drafts with validation, diff preview, publish, rollback."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
