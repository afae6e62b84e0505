"""Evaluation reports on the service's own data, run in the background and kept as HTML.

A report reads every lead (`store_dataset`) and takes seconds with many leads, so asking for
one stores a `report_runs` row and a thread runs it, one report at a time; the finished row
holds the report's sections (HTML with inline SVG plots) and a one-line summary, or the
error the evaluate layer gave. Reading a finished report never reruns it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa

from leadscore.errors import LeadscoreError
from leadscore.evaluate import report
from leadscore.evaluate.backtest import backtest as run_backtest
from leadscore.evaluate.capacity import capacity as run_capacity
from leadscore.evaluate.cases import cases as run_cases
from leadscore.evaluate.channels import channels as run_channels
from leadscore.evaluate.sample import sample as run_sample
from leadscore.model.scoring import ScoringModel
from leadscore.service.clock import Clock
from leadscore.service.dataset import store_dataset
from leadscore.service.registry import Registry
from leadscore.store import tables as t
from leadscore.store.database import Store

if TYPE_CHECKING:
    from leadscore.service.app import Service

log = logging.getLogger("leadscore.service")

KINDS: Final = ("backtest", "capacity", "channels", "sample", "cases")
INTERRUPTED: Final = "the service stopped before the report finished; run it again"
# Runs waiting or running at once: per user, and for everyone (each waits for a thread and
# reads every lead); and how many runs are kept at all, newest first, with their HTML.
WAITING_PER_USER: Final = 3
WAITING_IN_ALL: Final = 10
KEPT_RUNS: Final = 100


class ReportsBusy(LeadscoreError):
    """Too many reports are waiting or running: the user's own (`mine`) or everyone's."""

    def __init__(self, message: str, *, mine: bool, limit: int) -> None:
        super().__init__(message)
        self.mine = mine
        self.limit = limit


@dataclass(frozen=True)
class Finished:
    """A report's HTML (its sections, for a page of ours) and a one-line summary."""

    title: str
    html: str
    summary: str


