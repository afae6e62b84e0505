"""The model page: the active YAML, drafts with validation, diff preview, publish, rollback."""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Annotated, Any, Final

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from leadscore.dashboard.i18n import LANGUAGES
from leadscore.dashboard.web import Session, poster, render, service_of, viewer, words_of
from leadscore.errors import ModelError
from leadscore.learn.hybrid import predictor_for
from leadscore.learn.predictive import ArtefactError
from leadscore.model.loader import parse_model
from leadscore.service import registry
from leadscore.service.inputs import Integer
from leadscore.service.preview import Run, moves
from leadscore.store import tables as t

VERSIONS_SHOWN: Final = 50
JOBS_SHOWN: Final = 5
REFRESH_SECONDS: Final = 2
DRAFT: Final = "<draft>"  # the name the loader gives the editor's text in its messages

router = APIRouter(prefix="/ui", include_in_schema=False)

WORDS: Final = {
    "en": {
        "model_intro": "The published scoring model, its versions, and drafts of the next one.",
        "active": "Active model",
        "no_active": "No model is published yet.",
        "name": "Name",
        "version": "Version",
        "status": "Status",
        "created": "Created",
        "published": "Published",
        "source": "YAML source",
        "versions": "Versions",
        "st_draft": "draft",
        "st_published": "published",
        "st_retired": "previously published",
        "open": "Open",
        "jobs": "Publishing and rescoring",
        "no_jobs": "No job has run yet.",
        "job": "Job",
        "kind": "Kind",
        "progress": "Progress",
        "changed_leads": "Changed",
        "k_publish": "publish",
        "k_rescore": "rescore",
        "j_queued": "queued",
        "j_running": "running",
        "j_done": "done",
        "j_failed": "failed",
        "of_leads": "{done} of {total} leads",
        "editor": "Draft editor",
        "editor_help": "Edit the YAML, then validate it or save it as a new draft version.",
        "editor_label": "Model YAML",
        "editing_from": "Starting from version {version} (#{id}).",
        "validate": "Validate",
        "save_draft": "Save draft",
        "valid": "The model is valid. Nothing was saved.",
        "invalid": "The model is not valid; nothing was saved.",
        "at_line": "Line {line}",
        "field": "field",
        "empty_source": "The YAML is empty.",
        "edit_this": "Edit as a new draft",
        "model_n": "Model #{id}",
        "is_active": "This is the active version.",
        "diff": "Changes against the active model",
        "diff_none": "The YAML is the same as the active model's.",
        "diff_no_active": "There is no active model to compare with.",
        "old_line": "Line (active)",
        "new_line": "Line (this version)",
        "change": "Change",
        "text": "Text",
        "added": "added",
        "removed": "removed",
        "unchanged": "unchanged",
        "skipped": "…",
        "preview": "Which leads would change band",
        "preview_help": (
            "Scores every lead with this version as of now and compares with the current "
            "scores. It runs in the background; this page shows the result when it is done."
        ),
        "preview_run": "Preview changes",
        "preview_again": "Run the preview again",
        "preview_none": "No preview has been run for this version yet.",
        "preview_queued": "The preview waits for another one to finish…",
        "preview_running": "The preview is running… {done} of {total} leads.",
        "preview_failed": "The preview failed: {error}",
        "preview_as_of": "As of {as_of}: {leads} leads scored.",
        "preview_stale": (
            "Another model was published since this preview ran; run it again to compare "
            "with the current scores."
        ),
        "stage_moves": "Stage moves",
        "temperature_moves": "Temperature moves",
        "from": "From",
        "to": "To",
        "leads_n": "Leads",
        "no_moves": "No lead would change.",
        "changes_summary": (
            "{temperature} leads would change temperature and {stage} would change stage."
        ),
        "changed_list": "Leads that change band",
        "changed_shown": "The {shown} with the biggest change in points of {all}.",
        "total_before": "Score before",
        "total_after": "Score after",
        "unscored": "not scored",
        "reload": "Reload",
        "publish": "Publish",
        "publish_title": "Publish version {version} (#{id})?",
        "publish_help": (
            "It becomes the active model and every lead is rescored with it in the "
            "background; scores, stages and SLA tasks change as the preview says."
        ),
        "publish_no_preview": "No finished preview of this version; publishing works without one.",
        "published_job": "Publishing started.",
        "job_title": "Job {job}: {kind} of model #{model}",
        "job_running": "Every lead is being rescored; this page reloads itself until it is done.",
        "job_done": "Done: {total} leads rescored, {changed} changed.",
        "job_failed": "The job failed: {error}",
        "finished": "Finished",
        "rollback": "Roll back",
        "rollback_title": "Roll back to the previous version?",
        "rollback_help": (
            "Version {version} (#{id}), published on {published}, becomes the active model "
            "again and every lead is rescored with it in the background."
        ),
        "rollback_none": "There is no earlier published version to roll back to.",
        "rolled_back_job": "Rolling back started.",
        "confirm": "Confirm",
        "back": "Back to the model",
        "missing": "There is no model #{id}.",
        "read_only": "Only administrators may edit, publish or roll back models.",
    },
    "de": {
        "model_intro": (
            "Das veröffentlichte Scoring-Modell, seine Versionen und Entwürfe des nächsten."
        ),
        "active": "Aktives Modell",
        "no_active": "Noch ist kein Modell veröffentlicht.",
        "name": "Name",
        "version": "Version",
        "status": "Status",
        "created": "Erstellt",
        "published": "Veröffentlicht",
        "source": "YAML-Quelltext",
        "versions": "Versionen",
        "st_draft": "Entwurf",
        "st_published": "veröffentlicht",
        "st_retired": "früher veröffentlicht",
        "open": "Öffnen",
        "jobs": "Veröffentlichen und Neuberechnen",
        "no_jobs": "Noch lief kein Auftrag.",
        "job": "Auftrag",
        "kind": "Art",
        "progress": "Fortschritt",
        "changed_leads": "Geändert",
        "k_publish": "Veröffentlichen",
        "k_rescore": "Neuberechnen",
        "j_queued": "wartet",
        "j_running": "läuft",
        "j_done": "fertig",
        "j_failed": "fehlgeschlagen",
        "of_leads": "{done} von {total} Leads",
        "editor": "Entwurfs-Editor",
        "editor_help": ("YAML bearbeiten, dann prüfen oder als neue Entwurfsversion speichern."),
        "editor_label": "Modell-YAML",
        "editing_from": "Ausgangspunkt ist Version {version} (#{id}).",
        "validate": "Prüfen",
        "save_draft": "Entwurf speichern",
        "valid": "Das Modell ist gültig. Nichts wurde gespeichert.",
        "invalid": "Das Modell ist ungültig; nichts wurde gespeichert.",
        "at_line": "Zeile {line}",
        "field": "Feld",
        "empty_source": "Das YAML ist leer.",
        "edit_this": "Als neuen Entwurf bearbeiten",
        "model_n": "Modell #{id}",
        "is_active": "Dies ist die aktive Version.",
        "diff": "Änderungen gegenüber dem aktiven Modell",
        "diff_none": "Das YAML ist dasselbe wie das des aktiven Modells.",
        "diff_no_active": "Es gibt kein aktives Modell zum Vergleichen.",
        "old_line": "Zeile (aktiv)",
        "new_line": "Zeile (diese Version)",
        "change": "Änderung",
        "text": "Text",
        "added": "hinzugefügt",
        "removed": "entfernt",
        "unchanged": "unverändert",
        "skipped": "…",
        "preview": "Welche Leads ihr Band wechseln würden",
        "preview_help": (
            "Berechnet jeden Lead mit dieser Version zum jetzigen Zeitpunkt und vergleicht "
            "mit den aktuellen Scores. Das läuft im Hintergrund; diese Seite zeigt das "
            "Ergebnis, sobald es vorliegt."
        ),
        "preview_run": "Änderungen vorab ansehen",
        "preview_again": "Vorschau erneut berechnen",
        "preview_none": "Für diese Version wurde noch keine Vorschau berechnet.",
        "preview_queued": "Die Vorschau wartet, bis eine andere fertig ist…",
        "preview_running": "Die Vorschau läuft… {done} von {total} Leads.",
        "preview_failed": "Die Vorschau ist fehlgeschlagen: {error}",
        "preview_as_of": "Stand {as_of}: {leads} Leads berechnet.",
        "preview_stale": (
            "Seit dieser Vorschau wurde ein anderes Modell veröffentlicht; für einen Vergleich "
            "mit den aktuellen Scores erneut berechnen."
        ),
        "stage_moves": "Phasenwechsel",
        "temperature_moves": "Temperaturwechsel",
        "from": "Von",
        "to": "Nach",
        "leads_n": "Leads",
        "no_moves": "Kein Lead würde sich ändern.",
        "changes_summary": (
            "{temperature} Leads würden die Temperatur und {stage} die Phase wechseln."
        ),
        "changed_list": "Leads, die ihr Band wechseln",
        "changed_shown": "Die {shown} mit der größten Punkteänderung von {all}.",
        "total_before": "Score vorher",
        "total_after": "Score nachher",
        "unscored": "nicht berechnet",
        "reload": "Neu laden",
        "publish": "Veröffentlichen",
        "publish_title": "Version {version} (#{id}) veröffentlichen?",
        "publish_help": (
            "Sie wird das aktive Modell, und jeder Lead wird im Hintergrund damit neu "
            "berechnet; Scores, Phasen und SLA-Aufgaben ändern sich wie in der Vorschau."
        ),
        "publish_no_preview": (
            "Keine fertige Vorschau dieser Version; veröffentlichen geht auch ohne."
        ),
        "published_job": "Veröffentlichung gestartet.",
        "job_title": "Auftrag {job}: {kind} von Modell #{model}",
        "job_running": (
            "Jeder Lead wird neu berechnet; diese Seite lädt sich neu, bis das fertig ist."
        ),
        "job_done": "Fertig: {total} Leads neu berechnet, {changed} geändert.",
        "job_failed": "Der Auftrag ist fehlgeschlagen: {error}",
        "finished": "Beendet",
        "rollback": "Zurückrollen",
        "rollback_title": "Auf die vorige Version zurückrollen?",
        "rollback_help": (
            "Version {version} (#{id}), veröffentlicht am {published}, wird wieder das aktive "
            "Modell, und jeder Lead wird im Hintergrund damit neu berechnet."
        ),
        "rollback_none": "Es gibt keine früher veröffentlichte Version zum Zurückrollen.",
        "rolled_back_job": "Zurückrollen gestartet.",
        "confirm": "Bestätigen",
        "back": "Zurück zum Modell",
        "missing": "Es gibt kein Modell #{id}.",
        "read_only": "Nur Administratoren dürfen Modelle bearbeiten, veröffentlichen oder "
        "zurückrollen.",
    },
}

