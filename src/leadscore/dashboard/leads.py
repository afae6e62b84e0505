"""The lead list and the lead page: score card, ledger, timeline with trajectory, stakeholders."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, Final

import matplotlib.dates as mdates
import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from leadscore.dashboard.queue import WORDS as QUEUE_WORDS
from leadscore.dashboard.queue import countdown
from leadscore.dashboard.security import fit_svg
from leadscore.dashboard.web import (
    lang_of,
    one_segment,
    render,
    segment,
    service_of,
    viewer,
    words_of,
)
from leadscore.evaluate.report import Figure, plot
from leadscore.service import accounts, erasure, scorecard
from leadscore.store import records
from leadscore.store import tables as t

PAGE_SIZE: Final = 50
# A search reads the leads' text columns once and sorts up to this many matches by score;
# with more, the list shows the best-scored SHOWN_CAP of them and says "more than".
COUNT_CAP: Final = 5000
SHOWN_CAP: Final = 1000
MAX_SEARCH: Final = 200  # characters of a search text
MAX_PAGE: Final = 100_000
TIMELINE_LIMIT: Final = 200  # of each: events, score changes, transitions
STAKEHOLDER_LIMIT: Final = 50
TASK_LIMIT: Final = 20
OUTCOME_LIMIT: Final = 20

router = APIRouter(prefix="/ui", include_in_schema=False)

WORDS: Final = {
    "en": {
        "leads_intro": "Every lead, highest score first.",
        "search": "Search leads",
        "search_hint": "Lead id, name, e-mail or company (part of it).",
        "search_button": "Search",
        "clear": "Show all",
        "matches": "{count} leads",
        "matches_more": "More than {count} leads match; the {shown} with the highest scores "
        "are listed. A longer search text finds the others.",
        "no_match": "No lead matches “{q}”.",
        "no_leads": "No leads yet.",
        "not_scored": "not scored",
        "previous": "Previous page",
        "next": "Next page",
        "page_of": "Page {page} of {pages}",
        "pages": "Pages",
        "name": "Name",
        "company": "Company",
        "email": "E-mail",
        "job_title": "Job title",
        "industry": "Industry",
        "employees": "Employees",
        "country": "Country",
        "source": "Source",
        "created": "Created",
        "details": "Lead details",
        "score_card": "Score card",
        "total": "Total",
        "account_points": "Account",
        "grade": "Grade",
        "engagement": "Engagement",
        "sla_hours": "SLA hours",
        "interests": "Interest sub-scores",
        "model_used": "Model",
        "as_of": "Scored as of",
        "no_score": "This lead has no score yet: no model is published, or its score is "
        "still being computed. Its data and events are shown below.",
        "model_gone": "The model that scored this lead can no longer be loaded, so its "
        "ledger cannot be shown.",
        "ledger": "Ledger",
        "ledger_intro": "Every point of the score, line by line; the lines add up to the total.",
        "part": "Part",
        "kind": "Kind",
        "event": "Event",
        "ledger_sum": "Sum of the ledger",
        "sum_equals": "equals the total of {total}",
        "sum_differs": "differs from the stored total of {total}",
        "no_lines": "No rule gave this lead points.",
        "timeline": "Timeline",
        "timeline_intro": "Events, score changes and stage or temperature moves, newest first.",
        "timeline_capped": "Only the newest {limit} of each kind are shown.",
        "what": "What",
        "detail": "Detail",
        "change": "Change",
        "kind_event": "Event",
        "kind_score": "Score",
        "kind_transition": "Transition",
        "cause": "cause",
        "trajectory": "Score trajectory",
        "trajectory_caption": "The lead's total score after each change (a step line); "
        "markers show where the stage changed, labelled with the new stage.",
        "trajectory_none": "No score changes recorded yet.",
        "axis_time": "Time (UTC)",
        "axis_total": "Total score",
        "stakeholders": "Account stakeholders",
        "stakeholders_intro": "Other leads of {account}: {engaged} of {leads} engaged.",
        "stakeholders_none": "No other lead belongs to this account.",
        "stakeholders_capped": "The first {limit} by score are shown.",
        "engaged": "Engaged",
        "yes": "yes",
        "no": "no",
        "open_account": "Open the account",
        "tasks": "SLA tasks",
        "status": "Status",
        "deadline": "Deadline",
        "opened": "Opened",
        "no_tasks": "No SLA task for this lead.",
        "worked": "Mark worked",
        "worked_done": "Marked as worked: the open SLA tasks are met.",
        "outcomes": "Outcomes",
        "outcome": "Outcome",
        "value": "Deal value",
        "no_outcomes": "No outcome recorded.",
        "unknown_lead": "There is no lead “{lead}”.",
        "back_to_list": "Back to the leads",
        "utc": "UTC",
        "k_fit": "fit rule",
        "k_event": "event",
        "k_cap": "cap",
        "k_frequency": "frequency",
        "k_velocity": "velocity",
        "k_inactivity": "inactivity",
        "k_floor": "floor",
        "k_stakeholders": "stakeholders",
        "k_priority": "priority account",
        "k_tier_cap": "tier cap",
        "r_inactivity": "No activity for a while",
        "r_floor": "Behaviour lifted to its floor",
        "r_stakeholders": "Engaged stakeholders of the account",
        "r_priority": "Priority (target) account",
        "r_tier_cap": "Stage score clipped to its range",
        "interest_name": "Interest",
    },
    "de": {
        "leads_intro": "Alle Leads, der höchste Score zuerst.",
        "search": "Leads suchen",
        "search_hint": "Lead-ID, Name, E-Mail oder Firma (auch ein Teil davon).",
        "search_button": "Suchen",
        "clear": "Alle zeigen",
        "matches": "{count} Leads",
        "matches_more": "Mehr als {count} Leads passen; die {shown} mit den höchsten Scores "
        "stehen in der Liste. Ein längerer Suchtext findet die übrigen.",
        "no_match": "Kein Lead passt zu „{q}“.",
        "no_leads": "Noch keine Leads.",
        "not_scored": "ohne Score",
        "previous": "Vorige Seite",
        "next": "Nächste Seite",
        "page_of": "Seite {page} von {pages}",
        "pages": "Seiten",
        "name": "Name",
        "company": "Firma",
        "email": "E-Mail",
        "job_title": "Position",
        "industry": "Branche",
        "employees": "Mitarbeitende",
        "country": "Land",
        "source": "Quelle",
        "created": "Angelegt",
        "details": "Angaben zum Lead",
        "score_card": "Score-Karte",
        "total": "Gesamt",
        "account_points": "Account",
        "grade": "Note",
        "engagement": "Engagement",
        "sla_hours": "SLA-Stunden",
        "interests": "Interessen-Teilscores",
        "model_used": "Modell",
        "as_of": "Berechnet zum",
        "no_score": "Dieser Lead hat noch keinen Score: kein Modell ist veröffentlicht, oder "
        "der Score wird noch berechnet. Seine Daten und Ereignisse stehen unten.",
        "model_gone": "Das Modell, das diesen Lead bewertet hat, lässt sich nicht mehr laden; "
        "die Punkteliste kann daher nicht gezeigt werden.",
        "ledger": "Punkteliste",
        "ledger_intro": "Jeder Punkt des Scores, Zeile für Zeile; die Zeilen ergeben "
        "zusammen den Gesamtscore.",
        "part": "Teil",
        "kind": "Art",
        "event": "Ereignis",
        "ledger_sum": "Summe der Punkteliste",
        "sum_equals": "gleich dem Gesamtscore von {total}",
        "sum_differs": "weicht vom gespeicherten Gesamtscore {total} ab",
        "no_lines": "Keine Regel hat diesem Lead Punkte gegeben.",
        "timeline": "Verlauf",
        "timeline_intro": "Ereignisse, Score-Änderungen und Wechsel von Phase oder "
        "Temperatur, die neuesten zuerst.",
        "timeline_capped": "Nur die neuesten {limit} jeder Art werden gezeigt.",
        "what": "Was",
        "detail": "Einzelheiten",
        "change": "Änderung",
        "kind_event": "Ereignis",
        "kind_score": "Score",
        "kind_transition": "Wechsel",
        "cause": "Ursache",
        "trajectory": "Score-Verlauf",
        "trajectory_caption": "Der Gesamtscore des Leads nach jeder Änderung (Stufenlinie); "
        "Markierungen zeigen Phasenwechsel, beschriftet mit der neuen Phase.",
        "trajectory_none": "Noch keine Score-Änderungen aufgezeichnet.",
        "axis_time": "Zeit (UTC)",
        "axis_total": "Gesamtscore",
        "stakeholders": "Beteiligte im Account",
        "stakeholders_intro": "Weitere Leads von {account}: {engaged} von {leads} aktiv.",
        "stakeholders_none": "Kein anderer Lead gehört zu diesem Account.",
        "stakeholders_capped": "Die ersten {limit} nach Score werden gezeigt.",
        "engaged": "Aktiv",
        "yes": "ja",
        "no": "nein",
        "open_account": "Account öffnen",
        "tasks": "SLA-Aufgaben",
        "status": "Status",
        "deadline": "Frist",
        "opened": "Eröffnet",
        "no_tasks": "Keine SLA-Aufgabe für diesen Lead.",
        "worked": "Als bearbeitet markieren",
        "worked_done": "Als bearbeitet markiert: die offenen SLA-Aufgaben sind erfüllt.",
        "outcomes": "Ergebnisse",
        "outcome": "Ergebnis",
        "value": "Auftragswert",
        "no_outcomes": "Kein Ergebnis erfasst.",
        "unknown_lead": "Es gibt keinen Lead „{lead}“.",
        "back_to_list": "Zurück zu den Leads",
        "utc": "UTC",
        "k_fit": "Profilregel",
        "k_event": "Ereignis",
        "k_cap": "Obergrenze",
        "k_frequency": "Häufigkeit",
        "k_velocity": "Tempo",
        "k_inactivity": "Inaktivität",
        "k_floor": "Untergrenze",
        "k_stakeholders": "Beteiligte",
        "k_priority": "Zielkunde",
        "k_tier_cap": "Stufen-Obergrenze",
        "r_inactivity": "Länger keine Aktivität",
        "r_floor": "Verhalten auf die Untergrenze angehoben",
        "r_stakeholders": "Aktive Beteiligte im Account",
        "r_priority": "Zielkunde (Priorität)",
        "r_tier_cap": "Stufen-Score auf seinen Bereich begrenzt",
        "interest_name": "Interesse",
    },
}

_DETAIL_FIELDS: Final = (
    "name",
    "email",
    "job_title",
    "company",
    "industry",
    "employees",
    "country",
    "source",
    "created_at",
)


def when(ts: datetime | None) -> str:
    """A stored (naive UTC) time as people read it."""
    return "" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def _search_filter(conn: sa.Connection, q: str) -> sa.ColumnElement[bool]:
    """Id starting with `q`, or name, e-mail or company containing it, in any case."""
    lead = t.leads
    text = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # Patterns made here, not in SQL: a pattern concatenated in the query is built anew for
    # every row. SQLite's LIKE ignores (ASCII) case already, and lower() on every row
    # tripled the time of a scan; PostgreSQL has ILIKE.
    if conn.dialect.name == "sqlite":

        def like(column: Any, pattern: str) -> sa.ColumnElement[bool]:
            return column.like(pattern, escape="\\")  # type: ignore[no-any-return]
    else:

        def like(column: Any, pattern: str) -> sa.ColumnElement[bool]:
            return column.ilike(pattern, escape="\\")  # type: ignore[no-any-return]

    return sa.or_(
        like(lead.c.lead_id, f"{text}%"),
        *(like(column, f"%{text}%") for column in (lead.c.name, lead.c.email, lead.c.company)),
    )


_LIST_COLUMNS: Final = (
    t.leads.c.lead_id,
    t.leads.c.name,
    t.leads.c.email,
    t.leads.c.company,
    t.scores.c.total,
    t.scores.c.temperature,
    t.scores.c.stage,
    t.scores.c.cell,
    t.scores.c.primary_interest,
)


def _by_score(conn: sa.Connection) -> list[Any]:
    """Highest score first, ties in a fixed order the score index itself gives: SQLite's
    index on total holds the rowid (ordering ties by lead id sorted whole tie groups at
    deep pages); PostgreSQL sorts each tie group incrementally."""
    s = t.scores
    if conn.dialect.name == "sqlite":
        return [s.c.total.desc(), sa.literal_column("scores.rowid").desc()]
    return [s.c.total.desc(), s.c.lead_id]


def _scored_page(
    conn: sa.Connection, where: sa.ColumnElement[bool] | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Scored leads by score: the page's ids from the score index, then their rows."""
    s, lead = t.scores, t.leads
    ids = sa.select(s.c.lead_id)
    if where is not None:
        ids = ids.join(lead, lead.c.lead_id == s.c.lead_id).where(where)
    page = [r[0] for r in conn.execute(ids.order_by(*_by_score(conn)).limit(limit).offset(offset))]
    return _rows_of(conn, page)


