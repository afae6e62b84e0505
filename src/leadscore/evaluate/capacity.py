"""Capacity: the threshold on the total score that sends sales no more leads than it can take.

Sales says how many leads a week it can work (`per_week`, S20). `capacity` answers which
threshold on the total score would have sent that many, and what those leads were worth:

* The window is the `weeks` weeks (default 12) before the cut-off: [cutoff - weeks, cutoff).
  The leads created in it (by `leads.created_at`) are the weekly inflow; leads without a
  creation time are left out, and without the column there is no inflow to measure.
* Every one of them is scored as of the cut-off (from what was known then; leads created early
  in the window have had more time to act, and their early actions have faded more).
* The threshold T is the smallest total such that (leads of the window with total >= T) /
  weeks <= per_week. Only totals some lead has are candidates, so lowering T to the next lower
  total any lead of the window has would send more than `per_week` a week. Leads tied at T are
  all sent. When even the highest total is shared by more leads than fit, no threshold fits
  (T is None, nobody is sent); when every lead fits, T is the lowest total of the window.
* The conversion uses the truth of a backtest (`leadscore.evaluate.backtest`): of the leads of
  the window not yet won or lost at the cut-off, those with a `won` outcome within `horizon`
  after the cut-off are won. Leads already decided at the cut-off are left out and counted.
  It is given for the leads at or above T (those sales would have taken) and below T.
* The hand-over volume is the number of the window's leads that the model's own routing sends
  to sales (its hand-over stages, the routing entries with SLA hours) a week, so that the
  model's thresholds can be set against what sales can take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis

from leadscore.engine.batch import compile_batch
from leadscore.engine.timebase import shifted, utc_naive
from leadscore.errors import DataError
from leadscore.evaluate.backtest import handover_stages
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset


@dataclass(frozen=True)
class Conversion:
    """Leads of a group that were undecided at the cut-off, and how many of them were won."""

    leads: int  # undecided at the cut-off
    won: int  # won within the horizon after the cut-off
    conversion: float | None  # won / leads; None without leads or without outcomes to judge by

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"leads": self.leads, "won": self.won, "conversion": self.conversion}


@dataclass(frozen=True)
class Handover:
    """Leads of the window that the model's routing hands to sales at one stage."""

    stage: str
    leads: int
    per_week: float

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {"stage": self.stage, "leads": self.leads, "per_week": self.per_week}


@dataclass
class Capacity:
    """The score threshold that fits what sales can take, and what it would have brought."""

    model: str
    model_version: str
    cutoff: datetime
    weeks: int
    window_start: datetime  # the window is [window_start, cutoff)
    per_week: float  # what sales can take
    horizon_days: float
    leads: int  # created in the window
    threshold: float | None  # None: not even the highest total fits
    leads_above: int  # leads of the window with total >= threshold
    leads_per_week: float  # leads_above / weeks
    above: Conversion
    below: Conversion
    decided_before: int  # leads of the window already won or lost at the cut-off: left out
    handover: list[Handover]
    handover_per_week: float  # all hand-over stages together
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "cutoff": self.cutoff.isoformat(),
            "weeks": self.weeks,
            "window_start": self.window_start.isoformat(),
            "per_week": self.per_week,
            "horizon_days": self.horizon_days,
            "leads": self.leads,
            "threshold": self.threshold,
            "leads_above": self.leads_above,
            "leads_per_week": self.leads_per_week,
            "above": self.above.as_dict(),
            "below": self.below.as_dict(),
            "decided_before": self.decided_before,
            "handover": [h.as_dict() for h in self.handover],
            "handover_per_week": self.handover_per_week,
            "notes": self.notes,
        }


def _check_input(per_week: float, weeks: int, horizon: timedelta) -> None:
    if isinstance(per_week, bool) or not isinstance(per_week, int | float):
        raise DataError(f"per_week must be a number of leads a week, got {per_week!r}")
    if not math.isfinite(per_week) or per_week <= 0:
        raise DataError(
            f"per_week must be more than 0 leads a week, got {per_week}: say how many leads "
            "sales can take a week"
        )
    if isinstance(weeks, bool) or not isinstance(weeks, int) or weeks < 1:
        raise DataError(f"weeks must be a whole number of at least 1, got {weeks!r}")
    if horizon <= timedelta(0):
        raise DataError(f"the horizon must be longer than zero, got {horizon}")


