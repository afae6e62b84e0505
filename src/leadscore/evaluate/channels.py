"""Which channels bring buyers (S6, S27): leads, won, conversion, hot share, score and value per
lead source, campaign and content stage, as of a point in time.

Who counts: every lead that existed at `as_of` (created before it, or of unknown creation time);
leads created at or after `as_of` are left out and counted. A lead is **won** if it has a `won`
outcome at any time up to and including `as_of`. Scores, temperatures and stages are the model's
as of `as_of`, from the events before it.

Attribution:

- source: the lead's own `leads.source`, one group per lead.
- campaign and content stage: a lead counts, with full weight, for **every** campaign (content
  stage) of its events before `as_of`; leads that touched none count under "(none)". A lead that
  touched two campaigns is in both, so the rows of these tables add up to more than the leads.

All work is done by the backend (DuckDB); only one row per group reaches Python.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import ibis
import ibis.expr.types as ir

from leadscore.engine.batch import compile_batch
from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.evaluate.backtest import handover_stages
from leadscore.io.readers import duckdb_connection
from leadscore.model.scoring import Route, ScoringModel
from leadscore.schema import Dataset

#: The group of leads without a source, or without any campaign (content stage) touched.
NONE: Final = "(none)"

#: The grouping columns: lead source from `leads`, campaign and content stage from `events`.
DIMENSIONS: Final = ("source", "campaign", "content_stage")


@dataclass(frozen=True)
class ChannelRow:
    """One source, campaign or content stage and what its leads brought.

    The value fields are None when no won outcome up to `as_of` carries a value;
    `hot` and `hot_share` when the model has neither temperatures nor hand-over stages.
    """

    value: str
    leads: int
    won: int  # leads with a won outcome up to as_of
    conversion: float  # won / leads
    hot: int | None  # leads hot as of as_of
    hot_share: float | None  # hot / leads
    mean_score: float | None  # mean total as of as_of
    won_value: float | None  # sum of the values of the won outcomes
    value_per_lead: float | None  # won_value / leads
    repeat_purchases: int | None  # leads with more than one won outcome
    lifetime_value: float | None  # won value per won lead (of those whose wins carry a value)

    def as_row(self) -> dict[str, Any]:
        """The row as a flat, JSON-ready record."""
        return {
            "value": self.value,
            "leads": self.leads,
            "won": self.won,
            "conversion": self.conversion,
            "hot": self.hot,
            "hot_share": self.hot_share,
            "mean_score": self.mean_score,
            "won_value": self.won_value,
            "value_per_lead": self.value_per_lead,
            "repeat_purchases": self.repeat_purchases,
            "lifetime_value": self.lifetime_value,
        }


@dataclass
class Channels:
    """Leads and buyers per lead source, campaign and content stage, each sorted by won."""

    model: str
    model_version: str
    as_of: datetime
    leads: int  # leads that existed at as_of
    won: int  # of them, won up to as_of
    not_yet_created: int  # leads created at or after as_of: left out
    hot_basis: str | None  # what "hot" means for this model; None: no hot share
    has_values: bool  # won outcomes carry values: the value columns are filled
    sources: list[ChannelRow]
    campaigns: list[ChannelRow]
    content_stages: list[ChannelRow]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "as_of": self.as_of.isoformat(),
            "leads": self.leads,
            "won": self.won,
            "conversion": self.won / self.leads if self.leads else None,
            "not_yet_created": self.not_yet_created,
            "hot_basis": self.hot_basis,
            "has_values": self.has_values,
            "sources": [r.as_row() for r in self.sources],
            "campaigns": [r.as_row() for r in self.campaigns],
            "content_stages": [r.as_row() for r in self.content_stages],
            "notes": self.notes,
        }


def _check_outcomes(data: Dataset, as_of: datetime) -> ir.Table:
    if data.outcomes is None:
        raise DataError(
            "no outcomes table: channel conversion needs won/lost outcomes (an `outcomes` file, "
            "or a mapping that derives them)"
        )
    o = data.outcomes
    bounds = o.aggregate(n=o.count(), first=o.ts.min()).to_pyarrow().to_pylist()[0]
    if not bounds["n"]:
        raise DataError("the outcomes table is empty: channel conversion needs won/lost outcomes")
    if bounds["first"] > as_of:
        raise DataError(
            f"no outcome at or before {as_of.isoformat()} (the first is "
            f"{bounds['first'].isoformat()}): nothing says who was won yet; choose a later as-of"
        )
    return o


def _hot(model: ScoringModel, scores: ir.Table) -> tuple[ir.BooleanValue | None, str | None]:
    """Which scored leads are hot, and how that was decided."""
    routes: list[Route] = list(model.routing)
    acc = model.account
    if acc is not None and acc.priority is not None and acc.priority.route is not None:
        routes.append(acc.priority.route)
    if any(r.temperature is not None for r in routes):
        return (scores.temperature == "hot").fill_null(False), "temperature == 'hot'"
    stages = handover_stages(model)
    if stages:
        basis = "stage in " + ", ".join(stages) + " (hand-over stages: routing with sla_hours)"
        return scores.stage.isin(stages).fill_null(False), basis
    return None, None


def _per_lead(
    model: ScoringModel, data: Dataset, outcomes: ir.Table, as_of: datetime
) -> tuple[ir.Table, ir.Table, str | None]:
    """One row per lead: existed at as_of, source, total, hot, won outcomes and their value;
    plus the table of all leads with their `new` flag (for the not-yet-created count)."""
    scores = compile_batch(model, data, utc_naive(as_of)).scores
    hot, basis = _hot(model, scores)
    scored = scores.select(
        "lead_id",
        "total",
        hot=hot if hot is not None else ibis.literal(False),
    )
    leads = data.leads
    created = leads.created_at if "created_at" in leads.columns else ibis.null("timestamp")
    source = leads.source.cast("string") if "source" in leads.columns else ibis.null("string")
    people = leads.select(
        "lead_id",
        source=source.fill_null(NONE),
        new=created.notnull() & (created >= as_of),
    )
    won = outcomes.filter((outcomes.outcome == "won") & (outcomes.ts <= as_of))
    won = won.select(
        "lead_id",
        value=won.value.cast("float64") if "value" in won.columns else ibis.null("float64"),
    )
    per = won.group_by("lead_id").aggregate(
        purchases=won.count(), won_value=won.value.sum(), valued=won.value.count()
    )
    existing = people.filter(~people.new)
    base = existing.join(scored, "lead_id").join(per, "lead_id", how="left")
    base = base.select(
        lead_id=existing.lead_id,
        source=existing.source,
        total=scored.total,
        hot=scored.hot.cast("int64"),
        won=per.purchases.notnull().cast("int64"),
        repeat=(per.purchases > 1).fill_null(False).cast("int64"),
        won_value=per.won_value,
        valued=(per.valued > 0).fill_null(False).cast("int64"),
    )
    return base, people, basis


@contextmanager
def _materialized(table: ir.Table) -> Iterator[ir.Table]:
    """The table computed once into a temporary DuckDB table, dropped afterwards.

    (Ibis's own `Table.cache()` cannot drop its table on DuckDB 2.)
    """
    con = table.get_backend()
    name = f"_leadscore_channels_{uuid.uuid4().hex}"
    with warnings.catch_warnings():
        # Ibis 12 calls a DuckDB 2 method that is deprecated; harmless, and not ours to fix.
        warnings.filterwarnings(
            "ignore", message=r".*fetch_arrow_table", category=DeprecationWarning
        )
        cached = con.create_table(name, table, temp=True)
    try:
        yield cached
    finally:
        duckdb_connection(con).execute(f'DROP TABLE IF EXISTS "{name}"')


def _aggregate(t: ir.Table, key: str) -> list[dict[str, Any]]:
    grouped = t.group_by(key).aggregate(
        leads=t.count(),
        won=t.won.sum(),
        hot=t.hot.sum(),
        mean_score=t.total.mean(),
        won_value=t.won_value.sum(),
        repeat=t.repeat.sum(),
        valued=t.valued.sum(),
    )
    rows: list[dict[str, Any]] = grouped.to_pyarrow().to_pylist()
    return rows


def _touched(base: ir.Table, events: ir.Table, column: str, as_of: datetime) -> ir.Table:
    """Each lead once per distinct value of `column` on its events before as_of; (none) if none."""
    if column not in events.columns:
        return base.mutate(**{column: ibis.literal(NONE)})
    e = events.filter((events.ts < as_of) & events[column].notnull())
    touched = e.select("lead_id", key=e[column].cast("string")).distinct()
    joined = base.join(touched, "lead_id", how="left")
    return joined.select(*[base[c] for c in base.columns], **{column: touched.key.fill_null(NONE)})


def _rows(
    groups: list[dict[str, Any]], key: str, has_hot: bool, has_values: bool
) -> list[ChannelRow]:
    out = []
    for g in groups:
        leads, won = int(g["leads"]), int(g["won"] or 0)
        hot = int(g["hot"] or 0) if has_hot else None
        value = float(g["won_value"] or 0.0) if has_values else None
        valued = int(g["valued"] or 0)
        out.append(
            ChannelRow(
                value=str(g[key]),
                leads=leads,
                won=won,
                conversion=won / leads,
                hot=hot,
                hot_share=hot / leads if hot is not None else None,
                mean_score=float(g["mean_score"]) if g["mean_score"] is not None else None,
                won_value=value,
                value_per_lead=value / leads if value is not None else None,
                repeat_purchases=int(g["repeat"] or 0) if has_values else None,
                lifetime_value=value / valued if value is not None and valued else None,
            )
        )
    out.sort(key=lambda r: (-r.won, -r.leads, r.value))
    return out


def channels(model: ScoringModel, data: Dataset, as_of: datetime) -> Channels:
    """Leads, won, conversion, hot share, mean score and won value per lead source, campaign and
    content stage, as of `as_of` (each table sorted by won, most first).

    - Leads: those that existed at `as_of` (created before it, or of unknown creation time).
    - Won: the lead has a `won` outcome at any time up to and including `as_of`;
      conversion = won / leads.
    - Hot share: leads whose temperature is "hot" as scored as of `as_of`; for a model without
      temperatures, leads in a hand-over stage (a routing entry with `sla_hours`).
    - Mean score: the mean total as of `as_of`.
    - Source: the lead's `source`. Campaign and content stage: a lead counts for every campaign
      (content stage) it touched with an event before `as_of`, so a lead that touched two
      campaigns counts in both; leads that touched none, like leads without a source, are
      grouped as "(none)".
    - Where won outcomes carry values: won value (the sum over the won outcomes up to
      `as_of`), value per lead (won value / leads), repeat purchases (leads with more than one
      won outcome) and lifetime value (the won value per won lead, over the won leads whose
      wins carry a value). Without values these are None.

    Raises DataError when there are no outcomes (no table, an empty one, or none up to
    `as_of`) or no lead existed at `as_of`.
    """
    as_of = utc_naive(as_of)
    outcomes = _check_outcomes(data, as_of)
    base, people, basis = _per_lead(model, data, outcomes, as_of)
    notes: list[str] = []
    if basis is None:
        notes.append(
            "no hot share: the model's routing sets no temperature and no hand-over stage "
            "(a routing entry with sla_hours)"
        )
    counts = people.aggregate(n=people.count(), new=people.new.cast("int64").sum())
    totals = counts.to_pyarrow().to_pylist()[0]
    if not (totals["n"] - (totals["new"] or 0)):
        raise DataError(
            f"no lead existed at {as_of.isoformat()}: every lead was created at or after it; "
            "choose a later as-of"
        )
    with _materialized(base) as cached:
        by_source = _aggregate(cached, "source")
        by_campaign = _aggregate(_touched(cached, data.events, "campaign", as_of), "campaign")
        by_stage = _aggregate(
            _touched(cached, data.events, "content_stage", as_of), "content_stage"
        )
    has_values = sum(int(g["valued"] or 0) for g in by_source) > 0
    if not has_values:
        notes.append("no won outcome carries a value: value columns are empty")
    for name, table in (("source", data.leads), ("campaign", data.events)):
        if name not in table.columns:
            notes.append(f"no {name} column: every lead counts as {NONE!r}")
    if "content_stage" not in data.events.columns:
        notes.append(f"no content_stage column: every lead counts as {NONE!r}")
    has_hot = basis is not None
    sources = _rows(by_source, "source", has_hot, has_values)
    return Channels(
        model=model.name,
        model_version=model.version,
        as_of=as_of,
        leads=sum(r.leads for r in sources),
        won=sum(r.won for r in sources),
        not_yet_created=int(totals["new"] or 0),
        hot_basis=basis,
        has_values=has_values,
        sources=sources,
        campaigns=_rows(by_campaign, "campaign", has_hot, has_values),
        content_stages=_rows(by_stage, "content_stage", has_hot, has_values),
        notes=notes,
    )
