"""Reports of the evaluate layer: backtest, sample, cases, channels, capacity, with plots.

A page view only reads: the forms' defaults come from two indexed lookups (the first and
last outcome) and the list of runs is bounded. Running a report is a posted form; the
report runs in the background (`leadscore.service.reports`) and its page reloads until the
stored result is there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard.security import fit_svg
from leadscore.dashboard.web import poster, render, service_of, viewer, words_of
from leadscore.service import reports as runs
from leadscore.service.inputs import Integer
from leadscore.service.reports import KINDS, outcome_span
from leadscore.timestamps import TimestampError, parse_timestamp

router = APIRouter(prefix="/ui", include_in_schema=False)

RUNS_SHOWN: Final = 50
HORIZON_DAYS: Final = 90
REFRESH_SECONDS: Final = 2

WORDS: Final = {
    "en": {
        "reports_intro": (
            "Evaluate the published model on the leads in the store. A report reads every "
            "lead, so it runs in the background; its result is kept below."
        ),
        "backtest": "Backtest",
        "backtest_intro": "Score every lead as of a cut-off and judge it by who was won within "
        "the horizon after it (AUC, lift, calibration).",
        "capacity": "Capacity",
        "capacity_intro": "The score threshold that sends sales at most the leads they can take "
        "a week, and the conversion above and below it.",
        "channels": "Channels",
        "channels_intro": "Conversion, hot share and value per lead source, campaign and "
        "content stage.",
        "sample": "Sample",
        "sample_intro": "A seeded random sample from every stage with each lead's ledger, for "
        "review.",
        "cases": "Cases",
        "cases_intro": "Recently won, lost and created leads: their score after every event.",
        "run_backtest": "Run backtest",
        "run_capacity": "Run capacity",
        "run_channels": "Run channels",
        "run_sample": "Run sample",
        "run_cases": "Run cases",
        "field_cutoff": "Cut-off (UTC)",
        "field_as_of": "As of (UTC)",
        "field_horizon_days": "Horizon (days)",
        "field_per_week": "Leads sales can take a week",
        "field_weeks": "Weeks of inflow",
        "field_per_stage": "Leads per stage",
        "field_seed": "Seed",
        "field_won": "Won leads",
        "field_lost": "Lost leads",
        "field_recent": "Recent open leads",
        "hint_date": "YYYY-MM-DD or YYYY-MM-DD HH:MM",
        "bad_date": "enter a date like 2025-10-01 or a date and time like 2025-10-01 14:30, "
        "optionally with a UTC offset (Z, +02:00); not a zone name such as CET",
        "bad_whole": "enter a whole number from {low} to {high}",
        "bad_number": "enter a number greater than 0 and at most {high}",
        "runs": "Runs",
        "no_runs": "No report has been run yet.",
        "kind": "Report",
        "parameters": "Parameters",
        "asked_by": "Asked by",
        "asked_at": "Asked at (UTC)",
        "status": "Status",
        "duration": "Duration",
        "summary": "Summary",
        "status_queued": "queued",
        "status_running": "running…",
        "status_done": "done",
        "status_failed": "failed",
        "run_title": "{kind} report #{id}",
        "still_running": "The report is running; this page reloads every 2 seconds.",
        "failed_because": "The report could not be made:",
        "back": "All reports",
        "content_english": "The report itself is in English.",
        "no_such_run": "There is no report #{id}.",
        "queued_notice": "The report is queued.",
        "busy_mine": "{limit} of your reports are already waiting or running, as many as "
        "may wait at once. Run this one when one of them has finished.",
        "busy_all": "{limit} reports are already waiting or running, as many as may wait at "
        "once for everyone. Try again when one of them has finished.",
        "thousands": ",",
    },
    "de": {
        "reports_intro": (
            "Das veröffentlichte Modell an den Leads im Speicher prüfen. Ein Bericht liest "
            "jeden Lead und läuft deshalb im Hintergrund; sein Ergebnis bleibt unten erhalten."
        ),
        "backtest": "Backtest",
        "backtest_intro": "Jeden Lead zum Stichtag bewerten und daran messen, wer im Zeitraum "
        "danach gewonnen wurde (AUC, Lift, Kalibrierung).",
        "capacity": "Kapazität",
        "capacity_intro": "Die Score-Schwelle, die dem Vertrieb höchstens so viele Leads pro "
        "Woche schickt, wie er bearbeiten kann, und die Konversion darüber und darunter.",
        "channels": "Kanäle",
        "channels_intro": "Konversion, Anteil heißer Leads und Wert je Quelle, Kampagne und "
        "Content-Phase.",
        "sample": "Stichprobe",
        "sample_intro": "Eine reproduzierbare Zufallsstichprobe aus jeder Phase mit dem "
        "Punktekonto jedes Leads, zur Durchsicht.",
        "cases": "Fälle",
        "cases_intro": "Zuletzt gewonnene, verlorene und neue Leads: ihr Score nach jedem "
        "Ereignis.",
        "run_backtest": "Backtest starten",
        "run_capacity": "Kapazität berechnen",
        "run_channels": "Kanäle auswerten",
        "run_sample": "Stichprobe ziehen",
        "run_cases": "Fälle zeigen",
        "field_cutoff": "Stichtag (UTC)",
        "field_as_of": "Stand (UTC)",
        "field_horizon_days": "Zeitraum (Tage)",
        "field_per_week": "Leads, die der Vertrieb pro Woche schafft",
        "field_weeks": "Wochen Zulauf",
        "field_per_stage": "Leads pro Phase",
        "field_seed": "Startwert",
        "field_won": "Gewonnene Leads",
        "field_lost": "Verlorene Leads",
        "field_recent": "Neue offene Leads",
        "hint_date": "JJJJ-MM-TT oder JJJJ-MM-TT HH:MM",
        "bad_date": "ein Datum wie 2025-10-01 oder Datum und Uhrzeit wie 2025-10-01 14:30 "
        "eingeben, wahlweise mit UTC-Versatz (Z, +02:00); keinen Zonennamen wie CET",
        "bad_whole": "eine ganze Zahl von {low} bis {high} eingeben",
        "bad_number": "eine Zahl größer als 0 und höchstens {high} eingeben",
        "runs": "Läufe",
        "no_runs": "Es wurde noch kein Bericht erstellt.",
        "kind": "Bericht",
        "parameters": "Parameter",
        "asked_by": "Angefordert von",
        "asked_at": "Angefordert am (UTC)",
        "status": "Status",
        "duration": "Dauer",
        "summary": "Zusammenfassung",
        "status_queued": "wartet",
        "status_running": "läuft…",
        "status_done": "fertig",
        "status_failed": "fehlgeschlagen",
        "run_title": "Bericht {kind} Nr. {id}",
        "still_running": "Der Bericht läuft; diese Seite lädt alle 2 Sekunden neu.",
        "failed_because": "Der Bericht konnte nicht erstellt werden:",
        "back": "Alle Berichte",
        "content_english": "Der Bericht selbst ist auf Englisch.",
        "no_such_run": "Es gibt keinen Bericht Nr. {id}.",
        "queued_notice": "Der Bericht wartet auf seinen Lauf.",
        "busy_mine": "{limit} Ihrer Berichte warten oder laufen schon, so viele wie "
        "gleichzeitig warten dürfen. Starten Sie diesen, wenn einer fertig ist.",
        "busy_all": "{limit} Berichte warten oder laufen schon, so viele wie für alle "
        "gleichzeitig warten dürfen. Versuchen Sie es erneut, wenn einer fertig ist.",
        "thousands": ".",
    },
}


@dataclass(frozen=True)
class Field:
    """A form field: how its text becomes a value, and the range it must lie in."""

    name: str
    kind: str  # date, whole, number
    low: float = 0
    high: float = 0


FIELDS: Final = {
    f.name: f
    for f in (
        Field("cutoff", "date"),
        Field("as_of", "date"),
        Field("horizon_days", "whole", 1, 3650),
        Field("per_week", "number", 0, 1_000_000),
        Field("weeks", "whole", 1, 520),
        Field("per_stage", "whole", 1, 100),
        Field("seed", "whole", 0, 2**31 - 1),
        Field("won", "whole", 0, 100),
        Field("lost", "whole", 0, 100),
        Field("recent", "whole", 0, 100),
    )
}

FORMS: Final[dict[str, tuple[str, ...]]] = {
    "backtest": ("cutoff", "horizon_days"),
    "capacity": ("per_week", "cutoff", "weeks", "horizon_days"),
    "channels": ("as_of",),
    "sample": ("per_stage", "seed", "as_of"),
    "cases": ("won", "lost", "recent", "as_of"),
}


def parse_when(text: str) -> datetime | None:
    """A date or date and time as typed, as naive UTC by the one timestamp rule of files, the
    API and the CLI (leadscore.timestamps); None if it is none."""
    try:
        return parse_timestamp(text)
    except TimestampError:
        return None


def _grouped(number: float, w: Mapping[str, str]) -> str:
    return f"{number:,.0f}".replace(",", w["thousands"])


def parse_field(field: Field, text: str, w: Mapping[str, str]) -> tuple[Any, str | None]:
    """A field's value from its text, or the message saying what is wrong."""
    text = text.strip()
    if field.kind == "date":
        when = parse_when(text) if text else None
        return (None, w["bad_date"]) if when is None else (when.isoformat(), None)
    if field.kind == "whole":
        bad = w["bad_whole"].format(low=_grouped(field.low, w), high=_grouped(field.high, w))
        try:
            number = int(text)
        except ValueError:
            return None, bad
        return (number, None) if field.low <= number <= field.high else (None, bad)
    bad = w["bad_number"].format(high=_grouped(field.high, w))
    try:
        real = float(text)
    except ValueError:
        return None, bad
    ok = real > field.low and real <= field.high  # also false for nan
    return (real, None) if ok else (None, bad)


