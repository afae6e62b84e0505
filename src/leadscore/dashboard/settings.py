"""Settings (admins only): API keys shown once, webhooks with their delivery log."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from leadscore.dashboard import auth
from leadscore.dashboard.web import (
    Session,
    lang_of,
    poster,
    render,
    service_of,
    viewer,
    words_of,
)
from leadscore.service import keys, urls
from leadscore.service import webhooks as wh
from leadscore.service.inputs import Integer
from leadscore.service.routes.operations import KeyIn

LOG_PAGE: Final = 50
USERS_LIMIT: Final = 500
# A page that may hold a secret must not be kept by the browser or any cache on the way.
NO_STORE: Final = {"Cache-Control": "no-store"}

router = APIRouter(prefix="/ui", include_in_schema=False)


class SentForms:
    """The one-time ids of forms that created something, so that a browser sending the same
    form again (a reload of the page that showed a secret) does not create it twice."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def seen(self, once: str) -> bool:
        """Whether a form with this id created something already."""
        with self._lock:
            return once in self._seen

    def add(self, once: str) -> None:
        """Remember that the form with this id created something (forms without one are not
        remembered)."""
        if not once:
            return
        with self._lock:
            self._seen[once] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)


def _sent(request: Request) -> SentForms:
    state = request.app.state
    if not hasattr(state, "settings_sent"):
        state.settings_sent = SentForms()
    sent: SentForms = state.settings_sent
    return sent


