"""The dashboard's pages under /ui: sign-in and the sales queue, rendered on the server."""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from leadscore.dashboard import auth
from leadscore.dashboard.i18n import LANGUAGES, words
from leadscore.service import handover
from leadscore.service.deps import get_service
from leadscore.store import tables as t

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
SESSION = "ls_session"
LOGIN_CSRF = "ls_login"
LANG = "ls_lang"
QUEUE_LIMIT = 200

router = APIRouter(prefix="/ui", include_in_schema=False)
# Starlette's environment escapes everything a .html template prints
templates = Jinja2Templates(directory=HERE / "templates")


def _lang(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG)
    if asked in LANGUAGES:
        return asked
    accepted = request.headers.get("accept-language", "")
    return "de" if accepted.lower().startswith("de") else "en"


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    lang = _lang(request)
    page: HTMLResponse = templates.TemplateResponse(
        request, name, {"lang": lang, "w": words(lang), **context}, status_code=status
    )
    if request.query_params.get("lang") in LANGUAGES:
        page.set_cookie(LANG, lang, max_age=365 * 86400, samesite="lax", path="/ui")
    return page


def _signed_in(request: Request) -> tuple[auth.User, bytes, str] | None:
    service = get_service(request)
    cookie = request.cookies.get(SESSION)
    with service.store.write() as conn:  # write: the signing key is made on first use
        key = auth.secret(conn)
        user = auth.session_user(conn, key, cookie, service.clock())
    if user is None or cookie is None:
        return None
    return user, key, cookie


def _to_login(request: Request) -> RedirectResponse:
    target = quote(request.url.path)
    return RedirectResponse(f"/ui/login?next={target}", status_code=303)


@router.get("/")
def home() -> RedirectResponse:
    """The dashboard starts at the sales queue."""
    return RedirectResponse("/ui/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/queue") -> HTMLResponse:
    """The sign-in form (with a one-time token against cross-site posts)."""
    token = secrets.token_urlsafe(24)
    page = _page(request, "login.html", {"csrf": token, "next": _safe_next(next)})
    page.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/ui")
    return page


def _safe_next(target: str) -> str:
    # only pages of the dashboard: never an absolute URL an attacker could send people to
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/queue"


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/queue",
) -> Response:
    """Check the username and password; on success start a session."""
    service = get_service(request)
    w = words(_lang(request))
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, csrf):
        return _retry(request, username, next, {"form": w["expired"]}, 400)
    errors = {}
    if not username.strip():
        errors["username"] = f"{w['username']}: {w['required']}"
    if not password:
        errors["password"] = f"{w['password']}: {w['required']}"
    if errors:
        return _retry(request, username, next, errors, 422)
    with service.store.write() as conn:
        user = auth.authenticate(conn, username.strip(), password)
        key = auth.secret(conn)
    if user is None:
        return _retry(request, username, next, {"form": w["bad_login"]}, 401)
    done = RedirectResponse(_safe_next(next), status_code=303)
    cookie = auth.session_cookie(key, user, service.clock())
    age = auth.SESSION_HOURS * 3600
    done.set_cookie(SESSION, cookie, httponly=True, samesite="lax", path="/ui", max_age=age)
    done.delete_cookie(LOGIN_CSRF, path="/ui")
    return done


def _retry(
    request: Request, username: str, next: str, errors: dict[str, str], status: int
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    context = {"csrf": token, "next": _safe_next(next), "username": username, "errors": errors}
    page = _page(request, "login.html", context, status)
    page.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", path="/ui")
    return page


def _refused(request: Request, csrf: str) -> Response | None:
    """Why a posted form is not acted on (no session, or not this session's token), or None."""
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    _, key, cookie = found
    if not auth.csrf_ok(key, cookie, csrf):
        return Response("the form expired; reload the page", status_code=400)
    return None


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session."""
    refused = _refused(request, csrf)
    if refused is not None:
        return refused
    done = RedirectResponse("/ui/login", status_code=303)
    done.delete_cookie(SESSION, path="/ui")
    return done


def queue_rows(conn: sa.Connection, now: datetime) -> list[dict[str, Any]]:
    """Leads waiting for sales: an open SLA task, a hot temperature or a priority account;
    priority accounts first, then the nearest deadline, then the highest score."""
    s, tasks, leads = t.scores, t.sla_tasks, t.leads
    deadline = (
        sa.select(tasks.c.lead_id, sa.func.min(tasks.c.deadline).label("deadline"))
        .where(tasks.c.status == "open")
        .group_by(tasks.c.lead_id)
        .subquery()
    )
    query = (
        sa.select(
            s.c.lead_id,
            s.c.total,
            s.c.cell,
            s.c.temperature,
            s.c.stage,
            s.c.queue,
            s.c.priority,
            s.c.primary_interest,
            leads.c.name,
            leads.c.company,
            deadline.c.deadline,
        )
        .select_from(s.join(leads, leads.c.lead_id == s.c.lead_id))
        .outerjoin(deadline, deadline.c.lead_id == s.c.lead_id)
        .where(
            sa.or_(
                deadline.c.deadline.is_not(None), s.c.temperature == "hot", s.c.priority.is_(True)
            )
        )
        .order_by(
            s.c.priority.desc(),
            deadline.c.deadline.is_(None),
            deadline.c.deadline,
            s.c.total.desc(),
            s.c.lead_id,
        )
        .limit(QUEUE_LIMIT)
    )
    rows = []
    for r in conn.execute(query).mappings():
        row = dict(r)
        due = row["deadline"]
        row["due_minutes"] = None if due is None else int((due - now).total_seconds() // 60)
        rows.append(row)
    return rows


def countdown(minutes: int | None, w: dict[str, str]) -> str:
    """An SLA deadline as people read it: due in 3 h 20 min, overdue by 45 min."""
    if minutes is None:
        return w["no_sla"]
    left = abs(minutes)
    text = f"{left // 60} h {left % 60} min" if left >= 60 else f"{left} min"
    return f"{w['due_in']} {text}" if minutes >= 0 else f"{w['overdue']} {text}"


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, done: str | None = None) -> Response:
    """The sales queue."""
    found = _signed_in(request)
    if found is None:
        return _to_login(request)
    user, key, cookie = found
    service = get_service(request)
    w = words(_lang(request))
    with service.store.read() as conn:
        rows = queue_rows(conn, service.clock())
    for row in rows:
        row["countdown"] = countdown(row["due_minutes"], w)
    context = {
        "user": user,
        "csrf": auth.csrf_token(key, cookie),
        "rows": rows,
        "done": w["worked_done"].format(lead=done) if done else None,
        "page": "queue",
    }
    return _page(request, "queue.html", context)


@router.post("/leads/{lead_id}/worked")
def worked(request: Request, lead_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    """Sales worked the lead: its open SLA tasks are met."""
    refused = _refused(request, csrf)
    if refused is not None:
        return refused
    service = get_service(request)
    with service.store.write() as conn:
        handover.mark_worked(conn, lead_id, service.clock(), "marked worked in the dashboard")
    service.deliverer.wake()
    return RedirectResponse(f"/ui/queue?done={quote(lead_id)}", status_code=303)
