"""Hand-over over time: how many leads reach sales each week, and how long from reaching
sales (MQL or better) to being won."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any

import ibis

from leadscore.engine.batch import compile_batch
from leadscore.engine.byte_order import byte_order
from leadscore.engine.timebase import shifted, utc_naive
from leadscore.evaluate.backtest import handover_stages
from leadscore.evaluate.cases import timelines
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset


def per_week(
    model: ScoringModel, data: Dataset, cutoff: datetime, weeks: int
) -> list[dict[str, Any]]:
    """Leads entering a hand-over stage in each of the `weeks` weeks before the cut-off.

    The model scores every lead at each week's end; a lead enters in a week if it is at a
    hand-over stage at the week's end and was not at its start (one scoring run per week).
    """
    cutoff = utc_naive(cutoff)
    stages = handover_stages(model)
    if not stages or weeks <= 0:
        return []
    marks = [cutoff - timedelta(weeks=k) for k in range(weeks, -1, -1)]
    handed: list[set[str]] = []
    for mark in marks:
        t = compile_batch(model, data, utc_naive(mark)).scores
        rows = t.filter(t.stage.isin(stages)).select("lead_id").to_pyarrow()
        handed.append(set(rows["lead_id"].to_pylist()))
    return [
        {
            "week_start": marks[i].isoformat(),
            "week_end": marks[i + 1].isoformat(),
            "entered": len(handed[i + 1] - handed[i]),
            "at_week_end": len(handed[i + 1]),
        }
        for i in range(weeks)
    ]


def to_won(
    model: ScoringModel,
    data: Dataset,
    cutoff: datetime,
    horizon: timedelta,
    limit: int = 200,
) -> dict[str, Any]:
    """Median days from first reaching a hand-over stage to being won, for leads won within
    the horizon after the cut-off (the `limit` most recent, rebuilt event by event)."""
    cutoff = utc_naive(cutoff)
    stages = set(handover_stages(model))
    if data.outcomes is None or not stages:
        return {"median_days": None, "measured": 0, "never_handed_over": 0}
    o = data.outcomes
    firsts = (
        o.filter((o.outcome == "won") & (o.ts > cutoff) & (o.ts <= shifted(cutoff, horizon)))
        .group_by("lead_id")
        .aggregate(ts=o.ts.min())
    )
    won = (
        # leads won at one instant are picked by code points on every backend (byte_order)
        firsts.order_by([ibis.desc("ts"), byte_order(firsts.lead_id)])
        .limit(limit)
        .to_pyarrow()
        .to_pylist()
    )
    built = timelines(model, data, [(row["lead_id"], row["ts"]) for row in won])
    days: list[float] = []
    never = 0
    for row in won:
        steps = built[row["lead_id"]]
        first = next((s for s in steps if s.stage in stages), None)
        if first is None:
            never += 1
        else:
            days.append((row["ts"] - first.ts).total_seconds() / 86400)
    return {
        "median_days": statistics.median(days) if days else None,
        "measured": len(days),
        "never_handed_over": never,
    }
