"""Background work inside `leadscore serve`: queued rescoring, SLA deadlines, jobs, the schedule."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from leadscore.service import handover, registry, scoring
from leadscore.service.clock import Clock
from leadscore.service.scoring import Scorer
from leadscore.service.webhooks import prune_deliveries
from leadscore.store import tables as t
from leadscore.store.database import Store

log = logging.getLogger("leadscore.service")


class Worker:
    """Rescores dirty leads as soon as they are queued and breaches SLA tasks at their deadline."""

    def __init__(self, scorer: Scorer, *, limit: int = 5000, deadline_every: float = 1.0) -> None:
        self.scorer = scorer
        self.limit = limit
        self.deadline_every = deadline_every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def wake(self) -> None:
        """Start the next pass now."""
        self._wake.set()

    def run_once(self) -> int:
        """One pass: every queued lead, then due SLA deadlines; returns leads rescored."""
        count = 0
        while True:
            taken = self.scorer.process_dirty(self.limit)
            count += taken
            if taken < self.limit:
                break
        self.check_deadlines()
        return count

    def check_deadlines(self) -> list[dict[str, Any]]:
        """Breach open SLA tasks whose deadline passed."""
        now = self.scorer.clock()
        tasks = t.sla_tasks
        # Most seconds nothing is due: look without taking the write lock.
        with self.scorer.store.read() as conn:
            due = conn.execute(
                sa.select(tasks.c.id)
                .where(tasks.c.status == "open", tasks.c.deadline <= now)
                .limit(1)
            ).first()
        if due is None:
            return []
        with self.scorer.store.write() as conn:
            return handover.breach_due(conn, now)

    def start(self) -> None:
        """Run in a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._loop, name="leadscore-worker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep serving; the dirty queue keeps the work for the next pass
                self.errors += 1
                log.exception("rescoring pass failed")
            self._wake.wait(self.deadline_every)
            self._wake.clear()

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()


def unscored_note(failed: dict[str, str], shown: int = 5) -> str | None:
    """Leads that could not be scored, as a job's error says it (None when there were none)."""
    if not failed:
        return None
    named = "; ".join(f"{lead_id}: {why}" for lead_id, why in list(failed.items())[:shown])
    more = f"; and {len(failed) - shown} more" if len(failed) > shown else ""
    return f"{len(failed)} leads could not be scored and keep their last score ({named}{more})"


@dataclass(frozen=True)
class _Job:
    job_id: int
    kind: str
    model_id: int


