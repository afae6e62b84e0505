"""What publishing a model would change: every lead scored with it, compared with its stored score.

The REST route runs a preview inline; the dashboard runs it in the background (`Previews`),
because with 100,000 leads it takes seconds, and shows the result once it is there.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from leadscore.service.registry import Active
from leadscore.service.scoring import Scorer
from leadscore.store import records
from leadscore.store import tables as t

log = logging.getLogger("leadscore.service")

Band = str | None
Moves = Counter[tuple[Band, Band]]

# Finished previews kept in memory; each holds at most its `limit` changed leads.
KEEP: Final = 20


@dataclass(frozen=True)
class Change:
    """One lead whose temperature or stage would move."""

    lead_id: str
    total_before: float | None
    total_after: float
    temperature_before: Band
    temperature_after: Band
    stage_before: Band
    stage_after: Band

    def order(self) -> tuple[float, str]:
        """Biggest move in points first, then by lead id."""
        return (-abs(self.total_after - (self.total_before or 0)), self.lead_id)


@dataclass
class Preview:
    """The outcome of scoring every lead with a model, against the stored scores."""

    model_id: int
    as_of: datetime
    leads: int = 0
    temperature_moves: Moves = field(default_factory=Counter)
    stage_moves: Moves = field(default_factory=Counter)
    changed_leads: int = 0  # all of them; `changed` holds the biggest `limit`
    changed: list[Change] = field(default_factory=list)

    @property
    def changes_temperature(self) -> int:
        """Leads whose temperature would change."""
        return sum(self.temperature_moves.values())

    @property
    def changes_stage(self) -> int:
        """Leads whose stage would change."""
        return sum(self.stage_moves.values())

    def to_json(self) -> dict[str, Any]:
        """The form the REST API answers with."""
        return {
            "model_id": self.model_id,
            "as_of": self.as_of,
            "leads": self.leads,
            "changes_temperature": self.changes_temperature,
            "changes_stage": self.changes_stage,
            "temperature_moves": moves(self.temperature_moves),
            "stage_moves": moves(self.stage_moves),
            "changed": [c.__dict__.copy() for c in self.changed],
        }


def moves(counter: Moves) -> list[dict[str, Any]]:
    """Moves from one band to another, the most common first."""
    return [
        {"from": a, "to": b, "leads": n}
        for (a, b), n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
    ]


def preview(
    scorer: Scorer,
    draft: Active,
    as_of: datetime,
    limit: int,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> Preview:
    """Score every lead with `draft` as of `as_of` and compare with its current score.

    Memory stays bounded for any number of leads: leads are read in groups and only the
    `limit` biggest changes are kept (the counts are complete). `progress(done, total)` is
    called after each group; a set `stop` ends the run early (the service is stopping).
    """
    result = Preview(draft.model_id, as_of)
    table = t.scores
    query = sa.select(table.c.lead_id, table.c.total, table.c.temperature, table.c.stage)
    groups = scorer.lead_groups()
    total = sum(len(g) for g in groups)
    for group in groups:
        if stop is not None and stop.is_set():
            raise RuntimeError("the service stopped before the preview finished")
        with scorer.store.read() as conn:
            scores = scorer.compute(conn, draft, group, as_of).scores
            rows = conn.execute(query.where(records.among(conn, table.c.lead_id, group)))
            current = {row.lead_id: row for row in rows}
        result.leads += len(scores)
        found: list[Change] = []
        for s in scores:
            old = current.get(s.lead_id)
            temperature, stage, before = (
                (old.temperature, old.stage, old.total) if old else (None, None, None)
            )
            if stage != s.stage:
                result.stage_moves[(stage, s.stage)] += 1
            if temperature != s.temperature:
                result.temperature_moves[(temperature, s.temperature)] += 1
            if temperature != s.temperature or stage != s.stage:
                found.append(
                    Change(s.lead_id, before, s.total, temperature, s.temperature, stage, s.stage)
                )
        result.changed_leads += len(found)
        result.changed = heapq.nsmallest(limit, result.changed + found, key=Change.order)
        if progress is not None:
            progress(min(result.leads, total), total)
    return result


@dataclass
class Run:
    """A preview started from the dashboard: running, done or failed."""

    model_id: int
    as_of: datetime
    against: int | None  # the published model when it started
    status: str = "queued"  # queued, running, done, failed
    done: int = 0
    total: int = 0
    result: Preview | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        """Done or failed."""
        return self.status in ("done", "failed")


class Previews:
    """Previews in background threads, one running at a time, the latest kept per model."""

    def __init__(self, scorer: Scorer, *, limit: int = 200) -> None:
        self.scorer = scorer
        self.limit = limit
        self._runs: dict[int, Run] = {}
        self._lock = threading.Lock()  # guards _runs
        self._one = threading.Lock()  # one preview computes at a time (they are CPU-bound)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def get(self, model_id: int) -> Run | None:
        """The latest preview of a model, if one was started."""
        with self._lock:
            return self._runs.get(model_id)

    def start(self, draft: Active, as_of: datetime, against: int | None) -> Run:
        """Start previewing `draft` as of `as_of`; a preview of it already under way is kept."""
        with self._lock:
            run = self._runs.get(draft.model_id)
            if run is not None and not run.finished:
                return run
            run = Run(draft.model_id, as_of, against)
            self._runs[draft.model_id] = run
            while len(self._runs) > KEEP:  # dicts keep insertion order: drop the oldest
                del self._runs[next(iter(self._runs))]
            thread = threading.Thread(
                target=self._run, args=(run, draft), name="leadscore-preview", daemon=True
            )
            self._threads = [th for th in self._threads if th.is_alive()] + [thread]
        thread.start()
        return run

    def _run(self, run: Run, draft: Active) -> None:
        with self._one:
            run.status = "running"

            def progress(done: int, total: int) -> None:
                run.done, run.total = done, total

            try:
                found = preview(self.scorer, draft, run.as_of, self.limit, progress, self._stop)
            except Exception as exc:  # shown on the page; the thread must not die loudly
                log.exception("preview of model %s failed", run.model_id)
                run.error = str(exc) or type(exc).__name__
                run.status = "failed"
                return
            run.result = found
            run.status = "done"

    def forget(self, lead_ids: Collection[str]) -> None:
        """Drop these leads from every kept preview (they were erased)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            if run.result is not None:
                kept = [c for c in run.result.changed if c.lead_id not in lead_ids]
                run.result.changed = kept

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every started preview finished; False on timeout."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(th.is_alive() for th in threads)

    def stop(self) -> None:
        """End running previews after their current group (the store is about to close)."""
        self._stop.set()
        self.wait()