def _rows_of(conn: sa.Connection, lead_ids: list[str]) -> list[dict[str, Any]]:
    """The list's columns of these leads, in the order given."""
    s, lead = t.scores, t.leads
    found: dict[str, dict[str, Any]] = {}
    for part in records.chunks(lead_ids):
        query = (
            sa.select(*_LIST_COLUMNS)
            .select_from(lead.outerjoin(s, s.c.lead_id == lead.c.lead_id))
            .where(records.among(conn, lead.c.lead_id, list(part)))
        )
        found.update((r["lead_id"], dict(r)) for r in conn.execute(query).mappings())
    return [found[i] for i in lead_ids if i in found]


def _search(conn: sa.Connection, q: str, offset: int) -> tuple[list[dict[str, Any]], int, bool]:
    lead = t.leads
    match = _search_filter(conn, q)
    ids = [r[0] for r in conn.execute(sa.select(lead.c.lead_id).where(match).limit(COUNT_CAP + 1))]
    if len(ids) <= COUNT_CAP:
        # every match is known: sort them here (unscored last) instead of joining all leads
        rows = _rows_of(conn, ids)
        rows.sort(key=lambda r: (r["total"] is None, -(r["total"] or 0.0), r["lead_id"]))
        return rows[offset : offset + PAGE_SIZE], len(rows), False
    # So many match that the score index finds a page of them quickly.
    limit = max(0, min(PAGE_SIZE, SHOWN_CAP - offset))
    return _scored_page(conn, match, limit, offset), SHOWN_CAP, True


