"""Candidate features for learning from outcomes, computed as the engine computes rules.

Each example is a lead open at a cut-off (`leadscore.learn.examples`); its behaviour counts only
the events before that cut-off. Every column is something one rule of a model says, with the
engine's semantics, so a model written from weights on these columns scores exactly the
weighted sum:

- a category of a lead or account field (`source = Google`; text compared folded, as the
  engine compares it), or a flag (`equals: true`);
- a threshold on a number, in the direction the number predicts (`employees >= 50` when more
  employees win more, `age < 30` when fewer do), so that points over thresholds are monotone;
- per event type: the number of events (capped: `max_count`), an event in the last 30 days
  (`within_days: 30`), or an event whose value passes a threshold (`where: value ...`).

Thresholds are rounded to numbers a person would write (two significant digits).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.engine.folding import fold
from leadscore.errors import DataError
from leadscore.io.readers import arrow_table
from leadscore.learn.examples import ACCOUNT_PREFIX, Examples
from leadscore.schema import Dataset

# Lead fields that identify rather than describe.
IDENTIFIERS = frozenset(
    {
        "lead_id",
        "email",
        "name",
        "account_id",
        "company",
        "created_at",
        "domain",
        "website",
        "phone",
    }
)
Kind = Literal[
    "category", "flag", "at_least", "below", "count", "recent", "value_at_least", "value_below"
]
FIT_KINDS = ("category", "flag", "at_least", "below")
# "Recently" for recency features and the rules made of them: windows a person would name.
RECENT_WINDOWS = (7, 30, 90)


@dataclass(frozen=True)
class Feature:
    """One column of the feature matrix and the rule it stands for."""

    name: str  # as a person reads it: "employees >= 50"
    kind: Kind
    field: str  # the lead field, or the event type
    value: Any = None  # category: the value as most often written
    threshold: float | None = None  # at_least / below, value_at_least / value_below
    cap: int | None = None  # count: events counted up to this many
    days: float | None = None  # recent: an event within so many days

    @property
    def fit(self) -> bool:
        """A lead-field feature (fit points), not behaviour."""
        return self.kind in FIT_KINDS


@dataclass
class Features:
    """The examples' feature matrix, labels and which rows are held out."""

    lead_ids: list[str]
    features: list[Feature]
    X: np.ndarray  # float64, rows x features
    y: np.ndarray  # bool, won within the horizon
    at: np.ndarray  # datetime64[us]: each example's cut-off
    holdout: np.ndarray  # bool per row

    @property
    def names(self) -> list[str]:
        """Column names."""
        return [f.name for f in self.features]


@dataclass
class Behaviour:
    """Per event type, aligned with a list of moments (lead, instant): statistics of events
    before each moment."""

    counts: dict[str, np.ndarray]
    recent: dict[int, dict[str, np.ndarray]]  # per window: events in those days before
    sums: dict[str, np.ndarray]  # summed value (NaN: no valued event)
    highest: dict[str, np.ndarray]  # largest value (NaN: none)
    lowest: dict[str, np.ndarray]  # smallest value (NaN: none)
    days_since: dict[str, np.ndarray]  # days from the last such event (NaN: none)


