"""As-of examples for learning: the leads a backtest would judge, at the cut-offs it would use.

An example is one lead open at one cut-off: it existed then (created before the cut-off, or no
creation time known) and had no outcome yet (none at or before it). Its label is whether it was
won within the horizon after the cut-off, and its behaviour counts only events before the
cut-off — the definition `leadscore backtest` judges a model by, so a learner's holdout figure
is the figure a backtest of what it wrote gives.

`frame` derives the cut-offs from the data when they are not given, and says how: training
examples come from cut-offs whose whole horizon ends by the evaluation cut-off (their labels
were known then), the holdout from the evaluation cut-off itself. Data whose outcomes all share
one instant (an export of aggregates with placeholder dates) has no time to split by: one
cut-off before its outcomes, and a stratified holdout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.schema import Dataset

Split = Literal["auto", "time", "stratified"]
# Horizons are rounded up to one of these many days: a committee reads "60 days", not "54.75".
HORIZONS = (1, 2, 3, 7, 14, 30, 60, 90, 120, 180, 270, 365, 730)
# At most this many training cut-offs: older periods add examples of a market that has moved on.
MAX_CUTOFFS = 12
# ... and at most about this many training examples (leads x cut-offs): beyond it more cut-offs
# cost time and memory for examples that repeat the same leads.
MAX_EXAMPLES = 2_000_000
# Fewer won or lost examples than this cannot support a fit.
MIN_PER_CLASS = 20
ACCOUNT_PREFIX = "account."
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Frame:
    """Where examples are taken: training cut-offs, the evaluation cut-off and the horizon."""

    cutoffs: tuple[datetime, ...]  # training cut-offs, oldest first
    horizon: timedelta
    split: Literal["time", "stratified", "none"]  # none: every example trains (holdout 0)
    evaluation: datetime | None = None  # time split: the holdout's cut-off
    holdout: float = 0.2  # stratified: the share of leads held out
    seed: int = 42
    timed: bool = True  # the outcomes are spread over time
    derived: tuple[str, ...] = ()  # how each default was chosen, for the user to read

    @property
    def horizon_days(self) -> float:
        """The horizon in days."""
        return self.horizon.total_seconds() / 86_400

    def describe(self) -> str:
        """One line a user reads before the figures."""
        h = f"horizon {self.horizon_days:g} days"
        first, last = self.cutoffs[0].isoformat(), self.cutoffs[-1].isoformat()
        span = (
            first if len(self.cutoffs) == 1 else f"{len(self.cutoffs)} cut-offs {first} .. {last}"
        )
        if self.split == "time":
            assert self.evaluation is not None
            return (
                f"judged on the leads open at {self.evaluation.isoformat()} ({h}); learnt from "
                f"{span}, each horizon ending by then"
            )
        if self.split == "stratified":
            warn = (
                " (optimistic: held-out and training leads share their period)"
                if self.timed
                else ""
            )
            return (
                f"{self.holdout:.0%} of leads held out at random within each class{warn}; "
                f"{span}, {h}"
            )
        return f"no holdout: learnt from every example ({span}, {h})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "split": self.split,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "evaluation_cutoff": self.evaluation.isoformat() if self.evaluation else None,
            "horizon_days": self.horizon_days,
            "holdout": self.holdout if self.split == "stratified" else None,
            "timed": self.timed,
            "derived": list(self.derived),
        }


@dataclass
class Examples:
    """Examples as rows: lead fields (account fields as `account.<field>`), cut-off, label."""

    table: pa.Table  # lead fields plus `at` (the cut-off) and `won`, ordered by (at, lead_id)
    holdout: np.ndarray  # bool per row
    frame: Frame

    @property
    def y(self) -> np.ndarray:
        """Won within the horizon, per row."""
        return np.asarray(self.table["won"].to_numpy(zero_copy_only=False), dtype=bool)

    @property
    def at(self) -> np.ndarray:
        """Each row's cut-off."""
        values: np.ndarray = self.table["at"].to_numpy(zero_copy_only=False)
        return values.astype("datetime64[us]")

    @property
    def lead_ids(self) -> list[str]:
        """Each row's lead."""
        return [str(v) for v in self.table["lead_id"].to_pylist()]


def _nice_horizon(days: float) -> int:
    return next((h for h in HORIZONS if h >= days), HORIZONS[-1])


