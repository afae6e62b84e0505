"""Reports of the evaluate layer: backtest, sample, cases, channels, capacity, with plots."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ui", include_in_schema=False)
