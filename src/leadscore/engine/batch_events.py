"""The event half of the batch evaluator: dedupe, rule matching, decay, caps, per-lead sums.

The deduped events are one shared CTE. Rules without caps are summed in one pass over it (one
CASE per event type) straight into a per-lead aggregate. Each rule with a cap (once_per,
max_per, max_count or max_points) is a "branch": its matching events are filtered from the CTE
by a precomputed flag, count caps are window functions over that subset only, and the kept
events of all branches are summed per (lead, rule) in one UNION ALL, where max_points clamps.

Engines that run a shared CTE again for every use (Spark) get `pooled` plans instead: the
capped rules with only a count cap or max_points are matched in one pass, each event
exploded into one row per such rule it matches, and ranked in one window over (lead, rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import ibis
import ibis.expr.types as ir

from leadscore.engine.batch_conditions import condition_expr, f64, folded, lowered_fields
from leadscore.engine.byte_order import byte_order
from leadscore.model.conditions import Condition
from leadscore.model.scoring import (
    BehaviourRule,
    Decay,
    HalfLife,
    Linear,
    NoDecay,
    ScoringModel,
    days_to_micros,
)

LEAD = "__lid"
AGE = "__age"
CENTS = "__cents"
FACTOR = "__factor"
KEPT = "__kept"
FIRST = "__first"
DETAIL_COLUMNS = ("url", "asset", "topic")
FREE = "__b_free"
SLOT = "__slot"
SUM = "__sum"
LAST = "__last"
ENGAGED = "__eng"
SLOTS = "__slots"


_ZERO = f64(0.0)


def _event(name: str) -> str:
    """The per-event value behind per-lead column `name`."""
    return f"__e{name}"


def interest_col(index: int) -> str:
    """Per-lead cents of an interest."""
    return f"__i{index}"


def frequency_col(index: int) -> str:
    """Per-lead count of a frequency rule's events."""
    return f"__f{index}"


def step_col(rule_index: int) -> str:
    """Per-lead time of the first event of a velocity step (a behaviour rule)."""
    return f"__v{rule_index}"


def is_branch(rule: BehaviourRule) -> bool:
    """Whether a rule needs its own branch (any cap); else it is summed in the main pass."""
    return not is_simple(rule) or rule.max_points is not None


def is_simple(rule: BehaviourRule) -> bool:
    """Whether every matching event counts (no once_per, max_per or count cap)."""
    return rule.once_per is None and rule.max_per is None and rule.count_limit is None


def _types(table: ir.Table, types: tuple[str, ...]) -> ir.BooleanValue:
    unique = list(dict.fromkeys(types))
    return table.type == unique[0] if len(unique) == 1 else table.type.isin(unique)


def lowered_col(field: str) -> str:
    """A folded copy of text column `field`, made once before the conditions read it."""
    return f"__lc_{field}"


def _where(table: ir.Table, where: Condition | None) -> ir.BooleanValue | None:
    if where is None:
        return None

    def lowered(name: str) -> ir.Value | None:
        return table[lowered_col(name)] if lowered_col(name) in table.columns else None

    return condition_expr(where, lambda name: table[name], lowered)


def _and(*parts: ir.BooleanValue | None) -> ir.BooleanValue:
    present = [p for p in parts if p is not None]
    if not present:
        return ibis.literal(True)
    out = present[0]
    for p in present[1:]:
        out = out & p
    return out


def factor_expr(decay: Decay, age: ir.IntegerValue) -> ir.FloatingValue:
    """The decay factor of an event of `age` microseconds, as the reference computes it."""
    if isinstance(decay, NoDecay):
        return f64(1.0)
    if isinstance(decay, HalfLife):
        # One division of two exact integers as doubles, then pow: bit-identical to Python.
        return f64(0.5).pow(age.cast("float64") / f64(days_to_micros(decay.days)))
    if isinstance(decay, Linear):
        length = f64(days_to_micros(decay.days))
        return ibis.greatest(f64(0.0), f64(1.0) - age.cast("float64") / length)
    branches = [(age >= days_to_micros(s.after_days), f64(s.factor)) for s in decay.steps]
    return ibis.cases(*reversed(branches), else_=f64(1.0))


def _width(values: Iterable[ir.Value]) -> int:
    """Roughly how many bytes a row of these values takes in DuckDB."""
    total = 0
    for v in values:
        dtype = v.type()
        total += 1 if dtype.is_boolean() else 16 if dtype.is_string() else 8
    return total


_MASK_BITS = 62