def _day(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _bounds(data: Dataset) -> dict[str, Any]:
    if data.outcomes is None:
        raise DataError(
            "no outcomes table: learning needs won/lost outcomes (an `outcomes` file, or a "
            "mapping that derives them)"
        )
    o = data.outcomes
    found = o.aggregate(
        first=o.ts.min(), last=o.ts.max(), n=o.count(), instants=o.ts.nunique()
    ).to_pyarrow()
    row: dict[str, Any] = found.to_pylist()[0]
    if not row["n"]:
        raise DataError("the outcomes table is empty: learning needs won/lost outcomes")
    e = data.events
    row["first_event"] = e.aggregate(first=e.ts.min()).to_pyarrow().to_pylist()[0]["first"]
    return row


def _lags(data: Dataset) -> np.ndarray:
    """Days from each won lead's start (creation, else first event) to its first win."""
    assert data.outcomes is not None
    o = data.outcomes
    wins = o.filter(o.outcome == "won").group_by("lead_id").aggregate(won_at=o.ts.min())
    e = data.events
    first = e.group_by("lead_id").aggregate(first_event=e.ts.min())
    leads = data.leads
    created = leads.created_at if "created_at" in leads.columns else ibis.null("timestamp")
    start = leads.select("lead_id", created=created).join(first, "lead_id", how="left")
    start = start.select("lead_id", start=ibis.coalesce(start.created, start.first_event))
    j = wins.join(start, "lead_id").select("won_at", "start").to_pyarrow()
    # in numpy: microsecond timestamps, whatever fraction of a second they carry
    won_at = j["won_at"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
    began = j["start"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
    known = ~np.isnat(won_at) & ~np.isnat(began)
    gaps = (won_at[known] - began[known]).astype(np.int64) / 86_400e6
    return np.asarray(gaps[gaps >= 0], dtype=float)


def frame(
    data: Dataset,
    *,
    cutoff: datetime | None = None,
    horizon: timedelta | None = None,
    every: timedelta | None = None,
    holdout: float = 0.2,
    split: Split = "auto",
    seed: int = 42,
) -> Frame:
    """The cut-offs and horizon to learn and judge at; defaults derived from the data."""
    if not 0 <= holdout < 1:
        raise DataError(f"holdout {holdout:g}: expected a share from 0 (none) to below 1")
    b = _bounds(data)
    first, last = utc_naive(b["first"]), utc_naive(b["last"])
    timed = b["instants"] > 1 and last - first >= _DAY
    derived: list[str] = []
    if not timed:
        if split == "time":
            raise DataError(
                "a split by time needs outcomes spread over time: every outcome is at "
                f"{first.isoformat()}"
            )
        return _untimed(b, cutoff, horizon, holdout, seed, derived)
    if horizon is None:
        lags = _lags(data)
        q = float(np.quantile(lags, 0.75)) if len(lags) else 90.0
        days = _nice_horizon(max(q, 1.0))
        start = utc_naive(b["first_event"]) if b["first_event"] is not None else first
        # room for an evaluation period and at least two training periods before it
        room = (last - start).total_seconds() / 86_400 / 3
        while days > 1 and days > room:
            days = max(h for h in HORIZONS if h < days)
        horizon = timedelta(days=days)
        derived.append(
            f"horizon {days} days: 3 in 4 won leads were won within {math.ceil(q)} days of "
            "their start"
            + (" (shortened to leave room for earlier periods)" if days < _nice_horizon(q) else "")
        )
    # cut-offs a quarter horizon apart: four examples of a lead's progress per horizon
    step = every or max(_DAY, timedelta(days=math.ceil(horizon / _DAY / 4)))
    if every is None:
        derived.append(f"training cut-offs {step.days} days apart (a quarter of the horizon)")
    if step <= timedelta(0):
        raise DataError("the spacing of cut-offs must be more than zero")
    kind: Literal["time", "stratified", "none"] = (
        "none" if holdout == 0 else ("stratified" if split == "stratified" else "time")
    )
    evaluation: datetime | None = None
    if kind == "time":
        if cutoff is not None:
            evaluation = utc_naive(cutoff)
        else:
            assert data.outcomes is not None
            o = data.outcomes
            q_at = o.aggregate(q=o.ts.quantile(1 - holdout)).to_pyarrow().to_pylist()[0]["q"]
            evaluation = _day(min(utc_naive(q_at), last - horizon))
            derived.append(
                f"evaluation cut-off {evaluation.date().isoformat()}: the last {holdout:.0%} "
                "of outcomes come after it"
            )
        if evaluation >= last:
            raise DataError(
                f"cut-off {evaluation.isoformat()} is at or after the last outcome "
                f"({last.isoformat()}): nothing after it says who was won"
            )
        latest = evaluation - horizon
    elif cutoff is not None:
        latest = utc_naive(cutoff)
    else:
        latest = _day(last - horizon)
        derived.append(
            f"latest cut-off {latest.date().isoformat()}: the last whose whole horizon the "
            "outcomes cover"
        )
    leads = int(data.leads.count().to_pyarrow().as_py())
    most = max(1, min(MAX_CUTOFFS, MAX_EXAMPLES // max(1, leads)))
    cutoffs = _earlier(data, latest, step, horizon, b, most)
    if not cutoffs:
        raise DataError(
            f"no cut-off at or before {latest.isoformat()} has outcomes within "
            f"{horizon.days} days after it and events before it: choose a later --cutoff or a "
            "shorter --horizon"
        )
    return Frame(
        cutoffs=tuple(cutoffs),
        horizon=horizon,
        split=kind,
        evaluation=evaluation,
        holdout=holdout,
        seed=seed,
        timed=True,
        derived=tuple(derived),
    )


def _earlier(
    data: Dataset,
    latest: datetime,
    step: timedelta,
    horizon: timedelta,
    b: dict[str, Any],
    most: int,
) -> list[datetime]:
    """Cut-offs `step` apart back from `latest`, each with events before it and outcomes in
    its horizon, oldest first."""
    assert data.outcomes is not None
    o = data.outcomes
    times = o.select(o.ts).to_pyarrow()["ts"].to_numpy(zero_copy_only=False)
    times = np.sort(times.astype("datetime64[us]"))
    start = b["first_event"]
    out: list[datetime] = []
    c = latest
    while len(out) < most:
        if start is not None and c <= utc_naive(start):
            break
        lo = np.searchsorted(times, np.datetime64(c, "us"), side="right")
        hi = np.searchsorted(times, np.datetime64(c + horizon, "us"), side="right")
        if hi > lo:
            out.append(c)
        elif out:
            break  # before the outcomes began: nothing older will have any
        c -= step
    return sorted(out)


def _untimed(
    b: dict[str, Any],
    cutoff: datetime | None,
    horizon: timedelta | None,
    holdout: float,
    seed: int,
    derived: list[str],
) -> Frame:
    first = utc_naive(b["first"])
    if cutoff is None:
        start = utc_naive(b["first_event"]) if b["first_event"] is not None else first - _DAY
        # half-way between the last behaviour and the outcomes, on the hour
        cutoff = (start + (first - start) / 2).replace(minute=0, second=0, microsecond=0)
        if cutoff >= first or (b["first_event"] is not None and cutoff <= start):
            cutoff = first - timedelta(microseconds=1)
        derived.append(
            f"one cut-off, {cutoff.isoformat()}: every outcome is at {first.isoformat()}, so "
            "there is no later period to judge by"
        )
    cutoff = utc_naive(cutoff)
    if horizon is None:
        horizon = timedelta(days=max(1, math.ceil((first - cutoff) / _DAY)))
    return Frame(
        cutoffs=(cutoff,),
        horizon=horizon,
        split="none" if holdout == 0 else "stratified",
        holdout=holdout,
        seed=seed,
        timed=False,
        derived=tuple(derived),
    )


def lead_table(data: Dataset) -> pa.Table:
    """Leads with their account's fields as `account.<field>`, ordered by lead id."""
    leads = data.leads.order_by("lead_id").to_pyarrow()
    if data.accounts is None or "account_id" not in leads.column_names:
        return leads
    accounts = data.accounts.to_pyarrow()
    if "account_id" not in accounts.column_names:
        return leads
    keys = pc.cast(accounts["account_id"], pa.string())
    index = pc.index_in(pc.cast(leads["account_id"], pa.string()), value_set=keys)
    for name in accounts.column_names:
        if name in ("account_id",):
            continue
        leads = leads.append_column(f"{ACCOUNT_PREFIX}{name}", pc.take(accounts[name], index))
    return leads


def examples(data: Dataset, fr: Frame) -> Examples:
    """Every lead open at each cut-off of the frame (and its evaluation cut-off), labelled."""
    assert data.outcomes is not None
    leads = lead_table(data)
    ids = leads["lead_id"].combine_chunks()
    n = leads.num_rows
    created = (
        leads["created_at"].to_numpy(zero_copy_only=False).astype("datetime64[us]")
        if "created_at" in leads.column_names
        else np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    )
    o = data.outcomes.select("lead_id", "ts", "outcome").to_pyarrow()
    where = np.asarray(pc.fill_null(pc.index_in(o["lead_id"], value_set=ids), -1))
    known = where >= 0
    lead_of = where[known].astype(np.int64)
    ts = o["ts"].to_numpy(zero_copy_only=False).astype("datetime64[us]")[known]
    won_row = np.asarray(pc.equal(o["outcome"], "won").to_numpy(zero_copy_only=False))[known]
    never = np.iinfo(np.int64).max
    earliest = np.full(n, never, dtype=np.int64)
    np.minimum.at(earliest, lead_of, ts.astype(np.int64))
    first_outcome = np.where(
        earliest == never, np.datetime64("NaT", "us"), earliest.astype("datetime64[us]")
    )
    moments = list(fr.cutoffs) + ([fr.evaluation] if fr.evaluation is not None else [])
    parts: list[pa.Table] = []
    held: list[np.ndarray] = []
    for k, c in enumerate(moments):
        at = np.datetime64(c, "us")
        end = np.datetime64(c + fr.horizon, "us")
        exists = np.isnat(created) | (created < at)
        open_ = np.isnat(first_outcome) | (first_outcome > at)
        rows = np.flatnonzero(exists & open_)
        won = np.zeros(n, dtype=bool)
        won[lead_of[won_row & (ts > at) & (ts <= end)]] = True
        part = leads.take(pa.array(rows))
        part = part.append_column("at", pa.array(np.full(len(rows), at), pa.timestamp("us")))
        part = part.append_column("won", pa.array(won[rows]))
        parts.append(part)
        held.append(np.full(len(rows), fr.evaluation is not None and k == len(moments) - 1))
    table = pa.concat_tables(parts)
    holdout = np.concatenate(held)
    if fr.split == "stratified":
        holdout = _stratified(table, fr)
    y = np.asarray(table["won"].to_numpy(zero_copy_only=False), dtype=bool)
    train = ~holdout
    won_n, lost_n = int(y[train].sum()), int((~y[train]).sum())
    if min(won_n, lost_n) < MIN_PER_CLASS:
        raise DataError(
            f"{won_n} won and {lost_n} other training examples ({fr.describe()}): learning "
            f"needs at least {MIN_PER_CLASS} of each"
            + (" (only one class)" if min(won_n, lost_n) == 0 else "")
            + "; try a longer --horizon or an earlier --cutoff"
        )
    if holdout.any() and (int(y[holdout].sum()) == 0 or int((~y[holdout]).sum()) == 0):
        raise DataError(
            f"the holdout holds {int(y[holdout].sum())} won and {int((~y[holdout]).sum())} other "
            f"examples ({fr.describe()}): it cannot judge a model; choose another --cutoff"
        )
    return Examples(table, holdout, fr)


def _stratified(table: pa.Table, fr: Frame) -> np.ndarray:
    """Held-out rows: a share of leads at random within each class, all their rows with them."""
    from sklearn.model_selection import train_test_split

    ids = np.asarray(table["lead_id"].to_pylist(), dtype=object)
    y = np.asarray(table["won"].to_numpy(zero_copy_only=False), dtype=bool)
    leads, inverse = np.unique(ids, return_inverse=True)
    ever = np.zeros(len(leads), dtype=bool)
    np.logical_or.at(ever, inverse, y)
    rows = np.arange(len(leads))
    _, test = train_test_split(rows, test_size=fr.holdout, stratify=ever, random_state=fr.seed)
    chosen = np.zeros(len(leads), dtype=bool)
    chosen[test] = True
    return np.asarray(chosen[inverse], dtype=bool)