def _outcomes_after(data: Dataset, cutoff: datetime, horizon: timedelta) -> int:
    """Outcomes recorded within the horizon after the cut-off (that can say who was won)."""
    if data.outcomes is None:
        raise DataError(
            "no outcomes table: capacity needs won/lost outcomes to say what the leads above "
            "the threshold were worth (an `outcomes` file, or a mapping that derives them)"
        )
    o = data.outcomes
    after = (o.ts > ibis.literal(cutoff, type="timestamp")) & (
        o.ts <= ibis.literal(shifted(cutoff, horizon), type="timestamp")
    )
    row = o.aggregate(n=o.count(), after=after.sum()).to_pyarrow().to_pylist()[0]
    if not row["n"]:
        raise DataError("the outcomes table is empty: capacity needs won/lost outcomes")
    return int(row["after"] or 0)


def _window_counts(data: Dataset, start: datetime, cutoff: datetime) -> tuple[int, int]:
    """Leads created in [start, cutoff), and leads with a creation time at all."""
    leads = data.leads
    if "created_at" not in leads.columns:
        raise DataError(
            "the leads have no created_at column: capacity needs creation times to count the "
            "leads that come in a week"
        )
    if not leads.created_at.type().is_timestamp():
        raise DataError(
            f"column leads.created_at holds {leads.created_at.type()} values; capacity needs "
            "timestamps"
        )
    c = leads.created_at
    inside = (c >= ibis.literal(start, type="timestamp")) & (
        c < ibis.literal(cutoff, type="timestamp")
    )
    row = leads.aggregate(inside=inside.sum(), dated=c.notnull().sum()).to_pyarrow().to_pylist()[0]
    return int(row["inside"] or 0), int(row["dated"] or 0)