def _when(params: Mapping[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(str(params[key]))


def _pct(won: int, leads: int) -> str:
    return f"{won / leads:.1%}" if leads else "-"


def evaluate(model: ScoringModel, store: Store, kind: str, params: Mapping[str, Any]) -> Finished:
    """Run one report on everything in the store; LeadscoreError says why the data refuses."""
    data = store_dataset(store)
    summary: str
    if kind == "backtest":
        bt = run_backtest(
            model, data, _when(params, "cutoff"), timedelta(days=params["horizon_days"])
        )
        built = report.backtest_report(bt, bt.per_lead)
        auc = "-" if bt.auc is None else f"{bt.auc:.3f}"
        summary = (
            f"AUC {auc}; {bt.truth.leads:,} leads, {bt.truth.won:,} won "
            f"({_pct(bt.truth.won, bt.truth.leads)})"
        )
    elif kind == "capacity":
        cap = run_capacity(
            model,
            data,
            _when(params, "cutoff"),
            float(params["per_week"]),
            horizon=timedelta(days=params["horizon_days"]),
            weeks=int(params["weeks"]),
        )
        built = report.capacity_report(cap)
        summary = (
            f"T = {cap.threshold:g}: {cap.leads_per_week:,.1f} leads a week "
            f"(sales can take {cap.per_week:g})"
            if cap.threshold is not None
            else f"no threshold sends at most {cap.per_week:g} leads a week"
        )
    elif kind == "channels":
        ch = run_channels(model, data, _when(params, "as_of"))
        built = report.channels_report(ch)
        summary = f"{ch.leads:,} leads, {ch.won:,} won ({_pct(ch.won, ch.leads)})"
    elif kind == "sample":
        sm = run_sample(
            model,
            data,
            _when(params, "as_of"),
            per_stage=int(params["per_stage"]),
            seed=int(params["seed"]),
        )
        built = report.sample_report(sm)
        summary = f"{len(sm.leads):,} leads from {len(sm.strata):,} stages"
    elif kind == "cases":
        as_of = _when(params, "as_of")
        found = run_cases(
            model,
            data,
            as_of,
            won=int(params["won"]),
            lost=int(params["lost"]),
            recent=int(params["recent"]),
        )
        built = report.cases_report(
            found, title=f"Cases: {model.name} {model.version}", as_of=as_of
        )
        counts = {k: sum(c.kind == k for c in found) for k in ("won", "lost", "recent")}
        summary = ", ".join(f"{n:,} {k}" for k, n in counts.items())
    else:
        raise ValueError(f"unknown report kind {kind!r}")
    html = (f'<p class="meta">{escape(built.subtitle)}</p>\n' if built.subtitle else "") + (
        built.body()
    )
    return Finished(built.title, html, summary)


class Reports:
    """Runs asked-for reports in background threads, one at a time, recording each in
    `report_runs`."""

    def __init__(self, store: Store, clock: Clock, registry: Registry) -> None:
        # not the Service itself: the runner is looked up weakly by it
        self.store = store
        self.clock = clock
        self.registry = registry
        self._one_at_a_time = threading.Lock()
        self._checked = False

    def submit(self, kind: str, params: Mapping[str, Any], username: str) -> int:
        """Store a queued run and start it in the background; returns the run's id.
        ReportsBusy when the user, or everyone, has as many runs waiting as allowed."""
        if kind not in KINDS:
            raise ValueError(f"unknown report kind {kind!r}")
        runs = t.report_runs
        with self.store.write() as conn:
            if not self._checked:
                # runs a previous process left unfinished will never finish
                conn.execute(
                    runs.update()
                    .where(runs.c.status.in_(("queued", "running")))
                    .values(status="failed", error=INTERRUPTED, finished_at=self.clock())
                )
                self._checked = True
            _check_room(conn, username)
            run_id = int(
                conn.execute(
                    runs.insert().returning(runs.c.id),
                    {
                        "kind": kind,
                        "params": dict(params),
                        "requested_by": username,
                        "status": "queued",
                        "created_at": self.clock(),
                    },
                ).scalar_one()
            )
            # only the newest runs are kept: older finished ones go, with their HTML
            conn.execute(
                runs.delete().where(
                    runs.c.id <= run_id - KEPT_RUNS, runs.c.status.in_(("done", "failed"))
                )
            )
        threading.Thread(
            target=self._run,
            args=(run_id, kind, dict(params)),
            name=f"leadscore-report-{run_id}",
            # like the service's other threads: stopping the service abandons a run (the
            # next runner marks it interrupted)
            daemon=True,
        ).start()
        return run_id

    def _update(self, run_id: int, **values: Any) -> None:
        runs = t.report_runs
        with self.store.write() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def _run(self, run_id: int, kind: str, params: dict[str, Any]) -> None:
        with self._one_at_a_time:
            self._run_now(run_id, kind, params)

    def _run_now(self, run_id: int, kind: str, params: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            self._update(run_id, status="running")
            with self.store.read() as conn:
                active = self.registry.active(conn)
            if active is None:
                raise LeadscoreError("no model is published yet: publish one first")
            done = evaluate(active.model, self.store, kind, params)
        except LeadscoreError as exc:
            self._finish(run_id, started, status="failed", error=str(exc))
        except Exception as exc:  # a bug, not the data: say so in the run, keep serving
            log.exception("report run %s failed", run_id)
            self._finish(run_id, started, status="failed", error=f"internal error: {exc}")
        else:
            self._finish(run_id, started, status="done", result=done.html, summary=done.summary)

    def _finish(self, run_id: int, started: float, **values: Any) -> None:
        try:
            self._update(
                run_id,
                finished_at=self.clock(),
                seconds=round(time.perf_counter() - started, 3),
                **values,
            )
        except Exception:  # the store went away (the service is stopping)
            log.exception("could not record the end of report run %s", run_id)


def _check_room(conn: sa.Connection, username: str) -> None:
    runs = t.report_runs
    waiting = runs.c.status.in_(("queued", "running"))
    mine = sa.func.sum(sa.case((runs.c.requested_by == username, 1), else_=0))
    row = conn.execute(sa.select(sa.func.count(), mine).where(waiting)).one()
    in_all, own = int(row[0]), int(row[1] or 0)
    if own >= WAITING_PER_USER:
        raise ReportsBusy(
            f"{own} of your reports are waiting or running (at most {WAITING_PER_USER}); "
            "run another when one has finished",
            mine=True,
            limit=WAITING_PER_USER,
        )
    if in_all >= WAITING_IN_ALL:
        raise ReportsBusy(
            f"{in_all} reports are waiting or running (at most {WAITING_IN_ALL} for everyone); "
            "try again when one has finished",
            mine=False,
            limit=WAITING_IN_ALL,
        )


_RUNNERS: weakref.WeakKeyDictionary[Service, Reports] = weakref.WeakKeyDictionary()
_RUNNERS_LOCK = threading.Lock()


def reports_of(service: Service) -> Reports:
    """The report runner of a service (one per service, made on first use)."""
    with _RUNNERS_LOCK:
        found = _RUNNERS.get(service)
        if found is None:
            found = _RUNNERS[service] = Reports(
                service.store, service.clock, service.scorer.registry
            )
        return found


def run_row(conn: sa.Connection, run_id: int) -> dict[str, Any] | None:
    """One run with its result."""
    row = conn.execute(sa.select(t.report_runs).where(t.report_runs.c.id == run_id)).first()
    return None if row is None else dict(row._mapping)


def recent_runs(conn: sa.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest runs, without their results (those are large)."""
    runs = t.report_runs
    query = (
        sa.select(*(c for c in runs.c if c.name != "result"))
        .order_by(runs.c.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def outcome_span(conn: sa.Connection) -> tuple[datetime, datetime] | None:
    """The first and last outcome's time (indexed), or None without outcomes."""
    ts = t.outcomes.c.ts
    # one aggregate per query: SQLite answers a lone min() or max() from the index
    first = conn.execute(sa.select(sa.func.min(ts))).scalar()
    last = conn.execute(sa.select(sa.func.max(ts))).scalar()
    if first is None or last is None:
        return None
    return first, last