WORDS: Final = {
    "en": {
        "settings_intro": "API keys, webhooks and who may sign in.",
        "keys": "API keys",
        "key_name": "Name",
        "scopes": "Scopes",
        "scope_tracking": "tracking (send events from a website)",
        "scope_admin": "admin (everything)",
        "prefix": "Key starts with",
        "created": "Created",
        "status": "Status",
        "active": "active",
        "revoked": "revoked {when}",
        "create_key": "Create key",
        "revoke": "Revoke",
        "revoke_q": "Revoke the API key “{name}”?",
        "revoke_why": "Every request with this key is refused from now on. This cannot be undone.",
        "revoke_yes": "Revoke key “{name}”",
        "revoked_done": "The key “{name}” is revoked.",
        "new_key": "New API key “{name}”",
        "new_key_once": "Copy the key now: it is shown only this once and cannot be read again.",
        "no_keys": "No API keys yet.",
        "name_required": "Name: required",
        "name_long": "Name: at most 200 characters",
        "name_bad": "Name: must not contain NUL characters",
        "scopes_required": "Scopes: choose at least one",
        "webhooks": "Webhooks",
        "url": "URL",
        "topics": "Topics",
        "secret": "Signing secret (optional, at least 16 characters; generated when empty)",
        "add_webhook": "Add webhook",
        "delete": "Delete",
        "delete_q": "Delete the webhook to {url}?",
        "delete_why": "Its pending deliveries and its delivery log are deleted with it.",
        "delete_yes": "Delete webhook to {url}",
        "deleted_done": "The webhook to {url} is deleted.",
        "new_hook": "Webhook to {url} added",
        "new_hook_once": "Its signing secret is shown only this once:",
        "no_hooks": "No webhooks yet.",
        "log": "Delivery log",
        "log_of": "Delivery log of {url}",
        "bad_url": "URL: must be an absolute http:// or https:// address",
        "url_address": "URL: the server calls only public addresses; a self-hosted "
        "receiver needs “--webhook-allow HOST[:PORT]” when the server starts",
        "url_credentials": "URL: must not hold a user name or password",
        "bad_topics": "Topics: choose at least one",
        "bad_secret": "Signing secret: at least 16 characters (or leave it empty)",
        "users": "Dashboard users",
        "users_how": "Add users on the server with “leadscore users add”.",
        "admin": "Administrator",
        "yes": "yes",
        "no": "no",
        "delivery": "Delivery",
        "topic": "Topic",
        "attempts": "Attempts",
        "response": "Response code",
        "error": "Error",
        "delivered": "Delivered",
        "next_try": "Next try",
        "st_pending": "pending",
        "st_delivered": "delivered",
        "st_failed": "failed",
        "all": "all",
        "show": "Show",
        "older": "Older deliveries",
        "newest": "Newest deliveries",
        "no_deliveries": "No deliveries yet.",
        "unknown_key": "There is no active API key {id}.",
        "unknown_hook": "There is no webhook {id}.",
        "back": "Settings",
        "label_url": "URL",
        "label_topics": "Topics",
        "label_secret": "Signing secret",
        "sent_before": "This form was sent before and did its work then; "
        "what it created is not shown again.",
    },
    "de": {
        "settings_intro": "API-Schlüssel, Webhooks und wer sich anmelden darf.",
        "keys": "API-Schlüssel",
        "key_name": "Name",
        "scopes": "Berechtigungen",
        "scope_tracking": "tracking (Ereignisse von einer Website senden)",
        "scope_admin": "admin (alles)",
        "prefix": "Schlüssel beginnt mit",
        "created": "Erstellt",
        "status": "Status",
        "active": "aktiv",
        "revoked": "widerrufen {when}",
        "create_key": "Schlüssel erstellen",
        "revoke": "Widerrufen",
        "revoke_q": "Den API-Schlüssel „{name}“ widerrufen?",
        "revoke_why": "Jede Anfrage mit diesem Schlüssel wird ab sofort abgelehnt. "
        "Das lässt sich nicht rückgängig machen.",
        "revoke_yes": "Schlüssel „{name}“ widerrufen",
        "revoked_done": "Der Schlüssel „{name}“ ist widerrufen.",
        "new_key": "Neuer API-Schlüssel „{name}“",
        "new_key_once": "Jetzt kopieren: Der Schlüssel wird nur dieses eine Mal angezeigt.",
        "no_keys": "Noch keine API-Schlüssel.",
        "name_required": "Name: fehlt",
        "name_long": "Name: höchstens 200 Zeichen",
        "name_bad": "Name: darf keine NUL-Zeichen enthalten",
        "scopes_required": "Berechtigungen: mindestens eine wählen",
        "webhooks": "Webhooks",
        "url": "URL",
        "topics": "Themen",
        "secret": "Signaturschlüssel (optional, mindestens 16 Zeichen; wird erzeugt, wenn leer)",
        "add_webhook": "Webhook hinzufügen",
        "delete": "Löschen",
        "delete_q": "Den Webhook an {url} löschen?",
        "delete_why": "Seine ausstehenden Zustellungen und sein Protokoll werden mitgelöscht.",
        "delete_yes": "Webhook an {url} löschen",
        "deleted_done": "Der Webhook an {url} ist gelöscht.",
        "new_hook": "Webhook an {url} hinzugefügt",
        "new_hook_once": "Sein Signaturschlüssel wird nur dieses eine Mal angezeigt:",
        "no_hooks": "Noch keine Webhooks.",
        "log": "Zustellprotokoll",
        "log_of": "Zustellprotokoll von {url}",
        "bad_url": "URL: muss eine absolute http://- oder https://-Adresse sein",
        "url_address": "URL: der Server ruft nur öffentliche Adressen auf; ein eigener "
        "Empfänger braucht „--webhook-allow HOST[:PORT]“ beim Start des Servers",
        "url_credentials": "URL: darf keinen Benutzernamen und kein Passwort enthalten",
        "bad_topics": "Themen: mindestens eines wählen",
        "bad_secret": "Signaturschlüssel: mindestens 16 Zeichen (oder leer lassen)",
        "users": "Dashboard-Benutzer",
        "users_how": "Benutzer werden auf dem Server mit „leadscore users add“ angelegt.",
        "admin": "Administrator",
        "yes": "ja",
        "no": "nein",
        "delivery": "Zustellung",
        "topic": "Thema",
        "attempts": "Versuche",
        "response": "Antwortcode",
        "error": "Fehler",
        "delivered": "Zugestellt",
        "next_try": "Nächster Versuch",
        "st_pending": "ausstehend",
        "st_delivered": "zugestellt",
        "st_failed": "fehlgeschlagen",
        "all": "alle",
        "show": "Anzeigen",
        "older": "Ältere Zustellungen",
        "newest": "Neueste Zustellungen",
        "no_deliveries": "Noch keine Zustellungen.",
        "unknown_key": "Es gibt keinen aktiven API-Schlüssel {id}.",
        "unknown_hook": "Es gibt keinen Webhook {id}.",
        "back": "Einstellungen",
        "label_url": "URL",
        "label_topics": "Themen",
        "label_secret": "Signaturschlüssel",
        "sent_before": "Dieses Formular wurde schon einmal gesendet und hat damals gewirkt; "
        "was es angelegt hat, wird nicht erneut angezeigt.",
    },
}