class Jobs:
    """Rescoring all leads in the background, one job at a time, with progress in `jobs`.

    Kinds: `publish` (a model went live), `rescore` (scheduled or asked for) and `revert` (a
    publish job failed as a whole, so the model live before it is published again; a revert
    that fails is not reverted in turn). Leads that cannot be scored never fail a job: it
    ends `done`, with `error` naming them and why.
    """

    def __init__(self, scorer: Scorer, clock: Clock) -> None:
        self.scorer = scorer
        self.clock = clock
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    @property
    def store(self) -> Store:
        """The store jobs write to."""
        return self.scorer.store

    def submit(self, kind: str, model_id: int) -> int:
        """Queue a job (publish or rescore) and return its id."""
        with self.store.write() as conn:
            job_id = self._create(conn, kind, model_id)
        self.enqueue(job_id, kind, model_id)
        return job_id

    def _create(self, conn: sa.Connection, kind: str, model_id: int) -> int:
        result = conn.execute(
            t.jobs.insert().returning(t.jobs.c.id),
            {
                "kind": kind,
                "model_id": model_id,
                "status": "queued",
                "total": 0,
                "done": 0,
                "changed": 0,
                "created_at": self.clock(),
            },
        )
        return int(result.scalar_one())

    def publish(self, model_id: int, kind: str = "publish") -> int:
        """Make `model_id` the published model and queue rescoring every lead with it."""
        with self.store.write() as conn:
            registry.set_active(conn, model_id, self.clock())
            job_id = self._create(conn, kind, model_id)
        self.scorer.registry.forget_active()
        self.enqueue(job_id, kind, model_id)
        return job_id

    def enqueue(self, job_id: int, kind: str, model_id: int) -> None:
        """Hand a created job to the job thread."""
        self.idle.clear()
        self._queue.put(_Job(job_id, kind, model_id))

    def run(self, job: _Job) -> None:
        """Run one job to the end, recording progress and the outcome."""
        jobs = t.jobs

        def update(**values: Any) -> None:
            with self.store.write() as conn:
                conn.execute(jobs.update().where(jobs.c.id == job.job_id).values(**values))

        update(status="running", as_of=self.clock())
        try:
            with self.store.read() as conn:
                active = self.scorer.registry.load(conn, job.model_id)
            cause = scoring.SCHEDULE if job.kind == "rescore" else scoring.JOB

            def progress(done: int, total: int, changed: int) -> None:
                update(done=done, total=total, changed=changed)

            applied = self.scorer.rescore_all(active, cause, f"job:{job.job_id}", progress)
            update(
                status="done",
                finished_at=self.clock(),
                changed=applied.changed,
                error=unscored_note(applied.failed),
            )
        except Exception as exc:
            log.exception("job %s failed", job.job_id)
            note = self._revert(job) if job.kind == "publish" else ""
            update(status="failed", finished_at=self.clock(), error=f"{exc}{note}"[:2000])

    def _revert(self, job: _Job) -> str:
        # Half the leads scored with the new model and half with the old is no state to
        # leave: the model live before this one is published again, and all are rescored.
        try:
            with self.store.read() as conn:
                if registry.active_id(conn) != job.model_id:
                    return ""  # another model was published meanwhile
                previous = registry.previous_published(conn)
            if previous is None:
                return "; no earlier model to go back to: publish a fixed one"
            revert = self.publish(previous, "revert")
        except Exception:
            log.exception("job %s: the previous model could not be published again", job.job_id)
            return "; the previous model could not be published again"
        return f"; model {previous} is published again (job {revert})"

    def start(self) -> None:
        """Run queued jobs in a daemon thread; jobs left queued or running by a crash rerun."""
        with self.store.write() as conn:
            left = conn.execute(
                sa.select(t.jobs.c.id, t.jobs.c.kind, t.jobs.c.model_id)
                .where(t.jobs.c.status.in_(("queued", "running")))
                .order_by(t.jobs.c.id)
            ).all()
        for job_id, kind, model_id in left:
            self.enqueue(job_id, kind, model_id)
        self._thread = threading.Thread(target=self._loop, name="leadscore-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            self.run(job)
            if self._queue.empty():
                self.idle.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running."""
        return self.idle.wait(timeout)

    def stop(self) -> None:
        """Stop after the running job."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()


class Scheduler:
    """Rescores every lead as of now on an interval (decay, inactivity) via the job queue."""

    def __init__(
        self,
        jobs: Jobs,
        interval: float,
        active: Callable[[], int | None],
        *,
        keep_deliveries_days: float = 30.0,
    ) -> None:
        self.jobs = jobs
        self.interval = interval
        self.active = active
        self.keep_deliveries = timedelta(days=keep_deliveries_days)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int | None:
        """Queue one scheduled rescoring of every lead; returns the job id (None: no model).

        While an earlier one still waits or runs, that one is returned instead of a second.
        The webhook delivery log is kept for `keep_deliveries_days`.
        """
        with self.jobs.store.write() as conn:
            prune_deliveries(conn, self.jobs.clock() - self.keep_deliveries)
        model_id = self.active()
        if model_id is None:
            return None
        with self.jobs.store.read() as conn:
            pending = conn.execute(
                sa.select(t.jobs.c.id).where(
                    t.jobs.c.kind == "rescore", t.jobs.c.status.in_(("queued", "running"))
                )
            ).scalar()
        if pending is not None:
            return int(pending)
        return self.jobs.submit("rescore", model_id)

    def start(self) -> None:
        """Tick every `interval` seconds in a daemon thread (interval 0 turns it off)."""
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="leadscore-schedule", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduled rescoring could not be queued")

    def stop(self) -> None:
        """Stop ticking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