_PROBLEM = re.compile(
    r"^(?:" + re.escape(DRAFT) + r")(?::(?P<line>\d+))?: (?:(?P<field>[\w.\[\]-]+): )?(?P<msg>.*)$"
)


def when(value: datetime | None) -> str:
    """A stored (naive UTC) instant as people read it."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def problems(message: str, w: dict[str, str]) -> list[dict[str, Any]]:
    """The loader's `<draft>:line: field: message` lines, split for the page."""
    out = []
    for text in message.splitlines():
        found = _PROBLEM.match(text)
        if found is None:
            out.append({"line": None, "where": "", "message": text})
            continue
        line = found.group("line")
        where = [w["at_line"].format(line=line)] if line else []
        if found.group("field"):
            where.append(f"{w['field']} {found.group('field')}")
        out.append({"line": line, "where": ", ".join(where), "message": found.group("msg")})
    return out


def yaml_diff(old: str, new: str) -> list[dict[str, Any]]:
    """Changed lines with three lines of context around them, in hunks."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for hunk in matcher.get_grouped_opcodes(3):
        if rows:
            rows.append({"kind": "skip"})
        for tag, i1, i2, j1, j2 in hunk:
            if tag == "equal":
                rows += [
                    {"kind": "same", "old": i + 1, "new": j + 1, "text": a[i]}
                    for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
                ]
                continue
            rows += [
                {"kind": "del", "old": i + 1, "new": None, "text": a[i]} for i in range(i1, i2)
            ]
            rows += [
                {"kind": "add", "old": None, "new": j + 1, "text": b[j]} for j in range(j1, j2)
            ]
    return rows


def _model_row(conn: sa.Connection, model_id: int | None) -> dict[str, Any] | None:
    return None if model_id is None else registry.get_model_row(conn, model_id)


def _versions(conn: sa.Connection) -> list[dict[str, Any]]:
    cols = [c for c in t.models.columns if c.name != "source"]
    query = sa.select(*cols).order_by(t.models.c.id.desc()).limit(VERSIONS_SHOWN)
    return [dict(r) for r in conn.execute(query).mappings()]


def _jobs(conn: sa.Connection) -> list[dict[str, Any]]:
    query = sa.select(t.jobs).order_by(t.jobs.c.id.desc()).limit(JOBS_SHOWN)
    return [dict(r) for r in conn.execute(query).mappings()]


def _here(request: Request) -> str:
    # a refresh to the same address with a #fragment would only scroll, so name it without
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _busy(jobs: list[dict[str, Any]]) -> bool:
    return any(j["status"] in ("queued", "running") for j in jobs)


def _overview(
    request: Request,
    session: Session,
    *,
    source: str | None = None,
    start: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    valid: bool = False,
    status: int = 200,
) -> HTMLResponse:
    service = service_of(request)
    with service.store.read() as conn:
        active_id = registry.active_id(conn)
        active = _model_row(conn, active_id)
        versions = _versions(conn)
        jobs = _jobs(conn)
        previous = registry.previous_published(conn) if session.user.admin else None
        origin = active
        if start is not None and session.user.admin:
            origin = _model_row(conn, start) or active
    context = {
        "page": "model",
        "active": active,
        "lines": active["source"].splitlines() if active else [],
        "versions": versions,
        "jobs": jobs,
        "previous": previous,
        "origin": origin if origin is not active else None,
        "source": source if source is not None else (origin["source"] if origin else ""),
        "errors": errors or [],
        "valid": valid,
        "when": when,
    }
    return render(request, "model.html", context, page_words=WORDS, session=session, status=status)


@router.get("/model", response_class=HTMLResponse)
def model_page(
    request: Request,
    start: Integer | None = None,
) -> Response:
    """The active model, its versions, jobs and (for admins) the draft editor; `start` picks
    the version the editor starts from."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    return _overview(request, session, start=start)