def _page(
    request: Request,
    session: Session,
    *,
    status: int = 200,
    key_form: dict[str, Any] | None = None,
    hook_form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    new_key: dict[str, Any] | None = None,
    new_hook: dict[str, Any] | None = None,
    done: str | None = None,
) -> Response:
    service = service_of(request)
    with service.store.read() as conn:
        api_keys = keys.list_keys(conn)
        hooks = wh.list_webhooks(conn)
        users = auth.list_users(conn, USERS_LIMIT)
    context = {
        "page": "settings",
        "keys": api_keys,
        "hooks": hooks,
        "users": users,
        "scope_names": keys.SCOPES,
        "topic_names": wh.TOPICS,
        "key_form": key_form or {"name": "", "scopes": []},
        "hook_form": hook_form or {"url": "", "topics": list(wh.TOPICS)},
        "errors": errors or {},
        "new_key": new_key,
        "new_hook": new_hook,
        "done": done,
        "once": secrets.token_urlsafe(16),
    }
    page = render(
        request, "settings.html", context, page_words=WORDS, session=session, status=status
    )
    page.headers.update(NO_STORE)
    return page


@router.get("/settings", response_class=HTMLResponse)
def settings(request: Request, revoked: str = "", deleted: str = "") -> Response:
    """Keys, webhooks and users."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    done = None
    if revoked:
        done = w["revoked_done"].format(name=revoked)
    elif deleted:
        done = w["deleted_done"].format(url=deleted)
    return _page(request, session, done=done)


# pydantic's error types for the name field, as the words of the page
_NAME_ERRORS: Final = {"string_too_short": "name_required", "string_too_long": "name_long"}


def _key_errors(name: str, scopes: list[str], w: dict[str, str]) -> dict[str, str]:
    """The REST API's rules for a new key (`KeyIn`), as messages next to the fields."""
    errors: dict[str, str] = {}
    try:
        KeyIn.model_validate({"name": name, "scopes": scopes})
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "name"
            if field == "scopes":
                errors["scopes"] = w["scopes_required"]
            else:
                errors.setdefault("name", w[_NAME_ERRORS.get(problem["type"], "name_bad")])
    return errors


@router.post("/settings/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    once: Annotated[str, Form()] = "",
) -> Response:
    """Create an API key and show its secret in this response only."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    chosen = [s for s in scopes or [] if s]
    form = {"name": name, "scopes": chosen}
    errors = _key_errors(name.strip(), chosen, w)
    if errors:
        return _page(request, session, status=422, key_form=form, errors=errors)
    if _sent(request).seen(once):
        return _page(request, session, status=409, done=w["sent_before"])
    service = service_of(request)
    with service.store.write() as conn:
        token = keys.create_key(conn, name.strip(), chosen, service.clock())
    _sent(request).add(once)
    # Rendered into the answer to this POST (not a redirect): the secret never sits in a
    # URL or in anything the browser could fetch again.
    new_key = {"name": name.strip(), "token": token, "scopes": sorted(set(chosen))}
    return _page(request, session, new_key=new_key)


def _active_key(request: Request, key_id: int) -> dict[str, Any] | None:
    with service_of(request).store.read() as conn:
        found = [k for k in keys.list_keys(conn) if k["id"] == key_id]
    return found[0] if found and found[0]["revoked_at"] is None else None


def _confirm(
    request: Request, session: Session, context: dict[str, Any], status: int = 200
) -> Response:
    return render(
        request,
        "settings_confirm.html",
        {"page": "settings", **context},
        page_words=WORDS,
        session=session,
        status=status,
    )


@router.get("/settings/keys/{key_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(request: Request, key_id: Integer) -> Response:
    """Ask before revoking a key."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    key = _active_key(request, key_id)
    if key is None:
        return _confirm(request, session, {"missing": w["unknown_key"].format(id=key_id)}, 404)
    context = {
        "question": w["revoke_q"].format(name=key["name"]),
        "why": w["revoke_why"],
        "action": f"/ui/settings/keys/{key_id}/revoke",
        "yes": w["revoke_yes"].format(name=key["name"]),
    }
    return _confirm(request, session, context)


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: Integer, csrf: Annotated[str, Form()] = "") -> Response:
    """Revoke a key: the REST API refuses it from now on."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    key = _active_key(request, key_id)
    with service.store.write() as conn:
        revoked = keys.revoke(conn, key_id, service.clock())
    if not revoked or key is None:
        w = words_of(request, WORDS)
        return _confirm(request, session, {"missing": w["unknown_key"].format(id=key_id)}, 404)
    return RedirectResponse("/ui/settings?" + urlencode({"revoked": key["name"]}), status_code=303)


def _hook_errors(exc: ValueError, w: dict[str, str], lang: str) -> dict[str, str]:
    """The service's refusal of a webhook as a message next to the field it names."""
    message = str(exc)
    field, _, detail = message.partition(":")
    if field not in ("url", "topics", "secret") or not detail:
        field, detail = "url", f" {message}"
    # English shows the service's own words; German the field's message in German.
    if lang == "en":
        return {field: f"{w['label_' + field]}:{detail}"}
    if isinstance(exc, urls.UrlRefused) and exc.reason != "form":
        return {field: w[f"url_{exc.reason}"]}
    return {field: w[f"bad_{field}"]}


