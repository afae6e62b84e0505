"""The batch ledger: every line the reference evaluator writes, as one UNION ALL expression.

Event lines come from the rules' event streams, cap lines from per-lead counts of those
streams, every other line from the lead table; notes built from model values are formatted
in Python exactly as the reference formats them.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir

from leadscore.engine import batch_leads as bl
from leadscore.engine.batch_conditions import f64
from leadscore.engine.batch_events import (
    CENTS,
    FACTOR,
    KEPT,
    SLOT,
    SUM,
    EventPlan,
    frequency_col,
    is_simple,
)
from leadscore.engine.result import LEDGER_COLUMNS
from leadscore.engine.timebase import fmt_number
from leadscore.model.scoring import ScoringModel

LEDGER_TYPES: dict[str, str] = {
    "lead_id": "string",
    "part": "string",
    "kind": "string",
    "rule": "string",
    "event_id": "string",
    "ts": "timestamp",
    "base": "float64",
    "factor": "float64",
    "points": "float64",
    "detail": "string",
    "note": "string",
}
assert tuple(LEDGER_TYPES) == LEDGER_COLUMNS

Value = Any


def _line(t: ir.Table, part: str, kind: str, rule: str, **values: Value) -> ir.Table:
    """A selection of `t` shaped as ledger lines; text and floats given in Python are literals."""
    given: dict[str, Value] = {"part": part, "kind": kind, "rule": rule, **values}
    out: dict[str, ir.Value] = {"lead_id": t.lead_id.cast("string")}
    for name, typ in LEDGER_TYPES.items():
        if name == "lead_id":
            continue
        value = given.get(name)
        if value is None:
            out[name] = ibis.null(typ)
        elif isinstance(value, str):
            out[name] = ibis.literal(value, type="string")
        elif isinstance(value, float | int):
            out[name] = f64(value)
        else:
            out[name] = value.cast(typ)
    return t.select(**out)


def _points(cents: ir.IntegerValue) -> ir.FloatingValue:
    return cents.cast("float64") / 100


def _event_lines(model: ScoringModel, plan: EventPlan) -> list[ir.Table]:
    detail_cols = [c for c in ("url", "asset", "topic") if c in plan.events.columns]
    out = []
    for i, rule in enumerate(model.behaviour.rules):
        s = plan.stream(i)
        s = s.filter(s[KEPT] & (s[CENTS] != 0))
        details = [s[c].cast("string") for c in detail_cols]
        if not details:
            detail: ir.Value | None = None
        elif len(details) == 1:
            detail = details[0]
        else:
            detail = ibis.coalesce(*details)
        out.append(
            _line(
                s,
                "behaviour",
                "event",
                rule.name,
                event_id=s.event_id,
                ts=s.ts,
                base=rule.points,
                factor=s[FACTOR],
                points=_points(s[CENTS]),
                detail=detail,
            )
        )
    return out


def _dropped_lines(model: ScoringModel, plan: EventPlan) -> list[ir.Table]:
    out = []
    for i, rule in enumerate(model.behaviour.rules):
        if is_simple(rule):
            continue
        s = plan.stream(i)
        counts = s.group_by("lead_id").aggregate(
            __hits=s.count(),
            __kept=s[KEPT].sum(),  # booleans sum as their count of true
        )
        counts = counts.filter(counts.__hits > counts.__kept)
        dropped = (counts.__hits - counts.__kept).cast("string")
        note = dropped + ibis.literal(" more events not counted (caps)")
        out.append(_line(counts, "behaviour", "cap", rule.name, points=0.0, note=note))
    return out


def _max_points_lines(model: ScoringModel, plan: EventPlan) -> list[ir.Table]:
    out = []
    for i in plan.branch_rules:
        rule = model.behaviour.rules[i]
        cap = rule.cap_cents
        if cap is None:
            continue
        sums = plan.rule_sums
        raw = sums[SUM].cast("int64")
        over = sums.filter((sums[SLOT] == i) & ((raw > cap) | (raw < -cap)))
        raw = over[SUM].cast("int64")
        note = f"max_points {fmt_number(rule.max_points or 0)} reached"
        points = _points(bl.clamp(raw, cap) - raw)
        out.append(_line(over, "behaviour", "cap", rule.name, points=points, note=note))
    return out


def _lead_lines(model: ScoringModel, t: ir.Table) -> list[ir.Table]:
    out: list[ir.Table] = []
    tiers = model.tiers
    for i, rule in enumerate(model.fit.rules):
        if tiers is None:
            cents = rule.cents
        elif rule.tier == "persona":
            cents = tiers.persona_points * 100
        else:
            cents = tiers.factor_points * 100
        if cents:
            hit = t.filter(t[bl.fit_col(i)])
            out.append(_line(hit, "fit", "fit", rule.name, base=cents / 100, points=cents / 100))
    b = model.behaviour
    for q, fq in enumerate(b.frequency):
        if fq.cents:
            hit = t.filter(t[frequency_col(q)] >= fq.min_count)
            n = hit[frequency_col(q)].cast("string")
            note = n + ibis.literal(f" events within {fmt_number(fq.within_days)} days")
            out.append(
                _line(
                    hit,
                    "behaviour",
                    "frequency",
                    fq.name,
                    base=fq.points,
                    points=fq.cents / 100,
                    note=note,
                )
            )
    for v, velocity in enumerate(b.velocity):
        for k, tier in enumerate(velocity.tiers):
            cents = round(tier.points * 100)
            if cents:
                hit = t.filter(t[bl.velocity_col(v)] == k)
                note = f"all steps within {fmt_number(tier.within_days)} days"
                out.append(
                    _line(
                        hit,
                        "behaviour",
                        "velocity",
                        velocity.name,
                        base=tier.points,
                        points=cents / 100,
                        note=note,
                    )
                )
    for k, step in enumerate(b.inactivity):
        cents = round(step.points * 100)
        if cents:
            hit = t.filter(t[bl.INACTIVITY] == k)
            note = f"no activity for {fmt_number(step.after_days)}+ days"
            out.append(
                _line(
                    hit,
                    "behaviour",
                    "inactivity",
                    "inactivity",
                    base=step.points,
                    points=cents / 100,
                    note=note,
                )
            )
    if b.floor is not None:
        hit = t.filter(t[bl.LIFT] > 0)
        note = f"behaviour floor {fmt_number(b.floor)}"
        out.append(
            _line(hit, "behaviour", "floor", "floor", points=_points(hit[bl.LIFT]), note=note)
        )
    acc = model.account
    if acc is not None and acc.stakeholders is not None:
        for k, st in enumerate(acc.stakeholders.tiers):
            cents = round(st.points * 100)
            if cents:
                hit = t.filter(t[bl.STAKEHOLDER_TIER] == k)
                note = hit[bl.ENGAGED_LEADS].cast("string") + ibis.literal(" engaged leads")
                out.append(
                    _line(
                        hit,
                        "account",
                        "stakeholders",
                        "stakeholders",
                        base=st.points,
                        points=cents / 100,
                        note=note,
                    )
                )
    if acc is not None and acc.priority is not None:
        cents = round(acc.priority.points * 100)
        if cents:
            hit = t.filter(t[bl.PRIORITY])
            out.append(
                _line(
                    hit,
                    "account",
                    "priority",
                    "priority",
                    base=acc.priority.points,
                    points=cents / 100,
                    note="priority account",
                )
            )
    if tiers is not None:
        hit = t.filter(t[bl.CLIP] != 0)
        note = f"stage 3 kept within 0..{tiers.behaviour_max}"
        out.append(
            _line(hit, "behaviour", "tier_cap", "tiers", points=_points(hit[bl.CLIP]), note=note)
        )
    return out


def ledger_expr(model: ScoringModel, plan: EventPlan, table: ir.Table) -> ir.Table:
    """Every ledger line of every lead, with `result.LEDGER_COLUMNS`."""
    parts = [
        *_lead_lines(model, table),
        *_event_lines(model, plan),
        *_dropped_lines(model, plan),
        *_max_points_lines(model, plan),
    ]
    if not parts:
        empty = table.filter(ibis.literal(False))
        return _line(empty, "", "", "")
    return parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
