"""Signing in and out of the dashboard (double-submit CSRF on the sign-in form, throttled)."""

from __future__ import annotations

import secrets
from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard import auth
from leadscore.dashboard.web import (
    SESSION,
    client_of,
    delete_cookie,
    poster,
    render,
    service_of,
    set_cookie,
    set_session,
    signed_out,
    throttle_of,
    wait_minutes,
    words_of,
)

LOGIN_CSRF: Final = "ls_login"

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/")
def home() -> RedirectResponse:
    """The dashboard starts at the sales queue."""
    return RedirectResponse("/ui/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/queue") -> HTMLResponse:
    """The sign-in form (with a one-time token against cross-site posts)."""
    return _form(request, next, "", {}, 200)


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
    service = service_of(request)
    w = words_of(request)
    expected = request.cookies.get(LOGIN_CSRF)
    if not expected or not secrets.compare_digest(expected, csrf):
        return _form(request, next, username, {"form": w["expired"]}, 400)
    errors = {}
    if not username.strip():
        errors["username"] = f"{w['username']}: {w['required']}"
    if not password:
        errors["password"] = f"{w['password']}: {w['required']}"
    if errors:
        return _form(request, next, username, errors, 422)
    name = username.strip()
    throttle = throttle_of(request)
    client = client_of(request)
    now = service.clock()
    wait = throttle.wait(name, client, now)
    if wait:
        message = w["throttled"].format(minutes=wait_minutes(wait))
        return _form(request, next, username, {"form": message}, 429)
    with service.store.write() as conn:
        user = auth.authenticate(conn, name, password)
        cookie = None
        if user is not None:
            key = auth.secret(conn)
            # a browser signing in again (as someone else, say) leaves no session behind
            auth.end_session(conn, key, request.cookies.get(SESSION))
            cookie = auth.start_session(conn, key, user, now)
    if cookie is None:
        throttle.failed(name, client, now)
        return _form(request, next, username, {"form": w["bad_login"]}, 401)
    throttle.succeeded(name, client, now)
    done = RedirectResponse(_safe_next(next), status_code=303)
    set_session(request, done, cookie)
    delete_cookie(request, done, LOGIN_CSRF)
    return done


def _form(
    request: Request, next: str, username: str, errors: dict[str, str], status: int
) -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    context = {
        "csrf": token,
        "next": _safe_next(next),
        "username": username,
        "errors": errors,
        "page": "login",
    }
    page = render(request, "login.html", context, status=status)
    set_cookie(request, page, LOGIN_CSRF, token, samesite="strict")
    return page


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End this session for good: a copy of its cookie no longer signs anyone in."""
    session = poster(request, csrf)
    if isinstance(session, Response):
        return session
    with service_of(request).store.write() as conn:
        auth.end_session(conn, session.key, session.cookie)
    return signed_out(request)