@router.get("/model/drafts")
def drafts_page(request: Request) -> Response:
    """The editor's answer page asked for again (a language link): the model page."""
    lang = request.query_params.get("lang")
    query = f"?lang={lang}" if lang in LANGUAGES else ""
    return RedirectResponse(f"/ui/model{query}", status_code=303)


@router.post("/model/drafts")
def save_draft(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    source: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
) -> Response:
    """Validate the editor's YAML, and store it as a new draft version when asked to."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    w = words_of(request, WORDS)
    # browsers send a textarea's line breaks as CRLF; the stored YAML keeps plain ones
    source = source.replace("\r\n", "\n")
    if not source.strip():
        errors = [{"line": None, "where": "", "message": w["empty_source"]}]
        return _overview(request, session, source=source, errors=errors, status=422)
    try:
        if action == "validate":
            model = parse_model(source, DRAFT)
            predictor_for(model, service.scorer.registry.artefacts)  # a hybrid's artefact loads
            return _overview(request, session, source=source, valid=True)
        with service.store.write() as conn:  # one transaction: a draft that fails is not kept
            model_id = registry.add_draft(conn, source, service.clock(), DRAFT)
            service.scorer.registry.load(conn, model_id)
    except (ModelError, ArtefactError) as exc:
        errors = problems(str(exc), w)
        return _overview(request, session, source=source, errors=errors, status=422)
    return RedirectResponse(f"/ui/model/{model_id}", status_code=303)


def _missing(request: Request, session: Session, model_id: int) -> HTMLResponse:
    context = {"page": "model", "missing": model_id}
    return render(
        request, "model_version.html", context, page_words=WORDS, session=session, status=404
    )


def _preview_context(run: Run | None, active_id: int | None) -> dict[str, Any]:
    if run is None:
        return {"run": None}
    result = run.result
    context: dict[str, Any] = {
        "run": run,
        "stale": run.against != active_id,
        "as_of": when(run.as_of),
    }
    if result is not None:
        context.update(
            result=result,
            stage_moves=moves(result.stage_moves),
            temperature_moves=moves(result.temperature_moves),
        )
    return context


@router.get("/model/{model_id:int}", response_class=HTMLResponse)
def version_page(request: Request, model_id: Integer) -> Response:
    """One version: its YAML, the diff against the active one, the preview, publish."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        row = registry.get_model_row(conn, model_id)
        active_id = registry.active_id(conn)
        active = _model_row(conn, active_id)
        jobs = _jobs(conn)
    if row is None:
        return _missing(request, session, model_id)
    run = service.previews.get(model_id)
    # the page has no form to lose: it reloads itself until the preview is done
    busy = run is not None and not run.finished
    context = {
        "page": "model",
        "model": row,
        "lines": row["source"].splitlines(),
        "is_active": model_id == active_id,
        "has_active": active is not None,
        "diff": yaml_diff(active["source"], row["source"]) if active else [],
        "jobs": jobs,
        "when": when,
        "refresh": REFRESH_SECONDS if busy else None,
        "url": _here(request),
        **_preview_context(run, active_id),
    }
    return render(request, "model_version.html", context, page_words=WORDS, session=session)


