"""Every page of the dashboard, for the app to include."""

from __future__ import annotations

from fastapi import APIRouter

from leadscore.dashboard import (
    accounts,
    leads,
    model,
    profile,
    queue,
    reports,
    settings,
    signin,
)

ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    queue.router,
    leads.router,
    accounts.router,
    model.router,
    reports.router,
    settings.router,
    profile.router,
)
