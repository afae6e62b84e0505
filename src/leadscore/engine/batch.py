"""The batch evaluator: a scoring model compiled to one Ibis expression over the dataset.

It gives exactly the scores and ledgers of the reference evaluator (`reference.py`), for every
lead at once. Scores never touch ledger text; the ledger is a separate expression, evaluated
only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir

from leadscore.engine import batch_leads as bl
from leadscore.engine.batch_conditions import backend_name, f64, kind_of_value
from leadscore.engine.batch_events import DETAIL_COLUMNS, LEAD, EventPlan, prepare_events
from leadscore.engine.batch_ledger import ledger_expr
from leadscore.engine.binding import Columns, Kind, bind
from leadscore.engine.result import SCORE_COLUMNS, TRAILING_COLUMNS
from leadscore.engine.timebase import utc_naive
from leadscore.errors import EngineError
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

_REQUIRED: dict[str, dict[str, tuple[Kind, ...]]] = {
    "leads": {"lead_id": ("text", "number")},
    "events": {
        "event_id": ("text", "number"),
        "lead_id": ("text", "number"),
        "type": ("text",),
        "ts": ("timestamp",),
    },
    "accounts": {"account_id": ("text", "number")},
}


@dataclass(frozen=True)
class BatchResult:
    """Lazy Ibis expressions: one score row per lead, and the ledger lines behind them."""

    scores: ibis.Table
    ledger: ibis.Table


def _kinds(table: ir.Table) -> dict[str, Kind]:
    return {name: kind_of_value(table[name]) for name in table.columns}


def check_tables(dataset: Dataset) -> None:
    """Every table the engine reads has its required columns with usable types (EngineError)."""
    _check_required("leads", dataset.leads)
    _check_required("events", dataset.events)
    if dataset.accounts is not None:
        _check_required("accounts", dataset.accounts)


def _check_required(name: str, table: ir.Table) -> None:
    kinds = _kinds(table)
    for column, allowed in _REQUIRED[name].items():
        if column not in kinds:
            raise EngineError(
                f"the {name} table has no {column!r} column; it has: "
                f"{', '.join(sorted(kinds)) or 'none'}"
            )
        if kinds[column] not in allowed:
            raise EngineError(
                f"column {name}.{column} holds {kinds[column]} values; "
                f"expected {' or '.join(allowed)}"
            )


def _check(model: ScoringModel, dataset: Dataset) -> None:
    check_tables(dataset)
    leads = _kinds(dataset.leads)
    if model.prediction is not None and model.prediction.field not in leads:
        raise EngineError(
            f"model {model.name!r} reads the predicted probability {model.prediction.field!r}, "
            "which the leads do not have yet: add it with leadscore.learn.hybrid.enrich "
            "(leadscore score, explain and backtest do this)"
        )
    if model.behaviour.inactivity and leads.get("created_at", "timestamp") != "timestamp":
        raise EngineError(
            f"column leads.created_at holds {leads['created_at']} values; inactivity needs "
            "timestamps"
        )
    bind(
        model,
        Columns(
            leads=leads,
            events=_kinds(dataset.events),
            accounts=_kinds(dataset.accounts) if dataset.accounts is not None else None,
        ),
    )


def _event_columns(model: ScoringModel, events: ir.Table, detail: bool) -> list[str]:
    wanted = model.event_fields()
    if detail:
        wanted += [c for c in DETAIL_COLUMNS if c in events.columns]
    return list(dict.fromkeys(wanted))


def _plan(
    model: ScoringModel, dataset: Dataset, as_of: datetime, *, detail: bool, pooled: bool | None
) -> tuple[EventPlan, ir.Table]:
    leads = dataset.leads
    lead_ids = leads.select(**{LEAD: leads.lead_id.cast("string")})
    columns = _event_columns(model, dataset.events, detail)
    # A validated dataset (leadscore's readers and generator) has unique event ids and no
    # events of unknown leads, so the dedupe window and the join to the leads are skipped.
    validated = dataset.validated
    events = prepare_events(model, dataset.events, lead_ids, as_of, columns, validated=validated)
    # Spark runs a shared CTE again for each use: rank the count-capped rules in one pass.
    if pooled is None:
        pooled = backend_name(dataset.events) == "pyspark"
    plan = EventPlan(model, events, as_of, narrow=not detail, validated=validated, pooled=pooled)
    table = bl.lead_table(model, leads, dataset.accounts, plan.per_lead(), as_of)
    return plan, table


def _cents(value: ir.IntegerValue) -> ir.FloatingValue:
    return value.cast("float64") / 100


def _route_field(model: ScoringModel, t: ir.Table, field: str) -> ir.Value:
    typ = "float64" if field == "sla_hours" else "string"

    def literal(value: object) -> ir.Value:
        if value is None:
            return ibis.null(typ)
        return f64(float(value)) if typ == "float64" else ibis.literal(str(value))  # type: ignore[arg-type]

    branches = [(t[bl.ROUTE] == i, literal(getattr(e, field))) for i, e in enumerate(model.routing)]
    value = ibis.cases(*branches, else_=ibis.null(typ)) if branches else ibis.null(typ)
    acc = model.account
    route = acc.priority.route if acc is not None and acc.priority is not None else None
    override = getattr(route, field) if route is not None else None
    if override is not None:
        value = ibis.ifelse(t[bl.PRIORITY], literal(override), value)
    return value


def _primary_interest(model: ScoringModel, t: ir.Table) -> ir.StringValue:
    subs = [t[c] for c in bl.interest_names(model)]
    if not subs:
        return ibis.null("string")
    best = ibis.greatest(*subs) if len(subs) > 1 else subs[0]
    branches = [
        ((sub == best) & (best > 0), ibis.literal(it.name))
        for sub, it in zip(subs, model.interests, strict=True)
    ]
    return ibis.cases(*branches, else_=ibis.null("string"))


def scores_expr(model: ScoringModel, t: ir.Table, as_of: datetime) -> ir.Table:
    """The public score columns from the lead table, in `result` order."""
    tiered = model.tiers is not None
    null_float = ibis.null("float64")
    roll = model.account.rollup if model.account is not None else "sum"
    total = t[bl.TOTAL_CENTS]
    window = (total.sum() if roll == "sum" else total.max()).over(group_by=t.account_id)
    grade, level = t.grade, t.engagement
    out: dict[str, ir.Value] = {
        "lead_id": t.lead_id,
        "total": _cents(total),
        "fit": _cents(t[bl.FIT_CENTS]),
        "behaviour": _cents(t[bl.BEHAVIOUR_CENTS]),
        "account": _cents(t[bl.ACCOUNT_CENTS]),
        "tier_persona": _cents(t[bl.PERSONA_CENTS]) if tiered else null_float,
        "tier_factors": _cents(t[bl.FACTOR_CENTS]) if tiered else null_float,
        "tier_behaviour": _cents(t[bl.STAGE3_CENTS]) if tiered else null_float,
        "grade": grade,
        "engagement": level,
        "cell": ibis.ifelse(grade.notnull() & level.notnull(), grade + level, ibis.null("string")),
        "temperature": _route_field(model, t, "temperature"),
        "stage": _route_field(model, t, "stage"),
        "queue": _route_field(model, t, "queue"),
        "sla_hours": _route_field(model, t, "sla_hours"),
        "priority": t[bl.PRIORITY],
        "account_id": t.account_id,
        "account_score": ibis.ifelse(t.account_id.notnull(), _cents(window), null_float),
        "primary_interest": _primary_interest(model, t),
    }
    assert tuple(out) == SCORE_COLUMNS
    for it, col in zip(model.interests, bl.interest_names(model), strict=True):
        out[f"interest_{it.name}"] = _cents(t[col])
    trailing: dict[str, ir.Value] = {
        "model": ibis.literal(model.name, type="string"),
        "model_version": ibis.literal(model.version, type="string"),
        "as_of": ibis.literal(as_of, type="timestamp"),
    }
    assert tuple(trailing) == TRAILING_COLUMNS
    return t.select(**out, **trailing)


def compile_batch(
    model: ScoringModel, dataset: Dataset, as_of: datetime, *, pooled: bool | None = None
) -> BatchResult:
    """Compile a model into lazy score and ledger expressions over the dataset's tables.

    `pooled` chooses the plan for engines without shared CTEs (`EventPlan.pooled`); by default
    it is used on Spark only. Both plans give the same scores.
    """
    as_of = utc_naive(as_of)
    _check(model, dataset)
    _, table = _plan(model, dataset, as_of, detail=False, pooled=pooled)
    scores = scores_expr(model, table, as_of)
    plan, table = _plan(model, dataset, as_of, detail=True, pooled=pooled)
    ledger = ledger_expr(model, plan, table)
    return BatchResult(scores=scores, ledger=ledger)