def mask_col(index: int) -> str:
    """Bit set `index` of which branch rules an event matches (62 rules per column)."""
    return f"__mask{index}"


def in_interest_col(index: int) -> str:
    """Whether an event matches interest `index`."""
    return f"__in{index}"


@dataclass(frozen=True)
class EventPlan:
    """The event-side expressions of one model, over the events of known leads before as_of."""

    model: ScoringModel
    raw: ir.Table  # from `prepare_events`: not deduped yet
    as_of: datetime
    narrow: bool = True  # keep only the columns scores need (the ledger needs them all)
    validated: bool = False  # event ids unique already (`Dataset.validated`): no dedupe
    pooled: bool = False  # rank count-capped rules in one pass (the engine has no shared CTEs)

    # -- the shared events ---------------------------------------------------------------

    @cached_property
    def events(self) -> ir.Table:
        """The deduped events, each with the per-event values the branches read."""
        t = self.raw
        if not self.narrow:
            return self._dedupe(t.select(*t.columns, **self._event_values(t)), {})
        once = [self.rule(i).once_per for i in self.branch_rules]
        keep = list(dict.fromkeys(["event_id", "lead_id", "type", "ts", *(c for c in once if c)]))
        values = self._event_values(t)
        read = [c for c in t.columns if c not in keep and c != AGE]
        # The values depend on the row only, so they may be computed before or after the dedupe
        # window: before when they are narrower than the columns they read (the window carries
        # less), after otherwise. Either way the branches share only narrow columns.
        if _width(values.values()) <= _width(t[c] for c in read):
            return self._dedupe(t.select(*keep, **values), {})
        base = t.select(*keep, *read)
        return self._dedupe(base, self._event_values(base), keep)

    def _dedupe(
        self, t: ir.Table, values: dict[str, ir.Value], keep: list[str] | None = None
    ) -> ir.Table:
        """The first row of each event id, with `values` computed beside the window."""
        columns = keep if keep is not None else t.columns
        if self.validated:
            # Ids are unique already. The UNION ALL with nothing is what makes Ibis share the
            # events as one CTE (a plain Select would be merged into every branch).
            one = t.select(*columns, **values)
            return ibis.union(one, one.filter(ibis.literal(False)), distinct=False)
        # ties by code points, as Python and the file readers break them (byte_order)
        order = [t.ts, byte_order(t.lead_id), byte_order(t.type)]
        rank = ibis.row_number().over(group_by=t.event_id, order_by=order)
        ranked = t.mutate(**{FIRST: rank == 0}, **values)
        first = ranked.filter(ranked[FIRST])
        # A Select (not a drop) so that the ranked events are one CTE that the branches share.
        return first.select(*columns, *values)

    def _event_values(self, t: ir.Table) -> dict[str, ir.Value]:
        b = self.model.behaviour
        # Which branch rules an event matches, as bits: one narrow column to share, not one
        # boolean column per rule.
        values: dict[str, ir.Value] = {}
        for n, i in enumerate(self.masked_rules):
            on = ibis.literal(1 << (n % _MASK_BITS), type="int64")
            bit = ibis.ifelse(self.match(t, self.rule(i)), on, ibis.literal(0, type="int64"))
            name = mask_col(n // _MASK_BITS)
            values[name] = bit if name not in values else values[name] + bit
        if self.pooled_rules:
            slots = [
                ibis.ifelse(self.match(t, self.rule(i)), ibis.literal(i, "int64"), None)
                for i in self.pooled_rules
            ]
            values[SLOTS] = ibis.array(slots).filter(lambda slot: slot.notnull())
        values |= {
            in_interest_col(k): _where(t, it.where) for k, it in enumerate(self.model.interests)
        }
        # The rules without caps add up into one column; dispatch on the type first.
        by_type: dict[str, list[int]] = {}
        for i, rule in enumerate(b.rules):
            if not is_branch(rule):
                for typ in dict.fromkeys(rule.types):
                    by_type.setdefault(typ, []).append(i)
        branches = []
        for typ, indices in by_type.items():
            total: ir.FloatingValue | None = None
            for i in indices:
                rule = b.rules[i]
                within = None
                if rule.within_days is not None:
                    within = self.age(t) < days_to_micros(rule.within_days)
                cents = self.cents(t, rule).cast("float64")
                term = ibis.ifelse(_and(within, _where(t, rule.where)), cents, _ZERO)
                total = term if total is None else total + term
            assert total is not None
            branches.append((t.type == typ, total))
        values[_event(FREE)] = ibis.cases(*branches, else_=_ZERO) if branches else _ZERO
        for q, fq in enumerate(b.frequency):
            within = self.age(t) < days_to_micros(fq.within_days)
            values[_event(frequency_col(q))] = _and(
                _types(t, fq.types), within, _where(t, fq.where)
            )
        for r in self.velocity_steps:
            values[_event(step_col(r))] = self.match(t, self.rule(r), window=False)
        values[_event(ENGAGED)] = self._engages(t)
        return values

    def _engages(self, t: ir.Table) -> ir.BooleanValue:
        acc = self.model.account
        holders = acc.stakeholders if acc is not None else None
        if holders is None:
            return ibis.literal(False)
        types = holders.types
        within = self.age(t) < days_to_micros(holders.within_days)
        return _and(_types(t, types) if types else None, within)

    # -- rules -----------------------------------------------------------------------------

    def rule(self, index: int) -> BehaviourRule:
        """Behaviour rule `index`."""
        return self.model.behaviour.rules[index]

    @cached_property
    def branch_rules(self) -> list[int]:
        """Indices of the rules with a cap, each evaluated in its own branch."""
        return [i for i, r in enumerate(self.model.behaviour.rules) if is_branch(r)]

    @cached_property
    def pooled_rules(self) -> list[int]:
        """Branch rules ranked together in one pass (`pooled` scores): no once_per or max_per."""
        if not (self.pooled and self.narrow):
            return []
        rules = [(i, self.rule(i)) for i in self.branch_rules]
        return [i for i, r in rules if r.once_per is None and r.max_per is None]

    @cached_property
    def masked_rules(self) -> list[int]:
        """Branch rules whose matches the shared events carry as bits of a mask column."""
        return [i for i in self.branch_rules if i not in self.pooled_rules]

    @cached_property
    def velocity_steps(self) -> list[int]:
        """Indices of the behaviour rules some velocity signal uses as a step."""
        index = {r.name: i for i, r in enumerate(self.model.behaviour.rules)}
        steps = [index[s] for v in self.model.behaviour.velocity for s in v.steps]
        return list(dict.fromkeys(steps))

    def age(self, t: ir.Table) -> ir.IntegerValue:
        """An event's age in microseconds as of as_of."""
        if AGE in t.columns:
            return t[AGE]
        return ibis.literal(self.as_of, type="timestamp").delta(t.ts, unit="microsecond")

    def decay(self, rule: BehaviourRule) -> Decay:
        """The decay that applies to a rule."""
        return rule.decay if rule.decay is not None else self.model.behaviour.decay

    def match(self, t: ir.Table, rule: BehaviourRule, *, window: bool = True) -> ir.BooleanValue:
        """Whether an event counts for a behaviour rule (`window=False`: ignore within_days)."""
        within = None
        if window and rule.within_days is not None:
            within = self.age(t) < days_to_micros(rule.within_days)
        return _and(_types(t, rule.types), within, _where(t, rule.where))

    def cents(self, t: ir.Table, rule: BehaviourRule) -> ir.IntegerValue:
        """Hundredths of a point an event earns for a rule after decay."""
        decay = self.decay(rule)
        if isinstance(decay, NoDecay):
            return ibis.literal(rule.cents, type="int64")
        factor = factor_expr(decay, self.age(t))
        return (f64(rule.cents) * factor + f64(0.5)).floor().cast("int64")

    def stream(self, index: int) -> ir.Table:
        """A rule's matched events with CENTS, FACTOR and KEPT (whether caps let it count)."""
        rule = self.rule(index)
        ev = self.events
        if index in self.masked_rules:
            n = self.masked_rules.index(index)
            bit = ibis.literal(1 << (n % _MASK_BITS), type="int64")
            t = ev.filter((ev[mask_col(n // _MASK_BITS)] & bit) != 0)
        else:
            t = ev.filter(self.match(ev, rule))
        # Only the columns the caps and the ledger read: DuckDB does not prune columns that
        # pass through a window, and the branches' columns are what it materialises.
        wanted = ["event_id", "lead_id", "ts", AGE, rule.once_per, *DETAIL_COLUMNS]
        wanted += [in_interest_col(k) for k in range(len(self.model.interests))]
        t = t.select(*(c for c in dict.fromkeys(wanted) if c is not None and c in t.columns))
        kept: ir.BooleanValue | None = None
        desc = rule.order == "latest"

        def order(t: ir.Table) -> list[ir.Value]:
            eid = byte_order(t.event_id)
            return [ibis.desc(t.ts), ibis.desc(eid)] if desc else [t.ts, eid]

        if rule.once_per is not None:
            rank = ibis.row_number().over(group_by=[t.lead_id, t[rule.once_per]], order_by=order(t))
            t = t.mutate(**{KEPT: rank == 0})
            kept = t[KEPT]
        if rule.max_per is not None:
            bucket = t.ts.truncate({"day": "D", "week": "W", "month": "M"}[rule.max_per.period])
            keys = [t.lead_id, bucket] if kept is None else [t.lead_id, t[KEPT], bucket]
            rank = ibis.row_number().over(group_by=keys, order_by=order(t))
            within = rank < rule.max_per.count
            t = t.mutate(**{KEPT: within if kept is None else t[KEPT] & within})
            kept = t[KEPT]
        limit = rule.count_limit
        if limit is not None:
            keys = [t.lead_id] if kept is None else [t.lead_id, t[KEPT]]
            rank = ibis.row_number().over(group_by=keys, order_by=order(t))
            t = t.mutate(**{KEPT: rank < limit if kept is None else t[KEPT] & (rank < limit)})
            kept = t[KEPT]
        # Points are worked out after the caps, for the events they keep.
        return t.mutate(
            **{
                CENTS: self.cents(t, rule),
                FACTOR: factor_expr(self.decay(rule), self.age(t)),
                KEPT: ibis.literal(True) if kept is None else t[KEPT],
            }
        )

    # -- per-lead values -------------------------------------------------------------------

    def _value_columns(self) -> dict[str, str]:
        """Every per-lead value and how it is aggregated: sum, count, min, max or any."""
        b = self.model.behaviour
        cols: dict[str, str] = {FREE: "sum"}
        cols |= {interest_col(k): "sum" for k in range(len(self.model.interests))}
        cols |= {frequency_col(q): "count" for q in range(len(b.frequency))}
        cols |= {step_col(r): "min" for r in self.velocity_steps}
        cols[LAST] = "max"
        cols[ENGAGED] = "any"
        return cols

    def _main_pass(self) -> ir.Table:
        """Per-lead sums of the rules without caps, frequency counts, step times and recency."""
        t = self.events
        free = t[_event(FREE)]
        aggs: dict[str, ir.Value] = {FREE: free.sum()}
        aggs |= {
            interest_col(k): ibis.ifelse(t[in_interest_col(k)], free, _ZERO).sum()
            for k in range(len(self.model.interests))
        }
        for q in range(len(self.model.behaviour.frequency)):
            aggs[frequency_col(q)] = t.ts.count(where=t[_event(frequency_col(q))])
        for r in self.velocity_steps:
            aggs[step_col(r)] = t.ts.min(where=t[_event(step_col(r))])
        aggs[LAST] = t.ts.max()
        aggs[ENGAGED] = t[_event(ENGAGED)].any()
        return t.group_by(t.lead_id.name(LEAD)).aggregate(**aggs)

    def _pooled(self) -> ir.Table:
        """Kept cents of the pooled rules, one row per (event, rule): lead_id, SLOT, CENTS."""
        ev = self.events
        interests = [in_interest_col(k) for k in range(len(self.model.interests))]
        t = ev.select("event_id", "lead_id", "ts", *interests, **{SLOT: ev[SLOTS].unnest()})
        slot = t[SLOT]
        rules = {i: self.rule(i) for i in self.pooled_rules}
        limits = [
            (slot == i, ibis.literal(r.count_limit, "int64"))
            for i, r in rules.items()
            if r.count_limit is not None
        ]
        if limits:
            latest = [i for i, r in rules.items() if r.order == "latest"]
            desc = slot.isin(latest) if latest else ibis.literal(False)
            age = self.age(t)
            # Each rule's own order in one window: oldest first (ts, event_id) for "earliest",
            # newest first (ts desc, event_id desc) for "latest"; within one (lead, rule)
            # partition `desc` is constant, so the other rule's keys are all null there.
            never = ibis.null("string")
            order = [
                ibis.ifelse(desc, age, -age),
                byte_order(ibis.ifelse(desc, never, t.event_id)),
                ibis.desc(byte_order(ibis.ifelse(desc, t.event_id, never))),
            ]
            rank = ibis.row_number().over(group_by=[t.lead_id, slot], order_by=order)
            limit = ibis.cases(*limits, else_=ibis.null("int64"))
            t = t.mutate(**{KEPT: limit.isnull() | (rank < limit)})
            t = t.filter(t[KEPT])
            slot = t[SLOT]
        cents = ibis.cases(*((slot == i, self.cents(t, r)) for i, r in rules.items()))
        return t.mutate(**{CENTS: cents})

    @cached_property
    def rule_sums(self) -> ir.Table:
        """Per (lead_id, SLOT = rule index): SUM, the cents of the events the rule keeps (before
        max_points), and the interests' cents among them."""
        kept = []
        for i in self.masked_rules:
            t = self.stream(i)
            kept.append(t.filter(t[KEPT]).mutate(**{SLOT: ibis.literal(i, type="int64")}))
        if self.pooled_rules:
            kept.append(self._pooled())
        rows = []
        for t in kept:
            cents = t[CENTS].cast("float64")
            interests = {
                interest_col(k): ibis.ifelse(t[in_interest_col(k)], cents, _ZERO)
                for k in range(len(self.model.interests))
            }
            rows.append(t.select("lead_id", SLOT, **{SUM: cents}, **interests))
        union = rows[0] if len(rows) == 1 else ibis.union(*rows, distinct=False)
        sums = [SUM, *(interest_col(k) for k in range(len(self.model.interests)))]
        return union.group_by("lead_id", SLOT).aggregate(
            **{name: union[name].sum() for name in sums}
        )

    def per_lead(self) -> ir.Table:
        """One row per lead with events: the sums, counts and times the lead's score needs.

        FREE holds the behaviour cents of all rules, each rule's max_points applied.
        """
        # Sums are of doubles: whole cents add up exactly in them, and their aggregate state is
        # smaller than a BIGINT sum's (HUGEINT), which matters with a million leads.
        main = self._main_pass()
        if not self.branch_rules:
            return main
        sums = self.rule_sums
        caps = [
            (sums[SLOT] == i, clamp(sums[SUM], cap))
            for i in self.branch_rules
            if (cap := self.rule(i).cap_cents) is not None
        ]
        capped = ibis.cases(*caps, else_=sums[SUM]) if caps else sums[SUM]
        interests = [interest_col(k) for k in range(len(self.model.interests))]
        branch = sums.group_by(sums.lead_id.name(LEAD)).aggregate(
            **{FREE: capped.sum()}, **{name: sums[name].sum() for name in interests}
        )
        types = {"sum": "float64", "count": "int64", "min": "timestamp", "max": "timestamp"}
        padded = {
            name: branch[name] if name in branch.columns else ibis.null(types.get(how, "boolean"))
            for name, how in self._value_columns().items()
        }
        both = ibis.union(main, branch.select(LEAD, **padded), distinct=False)
        aggs: dict[str, ir.Value] = {}
        for name, how in self._value_columns().items():
            aggs[name] = getattr(both[name], "sum" if how == "count" else how)()
        return both.group_by(LEAD).aggregate(**aggs)


def clamp(value: ir.NumericValue, cap: int) -> ir.NumericValue:
    """`value` kept within [-cap, cap] (value is never null)."""
    return ibis.least(ibis.greatest(value, f64(-cap)), f64(cap))


def prepare_events(
    model: ScoringModel,
    events: ir.Table,
    lead_ids: ir.Table,
    as_of: datetime,
    columns: list[str],
    *,
    validated: bool = False,
) -> ir.Table:
    """Events of known leads before as_of, with their age in microseconds (not deduped yet).

    Text columns the model compares ignoring case get a folded copy here, below the join, so
    that each is folded once per event however many rules read it.
    """
    as_of_lit = ibis.literal(as_of, type="timestamp")
    base = {
        "event_id": events.event_id.cast("string"),
        "lead_id": events.lead_id.cast("string"),
        "type": events.type.cast("string"),
        "ts": events.ts.cast("timestamp"),
    }
    extra = {c: events[c] for c in columns if c not in base}
    conditions = [m.where for m in [*model.behaviour.rules, *model.behaviour.frequency]]
    conditions += [it.where for it in model.interests]
    lowered = {
        lowered_col(f): folded(events[f])
        for c in conditions
        if c is not None
        for f in lowered_fields(c)
        if f in events.columns and events[f].type().is_string()
    }
    t = events.select(**base, **extra, **lowered)
    t = t.filter(t.ts < as_of_lit)
    if not validated:
        t = t.semi_join(lead_ids, t.lead_id == lead_ids[LEAD])
    return t.mutate(**{AGE: as_of_lit.delta(t.ts, unit="microsecond")})