def behaviour(data: Dataset, lead_ids: pa.Array, at: np.ndarray) -> Behaviour:
    """Event statistics per moment and type, from events strictly before each moment."""
    size = len(lead_ids)
    out = Behaviour({}, {d: {} for d in RECENT_WINDOWS}, {}, {}, {}, {})
    if size == 0:
        return out
    con = data.events.get_backend()
    moments = pa.table(
        {
            "m_row": pa.array(np.arange(size, dtype=np.int64)),
            "m_lead": pc.cast(lead_ids, pa.string()),
            "m_at": pa.array(at.astype("datetime64[us]"), pa.timestamp("us")),
        }
    )
    m = arrow_table(con, f"moments_{uuid.uuid4().hex[:8]}", moments)
    e = data.events
    # a join on the column itself, not an expression of it, where the types allow
    key = e.lead_id if e.lead_id.type().is_string() else e.lead_id.cast("string")
    j = e.join(m, key == m.m_lead)
    before = j.filter(j.ts < j.m_at)
    # age < the window, as the engine compares it: in whole microseconds
    per = before.group_by(["m_row", "type"]).aggregate(
        n=before.count(),
        **{
            f"recent_{d}": (before.ts > before.m_at - ibis.interval(days=d)).cast("int64").sum()
            for d in RECENT_WINDOWS
        },
        v=before.value.sum(),
        vmax=before.value.max(),
        vmin=before.value.min(),
        last=before.ts.max(),
    )
    rows = per.to_pyarrow()
    index = rows["m_row"].to_numpy(zero_copy_only=False).astype(np.int64)
    types = np.asarray(rows["type"].to_pylist(), dtype=object)
    n = rows["n"].to_numpy(zero_copy_only=False).astype(float)
    recent = {
        d: pc.fill_null(rows[f"recent_{d}"], 0).to_numpy(zero_copy_only=False).astype(float)
        for d in RECENT_WINDOWS
    }

    def floats(name: str) -> np.ndarray:
        return np.asarray(
            pc.fill_null(pc.cast(rows[name], pa.float64()), np.nan).to_numpy(zero_copy_only=False),
            dtype=float,
        )

    v, vmax, vmin = floats("v"), floats("vmax"), floats("vmin")
    last = rows["last"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
    moment = at.astype("datetime64[us]")[index]
    days = (moment - last).astype(np.int64) / 86_400e6
    for kind in sorted({str(t) for t in types if t is not None}):
        sel = types == kind
        where = index[sel]
        for target, values, empty in (
            (out.counts, n, 0.0),
            *((out.recent[d], recent[d], 0.0) for d in RECENT_WINDOWS),
            (out.sums, v, np.nan),
            (out.highest, vmax, np.nan),
            (out.lowest, vmin, np.nan),
            (out.days_since, days, np.nan),
        ):
            column = np.full(size, empty)
            column[where] = values[sel]
            target[kind] = column
    return out


def nice(value: float, digits: int = 2) -> float:
    """A number rounded to `digits` significant digits: 0.7333 -> 0.73, 1234 -> 1200."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    scale = 10 ** (digits - 1 - math.floor(math.log10(abs(value))))
    return float(round(value * scale) / scale)


def _fmt(value: float) -> str:
    return f"{value:g}"


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


def folded_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Category codes of text as the engine compares it (folded), each category named by its
    most frequent spelling."""
    index, values = codes(column)
    groups: dict[str, int] = {}
    spelling: list[tuple[int, Any]] = []
    recode = np.full(len(values) + 1, -1, dtype=np.int64)
    counts = np.bincount(index[index >= 0], minlength=len(values))
    for k, v in enumerate(values):
        key = fold(str(v))
        g = groups.setdefault(key, len(groups))
        recode[k] = g
        if g == len(spelling):
            spelling.append((int(counts[k]), v))
        elif counts[k] > spelling[g][0]:
            spelling[g] = (int(counts[k]), v)
    return recode[index], [v for _, v in spelling]


def described(name: str, column: pa.ChunkedArray, rows: int, exclude: frozenset[str]) -> str | None:
    """How a lead field can describe leads: category, flag or number; None when it cannot."""
    bare = name.removeprefix(ACCOUNT_PREFIX)
    if name in IDENTIFIERS or bare in IDENTIFIERS or name in exclude or name in ("at", "won"):
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


def _direction(values: np.ndarray, y: np.ndarray) -> float:
    """+1 when larger values win more often, -1 when smaller do (rank correlation)."""
    present = ~np.isnan(values)
    if present.sum() < 3 or len(np.unique(values[present])) < 2:
        return 0.0
    ranks = np.argsort(np.argsort(values[present], kind="stable"), kind="stable")
    return correlation_sign(ranks.astype(float), y[present].astype(float))


def correlation_sign(x: np.ndarray, y: np.ndarray) -> float:
    """The sign of the correlation of x and y (0 when either is constant)."""
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0
    c = np.corrcoef(x, y)[0, 1]
    return float(np.sign(c)) if np.isfinite(c) else 0.0


def _thresholds(values: np.ndarray, bins: int) -> list[float]:
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return []
    edges = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
    return sorted({nice(float(e)) for e in edges})


def build(
    data: Dataset,
    found: Examples,
    *,
    min_support: int = 30,
    bins: int = 8,
    exclude: frozenset[str] = frozenset(),
) -> Features:
    """Features of every example (see the module docstring); supports, thresholds and
    directions are chosen on the training rows only."""
    table = found.table
    y = found.y
    train = ~found.holdout
    columns: list[np.ndarray] = []
    features: list[Feature] = []
    seen: set[bytes] = set()
    n_train = int(train.sum())
    support_needed = min(min_support, max(5, n_train // 20))

    def add(feature: Feature, column: np.ndarray) -> None:
        support = int(np.count_nonzero(column[train]))
        # a feature nearly every or almost no lead has says nothing (and fits badly)
        if not support_needed <= support <= n_train - support_needed:
            return
        values = column.astype(float)
        key = values.tobytes()
        if key in seen:
            return  # the same column under another name (e.g. every event was recent)
        seen.add(key)
        features.append(feature)
        columns.append(values)

    # a field's variety is judged among leads, not examples (a lead recurs per cut-off)
    leads_n = int(pc.count_distinct(table["lead_id"]).as_py())
    for name in table.column_names:
        column = table[name]
        how = described(name, column, leads_n, exclude)
        if how == "flag":
            add(Feature(f"{name} = yes", "flag", name), numbers(column) == 1)
        elif how == "number":
            _numeric(name, numbers(column), y, train, bins, add)
        elif how == "category":
            index, values = folded_codes(column)
            for k in sorted(range(len(values)), key=lambda k: str(values[k])):
                add(Feature(f"{name} = {values[k]}", "category", name, value=values[k]), index == k)
    ids = table["lead_id"].combine_chunks()
    stats = behaviour(data, ids, found.at)
    _behaviour(stats, y, train, bins, exclude, add)
    if not features:
        raise DataError(
            f"no feature varies enough among the {n_train:,} training examples (each needs at "
            f"least {support_needed} with and without it): the data has "
            + (
                "no lead field that describes leads and no events"
                if not stats.counts
                else "too little variation"
            )
        )
    return Features(
        found.lead_ids, features, np.column_stack(columns), y, found.at, found.holdout.copy()
    )


def _numeric(
    name: str,
    arr: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    bins: int,
    add: Callable[[Feature, np.ndarray], None],
) -> None:
    direction = _direction(arr[train], y[train])
    if direction == 0:
        return
    for t in _thresholds(arr[train], bins):
        present = ~np.isnan(arr)
        if direction > 0:
            feature = Feature(f"{name} >= {_fmt(t)}", "at_least", name, threshold=t)
            add(feature, present & (arr >= t))
        else:
            add(Feature(f"{name} < {_fmt(t)}", "below", name, threshold=t), present & (arr < t))


def _behaviour(
    stats: Behaviour,
    y: np.ndarray,
    train: np.ndarray,
    bins: int,
    exclude: frozenset[str],
    add: Callable[[Feature, np.ndarray], None],
) -> None:
    """Capped event counts, recent events and value thresholds per event type."""
    for kind in sorted(stats.counts):
        if kind in exclude:
            continue
        column = stats.counts[kind]
        done = column[train & (column > 0)]
        if len(done) == 0:
            continue
        # beyond the 95th percentile more events add nothing: rules cap them (max_count)
        cap = max(1, int(np.ceil(np.quantile(done, 0.95))))
        label = f"{kind} events" + (f" (up to {cap})" if cap > 1 else "")
        add(Feature(label, "count", kind, cap=cap), np.minimum(column, cap))
        for d in RECENT_WINDOWS:
            add(
                Feature(f"{kind} in the last {d} days", "recent", kind, days=d),
                stats.recent[d][kind] > 0,
            )
        high, low = stats.highest[kind], stats.lowest[kind]
        direction = _direction(high[train], y[train])
        if direction == 0:
            continue
        for t in _thresholds(high[train], bins):
            if direction > 0:
                label = f"{kind} with value >= {_fmt(t)}"
                add(Feature(label, "value_at_least", kind, threshold=t), high >= t)
            else:
                label = f"{kind} with value < {_fmt(t)}"
                add(Feature(label, "value_below", kind, threshold=t), low < t)
