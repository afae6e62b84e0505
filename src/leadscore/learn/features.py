"""Candidate features for learning from outcomes, built from the canonical tables.

Each lead with an outcome is one example: won (1) or lost (0), as of its first outcome. Its
behaviour features count only the events before that instant (or before a global cut-off for
leads still open), so nothing the lead did after the decision can leak into what predicts it.

Features are readable by design: every column is something a rule can say — a category of a
lead field ("source = Google"), a flag, a numeric band ("employees in [50, 200)"), the number
of events of a type (capped), an event of a type in the last 30 days, or a band of an event
type's summed value. `suggest` turns weights on them into rules of a model.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.schema import Dataset

# Lead fields that identify rather than describe.
IDENTIFIERS = frozenset({"lead_id", "email", "name", "account_id", "company", "created_at"})
Kind = Literal["category", "flag", "band", "count", "recent", "value_band"]
# Fewer won or lost examples than this cannot support a fit.
MIN_PER_CLASS = 20
# "Recently" for recency features and the rules made of them.
RECENT_DAYS = 30


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
    days: float | None = None  # recent: an event within so many days


@dataclass
class Features:
    """The examples: one row per decided lead, one column per feature, and the labels."""

    lead_ids: list[str]
    features: list[Feature]
    X: np.ndarray  # float64, rows x features
    y: np.ndarray  # bool, won
    at: np.ndarray  # datetime64[us]: the instant each example is taken at (its outcome)

    @property
    def names(self) -> list[str]:
        """Column names."""
        return [f.name for f in self.features]


@dataclass
class Behaviour:
    """Per event type, aligned with a list of leads: counts, value sums and recency."""

    counts: dict[str, np.ndarray]  # events before the lead's moment
    recent: dict[str, np.ndarray]  # of those, events in the RECENT_DAYS before it
    sums: dict[str, np.ndarray]  # summed value (NaN: no valued event)
    days_since: dict[str, np.ndarray]  # days from the last such event to the moment (NaN: none)


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


def decided(data: Dataset, cutoff: datetime | None = None) -> pa.Table:
    """The leads with an outcome, their fields plus `at` and `won`, ordered by lead id."""
    table = data.leads.join(labels(data, cutoff), "lead_id").order_by("lead_id").to_pyarrow()
    n = table.num_rows
    won = int(pc.sum(table["won"]).as_py() or 0)
    if min(won, n - won) < MIN_PER_CLASS:
        raise DataError(
            f"{won} won and {n - won} lost leads: learning needs at least {MIN_PER_CLASS} of each"
            + (" (only one class)" if min(won, n - won) == 0 else "")
        )
    return table


def behaviour(
    data: Dataset, moments: ibis.Table, ids: pa.Array, cutoff: datetime | None = None
) -> Behaviour:
    """Event statistics per lead and type from events strictly before each lead's moment.

    `moments` has `lead_id` and `at`; `ids` orders the result (leads without events get zeros).
    """
    e = data.events
    j = e.join(moments, "lead_id")
    before = j.filter(j.ts < j.at)
    if cutoff is not None:
        before = before.filter(before.ts < utc_naive(cutoff))
    window = before.at - ibis.interval(days=RECENT_DAYS)
    per = before.group_by(["lead_id", "type"]).aggregate(
        n=before.count(),
        recent=(before.ts >= window).sum(),
        v=before.value.sum(),
        last=before.ts.max(),
        at=before.at.max(),
    )
    rows = per.to_pyarrow()
    index = pc.index_in(rows["lead_id"], value_set=ids).to_numpy(zero_copy_only=False)
    types = rows["type"].to_numpy(zero_copy_only=False)
    n = rows["n"].to_numpy(zero_copy_only=False).astype(float)
    recent = pc.fill_null(rows["recent"], 0).to_numpy(zero_copy_only=False).astype(float)
    v = pc.cast(rows["v"], pa.float64()).to_numpy(zero_copy_only=False)
    gap = pc.subtract(rows["at"], rows["last"]).cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = gap / 86_400e6  # microseconds
    out = Behaviour({}, {}, {}, {})
    size = len(ids)
    for kind in np.unique(types):
        at = types == kind
        where = index[at].astype(np.int64)
        counts = np.zeros(size)
        counts[where] = n[at]
        out.counts[str(kind)] = counts
        r = np.zeros(size)
        r[where] = recent[at]
        out.recent[str(kind)] = r
        s = np.full(size, np.nan)
        s[where] = v[at]
        out.sums[str(kind)] = s
        d = np.full(size, np.nan)
        d[where] = days[at]
        out.days_since[str(kind)] = d
    return out


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


def _inside(arr: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    inside: np.ndarray = ~np.isnan(arr)
    if low is not None:
        inside &= arr >= low
    if high is not None:
        inside &= arr < high
    return inside


def numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric or boolean Arrow column as float64, nulls as NaN."""
    cast = pc.cast(column, pa.float64())
    values: np.ndarray = pc.fill_null(cast, np.nan).to_numpy(zero_copy_only=False)
    return values.astype(float, copy=False)


def codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """A column as category codes (-1 for null) and the categories they index."""
    encoded = pc.dictionary_encode(column)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return np.asarray(indices, dtype=np.int64), encoded.dictionary.to_pylist()


def described(name: str, column: pa.ChunkedArray, rows: int, exclude: frozenset[str]) -> str | None:
    """How a lead field can describe leads: category, flag or number; None when it cannot."""
    if name in IDENTIFIERS or name in exclude or name in ("at", "won"):
        return None
    kind = column.type
    if pa.types.is_boolean(kind):
        return "flag"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        distinct = pc.count_distinct(column).as_py()
        # a number (almost) every lead has its own of is an id, not a description
        return "number" if 2 <= distinct <= 0.9 * rows else None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        distinct = pc.count_distinct(column).as_py()
        # a column with a different value for most leads identifies them
        return "category" if 0 < distinct <= max(20, rows // 2) else None
    return None


def build(
    data: Dataset,
    *,
    cutoff: datetime | None = None,
    min_support: int = 30,
    bins: int = 5,
    exclude: frozenset[str] = frozenset(),
) -> Features:
    """Features of every decided lead (see the module docstring)."""
    table = decided(data, cutoff)
    n = table.num_rows
    y = np.asarray(table["won"].to_numpy(zero_copy_only=False), dtype=bool)
    ids = table["lead_id"].combine_chunks()
    columns: list[np.ndarray] = []
    features: list[Feature] = []
    seen: set[bytes] = set()

    def add(feature: Feature, column: np.ndarray) -> None:
        support = int(np.count_nonzero(column))
        # a feature nearly every or almost no lead has says nothing (and fits badly)
        if not min_support <= support <= n - min_support:
            return
        values = column.astype(float)
        key = values.tobytes()
        if key in seen:
            return  # the same column under another name (e.g. every event was recent)
        seen.add(key)
        features.append(feature)
        columns.append(values)

    for name in table.column_names:
        column = table[name]
        how = described(name, column, n, exclude)
        if how == "flag":
            add(Feature(name, "flag", name), numbers(column) == 1)
        elif how == "number":
            arr = numbers(column)
            present = arr[~np.isnan(arr)]
            for low, high in _bands(present, bins):
                feature = Feature(_band_name(name, low, high), "band", name, low=low, high=high)
                add(feature, _inside(arr, low, high))
        elif how == "category":
            index, values = codes(column)
            for k in sorted(range(len(values)), key=lambda k: str(values[k])):
                add(Feature(f"{name} = {values[k]}", "category", name, value=values[k]), index == k)
    moments = data.leads.join(labels(data, cutoff), "lead_id").select("lead_id", "at")
    _behaviour(behaviour(data, moments, ids, cutoff), bins, add)
    if not features:
        raise DataError(
            f"no feature varies enough among the {n} decided leads (each needs at least "
            f"{min_support} leads with and without it)"
        )
    at = table["at"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
    return Features(ids.to_pylist(), features, np.column_stack(columns), y, at)


def _behaviour(stats: Behaviour, bins: int, add: Callable[[Feature, np.ndarray], None]) -> None:
    """Capped event counts, recent events and value bands per event type."""
    for kind in sorted(stats.counts):
        column = stats.counts[kind]
        done = column[column > 0]
        # beyond the 95th percentile more events add nothing: rules cap them (max_count)
        cap = max(1, int(np.ceil(np.quantile(done, 0.95))))
        name = f"{kind} events" + (f" (up to {cap})" if cap > 1 else "")
        add(Feature(name, "count", kind, cap=cap), np.minimum(column, cap))
    for kind in sorted(stats.recent):
        label = f"{kind} in the last {RECENT_DAYS} days"
        add(Feature(label, "recent", kind, days=RECENT_DAYS), stats.recent[kind] > 0)
    for kind in sorted(stats.sums):
        arr = stats.sums[kind]
        present = arr[~np.isnan(arr)]
        if len(np.unique(present)) < 2:
            continue
        for low, high in _bands(present, bins):
            label = _band_name(f"{kind} value", low, high)
            add(Feature(label, "value_band", kind, low=low, high=high), _inside(arr, low, high))
