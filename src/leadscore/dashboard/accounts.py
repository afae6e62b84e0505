"""Accounts: roll-up scores, engaged stakeholders, the priority flag."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
