"""The FastAPI application behind `leadscore serve`."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadscore.errors import LeadscoreError
from leadscore.service import registry, urls
from leadscore.service.bodies import BodyGuard
from leadscore.service.clock import Clock, utc_now
from leadscore.service.preview import Previews
from leadscore.service.scoring import Scorer
from leadscore.service.webhooks import Deliverer
from leadscore.service.worker import Jobs, Scheduler, Worker
from leadscore.store.database import Store, open_store

log = logging.getLogger("leadscore.service")


@dataclass(frozen=True)
class Settings:
    """How the service runs; every field has a command-line option in `leadscore serve`."""

    database_url: str | None = None
    rescore_interval: float = 300.0  # seconds between scheduled rescoring; 0 = off
    max_request_bytes: int = 5 * 1024 * 1024
    max_batch: int = 10_000
    webhook_base_delay: float = 10.0
    webhook_max_attempts: int = 8
    # private hosts the server may call (self-hosted receivers): see service/urls.py
    webhook_allow: tuple[str, ...] = ()
    background: bool = True  # run the worker, jobs, scheduler and webhook threads
    artefacts: Path | None = None  # where hybrid models' predictive artefacts are (default: cwd)


class Service:
    """Everything a running service holds: store, clock, scorer and background workers."""

    def __init__(self, settings: Settings, clock: Clock = utc_now, store: Store | None = None):
        self.settings = settings
        self.clock = clock
        self.store = store or open_store(settings.database_url)
        self.scorer = Scorer(self.store, clock, registry.Registry(settings.artefacts))
        self.worker = Worker(self.scorer)
        self.jobs = Jobs(self.scorer, clock)
        self.previews = Previews(self.scorer)  # the dashboard's, run on demand
        self.scheduler = Scheduler(self.jobs, settings.rescore_interval, self.active_model_id)
        self.url_policy = urls.Policy(settings.webhook_allow)  # every URL the server calls
        self.deliverer = Deliverer(
            self.store,
            clock,
            policy=self.url_policy,
            base_delay=settings.webhook_base_delay,
            max_attempts=settings.webhook_max_attempts,
        )
        self.started = False

    def active_model_id(self) -> int | None:
        """Id of the published model."""
        with self.store.read() as conn:
            return registry.active_id(conn)

    def publish_file(self, path: Path, *, republish: bool = False) -> registry.StartModel:
        """Publish a model file as the first model: only when none is live, unless `republish`.

        See `registry.start_model`: a different live model stays live without `republish`.
        """
        source = path.read_text(encoding="utf-8")
        with self.store.write() as conn:
            start = registry.start_model(conn, source, str(path), republish=republish)
            if start.action != "publish":
                return start
            model_id = registry.add_draft(conn, source, self.clock(), str(path))
            # a hybrid model's artefact must load before it goes live (the draft rolls back)
            self.scorer.registry.load(conn, model_id)
        return dataclasses.replace(start, job_id=self.jobs.publish(model_id))

    def check_live_model(self) -> None:
        """Refuse to serve when the published model no longer loads (a stricter loader)."""
        with self.store.read() as conn:
            live = registry.active_id(conn)
            if live is None:
                return
            try:
                self.scorer.registry.load(conn, live)
            except LeadscoreError as exc:
                # Serving anyway would fail every score; say which model and how to go on.
                raise LeadscoreError(
                    f"the published model {live} no longer loads: {exc}\n"
                    "fix it and publish it with `leadscore serve --model FILE --republish`"
                ) from exc

    def start(self) -> None:
        """Start the background threads."""
        if self.started or not self.settings.background:
            return
        self.worker.start()
        self.jobs.start()
        self.scheduler.start()
        self.deliverer.start()
        self.started = True

    def stop(self) -> None:
        """Stop the background threads and close the store."""
        if self.started:
            self.scheduler.stop()
            self.jobs.stop()
            self.worker.stop()
            self.started = False
        self.previews.stop()  # they run whenever asked, with or without the other threads
        # also closes its HTTP client when deliveries were sent without the thread
        self.deliverer.stop()
        self.store.close()


class BodyLimit:
    """Refuse request bodies over the limit with 413 before reading them whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # PostgreSQL text cannot hold NUL; refuse it in the URL before it reaches a query.
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            response = JSONResponse({"detail": "NUL characters are not allowed in URLs"}, 400)
            await response(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0
        refused = False
        started = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True
                    raise _TooLarge
            return message

        async def guarded(message: Message) -> None:
            # FastAPI turns any error while reading the body into its own 400 response;
            # once the limit is exceeded, that response is dropped for the 413 below.
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not refused:
                raise
        if refused and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.limit} bytes; split it into batches"},
            status_code=413,
        )
        await response({"type": "http"}, _empty_receive, send)


