"""The lead list and the lead page: score card, ledger, timeline with trajectory, stakeholders."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
