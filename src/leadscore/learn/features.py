"""Candidate features for learning from outcomes, built from the canonical tables.

Each lead with an outcome is one example: won (1) or lost (0), as of its first outcome. Its
behaviour features count only the events before that instant (or before a global cut-off for
leads still open), so nothing the lead did after the decision can leak into what predicts it.

Features are readable by design: every column is something a rule can say — a category of a
lead field ("source = Google"), a flag, a numeric band ("employees in [50, 200)"), the number
of events of a type (capped), or a band of an event type's summed value. `suggest` turns
weights on them into rules of a model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import ibis
import numpy as np

from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.schema import Dataset

# Lead fields that identify rather than describe.
IDENTIFIERS = frozenset({"lead_id", "email", "name", "account_id", "company", "created_at"})
Kind = Literal["category", "flag", "band", "count", "value_band"]
# Fewer won or lost examples than this cannot support a fit.
MIN_PER_CLASS = 20


@dataclass(frozen=True)
class Feature:
    """One column of the feature matrix and what it means in model terms."""

    name: str
    kind: Kind
    field: str  # the lead field, or the event type
    value: Any = None  # the category
    low: float | None = None  # band: low <= x < high (None: open)
    high: float | None = None
    cap: int | None = None  # count: events counted up to this many


@dataclass
class Features:
    """The examples: one row per decided lead, one column per feature, and the labels."""

    lead_ids: list[str]
    features: list[Feature]
    X: np.ndarray  # float64, rows x features
    y: np.ndarray  # bool, won

    @property
    def names(self) -> list[str]:
        """Column names."""
        return [f.name for f in self.features]


def labels(data: Dataset, cutoff: datetime | None = None) -> ibis.Table:
    """Per lead: its first outcome (won or lost) and when, up to the cut-off when given."""
    if data.outcomes is None:
        raise DataError("no outcomes table: learning needs won/lost outcomes")
    o = data.outcomes
    if cutoff is not None:
        o = o.filter(o.ts <= utc_naive(cutoff))
    first = o.group_by("lead_id").aggregate(at=o.ts.min())
    j = o.join(first, [o.lead_id == first.lead_id, o.ts == first.at])
    return j.group_by(o.lead_id).aggregate(at=j.at.min(), won=(j.outcome == "won").any())


def _descriptive(values: list[Any], rows: int) -> bool:
    # A column with a different value for most leads identifies them; it does not describe.
    distinct = len({v for v in values if v is not None})
    return 0 < distinct <= max(20, rows // 2)


def _bands(values: np.ndarray, bins: int) -> list[tuple[float | None, float | None]]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    bounds: list[float | None] = [None, *[float(e) for e in edges], None]
    return list(itertools.pairwise(bounds))


def _band_name(field: str, low: float | None, high: float | None) -> str:
    if low is None:
        return f"{field} < {high:g}"
    if high is None:
        return f"{field} >= {low:g}"
    return f"{field} in [{low:g}, {high:g})"


def build(
    data: Dataset,
    *,
    cutoff: datetime | None = None,
    min_support: int = 30,
    bins: int = 5,
    exclude: frozenset[str] = frozenset(),
) -> Features:
    """Features of every decided lead (see the module docstring)."""
    decided = labels(data, cutoff)
    leads = data.leads.join(decided, "lead_id")
    table = leads.order_by("lead_id").to_pyarrow()
    n = table.num_rows
    y = np.asarray(table["won"].to_pylist(), dtype=bool)
    won = int(y.sum())
    if min(won, n - won) < MIN_PER_CLASS:
        raise DataError(
            f"{won} won and {n - won} lost leads: learning needs at least {MIN_PER_CLASS} of each"
            + (" (only one class)" if min(won, n - won) == 0 else "")
        )
    ids = [str(v) for v in table["lead_id"].to_pylist()]
    columns: list[np.ndarray] = []
    features: list[Feature] = []

    def add(feature: Feature, column: np.ndarray) -> None:
        support = int(column.astype(bool).sum())
        # a feature nearly every or almost no lead has says nothing (and fits badly)
        if min_support <= support <= n - min_support:
            features.append(feature)
            columns.append(column.astype(float))

    skip = IDENTIFIERS | exclude | {"at", "won"}
    for name in table.column_names:
        if name in skip:
            continue
        values = table[name].to_pylist()
        kind = str(table.schema.field(name).type)
        if kind == "bool":
            add(Feature(f"{name}", "flag", name), np.array([v is True for v in values]))
        elif kind.startswith(("int", "double", "float")):
            present = np.array([v for v in values if v is not None], dtype=float)
            distinct = len(np.unique(present))
            # a number (almost) every lead has its own of is an id, not a description
            if distinct < 2 or distinct > 0.9 * n:
                continue
            arr = np.array([np.nan if v is None else v for v in values], dtype=float)
            for low, high in _bands(present, bins):
                inside = ~np.isnan(arr)
                if low is not None:
                    inside &= arr >= low
                if high is not None:
                    inside &= arr < high
                add(Feature(_band_name(name, low, high), "band", name, low=low, high=high), inside)
        elif kind == "string" and _descriptive(values, n):
            counts: dict[Any, int] = {}
            for v in values:
                counts[v] = counts.get(v, 0) + 1
            for value in sorted((v for v in counts if v is not None), key=str):
                column = np.array([v == value for v in values])
                add(Feature(f"{name} = {value}", "category", name, value=value), column)
    _behaviour(data, decided, cutoff, ids, min_support, bins, add)
    if not features:
        raise DataError(
            f"no feature varies enough among the {n} decided leads (each needs at least "
            f"{min_support} leads with and without it)"
        )
    return Features(ids, features, np.column_stack(columns), y)


def _behaviour(
    data: Dataset,
    decided: ibis.Table,
    cutoff: datetime | None,
    ids: list[str],
    min_support: int,
    bins: int,
    add: Any,
) -> None:
    """Event counts and value bands per event type, from events before each lead's outcome."""
    e = data.events
    j = e.join(decided, "lead_id")
    before = j.filter(j.ts < j.at)
    if cutoff is not None:
        before = before.filter(before.ts < utc_naive(cutoff))
    per = before.group_by(["lead_id", "type"]).aggregate(n=before.count(), v=before.value.sum())
    rows = per.to_pyarrow().to_pylist()
    index = {lead: i for i, lead in enumerate(ids)}
    counts: dict[str, np.ndarray] = {}
    sums: dict[str, np.ndarray] = {}
    for r in rows:
        kind = str(r["type"])
        counts.setdefault(kind, np.zeros(len(ids)))[index[r["lead_id"]]] = r["n"]
        if r["v"] is not None:
            sums.setdefault(kind, np.full(len(ids), np.nan))[index[r["lead_id"]]] = r["v"]
    for kind in sorted(counts):
        column = counts[kind]
        done = column[column > 0]
        if len(done) == 0:
            continue
        # beyond the 95th percentile more events add nothing: rules cap them (max_count)
        cap = max(1, int(np.ceil(np.quantile(done, 0.95))))
        name = f"{kind} events" + (f" (up to {cap})" if cap > 1 else "")
        add(Feature(name, "count", kind, cap=cap), np.minimum(column, cap))
    for kind in sorted(sums):
        arr = sums[kind]
        present = arr[~np.isnan(arr)]
        if len(np.unique(present)) < 2:
            continue
        for low, high in _bands(present, bins):
            inside = ~np.isnan(arr)
            if low is not None:
                inside &= arr >= low
            if high is not None:
                inside &= arr < high
            label = _band_name(f"{kind} value", low, high)
            add(Feature(label, "value_band", kind, low=low, high=high), inside)
