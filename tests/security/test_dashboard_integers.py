"""Dashboard URLs with integers beyond 64 bits (ids, pages, cursors) never give a 500.

Every dashboard route with an integer path or query parameter is found from the app itself, so
a new page is covered without being listed; each is requested signed in, by GET and (where the
route takes it) POST with a valid CSRF token, with 2^63 and 2^64 + 1 in that parameter.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from leadscore.dashboard import routes as dashboard
from leadscore.dashboard.auth import create_user
from leadscore.service.app import Settings
from servicekit import ManualClock, Running, running_service

USER, PASSWORD = "maria", "correct horse battery"
HUGE = (2**63, 2**64 + 1)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A real service with one dashboard administrator."""
    db = tmp_path_factory.mktemp("ui-ints") / "leadscore.db"
    settings = Settings(database_url=f"sqlite:///{db}", rescore_interval=0)
    with running_service(settings, ManualClock()) as running:
        with running.service.store.write() as conn:
            create_user(conn, USER, PASSWORD, admin=True, now=running.clock())
        yield running


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    return int in typing.get_args(annotation) and str not in typing.get_args(annotation)


def _integer_routes() -> Iterator[tuple[str, str, str, str]]:
    """(method, path template, parameter, where) for each integer parameter of a /ui route."""
    for route in [r for router in dashboard.ROUTERS for r in router.routes]:
        if not isinstance(route, APIRoute) or not route.path.startswith("/ui"):
            continue
        params = [(p, "path") for p in route.dependant.path_params]
        params += [(p, "query") for p in route.dependant.query_params]
        for param, where in params:
            if _is_int(param.field_info.annotation):
                for method in sorted(route.methods):
                    yield method, route.path, param.name, where


def _url(template: str, name: str, where: str, value: int) -> str:
    path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: str(value) if m[1] == name else "1", template)
    return f"{path}?{name}={value}" if where == "query" else path


def test_integers_beyond_64_bits_in_dashboard_urls_are_no_500(running: Running) -> None:
    """Each integer of each dashboard route, too large for the store: an answer, not a crash."""
    with httpx.Client(base_url=running.base_url, timeout=30) as client:
        _probe(running, client)


def _probe(running: Running, client: httpx.Client) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert token is not None
    data = {"username": USER, "password": PASSWORD, "csrf": token.group(1)}
    assert client.post("/ui/login", data=data).status_code == 303
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/queue").text)
    assert csrf is not None
    routes = list(_integer_routes())
    assert len(routes) >= 10, routes  # model versions, jobs, reports, keys, webhooks, pages
    crashed = []
    for method, template, name, where in routes:
        for value in HUGE:
            url = _url(template, name, where, value)
            form = {"csrf": csrf.group(1)} if method == "POST" else None
            try:
                r = client.request(method, url, data=form)
            except httpx.TransportError as exc:  # uvicorn drops the connection after a crash
                crashed.append(f"{method} {url}: {exc!r}")
                continue
            if r.status_code >= 500:
                crashed.append(f"{method} {url}: {r.status_code}")
    assert not crashed, "\n".join(crashed)