class _TooLarge(Exception):
    pass


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}


class Problem(BaseModel):
    """One invalid part of a request: where it is, which field, and what was expected."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    in_: Literal["body", "query", "path", "header", "cookie"] = Field(alias="in")
    field: str
    message: str


class Error(BaseModel):
    """The one body of every error answer: what went wrong in a sentence (and, for an invalid
    request, each problem by place and field)."""

    model_config = ConfigDict(extra="forbid")

    detail: str
    errors: list[Problem] = Field(
        default_factory=list,
        description="When the request does not match its schema: one entry per problem.",
    )


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Declared on every API operation, so clients (and the fuzzer) can rely on the shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": Error,
        "description": (
            "Refused; `detail` says why: 400 unreadable (invalid JSON or gzip, NUL in the URL), "
            "401 no or unknown API key, 403 the key lacks the scope, 404 unknown id, 409 not "
            "possible in the current state, 413 body too large, 415 unsupported encoding."
        ),
    },
    422: {
        "model": Error,
        "description": "Invalid request: `errors` names each field and what was expected.",
    },
}


def _exact_integer_bounds(node: Any) -> None:
    # FastAPI's OpenAPI model holds bounds as floats, which turn 2^63 - 1 into 2^63; every
    # integer the API takes is 64-bit (service.inputs), so the exact bounds are put back.
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key, pick in (("maximum", min), ("minimum", max)):
                if isinstance(node.get(key), float):
                    node[key] = pick(int(node[key]), INT64_MAX if pick is min else INT64_MIN)
        for value in node.values():
            _exact_integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_integer_bounds(value)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not isinstance(exc.detail, str):  # keep the one shape whatever a route raised
        exc = StarletteHTTPException(exc.status_code, str(exc.detail), exc.headers)
    return await http_exception_handler(request, exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (uvicorn logs it again); the client gets the one shape.
    log.error("error on %s %s", request.method, request.url.path, exc_info=exc)
    from leadscore.dashboard.security import headers_for

    # Starlette answers this outside every middleware, so the security headers come from here.
    return JSONResponse(
        {"detail": "internal error; the server log has the details"},
        500,
        headers=dict(headers_for(request.url.path)),
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
            where, loc = loc[0], loc[1:]
        else:
            where = "body"
        message = e["msg"]
        if e["type"] == "json_invalid":
            # The location is the character position, not a field.
            position = f" at character {loc[0]}" if loc else ""
            reason = (e.get("ctx") or {}).get("error")
            message = f"{message}{position}" + (f": {reason}" if reason else "")
            loc = []
        name = ".".join(loc) or where
        problems.append({"in": where, "field": name, "message": message})
    summary = "; ".join(f"{p['in']} field '{p['field']}': {p['message']}" for p in problems)
    return JSONResponse({"detail": summary, "errors": problems}, status_code=422)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    model: Path | None = None,
    service: Service | None = None,
) -> FastAPI:
    """The service as an ASGI app; background threads run while the app is being served."""
    from fastapi.staticfiles import StaticFiles

    from leadscore.dashboard import routes as dashboard
    from leadscore.dashboard.security import SecurityHeaders
    from leadscore.dashboard.web import STATIC
    from leadscore.service.routes import (
        evaluate,
        events,
        leads,
        models,
        operations,
        tracking,
        webhooks,
    )

    settings = settings or Settings()
    svc = service or Service(settings, clock)
    if model is not None:
        svc.publish_file(model)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        svc.start()
        try:
            yield
        finally:
            svc.stop()

    app = FastAPI(
        title="leadscore",
        summary="Lead scores kept current from tracking events, explained point by point.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = svc

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _exact_integer_bounds(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    for module in (leads, events, tracking, models, operations, webhooks, evaluate):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(operations.health, responses=ERROR_RESPONSES)
    for page in dashboard.ROUTERS:
        app.include_router(page)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    # inside the byte limit: un-gzips and bounds JSON depth and texts for every endpoint
    app.add_middleware(BodyGuard, limit=settings.max_request_bytes)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    # outermost, so that every answer carries them, the limits' refusals too
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeaders, docs=docs)
    return app