def lead_rows(conn: sa.Connection, q: str, page: int) -> tuple[list[dict[str, Any]], int, bool]:
    """One page of leads, highest score first (unscored ones last), with how many there are
    (or can be paged through) and whether more matched than that."""
    s, lead = t.scores, t.leads
    offset = (page - 1) * PAGE_SIZE
    if q:
        return _search(conn, q, offset)
    scored = conn.execute(sa.select(sa.func.count()).select_from(s)).scalar_one()
    total = conn.execute(sa.select(sa.func.count()).select_from(lead)).scalar_one()
    rows = _scored_page(conn, None, PAGE_SIZE, offset) if offset < scored else []
    if len(rows) < PAGE_SIZE and total > scored:
        # Leads the scorer has not reached yet (or no model is published): by id, after
        # every scored one.
        query = (
            sa.select(*_LIST_COLUMNS)
            .select_from(lead.outerjoin(s, s.c.lead_id == lead.c.lead_id))
            .where(s.c.lead_id.is_(None))
            .order_by(lead.c.lead_id)
            .limit(PAGE_SIZE - len(rows))
            .offset(max(0, offset - scored))
        )
        rows += [dict(r) for r in conn.execute(query).mappings()]
    return rows, total, False


@router.get("/leads", response_class=HTMLResponse)
def leads_list(
    request: Request,
    q: str = "",
    page: str = "1",
) -> Response:
    """The searchable, paged list of leads."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    w = words_of(request, WORDS)
    q = q.strip()[:MAX_SEARCH]
    # a page number edited by hand is taken as near as it can be, not refused
    digits = page.strip()
    number = 1
    if digits.isdecimal():
        number = max(1, min(int(digits), MAX_PAGE)) if len(digits) <= 6 else MAX_PAGE
    with service.store.read() as conn:
        rows, count, more = lead_rows(conn, q, number)
        active = service.scorer.registry.active(conn)
    names = _interest_labels(active.model, lang_of(request)) if active is not None else {}
    for row in rows:
        interest = row["primary_interest"]
        row["interest_text"] = names.get(interest, interest) if interest else ""
    pages = max(1, -(-count // PAGE_SIZE))
    if number > pages:
        query = f"q={segment(q)}&page={pages}" if q else f"page={pages}"
        return RedirectResponse(f"/ui/leads?{query}", status_code=303)
    page_no = number
    if more:
        summary = w["matches_more"].format(count=f"{COUNT_CAP:,}", shown=f"{count:,}")
    else:
        summary = w["matches"].format(count=f"{count:,}")
    context = {
        "rows": rows,
        "q": q,
        "page_no": page_no,
        "pages": pages,
        "has_next": page_no < pages,
        "summary": summary,
        "no_match": w["no_match"].format(q=q),
        "page_of": w["page_of"].format(page=page_no, pages=f"{pages:,}"),
        "page": "leads",
    }
    return render(request, "leads.html", context, page_words=WORDS, session=session)


# -- one lead ------------------------------------------------------------------------------------


def timeline(conn: sa.Connection, lead_id: str) -> tuple[list[dict[str, Any]], bool]:
    """The lead's newest events, score changes and transitions, newest first, and whether
    any of them was cut at TIMELINE_LIMIT."""
    e, h, tr = t.events, t.score_history, t.transitions
    events = conn.execute(
        sa.select(e.c.event_id, e.c.type, e.c.ts, e.c.url, e.c.asset, e.c.topic, e.c.channel)
        .where(e.c.lead_id == lead_id)
        .order_by(e.c.ts.desc(), e.c.seq.desc())
        .limit(TIMELINE_LIMIT)
    ).mappings()
    history = conn.execute(
        sa.select(h).where(h.c.lead_id == lead_id).order_by(h.c.id.desc()).limit(TIMELINE_LIMIT)
    ).mappings()
    moves = conn.execute(
        sa.select(tr).where(tr.c.lead_id == lead_id).order_by(tr.c.id.desc()).limit(TIMELINE_LIMIT)
    ).mappings()
    items: list[dict[str, Any]] = []
    counts = [0, 0, 0]
    for r in events:
        counts[0] += 1
        detail = " · ".join(str(r[k]) for k in ("url", "asset", "topic", "channel") if r[k])
        items.append(
            {
                "kind": "event",
                "at": r["ts"],
                "what": r["type"],
                "detail": detail,
                "id": r["event_id"],
            }
        )
    for r in history:
        counts[1] += 1
        items.append({"kind": "score", "at": r["as_of"], "order": r["id"], **dict(r)})
    for r in moves:
        counts[2] += 1
        items.append({"kind": "transition", "at": r["at"], "order": r["id"], **dict(r)})
    rank = {"transition": 0, "score": 1, "event": 2}
    # Newest first; at one instant the score change shows above the event that caused it.
    items.sort(key=lambda i: (i["at"], -rank[i["kind"]], i.get("order", 0)), reverse=True)
    return items, max(counts) >= TIMELINE_LIMIT


def _trajectory_key(
    history: list[dict[str, Any]], now_total: dict[str, Any] | None, lang: str
) -> tuple[Any, ...]:
    newest = max(r["order"] for r in history)
    current = None if now_total is None else (now_total["as_of"], now_total["total"])
    return (history[0]["lead_id"], newest, len(history), current, lang)


# Drawn plots by (lead, newest history line, current score, language): a plot changes only
# when the lead's score does, and drawing one is most of a lead page's time.
_PLOTS: OrderedDict[tuple[Any, ...], Figure] = OrderedDict()
_PLOTS_LOCK: Final = threading.Lock()
PLOT_CACHE: Final = 256


def forget_plots(lead_ids: Collection[str]) -> None:
    """Drop the drawn plots of these leads (they were erased)."""
    with _PLOTS_LOCK:
        for key in [k for k in _PLOTS if k[0] in lead_ids]:
            del _PLOTS[key]


erasure.FORGET.append(forget_plots)


def trajectory(
    history: list[dict[str, Any]], now_total: dict[str, Any] | None, lang: str, w: dict[str, str]
) -> Figure | None:
    """The lead's total over time as a step line, with a marker at each change of stage."""
    if not history:
        return None
    key = _trajectory_key(history, now_total, lang)
    with _PLOTS_LOCK:
        if key in _PLOTS:
            _PLOTS.move_to_end(key)
            return _PLOTS[key]
    figure = _draw_trajectory(history, now_total, w)
    with _PLOTS_LOCK:
        _PLOTS[key] = figure
        while len(_PLOTS) > PLOT_CACHE:
            _PLOTS.popitem(last=False)
    return figure