def _shown(when: datetime) -> str:
    if when.hour == when.minute == when.second == when.microsecond == 0:
        return when.date().isoformat()
    return when.isoformat(sep=" ", timespec="minutes")


def defaults(span: tuple[datetime, datetime] | None, now: datetime) -> dict[str, str]:
    """What each field holds before anyone types: a cut-off the outcomes in the store
    support (a full horizon before the last outcome, else halfway through them), now as
    the as-of, and the CLI's defaults."""
    horizon = timedelta(days=HORIZON_DAYS)
    if span is None:
        cutoff = now - horizon
    else:
        first, last = span
        cutoff = last - horizon if last - horizon > first else first + (last - first) / 2
    day = datetime(cutoff.year, cutoff.month, cutoff.day)
    return {
        "cutoff": _shown(day),
        "as_of": _shown(now.replace(second=0, microsecond=0)),
        "horizon_days": str(HORIZON_DAYS),
        "per_week": "20",
        "weeks": "12",
        "per_stage": "10",
        "seed": "0",
        "won": "10",
        "lost": "10",
        "recent": "10",
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _params_text(params: Mapping[str, Any], w: Mapping[str, str]) -> str:
    parts = []
    for name, value in params.items():
        label = w.get(f"field_{name}", name)
        if FIELDS.get(name, Field(name, "")).kind == "date":
            parsed = parse_when(str(value))
            value = _shown(parsed) if parsed is not None else value
        parts.append(f"{label}: {value}")
    return "; ".join(parts)


def _run_view(run: dict[str, Any], w: Mapping[str, str]) -> dict[str, Any]:
    return {
        **run,
        "kind_label": w.get(run["kind"], run["kind"]),
        "params_text": _params_text(run["params"] or {}, w),
        "status_label": w.get(f"status_{run['status']}", run["status"]),
        "duration": _duration(run["seconds"]),
        "created": run["created_at"].isoformat(sep=" ", timespec="seconds"),
    }


def _page(
    request: Request,
    session: Any,
    *,
    failed_kind: str | None = None,
    typed: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    busy: str = "",
    status: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    w = words_of(request, WORDS)
    with service.store.read() as conn:
        span = outcome_span(conn)
        recent = runs.recent_runs(conn, RUNS_SHOWN)
    start = defaults(span, service.clock())
    forms = []
    for kind in KINDS:
        mine = kind == failed_kind
        fields = []
        for name in FORMS[kind]:
            error = (errors or {}).get(name) if mine else None
            fields.append(
                {
                    "name": name,
                    "id": f"{kind}-{name}",
                    "label": w[f"field_{name}"],
                    "value": (typed or {}).get(name, start[name]) if mine else start[name],
                    "error": error,
                    "date": FIELDS[name].kind == "date",
                    "numeric": FIELDS[name].kind != "date",
                }
            )
        forms.append({"kind": kind, "fields": fields})
    context = {
        "forms": forms,
        "runs": [_run_view(r, w) for r in recent],
        "busy": busy,
        "busy_kind": failed_kind if busy else None,
        "page": "reports",
    }
    return render(
        request, "reports.html", context, page_words=WORDS, session=session, status=status
    )


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request) -> Response:
    """The five report kinds with a form each, and the latest runs."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    return _page(request, session)


@router.post("/reports")
def run_report(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "",
    cutoff: Annotated[str | None, Form()] = None,
    as_of: Annotated[str | None, Form()] = None,
    horizon_days: Annotated[str | None, Form()] = None,
    per_week: Annotated[str | None, Form()] = None,
    weeks: Annotated[str | None, Form()] = None,
    per_stage: Annotated[str | None, Form()] = None,
    seed: Annotated[str | None, Form()] = None,
    won: Annotated[str | None, Form()] = None,
    lost: Annotated[str | None, Form()] = None,
    recent: Annotated[str | None, Form()] = None,
) -> Response:
    """Queue a report with the form's parameters and show its page (which reloads until done)."""
    session = poster(request, csrf)
    if isinstance(session, Response):
        return session
    if kind not in FORMS:
        return Response(f"unknown report kind {kind!r}", status_code=400)
    posted = {
        "cutoff": cutoff,
        "as_of": as_of,
        "horizon_days": horizon_days,
        "per_week": per_week,
        "weeks": weeks,
        "per_stage": per_stage,
        "seed": seed,
        "won": won,
        "lost": lost,
        "recent": recent,
    }
    w = words_of(request, WORDS)
    typed = {name: posted[name] or "" for name in FORMS[kind]}
    params: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in FORMS[kind]:
        value, error = parse_field(FIELDS[name], typed[name], w)
        if error is not None:
            errors[name] = f"{w[f'field_{name}']}: {error}"
        else:
            params[name] = value
    if errors:
        return _page(request, session, failed_kind=kind, typed=typed, errors=errors, status=422)
    try:
        run_id = runs.reports_of(service_of(request)).submit(kind, params, session.user.username)
    except runs.ReportsBusy as exc:
        busy = w["busy_mine" if exc.mine else "busy_all"].format(limit=exc.limit)
        return _page(request, session, failed_kind=kind, typed=typed, busy=busy, status=429)
    return RedirectResponse(f"/ui/reports/{run_id}", status_code=303)


@router.get("/reports/{run_id}", response_class=HTMLResponse)
def report_page(request: Request, run_id: Integer) -> Response:
    """One run: its parameters and state, and its report once it is done."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    w = words_of(request, WORDS)
    with service.store.read() as conn:
        run = runs.run_row(conn, run_id)
    if run is None:
        missing = {"page": "reports", "missing": w["no_such_run"].format(id=run_id)}
        return render(
            request,
            "reports_run.html",
            missing,
            page_words=WORDS,
            session=session,
            status=404,
        )
    view = _run_view(run, w)
    busy = run["status"] in ("queued", "running")
    context: dict[str, Any] = {
        "page": "reports",
        "run": view,
        "title": w["run_title"].format(kind=view["kind_label"], id=run_id),
        "busy": busy,
        "refresh": REFRESH_SECONDS,
        # the evaluate layer escapes every text it puts into its HTML; the SVG is its own
        "result": fit_svg(run["result"]) if run["result"] else None,
    }
    page = render(request, "reports_run.html", context, page_words=WORDS, session=session)
    if busy:
        page.headers["Refresh"] = str(REFRESH_SECONDS)
    return page
