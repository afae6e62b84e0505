"""What every dashboard page shares: templates, language, the signed-in user, form checks.

Each page module has its own router and its own words; `render` merges them with the common
words. Pages read the store once per request: a page view never writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import quote, unquote_to_bytes

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from leadscore.dashboard import auth
from leadscore.dashboard.i18n import LANGUAGES, words
from leadscore.service.deps import get_service

if TYPE_CHECKING:
    from leadscore.service.app import Service

HERE: Final = Path(__file__).resolve().parent
STATIC: Final = HERE / "static"
SESSION: Final = "ls_session"
LANG: Final = "ls_lang"

# Starlette's environment escapes everything a .html template prints
templates = Jinja2Templates(directory=HERE / "templates")


def segment(value: object) -> str:
    """A value as one segment of a URL path: every "/", "?", "#", "%" and ".." encoded."""
    return quote(str(value), safe="")


# Jinja's own `urlencode` keeps "/": an id like "../../x" would climb out of its page's URL
templates.env.filters["segment"] = segment

PageWords = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class Session:
    """The signed-in user of a request, with what their forms must carry."""

    user: auth.User
    key: bytes
    cookie: str  # the session's cookie as the browser sent it

    @property
    def csrf(self) -> str:
        """The token this session's forms carry."""
        return auth.csrf_token(self.key, self.cookie)


def service_of(request: Request) -> Service:
    """The running service."""
    return get_service(request)


def lang_of(request: Request) -> str:
    """The language asked for (?lang, then the cookie, then the browser's), en or de."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG)
    if asked in LANGUAGES:
        return asked
    accepted = request.headers.get("accept-language", "")
    return "de" if accepted.lower().startswith("de") else "en"


def words_of(request: Request, page: PageWords | None = None) -> dict[str, str]:
    """The common words and a page's own, in the request's language."""
    lang = lang_of(request)
    merged = dict(words(lang))
    if page is not None:
        merged.update(page.get(lang) or page["en"])
    return merged


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    page_words: PageWords | None = None,
    session: Session | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page in the request's language (its choice kept in a cookie when asked by ?lang)."""
    lang = lang_of(request)
    base: dict[str, Any] = {"lang": lang, "w": words_of(request, page_words)}
    if session is not None:
        base.update(user=session.user, csrf=session.csrf)
    page: HTMLResponse = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status
    )
    if request.query_params.get("lang") in LANGUAGES:
        set_cookie(request, page, LANG, lang, max_age=365 * 86400)
    return page


def signed_in(request: Request) -> Session | None:
    """The session of the request, if its cookie is genuine and current."""
    cookie = request.cookies.get(SESSION)
    if not cookie:
        return None
    service = service_of(request)
    with service.store.read() as conn:
        key = auth.stored_secret(conn)
        user = None if key is None else auth.session_user(conn, key, cookie, service.clock())
    if user is None or key is None:
        return None
    return Session(user, key, cookie)


def throttle_of(request: Request) -> auth.Throttle:
    """The failed-password counts of this service process (sign-in and password change)."""
    state = request.app.state
    if not hasattr(state, "login_throttle"):
        state.login_throttle = auth.Throttle()
    throttle: auth.Throttle = state.login_throttle
    return throttle


def wait_minutes(seconds: int) -> int:
    """A throttle's wait as the whole minutes a form tells (at least one)."""
    return max(1, -(-seconds // 60))


def secure(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy whose
    X-Forwarded-Proto is trusted: `leadscore serve --forwarded-allow-ips`)."""
    return request.url.scheme == "https"


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """A dashboard cookie: only for /ui, never readable by scripts, Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/ui",
        secure=secure(request),
        httponly=True,
        samesite=samesite,
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    """Remove a dashboard cookie from the browser."""
    response.delete_cookie(name, path="/ui", secure=secure(request), httponly=True)


def signed_out(request: Request) -> RedirectResponse:
    """The answer that removes this browser's session cookie and shows the sign-in form."""
    done = RedirectResponse("/ui/login", status_code=303)
    delete_cookie(request, done, SESSION)
    return done


def client_of(request: Request) -> str:
    """The address a request came from, as the throttle counts it: the peer of the
    connection, or the client a trusted proxy names (`--forwarded-allow-ips`)."""
    return request.client.host if request.client else "?"


def set_session(request: Request, response: Response, cookie: str) -> None:
    """Give the browser a session cookie (only the dashboard's paths, never to scripts)."""
    set_cookie(request, response, SESSION, cookie, max_age=auth.SESSION_HOURS * 3600)


def one_segment(request: Request, value: str, *, from_end: int = 0) -> bool:
    """Whether a path parameter came as one segment of the URL as sent, `from_end` segments
    before its end: an id with "/" in it must arrive encoded ("%2F"), never as a path of its
    own that could name another page."""
    raw: bytes | None = request.scope.get("raw_path")
    if not raw:
        return "/" not in value
    parts = raw.split(b"/")
    index = len(parts) - 1 - from_end
    if index < 1:
        return False
    return unquote_to_bytes(parts[index]).decode("utf-8", "replace") == value


def to_login(request: Request) -> RedirectResponse:
    """Send the browser to sign in, and back here afterwards."""
    raw: bytes | None = request.scope.get("raw_path")
    # the path as sent, its ids still encoded, as one query value
    here = quote(raw or quote(request.url.path), safe="/")
    return RedirectResponse(f"/ui/login?next={here}", status_code=303)


def forbidden(request: Request, session: Session) -> HTMLResponse:
    """The page for a signed-in user who may not do this (admins only)."""
    return render(request, "forbidden.html", {"page": ""}, session=session, status=403)


def viewer(request: Request, *, admin: bool = False) -> Session | Response:
    """The session a page is shown to, or the response instead (sign in; admins only)."""
    session = signed_in(request)
    if session is None:
        return to_login(request)
    if admin and not session.user.admin:
        return forbidden(request, session)
    return session


def poster(request: Request, csrf: str, *, admin: bool = False) -> Session | Response:
    """The session a posted form acts for, or the response instead: sign in when there is
    no session, 400 when the form lacks this session's token, 403 for admin forms."""
    session = signed_in(request)
    if session is None:
        return to_login(request)
    if not auth.csrf_ok(session.key, session.cookie, csrf):
        return Response("the form expired; reload the page", status_code=400)
    if admin and not session.user.admin:
        return forbidden(request, session)
    return session