def _draw_trajectory(
    history: list[dict[str, Any]], now_total: dict[str, Any] | None, w: dict[str, str]
) -> Figure:
    steps = sorted(history, key=lambda r: r["order"])
    times = [r["as_of"] for r in steps]
    totals = [r["total"] for r in steps]
    if now_total is not None and now_total["as_of"] > times[-1]:
        # the line runs on to the instant the current score is as of
        times.append(now_total["as_of"])
        totals.append(now_total["total"])
    changes = [
        (r["as_of"], r["total"], r["stage"])
        for i, r in enumerate(steps)
        if r["stage"] and (i == 0 or r["stage"] != steps[i - 1]["stage"])
    ]

    def draw(figure: MplFigure) -> None:
        # Fixed margins instead of the constrained layout: the layout pass measures every
        # tick label twice and doubled the time of a lead page.
        figure.set_layout_engine("none")
        ax = figure.add_axes((0.08, 0.2, 0.9, 0.75))
        ax.step(times, totals, where="post", color="#0072B2", linewidth=1.6)
        if changes:
            ax.scatter(
                [c[0] for c in changes],
                [c[1] for c in changes],
                marker="D",
                s=36,
                facecolor="#E69F00",
                edgecolor="#222222",
                linewidth=0.8,
                zorder=3,
            )
            for at, total, stage in changes:
                ax.annotate(
                    stage,
                    (mdates.date2num(at), total),  # type: ignore[no-untyped-call]
                    textcoords="offset points",
                    xytext=(4, 6),
                    fontsize=8,
                )
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        if times[0] == times[-1]:
            # one instant only: an hour either side, not matplotlib's years
            ax.set_xlim(times[0] - timedelta(hours=1), times[0] + timedelta(hours=1))
        ax.set_xlabel(w["axis_time"])
        ax.set_ylabel(w["axis_total"])
        ax.margins(x=0.05, y=0.15)

    return plot("trajectory", w["trajectory_caption"], draw, (8.0, 3.0))


