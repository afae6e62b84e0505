"""Every page of the dashboard, for the app to include."""

from __future__ import annotations

from fastapi import APIRouter

from leadscore.dashboard import queue, signin

ROUTERS: tuple[APIRouter, ...] = (signin.router, queue.router)
