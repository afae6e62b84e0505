"""Reports from the evaluate layer: backtest, sample, cases, channels, capacity, with their plots."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
