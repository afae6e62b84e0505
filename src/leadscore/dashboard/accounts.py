"""Accounts: roll-up scores, engaged stakeholders, the priority flag."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from leadscore.dashboard.web import one_segment, render, service_of, viewer
from leadscore.service import accounts

PAGE_SIZE: Final = 50
MAX_PAGE: Final = 100_000  # as the leads list
# The best stakeholders of a very large account; the engaged count still covers them all.
STAKEHOLDERS_SHOWN: Final = 200

router = APIRouter(prefix="/ui", include_in_schema=False)

WORDS: Final = {
    "en": {
        "accounts_intro": "Companies with the roll-up score of their leads, highest first.",
        "search": "Search name or id",
        "priority_only": "Priority accounts only",
        "filter": "Filter",
        "rollup_score": "Roll-up score",
        "lead_count": "Leads",
        "no_accounts": "No account matches.",
        "shown": "Accounts {first} to {last} of {total}",
        "newer": "Previous page",
        "older": "Next page",
        "pages": "Pages",
        "fields": "Fields",
        "field": "Field",
        "value": "Value",
        "rollup_sum": "The sum of its leads' totals.",
        "rollup_max": "The highest total among its leads.",
        "how_rolled": "How it is rolled up",
        "no_score": "not scored yet",
        "is_priority": "Priority account",
        "yes": "yes",
        "no": "no",
        "stakeholders": "Stakeholders",
        "engaged": "Engaged",
        "engaged_count": "{engaged} of {leads} stakeholders engaged.",
        "threshold": "The model counts an account as engaged from {needed} engaged "
        "stakeholders (activity within {days} days).",
        "tier": "{min_leads} or more engaged: +{points} points for each lead",
        "no_rule": "The published model has no stakeholder rule.",
        "no_leads": "This account has no leads.",
        "unknown_account": "There is no account “{account}”.",
        "job_title": "Job title",
        "back": "All accounts",
        "best_shown": "The {shown} best of {leads} stakeholders are listed.",
        "f_name": "Name",
        "f_domain": "Domain",
        "f_industry": "Industry",
        "f_employees": "Employees",
        "f_annual_revenue": "Annual revenue",
        "f_country": "Country",
        "f_priority": "Target tier",
    },
    "de": {
        "accounts_intro": "Unternehmen mit dem Gesamtscore ihrer Leads, der höchste zuerst.",
        "search": "Name oder ID suchen",
        "priority_only": "Nur Zielkunden",
        "filter": "Filtern",
        "rollup_score": "Gesamtscore",
        "lead_count": "Leads",
        "no_accounts": "Kein Account passt.",
        "shown": "Accounts {first} bis {last} von {total}",
        "newer": "Vorherige Seite",
        "older": "Nächste Seite",
        "pages": "Seiten",
        "fields": "Felder",
        "field": "Feld",
        "value": "Wert",
        "rollup_sum": "Die Summe der Scores seiner Leads.",
        "rollup_max": "Der höchste Score unter seinen Leads.",
        "how_rolled": "Wie er berechnet wird",
        "no_score": "noch nicht bewertet",
        "is_priority": "Zielkunde",
        "yes": "ja",
        "no": "nein",
        "stakeholders": "Ansprechpartner",
        "engaged": "Aktiv",
        "engaged_count": "{engaged} von {leads} Ansprechpartnern aktiv.",
        "threshold": "Das Modell wertet einen Account ab {needed} aktiven Ansprechpartnern "
        "(Aktivität innerhalb von {days} Tagen).",
        "tier": "ab {min_leads} aktiven: +{points} Punkte für jeden Lead",
        "no_rule": "Das veröffentlichte Modell hat keine Ansprechpartner-Regel.",
        "no_leads": "Dieser Account hat keine Leads.",
        "unknown_account": "Es gibt keinen Account „{account}“.",
        "job_title": "Position",
        "back": "Alle Accounts",
        "best_shown": "Die {shown} besten von {leads} Ansprechpartnern sind aufgeführt.",
        "f_name": "Name",
        "f_domain": "Domain",
        "f_industry": "Branche",
        "f_employees": "Mitarbeitende",
        "f_annual_revenue": "Jahresumsatz",
        "f_country": "Land",
        "f_priority": "Zielkunden-Stufe",
    },
}

# The account's own columns, in the order people read them.
FIELDS: Final = ("name", "domain", "industry", "employees", "annual_revenue", "country", "priority")


@router.get("/accounts", response_class=HTMLResponse)
def account_list(request: Request, q: str = "", priority: str = "", page: int = 1) -> Response:
    """Accounts by roll-up score, filtered and paged."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    # a page beyond the last shows none; the bound keeps its offset in the store's 64 bits
    page = max(1, min(page, MAX_PAGE))
    q = q.strip()[:200]
    only = priority in ("1", "on", "true")
    with service_of(request).store.read() as conn:
        found = accounts.list_accounts(
            conn,
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            priority_only=only,
            search=q or None,
        )

    def link(to: int) -> str:
        params = {"q": q, "priority": "1" if only else "", "page": str(to)}
        return "/ui/accounts?" + urlencode({k: v for k, v in params.items() if v})

    total = found["total"]
    first = (page - 1) * PAGE_SIZE + 1
    context = {
        "page": "accounts",
        "rows": found["items"],
        "q": q,
        "only": only,
        "total": total,
        "first": first,
        "last": first + len(found["items"]) - 1,
        "newer": link(page - 1) if page > 1 else None,
        "older": link(page + 1) if page * PAGE_SIZE < total else None,
    }
    return render(request, "accounts.html", context, page_words=WORDS, session=session)


# `path`, so that an id with "/" (sent encoded) reaches the page; `one_segment` checks it
@router.get("/accounts/{account_id:path}", response_class=HTMLResponse)
def account_page(request: Request, account_id: str) -> Response:
    """One account: its fields, roll-up, priority and stakeholders."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    view = None
    if one_segment(request, account_id):
        with service.store.read() as conn:
            active = service.scorer.registry.active(conn)
            view = accounts.account_detail(
                conn, active, account_id, service.clock(), limit=STAKEHOLDERS_SHOWN
            )
    if view is None:
        missing: dict[str, Any] = {"page": "accounts", "account_id": account_id, "view": None}
        return render(
            request, "account.html", missing, page_words=WORDS, session=session, status=404
        )
    record = view["account"] or {}
    fields = [(name, record.get(name)) for name in FIELDS if record.get(name) is not None]
    fields += sorted((record.get("attributes") or {}).items())
    context: dict[str, Any] = {
        "page": "accounts",
        "account_id": account_id,
        "view": view,
        "fields": fields,
    }
    return render(request, "account.html", context, page_words=WORDS, session=session)