def _interest_labels(model: Any, lang: str) -> dict[str, str]:
    return {i.name: i.text(lang) for i in getattr(model, "interests", [])}


# `path`, so that an id with "/" (sent encoded) reaches the page; `one_segment` checks it
@router.get("/leads/{lead_id:path}", response_class=HTMLResponse)
def lead_page(request: Request, lead_id: str, worked: str | None = None) -> Response:
    """One lead: score card, ledger, timeline with its score trajectory, stakeholders."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    lang = lang_of(request)
    w = words_of(request, WORDS)
    now = service.clock()
    with service.store.read() as conn:
        lead = records.get_lead(conn, lead_id) if one_segment(request, lead_id) else None
        if lead is None:
            missing = {"page": "leads", "missing": w["unknown_lead"].format(lead=lead_id)}
            return render(
                request, "lead.html", missing, page_words=WORDS, session=session, status=404
            )
        model_gone = False
        try:
            card = scorecard.score_card(conn, service.scorer, lead_id, lang)
        except KeyError:  # the model that scored it was deleted
            card, model_gone = None, True
        items, capped = timeline(conn, lead_id)
        stakeholders = None
        if lead.get("account_id"):
            active = service.scorer.registry.active(conn)
            stakeholders = accounts.account_detail(conn, active, lead["account_id"], now)
        sla, o = t.sla_tasks, t.outcomes
        tasks = [
            dict(r)
            for r in conn.execute(
                sa.select(sla)
                .where(sla.c.lead_id == lead_id)
                .order_by(sla.c.id.desc())
                .limit(TASK_LIMIT)
            ).mappings()
        ]
        outcomes = [
            dict(r)
            for r in conn.execute(
                sa.select(o)
                .where(o.c.lead_id == lead_id)
                .order_by(o.c.ts.desc(), o.c.id.desc())
                .limit(OUTCOME_LIMIT)
            ).mappings()
        ]
        interest_names: dict[str, str] = {}
        if card is not None:
            model = service.scorer.registry.load(conn, card.model["id"]).model
            interest_names = _interest_labels(model, lang)
    # the sales queue's words say a deadline the same way on both pages
    due_words = words_of(request, QUEUE_WORDS)
    if card is not None:
        for line in card.ledger:
            # the engine's own lines (floor, stakeholders, ...) have no text in the model
            if line["label"] == line["rule"] and f"r_{line['kind']}" in w:
                line["label"] = w[f"r_{line['kind']}"]
    for task in tasks:
        minutes = int((task["deadline"] - now).total_seconds() // 60)
        task["countdown"] = countdown(minutes, due_words) if task["status"] == "open" else ""
        task["late"] = task["status"] == "open" and minutes < 0
    figure = trajectory(
        [i for i in items if i["kind"] == "score"], card.score if card else None, lang, w
    )
    others: list[dict[str, Any]] = []
    account_name = lead.get("account_id") or ""
    if stakeholders is not None:
        others = [r for r in stakeholders["stakeholders"] if r["lead_id"] != lead_id]
        account_name = (stakeholders["account"] or {}).get("name") or account_name
    intro = w["stakeholders_intro"].format(
        account=account_name,
        engaged=sum(1 for r in others if r["engaged"]),
        leads=len(others),
    )
    if len(others) > STAKEHOLDER_LIMIT:
        intro += " " + w["stakeholders_capped"].format(limit=STAKEHOLDER_LIMIT)
    sum_note = ""
    if card is not None:
        total = f"{card.score['total']:.2f}"
        same = f"{card.ledger_sum:.2f}" == total
        sum_note = w["sum_equals" if same else "sum_differs"].format(total=total)
    context: dict[str, Any] = {
        "page": "leads",
        "lead": lead,
        "fields": [(name, lead.get(name)) for name in _DETAIL_FIELDS],
        "card": card,
        "model_gone": model_gone,
        "interest_names": interest_names,
        "items": items,
        "capped": w["timeline_capped"].format(limit=TIMELINE_LIMIT) if capped else "",
        "figure": fit_svg(figure.html()) if figure is not None else None,
        "stakeholders": stakeholders,
        "account_name": account_name,
        "others": others[:STAKEHOLDER_LIMIT],
        "stakeholders_intro": intro,
        "sum_note": sum_note,
        "tasks": tasks,
        "any_open": any(task["status"] == "open" for task in tasks),
        "outcomes": outcomes,
        "worked": worked is not None,
        "when": when,
    }
    return render(request, "lead.html", context, page_words=WORDS, session=session)