def capacity(
    model: ScoringModel,
    data: Dataset,
    cutoff: datetime,
    per_week: float,
    horizon: timedelta = timedelta(days=90),
    weeks: int = 12,
) -> Capacity:
    """The lowest threshold on the total that sends sales at most `per_week` leads a week,
    judged on the leads created in the `weeks` weeks before `cutoff` (see the module text)."""
    _check_input(per_week, weeks, horizon)
    cutoff = utc_naive(cutoff)
    start = shifted(cutoff, -timedelta(weeks=weeks))
    judged = _outcomes_after(data, cutoff, horizon) > 0
    inside, dated = _window_counts(data, start, cutoff)
    if inside == 0:
        detail = (
            "no lead has a creation time"
            if dated == 0
            else f"{dated} leads have creation times, none of them in the window"
        )
        raise DataError(
            f"no lead was created in the {weeks} weeks before the cut-off "
            f"({start.isoformat()} to {cutoff.isoformat()}); {detail}: choose another cut-off "
            "or more weeks"
        )

    # The window's leads, scored as of the cut-off, with their truth.
    scores = compile_batch(model, data, utc_naive(cutoff)).scores
    leads = data.leads
    c = leads.created_at
    window = leads.filter(
        (c >= ibis.literal(start, type="timestamp")) & (c < ibis.literal(cutoff, type="timestamp"))
    ).select(lead_id=leads.lead_id.cast("string"))
    t = scores.select(lead_id=scores.lead_id.cast("string"), total=scores.total, stage=scores.stage)
    t = t.semi_join(window, "lead_id")
    assert data.outcomes is not None
    o = data.outcomes
    o = o.select(lead_id=o.lead_id.cast("string"), outcome=o.outcome, ts=o.ts)
    cut = ibis.literal(cutoff, type="timestamp")
    end = ibis.literal(shifted(cutoff, horizon), type="timestamp")
    decided = o.filter(o.ts <= cut).lead_id
    won = o.filter((o.ts > cut) & (o.ts <= end) & (o.outcome == "won")).lead_id
    t = t.mutate(
        decided=t.lead_id.isin(decided).fill_null(False), won=t.lead_id.isin(won).fill_null(False)
    )

    # T: the lowest total whose leads at or above it fit in weeks * per_week.
    most = math.floor(per_week * weeks)
    per_total = t.group_by("total").aggregate(n=t.count())
    at_or_above = per_total.n.sum().over(
        ibis.window(order_by=ibis.desc(per_total.total), preceding=None, following=0)
    )
    fitting = per_total.mutate(cum=at_or_above).filter(lambda x: x.cum <= most)
    chosen = fitting.aggregate(threshold=fitting.total.min())
    t = t.cross_join(chosen)
    t = t.mutate(above=(t.total >= t.threshold).fill_null(False))
    groups = t.group_by(["stage", "above", "decided", "won", "threshold"]).aggregate(n=t.count())
    rows: list[dict[str, Any]] = groups.to_pyarrow().to_pylist()

    threshold: float | None = rows[0]["threshold"] if rows else None
    total_leads = sum(r["n"] for r in rows)

    def count(**match: Any) -> int:
        return sum(r["n"] for r in rows if all(r[k] == v for k, v in match.items()))

    def conversion(above: bool) -> Conversion:
        n, w = count(above=above, decided=False), count(above=above, decided=False, won=True)
        return Conversion(leads=n, won=w, conversion=w / n if n and judged else None)

    leads_above = count(above=True)
    stages = handover_stages(model)
    handover = [Handover(s, count(stage=s), count(stage=s) / weeks) for s in stages]
    handover_per_week = sum(h.leads for h in handover) / weeks

    notes = _notes(
        per_week=per_week,
        weeks=weeks,
        total=total_leads,
        threshold=threshold,
        stages=stages,
        handover_per_week=handover_per_week,
        judged=judged,
        cutoff=cutoff,
        horizon=horizon,
    )
    return Capacity(
        model=model.name,
        model_version=model.version,
        cutoff=cutoff,
        weeks=weeks,
        window_start=start,
        per_week=float(per_week),
        horizon_days=horizon.total_seconds() / 86400,
        leads=total_leads,
        threshold=threshold,
        leads_above=leads_above,
        leads_per_week=leads_above / weeks,
        above=conversion(True),
        below=conversion(False),
        decided_before=count(decided=True),
        handover=handover,
        handover_per_week=handover_per_week,
        notes=notes,
    )


def _notes(
    *,
    per_week: float,
    weeks: int,
    total: int,
    threshold: float | None,
    stages: list[str],
    handover_per_week: float,
    judged: bool,
    cutoff: datetime,
    horizon: timedelta,
) -> list[str]:
    notes = []
    inflow = total / weeks
    if threshold is None:
        notes.append(
            f"no threshold fits {per_week:g} leads a week: even the highest total is shared by "
            f"more than {math.floor(per_week * weeks)} leads of the {weeks} weeks"
        )
    elif inflow <= per_week:
        notes.append(
            f"sales can take every lead: {inflow:.1f} a week came in, {per_week:g} fit; the "
            "threshold is the lowest total of the window"
        )
    if not stages:
        notes.append("the model hands no stage to sales (no routing entry has SLA hours)")
    elif handover_per_week > per_week:
        notes.append(
            f"the model's routing hands {handover_per_week:.1f} leads a week to sales "
            f"({', '.join(stages)}), more than the {per_week:g} it can take"
        )
    else:
        notes.append(
            f"the model's routing hands {handover_per_week:.1f} leads a week to sales "
            f"({', '.join(stages)}), within the {per_week:g} it can take"
        )
    if not judged:
        notes.append(
            f"no conversion: no outcome was recorded within {horizon.days} days after the "
            f"cut-off {cutoff.isoformat()}, so nothing says who was won; choose an earlier "
            "cut-off or a longer horizon"
        )
    return notes
