"""Two models side by side on the same data: the dry run before publishing a new version.

Both score every lead as of the same instant; the leads whose temperature or stage would
change are counted per move and per matrix cell (of the current model), and with a cut-off
both are backtested on the same truth.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import ibis

from leadscore.engine.batch import compile_batch
from leadscore.engine.timebase import utc_naive
from leadscore.evaluate.backtest import backtest
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

_FIELDS = ("total", "grade", "cell", "temperature", "stage")


def _side(model: ScoringModel, data: Dataset, as_of: datetime, tag: str) -> ibis.Table:
    t = compile_batch(model, data, utc_naive(as_of)).scores
    return t.select("lead_id", **{f"{name}_{tag}": t[name] for name in _FIELDS})


def compare(
    current: ScoringModel,
    candidate: ScoringModel,
    data: Dataset,
    as_of: datetime,
    *,
    cutoff: datetime | None = None,
    horizon: timedelta = timedelta(days=90),
    limit: int = 50,
) -> dict[str, Any]:
    """What changes for each lead, and (with a cut-off) how both models would have fared."""
    as_of = utc_naive(as_of)
    joined = _side(current, data, as_of, "a").join(_side(candidate, data, as_of, "b"), "lead_id")
    moved = joined.filter(
        ~joined.temperature_a.identical_to(joined.temperature_b)
        | ~joined.stage_a.identical_to(joined.stage_b)
    )
    rows: list[dict[str, Any]] = moved.order_by("lead_id").to_pyarrow().to_pylist()
    leads = int(joined.count().to_pyarrow().as_py())
    stage_moves: Counter[tuple[Any, Any]] = Counter()
    temperature_moves: Counter[tuple[Any, Any]] = Counter()
    per_cell: Counter[Any] = Counter()
    # models without a fit x engagement matrix are counted per grade instead
    band = "cell" if any(r["cell_a"] is not None for r in rows) else "grade"
    for r in rows:
        if r["stage_a"] != r["stage_b"]:
            stage_moves[(r["stage_a"], r["stage_b"])] += 1
        if r["temperature_a"] != r["temperature_b"]:
            temperature_moves[(r["temperature_a"], r["temperature_b"])] += 1
        per_cell[r[f"{band}_a"]] += 1

    def moves(counter: Counter[tuple[Any, Any]]) -> list[dict[str, Any]]:
        ordered = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [{"from": a, "to": b, "leads": n} for (a, b), n in ordered]

    biggest = sorted(rows, key=lambda r: (-abs(r["total_b"] - r["total_a"]), r["lead_id"]))
    out: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "models": [{"name": m.name, "version": m.version} for m in (current, candidate)],
        "leads": leads,
        "changed": len(rows),
        "stage_moves": moves(stage_moves),
        "temperature_moves": moves(temperature_moves),
        "changed_per": band,
        "changed_per_band": [
            {band: c, "leads": n} for c, n in sorted(per_cell.items(), key=lambda kv: str(kv[0]))
        ],
        "examples": biggest[:limit],
    }
    if cutoff is not None:
        metrics = []
        for model in (current, candidate):
            run = backtest(model, data, cutoff, horizon)
            metrics.append(
                {
                    "model": model.name,
                    "version": model.version,
                    "auc": run.auc,
                    "base_rate": run.base_rate,
                    "top_decile_lift": run.deciles[0].lift if run.deciles else None,
                    "thresholds": run.thresholds,
                }
            )
        out["backtest"] = {"cutoff": utc_naive(cutoff).isoformat(), "metrics": metrics}
    return out