@router.post("/model/{model_id:int}/preview")
def start_preview(
    request: Request, model_id: Integer, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Start scoring every lead with this version in the background."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        if registry.get_model_row(conn, model_id) is None:
            return _missing(request, session, model_id)
        draft = service.scorer.registry.load(conn, model_id)
        active_id = registry.active_id(conn)
    service.previews.start(draft, service.clock(), active_id)
    return RedirectResponse(f"/ui/model/{model_id}#preview", status_code=303)


@router.get("/model/{model_id:int}/publish", response_class=HTMLResponse)
def confirm_publish(request: Request, model_id: Integer) -> Response:
    """Ask before publishing, with the preview's summary when there is one."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        row = registry.get_model_row(conn, model_id)
        active_id = registry.active_id(conn)
    if row is None:
        return _missing(request, session, model_id)
    run = service.previews.get(model_id)
    context = {
        "page": "model",
        "what": "publish",
        "model": row,
        "action": f"/ui/model/{model_id}/publish",
        **_preview_context(run if run is not None and run.result else None, active_id),
    }
    return render(request, "model_confirm.html", context, page_words=WORDS, session=session)


@router.post("/model/{model_id:int}/publish")
def publish(request: Request, model_id: Integer, csrf: Annotated[str, Form()] = "") -> Response:
    """Publish the version; every lead is rescored in a background job."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        if registry.get_model_row(conn, model_id) is None:
            return _missing(request, session, model_id)
    job_id = service.jobs.publish(model_id)
    return RedirectResponse(f"/ui/model/jobs/{job_id}?started=publish", status_code=303)


def _rollback_page(request: Request, session: Session, status: int = 200) -> HTMLResponse:
    service = service_of(request)
    with service.store.read() as conn:
        row = _model_row(conn, registry.previous_published(conn))
    context = {"page": "model", "what": "rollback", "model": row, "action": "/ui/model/rollback"}
    if row is not None:
        context["published_when"] = when(row["published_at"])
    return render(
        request, "model_confirm.html", context, page_words=WORDS, session=session, status=status
    )


@router.get("/model/rollback", response_class=HTMLResponse)
def confirm_rollback(request: Request) -> Response:
    """Ask before rolling back, naming the version that comes back."""
    session = viewer(request, admin=True)
    if isinstance(session, Response):
        return session
    return _rollback_page(request, session)


@router.post("/model/rollback")
def rollback(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """Publish again the version that was live before the current one."""
    session = poster(request, csrf, admin=True)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        previous = registry.previous_published(conn)
    if previous is None:
        return _rollback_page(request, session, status=409)
    job_id = service.jobs.publish(previous)
    return RedirectResponse(f"/ui/model/jobs/{job_id}?started=rollback", status_code=303)


@router.get("/model/jobs/{job_id:int}", response_class=HTMLResponse)
def job_page(request: Request, job_id: Integer, started: str | None = None) -> Response:
    """One publish or rescore job with its progress; reloads itself until it is done."""
    session = viewer(request)
    if isinstance(session, Response):
        return session
    service = service_of(request)
    with service.store.read() as conn:
        row = conn.execute(sa.select(t.jobs).where(t.jobs.c.id == job_id)).mappings().first()
    w = words_of(request, WORDS)
    if row is None:
        context: dict[str, Any] = {"page": "model", "missing_job": job_id}
        return render(
            request, "model_job.html", context, page_words=WORDS, session=session, status=404
        )
    job = dict(row)
    notices = {"publish": w["published_job"], "rollback": w["rolled_back_job"]}
    context = {
        "page": "model",
        "job": job,
        "notice": notices.get(started or ""),
        "refresh": REFRESH_SECONDS if _busy([job]) else None,
        "url": _here(request),
        "when": when,
    }
    return render(request, "model_job.html", context, page_words=WORDS, session=session)