@router.post("/settings/webhooks", response_class=HTMLResponse)
def add_webhook(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    topics: Annotated[list[str] | None, Form()] = None,
    secret: Annotated[str, Form()] = "",
    once: Annotated[str, Form()] = "",
) -> Response:
    """Subscribe a URL to topics with the REST API's rules; its secret is shown once."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    chosen = [x for x in topics or [] if x]
    form = {"url": url, "topics": chosen}
    if _sent(request).seen(once):
        return _page(request, session, status=409, done=w["sent_before"])
    service = service_of(request)
    try:
        with service.store.write() as conn:
            created = wh.create_webhook(
                conn, url, chosen, secret or None, service.clock(), policy=service.url_policy
            )
    except ValueError as exc:
        errors = _hook_errors(exc, w, lang_of(request))
        return _page(request, session, status=422, hook_form=form, errors=errors)
    _sent(request).add(once)
    service.scorer.forget_subscriptions()
    return _page(request, session, new_hook=created)


def _webhook(request: Request, webhook_id: int) -> dict[str, Any] | None:
    with service_of(request).store.read() as conn:
        return wh.get_webhook(conn, webhook_id)


@router.get("/settings/webhooks/{webhook_id}/delete", response_class=HTMLResponse)
def confirm_delete(request: Request, webhook_id: Integer) -> Response:
    """Ask before deleting a webhook."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    w = words_of(request, WORDS)
    hook = _webhook(request, webhook_id)
    if hook is None:
        missing = {"missing": w["unknown_hook"].format(id=webhook_id)}
        return _confirm(request, session, missing, 404)
    context = {
        "question": w["delete_q"].format(url=hook["url"]),
        "why": w["delete_why"],
        "action": f"/ui/settings/webhooks/{webhook_id}/delete",
        "yes": w["delete_yes"].format(url=hook["url"]),
    }
    return _confirm(request, session, context)


@router.post("/settings/webhooks/{webhook_id}/delete")
def delete_webhook(
    request: Request, webhook_id: Integer, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Delete a webhook with its pending deliveries and log."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    hook = _webhook(request, webhook_id)
    with service.store.write() as conn:
        deleted = wh.delete_webhook(conn, webhook_id)
    service.scorer.forget_subscriptions()
    if not deleted or hook is None:
        w = words_of(request, WORDS)
        missing = {"missing": w["unknown_hook"].format(id=webhook_id)}
        return _confirm(request, session, missing, 404)
    return RedirectResponse("/ui/settings?" + urlencode({"deleted": hook["url"]}), status_code=303)


@router.get("/settings/webhooks/{webhook_id}", response_class=HTMLResponse)
def delivery_log(
    request: Request, webhook_id: Integer, status: str = "", before: Integer | None = None
) -> Response:
    """A webhook's deliveries, newest first, a page at a time."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    chosen = status if status in wh.STATUSES else None
    with service_of(request).store.read() as conn:
        hook = wh.get_webhook(conn, webhook_id)
        rows = [] if hook is None else wh.deliveries(conn, webhook_id, LOG_PAGE, chosen, before)
    if hook is None:
        w = words_of(request, WORDS)
        missing = {"missing": w["unknown_hook"].format(id=webhook_id)}
        return _confirm(request, session, missing, 404)
    older = None
    if len(rows) == LOG_PAGE:
        older = f"/ui/settings/webhooks/{webhook_id}?before={rows[-1]['id']}"
        older += f"&status={chosen}" if chosen else ""
    context = {
        "page": "settings",
        "hook": hook,
        "rows": rows,
        "status": chosen or "",
        "statuses": wh.STATUSES,
        "older": older,
        "paged": before is not None,
    }
    return render(request, "webhook.html", context, page_words=WORDS, session=session)
