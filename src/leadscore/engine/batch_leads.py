"""The lead half of the batch evaluator: one row per lead with every intermediate value.

The table built here carries internal `__` columns (fit matches, caps, tiers reached, ...)
from which both the scores and the per-lead ledger lines are read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import ibis
import ibis.expr.types as ir

from leadscore.engine.batch_conditions import condition_expr
from leadscore.engine.batch_events import (
    ENGAGED,
    FREE,
    LAST,
    LEAD,
    frequency_col,
    interest_col,
    step_col,
)
from leadscore.model.scoring import FitRule, RouteWhen, ScoringModel, days_to_micros

ACCOUNT_PREFIX = "account."

FIT_CENTS = "__fit_c"
PERSONA_CENTS = "__persona_c"
FACTOR_CENTS = "__factors_c"
PRE_FLOOR = "__pre_c"
LIFT = "__lift_c"
ENGAGED_LEADS = "__engaged_n"
PRIORITY = "__priority"
CLIP = "__clip_c"
BEHAVIOUR_CENTS = "__beh_c"
ACCOUNT_CENTS = "__acc_c"
TOTAL_CENTS = "__total_c"
STAGE3_CENTS = "__stage3_c"
ENGAGED_CENTS = "__engaged_c"
ROUTE = "__route"
INACTIVITY = "__inact"
STAKEHOLDER_TIER = "__st"


def fit_col(index: int) -> str:
    """Whether fit rule `index` counts for the lead (tiers: within its stage's limits)."""
    return f"__fit{index}"


def velocity_col(index: int) -> str:
    """The index of the velocity tier a lead reached (null: none)."""
    return f"__vt{index}"


def clamp(value: ir.IntegerValue, cap: int) -> ir.IntegerValue:
    """`value` kept within [-cap, cap] (value is never null)."""
    return ibis.least(ibis.greatest(value, _int(-cap)), _int(cap))


def _sum(values: Sequence[ir.IntegerValue]) -> ir.IntegerValue:
    out: ir.IntegerValue = ibis.literal(0, type="int64")
    for v in values:
        out = out + v
    return out


def _int(value: int) -> ir.IntegerScalar:
    return ibis.literal(value, type="int64")


def _pick(levels: Sequence[tuple[float | None, str]], cents: ir.IntegerValue) -> ir.StringValue:
    branches: list[tuple[ir.BooleanValue, ir.StringValue]] = []
    for minimum, name in levels:
        if minimum is None:
            return (
                ibis.cases(*branches, else_=ibis.literal(name)) if branches else ibis.literal(name)
            )
        branches.append((cents >= round(minimum * 100), ibis.literal(name)))
    return ibis.cases(*branches) if branches else ibis.null("string")


def _last_reached(
    value: ir.IntegerValue, thresholds: Sequence[int], *, strict: bool = False
) -> ir.IntegerValue:
    """The index of the last threshold that `value` reached (thresholds rise), else null."""
    branches = [
        ((value > th) if strict else (value >= th), _int(i)) for i, th in enumerate(thresholds)
    ]
    return ibis.cases(*reversed(branches), else_=ibis.null("int64"))


def _by_index(index: ir.IntegerValue, values: Sequence[int]) -> ir.IntegerValue:
    branches = [(index == i, _int(v)) for i, v in enumerate(values)]
    return ibis.cases(*branches, else_=_int(0))


def lead_table(
    model: ScoringModel,
    leads: ir.Table,
    accounts: ir.Table | None,
    per_lead: ir.Table,
    as_of: datetime,
) -> ir.Table:
    """Leads joined with their event sums and account, with every score computed."""
    b = model.behaviour
    account_fields = [
        f[len(ACCOUNT_PREFIX) :]
        for f in model.fit_fields()
        if accounts is not None
        and f.startswith(ACCOUNT_PREFIX)
        and f[len(ACCOUNT_PREFIX) :] in accounts.columns
    ]
    lead_fields = [f for f in model.fit_fields() if f in leads.columns]
    base: dict[str, ir.Value] = {
        "lead_id": leads.lead_id.cast("string"),
        "account_id": (
            leads.account_id.cast("string")
            if "account_id" in leads.columns
            else ibis.null("string")
        ),
        "__created": (
            leads.created_at.cast("timestamp")
            if "created_at" in leads.columns
            else ibis.null("timestamp")
        ),
    }
    base |= {f: leads[f] for f in lead_fields if f not in base}
    t = leads.select(**base)
    t = t.left_join(per_lead, t.lead_id == per_lead[LEAD]).drop(LEAD)
    if accounts is not None and account_fields:
        acc = accounts.select(
            __acc_id=accounts.account_id.cast("string"),
            **{ACCOUNT_PREFIX + c: accounts[c] for c in dict.fromkeys(account_fields)},
        )
        t = t.left_join(acc, t.account_id == acc.__acc_id).drop("__acc_id")
    fill: dict[str, ir.Value] = {}
    for name in per_lead.columns:
        dtype = per_lead[name].type()
        if dtype.is_floating():
            fill[name] = t[name].fill_null(0).cast("int64")
        elif dtype.is_integer():
            fill[name] = t[name].fill_null(0)
        elif dtype.is_boolean():
            # PostgreSQL cannot cast a boolean to an integer: say it with a CASE everywhere
            fill[name] = ibis.ifelse(t[name].fill_null(False), _int(1), _int(0))
    t = t.mutate(**fill)

    def resolve(name: str) -> ir.Value:
        return t[name]

    # Fit: tiered models count the first persona and the first max_factors factors.
    tiers = model.tiers
    counted: dict[str, ir.Value] = {}
    persona_seen: ir.BooleanValue = ibis.literal(False)
    factors_before: ir.IntegerValue = _int(0)
    for i, rule in enumerate(model.fit.rules):
        hit = condition_expr(rule.when, resolve)
        if tiers is None:
            counted[fit_col(i)] = hit
        elif rule.tier == "persona":
            counted[fit_col(i)] = hit & ~persona_seen
            persona_seen = persona_seen | hit
        else:
            counted[fit_col(i)] = hit & (factors_before < tiers.max_factors)
            factors_before = factors_before + ibis.ifelse(hit, _int(1), _int(0))
    t = t.mutate(**counted)

    def fit_sum(keep: Callable[[FitRule], bool], cents: Callable[[FitRule], int]) -> ir.Value:
        return _sum(
            [
                ibis.ifelse(t[fit_col(i)], _int(cents(r)), _int(0))
                for i, r in enumerate(model.fit.rules)
                if keep(r)
            ]
        )

    if tiers is None:
        t = t.mutate(**{FIT_CENTS: fit_sum(lambda r: True, lambda r: r.cents)})
    else:
        persona_cents, factor_cents = tiers.persona_points * 100, tiers.factor_points * 100
        t = t.mutate(
            **{
                PERSONA_CENTS: fit_sum(lambda r: r.tier == "persona", lambda r: persona_cents),
                FACTOR_CENTS: fit_sum(lambda r: r.tier != "persona", lambda r: factor_cents),
            }
        )
        t = t.mutate(**{FIT_CENTS: t[PERSONA_CENTS] + t[FACTOR_CENTS]})

    # Behaviour.
    parts: list[ir.IntegerValue] = [t[FREE]]
    for q, fq in enumerate(b.frequency):
        parts.append(ibis.ifelse(t[frequency_col(q)] >= fq.min_count, _int(fq.cents), _int(0)))
    index = {r.name: i for i, r in enumerate(b.rules)}
    values: dict[str, ir.Value] = {}
    for v, velocity in enumerate(b.velocity):
        times = [t[step_col(index[s])] for s in velocity.steps]
        done = _and_all([x.notnull() for x in times])
        span = ibis.greatest(*times).delta(ibis.least(*times), unit="microsecond")
        branches = [
            (span <= days_to_micros(tier.within_days), _int(k))
            for k, tier in enumerate(velocity.tiers)
        ]
        values[velocity_col(v)] = ibis.ifelse(done, ibis.cases(*branches), ibis.null("int64"))
    if b.inactivity:
        last = ibis.coalesce(t[LAST], t.__created)
        as_of_lit = ibis.literal(as_of, type="timestamp")
        idle = as_of_lit.delta(last, unit="microsecond")
        values[INACTIVITY] = _last_reached(
            idle, [days_to_micros(s.after_days) for s in b.inactivity]
        )
    acc = model.account
    holders = acc.stakeholders if acc is not None else None
    if holders is not None:
        engaged = t[ENGAGED].sum().over(group_by=t.account_id)
        values[ENGAGED_LEADS] = ibis.ifelse(t.account_id.notnull(), engaged, _int(0))
    priority = acc.priority if acc is not None else None
    values[PRIORITY] = (
        condition_expr(priority.when, resolve) if priority is not None else ibis.literal(False)
    )
    t = t.mutate(**values)
    for v, velocity in enumerate(b.velocity):
        cents = [round(tier.points * 100) for tier in velocity.tiers]
        parts.append(_by_index(t[velocity_col(v)], cents))
    if b.inactivity:
        cents = [round(s.points * 100) for s in b.inactivity]
        parts.append(_by_index(t[INACTIVITY], cents))
    t = t.mutate(**{PRE_FLOOR: _sum(parts)})
    if b.floor is not None:
        floor = round(b.floor * 100)
        lift = ibis.greatest(_int(floor) - t[PRE_FLOOR], _int(0))
    else:
        lift = _int(0)
    account_terms: list[ir.IntegerValue] = []
    more: dict[str, ir.Value] = {LIFT: lift}
    if holders is not None:
        reached = _last_reached(t[ENGAGED_LEADS], [tier.min_leads for tier in holders.tiers])
        more[STAKEHOLDER_TIER] = ibis.ifelse(t.account_id.notnull(), reached, ibis.null("int64"))
    t = t.mutate(**more)
    if holders is not None:
        account_terms.append(
            _by_index(t[STAKEHOLDER_TIER], [round(x.points * 100) for x in holders.tiers])
        )
    if priority is not None:
        account_terms.append(ibis.ifelse(t[PRIORITY], _int(round(priority.points * 100)), _int(0)))
    t = t.mutate(**{BEHAVIOUR_CENTS: t[PRE_FLOOR] + t[LIFT], ACCOUNT_CENTS: _sum(account_terms)})
    if tiers is not None:
        stage3 = t[BEHAVIOUR_CENTS] + t[ACCOUNT_CENTS]
        clipped = ibis.least(ibis.greatest(stage3, _int(0)), _int(tiers.behaviour_max * 100))
        t = t.mutate(**{CLIP: clipped - stage3, STAGE3_CENTS: clipped})
        t = t.mutate(**{BEHAVIOUR_CENTS: t[BEHAVIOUR_CENTS] + t[CLIP]})
        engaged_cents = t[STAGE3_CENTS]
    else:
        engaged_cents = t[BEHAVIOUR_CENTS]
    t = t.mutate(
        **{
            TOTAL_CENTS: t[FIT_CENTS] + t[BEHAVIOUR_CENTS] + t[ACCOUNT_CENTS],
            ENGAGED_CENTS: engaged_cents,
            "grade": _pick([(g.min, g.grade) for g in model.fit.grades], t[FIT_CENTS]),
        }
    )
    t = t.mutate(
        engagement=_pick([(lv.min, lv.level) for lv in model.engagement], t[ENGAGED_CENTS])
    )
    t = t.mutate(**{ROUTE: _route_index(model, t)})
    return t


def _and_all(parts: Sequence[ir.BooleanValue]) -> ir.BooleanValue:
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def _route_index(model: ScoringModel, t: ir.Table) -> ir.IntegerValue:
    branches = [(_route_holds(e.when, t), _int(i)) for i, e in enumerate(model.routing)]
    return ibis.cases(*branches, else_=ibis.null("int64")) if branches else ibis.null("int64")


def _route_holds(when: RouteWhen, t: ir.Table) -> ir.BooleanValue:
    tests: list[ir.BooleanValue] = [ibis.literal(True)]
    if when.grade is not None:
        tests.append(t.grade.isin(when.grade).fill_null(False))
    if when.engagement is not None:
        tests.append(t.engagement.isin(when.engagement).fill_null(False))
    bounds = [
        (TOTAL_CENTS, when.min_total, when.max_total),
        (FIT_CENTS, when.min_fit, when.max_fit),
        (ENGAGED_CENTS, when.min_behaviour, when.max_behaviour),
    ]
    for column, low, high in bounds:
        if low is not None:
            tests.append(t[column] >= round(low * 100))
        if high is not None:
            tests.append(t[column] < round(high * 100))
    if when.priority is not None:
        tests.append(t[PRIORITY] == when.priority)
    return _and_all(tests)


def interest_names(model: ScoringModel) -> list[str]:
    """Internal column names of the interests, in model order."""
    return [interest_col(k) for k in range(len(model.interests))]
