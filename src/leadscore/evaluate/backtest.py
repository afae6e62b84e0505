"""Backtests: score every lead as of a cut-off from what was known then, judge by what followed.

The engine only reads events before `as_of`, so scoring as of the cut-off cannot see the
future; outcomes after the cut-off (within the horizon) are the truth. Leads created at or
after the cut-off did not exist yet, and leads already won or lost by then are decided:
both are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
import numpy as np

from leadscore.engine.batch import compile_batch
from leadscore.engine.timebase import shifted, utc_naive
from leadscore.errors import DataError
from leadscore.evaluate import metrics
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

GROUPS = ("grade", "engagement", "cell", "temperature", "stage")


@dataclass(frozen=True)
class Truth:
    """Who counts in a backtest, and how many of them were won."""

    leads: int  # evaluated: existed at the cut-off and not yet decided
    won: int  # won within the horizon
    lost: int  # lost within the horizon
    not_yet_created: int
    decided_before: int


@dataclass
class Backtest:
    """Everything a backtest found, ready for a summary, JSON or a report."""

    model: str
    model_version: str
    cutoff: datetime
    horizon_days: float
    truth: Truth
    auc: float | None
    base_rate: float
    deciles: list[metrics.Decile]
    conversion: dict[str, list[dict[str, Any]]]
    thresholds: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    # the evaluated leads' arrays (see `labelled`), for plots; not part of the record
    per_lead: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "cutoff": self.cutoff.isoformat(),
            "horizon_days": self.horizon_days,
            "truth": self.truth.__dict__,
            "auc": self.auc,
            "base_rate": self.base_rate,
            "deciles": [d.as_row() for d in self.deciles],
            "conversion": self.conversion,
            "thresholds": self.thresholds,
            "notes": self.notes,
        }


def _check_range(data: Dataset, cutoff: datetime, horizon: timedelta) -> None:
    if data.outcomes is None:
        raise DataError(
            "no outcomes table: a backtest needs won/lost outcomes (an `outcomes` file, or a "
            "mapping that derives them)"
        )
    o = data.outcomes
    bounds = o.aggregate(first=o.ts.min(), last=o.ts.max(), n=o.count()).to_pyarrow().to_pylist()[0]
    if not bounds["n"]:
        raise DataError("the outcomes table is empty: a backtest needs won/lost outcomes")
    e = data.events
    first_event = e.aggregate(first=e.ts.min()).to_pyarrow().to_pylist()[0]["first"]
    starts = [t for t in (first_event,) if t is not None]
    if starts and cutoff <= min(starts):
        raise DataError(
            f"cut-off {cutoff.isoformat()} is before the first event ({min(starts).isoformat()}): "
            "nothing was known yet; choose a later cut-off"
        )
    if cutoff >= bounds["last"]:
        raise DataError(
            f"cut-off {cutoff.isoformat()} is at or after the last outcome "
            f"({bounds['last'].isoformat()}): nothing after it says who was won; choose an "
            "earlier cut-off"
        )
    if shifted(cutoff, horizon) <= bounds["first"]:
        raise DataError(
            f"no outcome falls within {horizon.days} days after the cut-off "
            f"{cutoff.isoformat()} (the first is {bounds['first'].isoformat()}); choose a "
            "later cut-off or a longer horizon"
        )


def labelled(
    model: ScoringModel, data: Dataset, cutoff: datetime, horizon: timedelta
) -> tuple[dict[str, np.ndarray], Truth]:
    """Scores as of the cut-off joined with the truth, as arrays, for the leads that count."""
    cutoff = utc_naive(cutoff)
    _check_range(data, cutoff, horizon)
    assert data.outcomes is not None
    scores = compile_batch(model, data, utc_naive(cutoff)).scores
    o = data.outcomes
    decided = o.filter(o.ts <= cutoff).select("lead_id").distinct()
    after = o.filter((o.ts > cutoff) & (o.ts <= shifted(cutoff, horizon)))
    won = (
        after.filter(after.outcome == "won")
        .select("lead_id")
        .distinct()
        .mutate(won=ibis.literal(1))
    )
    lost = (
        after.filter(after.outcome == "lost")
        .select("lead_id")
        .distinct()
        .mutate(lost=ibis.literal(1))
    )
    leads = data.leads
    created = leads.select(
        "lead_id",
        created_at=leads.created_at if "created_at" in leads.columns else ibis.null("timestamp"),
    )
    t = scores.join(created, "lead_id", how="left")
    t = t.mutate(new=t.created_at.notnull() & (t.created_at >= cutoff))
    t = t.anti_join(decided, "lead_id")
    t = t.join(won, "lead_id", how="left").join(lost, "lead_id", how="left")
    columns = [
        "lead_id",
        "total",
        "new",
        "won",
        "lost",
        *[g for g in GROUPS if g in scores.columns],
    ]
    table = t.select(*columns).order_by("lead_id").to_pyarrow()
    new = np.asarray(table["new"].to_numpy(zero_copy_only=False), dtype=bool)
    keep = ~new
    arrays: dict[str, np.ndarray] = {}
    for name in columns:
        values = table[name].to_numpy(zero_copy_only=False)
        arrays[name] = np.asarray(values, dtype=object if name in ("lead_id", *GROUPS) else None)[
            keep
        ]
    arrays["won"] = np.nan_to_num(arrays["won"].astype(float)).astype(bool)
    arrays["lost"] = np.nan_to_num(arrays["lost"].astype(float)).astype(bool)
    arrays["total"] = arrays["total"].astype(float)
    # one score row per lead: count the leads, not the (expensive) scores again
    all_leads = int(data.leads.count().to_pyarrow().as_py())
    truth = Truth(
        leads=int(keep.sum()),
        won=int(arrays["won"].sum()),
        lost=int((arrays["lost"] & ~arrays["won"]).sum()),
        not_yet_created=int(new.sum()),
        decided_before=all_leads - len(new),
    )
    return arrays, truth


def handover_stages(model: ScoringModel) -> list[str]:
    """Stages that hand a lead to sales (their routing entry has SLA hours), hottest first.

    Routing is tried top down, so "this stage or better" is a prefix of this list.
    """
    seen: dict[str, None] = {}
    for entry in model.routing:
        if entry.stage is not None and entry.sla_hours is not None:
            seen.setdefault(entry.stage)
    return list(seen)


def backtest(
    model: ScoringModel, data: Dataset, cutoff: datetime, horizon: timedelta = timedelta(days=90)
) -> Backtest:
    """Score as of `cutoff` and compare with who was won within `horizon` after it."""
    cutoff = utc_naive(cutoff)
    arrays, truth = labelled(model, data, cutoff, horizon)
    if truth.leads == 0:
        raise DataError(
            f"no lead existed undecided at the cut-off {cutoff.isoformat()}: nothing to evaluate"
        )
    won, totals = arrays["won"], arrays["total"]
    notes: list[str] = []
    try:
        area: float | None = metrics.auc(totals, won)
    except DataError as exc:
        area = None
        notes.append(f"no AUC: {exc}")
    try:
        tenths = metrics.deciles(totals, won, arrays["lead_id"].tolist())
    except DataError as exc:
        tenths = []
        notes.append(f"no deciles: {exc}")
    conversion = {
        g: metrics.conversion_by(arrays[g].tolist(), won)
        for g in GROUPS
        if g in arrays and any(v is not None for v in arrays[g].tolist())
    }
    thresholds = []
    stages = arrays.get("stage")
    if stages is not None:
        order = handover_stages(model)
        for i, stage in enumerate(order):
            better = set(order[: i + 1])
            selected = np.array([s in better for s in stages.tolist()], dtype=bool)
            name = stage if i == 0 else f"{stage} or better"
            thresholds.append({"threshold": name, **metrics.threshold(selected, won)})
    return Backtest(
        model=model.name,
        model_version=model.version,
        cutoff=cutoff,
        horizon_days=horizon.total_seconds() / 86400,
        truth=truth,
        auc=area,
        base_rate=float(won.mean()),
        deciles=tenths,
        conversion=conversion,
        thresholds=thresholds,
        notes=notes,
        per_lead=arrays,
    )


def rolling(
    model: ScoringModel,
    data: Dataset,
    cutoffs: list[datetime],
    horizon: timedelta = timedelta(days=90),
) -> list[dict[str, Any]]:
    """One line per cut-off (oldest first): leads, won, AUC and top-decile lift — drift (S25)."""
    out = []
    for cutoff in sorted(cutoffs):
        run = backtest(model, data, cutoff, horizon)
        top = run.deciles[0].lift if run.deciles else None
        out.append(
            {
                "cutoff": run.cutoff.isoformat(),
                "leads": run.truth.leads,
                "won": run.truth.won,
                "base_rate": run.base_rate,
                "auc": run.auc,
                "top_decile_lift": top,
            }
        )
    return out
