"""The signed-in user's own sign-in: change the password, sign out on every device."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard import auth
from leadscore.dashboard.web import (
    Session,
    client_of,
    poster,
    render,
    service_of,
    set_session,
    signed_out,
    throttle_of,
    viewer,
    wait_minutes,
    words_of,
)

router = APIRouter(prefix="/ui", include_in_schema=False)

WORDS: Final = {
    "en": {
        "profile": "Your sign-in",
        "profile_intro": "Signed in as {name}.",
        "role_admin": "You are an administrator.",
        "role_user": "You are not an administrator.",
        "change_password": "Change your password",
        "current_password": "Current password",
        "new_password": "New password",
        "new_password_again": "New password again",
        "password_rules": "At least {n} characters.",
        "password_changed": "Your password is changed. Every other session of yours is signed out.",
        "not_current": "This is not your current password.",
        "same_password": "The new password is the same as the current one.",
        "mismatch": "The two new passwords differ.",
        "guessed": "Too many wrong passwords; try again in {minutes} min.",
        "everywhere": "Sign out everywhere",
        "everywhere_why": "Ends every session of yours — on every computer, phone and browser, "
        "this one included. Use it when you signed in on a device you no longer have.",
    },
    "de": {
        "profile": "Ihre Anmeldung",
        "profile_intro": "Angemeldet als {name}.",
        "role_admin": "Sie sind Administrator.",
        "role_user": "Sie sind kein Administrator.",
        "change_password": "Passwort ändern",
        "current_password": "Aktuelles Passwort",
        "new_password": "Neues Passwort",
        "new_password_again": "Neues Passwort wiederholen",
        "password_rules": "Mindestens {n} Zeichen.",
        "password_changed": "Ihr Passwort ist geändert. Alle anderen Sitzungen sind abgemeldet.",
        "not_current": "Das ist nicht Ihr aktuelles Passwort.",
        "same_password": "Das neue Passwort ist dasselbe wie das aktuelle.",
        "mismatch": "Die beiden neuen Passwörter unterscheiden sich.",
        "guessed": "Zu viele falsche Passwörter; in {minutes} min erneut versuchen.",
        "everywhere": "Überall abmelden",
        "everywhere_why": "Beendet alle Ihre Sitzungen — auf jedem Computer, Telefon und Browser, "
        "auch diese. Nutzen Sie es, wenn Sie auf einem Gerät angemeldet waren, das Sie nicht "
        "mehr haben.",
    },
}

# auth's field names → the form's
_FIELDS: Final = {"current": "current", "password": "new"}


def _page(
    request: Request,
    session: Session,
    *,
    errors: dict[str, str] | None = None,
    done: str = "",
    status: int = 200,
) -> HTMLResponse:
    w = words_of(request, WORDS)
    context: dict[str, Any] = {
        "page": "profile",
        "errors": errors or {},
        "done": done,
        "rules": w["password_rules"].format(n=auth.MIN_PASSWORD),
    }
    return render(
        request, "profile.html", context, page_words=WORDS, session=session, status=status
    )


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, changed: str = "") -> Response:
    """Who is signed in, the password form and the sign-out-everywhere button."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    done = words_of(request, WORDS)["password_changed"] if changed else ""
    return _page(request, session, done=done)


def _new_password_errors(current: str, new: str, again: str, w: dict[str, str]) -> dict[str, str]:
    errors = {}
    if not current:
        errors["current"] = f"{w['current_password']}: {w['required']}"
    if len(new) < auth.MIN_PASSWORD:
        errors["new"] = w["password_rules"].format(n=auth.MIN_PASSWORD)
    elif new == current:
        errors["new"] = w["same_password"]
    elif again != new:
        errors["again"] = w["mismatch"]
    return errors


@router.post("/profile/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    current: Annotated[str, Form()] = "",
    new: Annotated[str, Form()] = "",
    again: Annotated[str, Form()] = "",
) -> Response:
    """Set a new password: every session ends, this browser gets a fresh one."""
    session = poster(request, csrf)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    errors = _new_password_errors(current, new, again, w)
    if errors:
        return _page(request, session, errors=errors, status=422)
    # a stolen session must not become a way to guess the password faster than signing in
    service = service_of(request)
    throttle, client, now = throttle_of(request), client_of(request), service.clock()
    name = session.user.username
    wait = throttle.wait(name, client, now)
    if wait:
        message = w["guessed"].format(minutes=wait_minutes(wait))
        return _page(request, session, errors={"current": message}, status=429)
    try:
        with service.store.write() as conn:
            user = auth.change_password(conn, session.user, current, new)
            # this browser stays signed in, with a new session
            cookie = auth.start_session(conn, session.key, user, now)
    except auth.UserError as exc:
        if exc.field == "current":
            throttle.failed(name, client, now)
            return _page(request, session, errors={"current": w["not_current"]}, status=422)
        # the form's checks above match auth's; this is their backstop
        field = _FIELDS.get(exc.field, "new")
        return _page(request, session, errors={field: exc.message}, status=422)
    throttle.succeeded(name, client, now)
    done = RedirectResponse("/ui/profile?changed=1", status_code=303)
    set_session(request, done, cookie)
    return done


@router.post("/profile/signout-everywhere")
def sign_out_everywhere(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End every session of the signed-in user, on every device, this one included."""
    session = poster(request, csrf)
    if isinstance(session, Response):
        return session
    with service_of(request).store.write() as conn:
        auth.end_sessions(conn, session.user.username)
    return signed_out(request)
