"""The reference evaluator: the engine's semantics, one lead at a time, in plain Python.

It is what the service uses to score a lead as events arrive, and the oracle the batch
compiler is tested against. Points are counted in hundredths (integers) so that any engine
adds them up to exactly the same totals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import floor as _round_down
from operator import itemgetter
from typing import Any

from leadscore.engine.decay import DecayFn, decay_function
from leadscore.engine.predicates import Predicate, Record, compile_condition
from leadscore.engine.result import LeadScore, LedgerLine
from leadscore.engine.timebase import fmt_number, micros, period_start, utc_naive
from leadscore.model.scoring import (
    BehaviourRule,
    RouteWhen,
    ScoringModel,
    days_to_micros,
)


def _always(_: Record) -> bool:
    return True


def detail_of(event: Record) -> str | None:
    """What a ledger line shows of its event: the url, else the asset, else the topic."""
    value = event.get("url")
    if value is None:
        value = event.get("asset")
        if value is None:
            value = event.get("topic")
            if value is None:
                return None
    return value if isinstance(value, str) else str(value)


def once_key(value: Any) -> Any:
    """The value `once_per` tells events apart by (hashable, and true is not 1)."""
    # a list or mapping comes from JSON properties in the service: told apart by its content
    if isinstance(value, bool):
        return ("flag", value)
    if isinstance(value, list | dict):
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return value


@dataclass(frozen=True)
class _Rule:
    spec: BehaviourRule
    index: int
    where: Predicate | None
    decay: DecayFn
    window: int | None
    cents: int
    latest_first: bool
    limit: int | None
    cap: int | None


def _pick(levels: Sequence[tuple[int | None, str]], value_cents: int) -> str | None:
    for minimum, name in levels:
        if minimum is None or value_cents >= minimum:
            return name
    return None


def _hundredths(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


class CompiledModel:
    """A model prepared for scoring leads one at a time."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        b = model.behaviour
        default_decay = decay_function(b.decay)
        self.rules = [
            _Rule(
                spec=r,
                index=i,
                where=compile_condition(r.where) if r.where is not None else None,
                decay=decay_function(r.decay) if r.decay is not None else default_decay,
                window=days_to_micros(r.within_days) if r.within_days is not None else None,
                cents=r.cents,
                latest_first=r.order == "latest",
                limit=r.count_limit,
                cap=r.cap_cents,
            )
            for i, r in enumerate(b.rules)
        ]
        self.rules_by_type: dict[str, list[_Rule]] = defaultdict(list)
        for rule in self.rules:
            # A type listed twice (`event: [a, a]`) must not match its events twice.
            for t in dict.fromkeys(rule.spec.types):
                self.rules_by_type[t].append(rule)
        self.fit = [(r, compile_condition(r.when)) for r in model.fit.rules]
        self.frequency = [
            (
                f,
                frozenset(f.types),
                compile_condition(f.where) if f.where is not None else _always,
                days_to_micros(f.within_days),
                f.cents,
            )
            for f in b.frequency
        ]
        by_name = {r.spec.name: r for r in self.rules}
        self.velocity = [
            (v, [(frozenset(by_name[s].spec.types), by_name[s].where or _always) for s in v.steps])
            for v in b.velocity
        ]
        self.inactivity = [(days_to_micros(s.after_days), s) for s in b.inactivity]
        self.interests = [(i.name, compile_condition(i.where)) for i in model.interests]
        acc = model.account
        self.stakeholders = acc.stakeholders if acc is not None else None
        self.stakeholder_window = (
            days_to_micros(self.stakeholders.within_days) if self.stakeholders else 0
        )
        self.stakeholder_types = (
            frozenset(self.stakeholders.types)
            if self.stakeholders and self.stakeholders.types
            else None
        )
        self.priority = acc.priority if acc is not None else None
        self.priority_when = compile_condition(self.priority.when) if self.priority else None
        self.reads_account = any(f.startswith("account.") for f in model.fit_fields())
        self.grades = [(_hundredths(g.min), g.grade) for g in model.fit.grades]
        self.levels = [(_hundredths(lv.min), lv.level) for lv in model.engagement]

    # -- helpers shared with score_many ------------------------------------------------------

    def engages(self, event: Record, as_of_us: int) -> bool:
        """Whether an event makes its lead an engaged stakeholder as of `as_of_us`."""
        if self.stakeholders is None:
            return False
        if self.stakeholder_types is not None and event["type"] not in self.stakeholder_types:
            return False
        return bool(as_of_us - micros(event["ts"]) < self.stakeholder_window)

    def engaged(self, events: Sequence[Record], as_of_us: int) -> bool:
        """Whether a lead with these events (oldest first, before as_of) is engaged."""
        for event in reversed(events):  # newest first: stop at the window's edge
            if as_of_us - micros(event["ts"]) >= self.stakeholder_window:
                return False
            if self.engages(event, as_of_us):
                return True
        return False

    # -- the semantics -------------------------------------------------------------------------

    def score_one(
        self,
        lead: Record,
        events: Iterable[Record],
        as_of: datetime,
        *,
        account: Record | None = None,
        engaged_leads: int = 0,
        prepared: bool = False,
    ) -> LeadScore:
        """Score one lead from its record, its account, its events and the account's engagement.

        `engaged_leads` is the number of the account's leads engaged as of `as_of` (this one
        included), as the stakeholders signal defines it.
        """
        as_of = utc_naive(as_of)
        now = micros(as_of)
        lead_id = str(lead["lead_id"])
        model = self.model
        ledger: list[LedgerLine] = []

        def line(part: str, kind: str, rule: str, cents: int, **kw: Any) -> None:
            ledger.append(LedgerLine(lead_id, part, kind, rule, cents / 100, **kw))

        # Fit: who the lead is. Fit fields see the account as `account.<column>`.
        record: Record = lead
        if account is not None and self.reads_account:
            record = {**lead, **{f"account.{k}": v for k, v in account.items()}}
        tiers = model.tiers
        fit_cents = 0
        persona_cents = factor_cents = 0
        factors = 0
        for fit_rule, when in self.fit:
            if not when(record):
                continue
            if tiers is None:
                cents = fit_rule.cents
            elif fit_rule.tier == "persona":
                if persona_cents:
                    continue
                cents = persona_cents = tiers.persona_points * 100
            else:
                if factors >= tiers.max_factors:
                    continue
                factors += 1
                cents = tiers.factor_points * 100
                factor_cents += cents
            fit_cents += cents
            if cents:
                line("fit", "fit", fit_rule.name, cents, base=cents / 100)

        # Behaviour: events before as_of, each id once, oldest first (`prepared`: already so).
        evs = list(events) if prepared else prepare_events(events, as_of)
        ages = {id(e): _age(as_of - e["ts"]) for e in evs}

        matched: dict[int, list[Record]] = defaultdict(list)
        by_type = self.rules_by_type
        for ev in evs:
            for rule in by_type.get(ev["type"], ()):
                if rule.window is not None and ages[id(ev)] >= rule.window:
                    continue
                if rule.where is None or rule.where(ev):
                    matched[rule.index].append(ev)

        behaviour_cents = 0
        event_lines: list[tuple[Record, int]] = []
        for rule in self.rules:
            hits = matched.get(rule.index)
            if not hits:
                continue
            spec = rule.spec
            kept = hits[::-1] if rule.latest_first else hits
            if spec.once_per is not None:
                seen_values: set[Any] = set()
                unique_kept = []
                for ev in kept:
                    value = once_key(ev.get(spec.once_per))
                    if value not in seen_values:
                        seen_values.add(value)
                        unique_kept.append(ev)
                kept = unique_kept
            if spec.max_per is not None:
                per: dict[Any, int] = defaultdict(int)
                period_kept = []
                for ev in kept:
                    bucket = period_start(ev["ts"], spec.max_per.period)
                    if per[bucket] < spec.max_per.count:
                        per[bucket] += 1
                        period_kept.append(ev)
                kept = period_kept
            if rule.limit is not None:
                kept = kept[: rule.limit]
            rule_cents = 0
            decay, base = rule.decay, rule.cents
            for ev in kept:
                factor = decay(ages[id(ev)])
                cents = _round_down(base * factor + 0.5)  # hundredths, rounded half up
                rule_cents += cents
                event_lines.append((ev, cents))
                if cents:
                    # the hot path: built positionally, not through line()
                    ledger.append(
                        LedgerLine(
                            lead_id,
                            "behaviour",
                            "event",
                            spec.name,
                            cents / 100,
                            str(ev["event_id"]),
                            ev["ts"],
                            spec.points,
                            factor,
                            detail_of(ev),
                        )
                    )
            dropped = len(hits) - len(kept)
            if dropped:
                line(
                    "behaviour",
                    "cap",
                    spec.name,
                    0,
                    note=f"{dropped} more events not counted (caps)",
                )
            cap = rule.cap
            if cap is not None:
                if rule_cents > cap:
                    line("behaviour", "cap", spec.name, cap - rule_cents, note=_cap_note(spec))
                    rule_cents = cap
                elif rule_cents < -cap:
                    line("behaviour", "cap", spec.name, -cap - rule_cents, note=_cap_note(spec))
                    rule_cents = -cap
            behaviour_cents += rule_cents

        for fq, types, where, window, fq_cents in self.frequency:
            n = 0
            for e in reversed(evs):  # newest first: stop at the window's edge
                if ages[id(e)] >= window:
                    break
                if e["type"] in types and where(e):
                    n += 1
            if n >= fq.min_count and fq_cents:
                note = f"{n} events within {fmt_number(fq.within_days)} days"
                line("behaviour", "frequency", fq.name, fq_cents, base=fq.points, note=note)
                behaviour_cents += fq_cents

        for velocity, steps in self.velocity:
            firsts: list[int] = []
            for types, where in steps:
                first = next((e for e in evs if e["type"] in types and where(e)), None)
                if first is None:
                    break
                firsts.append(micros(first["ts"]))
            if len(firsts) < len(steps):
                continue
            span = max(firsts) - min(firsts)
            for tier in velocity.tiers:
                if span <= days_to_micros(tier.within_days):
                    cents = round(tier.points * 100)
                    if cents:
                        note = f"all steps within {fmt_number(tier.within_days)} days"
                        line(
                            "behaviour",
                            "velocity",
                            velocity.name,
                            cents,
                            base=tier.points,
                            note=note,
                        )
                        behaviour_cents += cents
                    break

        if self.inactivity:
            last = evs[-1]["ts"] if evs else lead.get("created_at")
            if last is not None:
                idle = now - micros(last)
                reached = [(after, s) for after, s in self.inactivity if idle >= after]
                if reached:
                    step = reached[-1][1]
                    cents = round(step.points * 100)
                    if cents:
                        note = f"no activity for {fmt_number(step.after_days)}+ days"
                        line(
                            "behaviour",
                            "inactivity",
                            "inactivity",
                            cents,
                            base=step.points,
                            note=note,
                        )
                        behaviour_cents += cents

        floor = model.behaviour.floor
        if floor is not None and behaviour_cents < round(floor * 100):
            lift = round(floor * 100) - behaviour_cents
            line("behaviour", "floor", "floor", lift, note=f"behaviour floor {fmt_number(floor)}")
            behaviour_cents += lift

        # Account signals.
        account_cents = 0
        if self.stakeholders is not None and lead.get("account_id") is not None:
            reached_tiers = [t for t in self.stakeholders.tiers if engaged_leads >= t.min_leads]
            if reached_tiers:
                top = reached_tiers[-1]
                cents = round(top.points * 100)
                if cents:
                    note = f"{engaged_leads} engaged leads"
                    line(
                        "account",
                        "stakeholders",
                        "stakeholders",
                        cents,
                        base=top.points,
                        note=note,
                    )
                    account_cents += cents
        is_priority = bool(self.priority_when is not None and self.priority_when(record))
        if is_priority and self.priority is not None:
            cents = round(self.priority.points * 100)
            if cents:
                line(
                    "account",
                    "priority",
                    "priority",
                    cents,
                    base=self.priority.points,
                    note="priority account",
                )
                account_cents += cents

        # Three-stage model: stage 3 (behaviour and account) is clipped to its range.
        tier_behaviour: int | None = None
        if tiers is not None:
            stage3 = behaviour_cents + account_cents
            clipped = min(max(stage3, 0), tiers.behaviour_max * 100)
            if clipped != stage3:
                line(
                    "behaviour",
                    "tier_cap",
                    "tiers",
                    clipped - stage3,
                    note=f"stage 3 kept within 0..{tiers.behaviour_max}",
                )
                behaviour_cents += clipped - stage3
            tier_behaviour = clipped

        total = fit_cents + behaviour_cents + account_cents
        grade = _pick(self.grades, fit_cents)
        engaged_cents = tier_behaviour if tier_behaviour is not None else behaviour_cents
        level = _pick(self.levels, engaged_cents)

        interests: dict[str, float] = {}
        primary: str | None = None
        best = 0
        for name, where in self.interests:
            sub = sum(c for ev, c in event_lines if where(ev))
            interests[name] = sub / 100
            if sub > best:
                best, primary = sub, name

        route: dict[str, Any] = {
            "temperature": None,
            "stage": None,
            "queue": None,
            "sla_hours": None,
        }
        facts = _Facts(grade, level, total, fit_cents, engaged_cents, is_priority)
        for entry in model.routing:
            if facts.holds(entry.when):
                route = {k: getattr(entry, k) for k in route}
                break
        if is_priority and self.priority is not None and self.priority.route is not None:
            for k in route:
                value = getattr(self.priority.route, k)
                if value is not None:
                    route[k] = value

        return LeadScore(
            lead_id=lead_id,
            total=total / 100,
            fit=fit_cents / 100,
            behaviour=behaviour_cents / 100,
            account=account_cents / 100,
            grade=grade,
            engagement=level,
            cell=f"{grade}{level}" if grade is not None and level is not None else None,
            temperature=route["temperature"],
            stage=route["stage"],
            queue=route["queue"],
            sla_hours=route["sla_hours"],
            priority=is_priority,
            account_id=None if lead.get("account_id") is None else str(lead["account_id"]),
            primary_interest=primary,
            interests=interests,
            model=model.name,
            model_version=model.version,
            as_of=as_of,
            ledger=ledger,
            tier_persona=persona_cents / 100 if tiers is not None else None,
            tier_factors=factor_cents / 100 if tiers is not None else None,
            tier_behaviour=tier_behaviour / 100 if tier_behaviour is not None else None,
        )


def _age(delta: timedelta) -> int:
    # Whole microseconds of a timedelta, exactly; about twice as fast as floor division.
    return delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds


def _earlier(a: Record, b: Record) -> bool:
    return bool((a["ts"], str(a["lead_id"]), a["type"]) < (b["ts"], str(b["lead_id"]), b["type"]))


def prepare_events(events: Iterable[Record], as_of: datetime) -> list[Record]:
    """Events before as_of, each event id once (the earliest), sorted by (ts, event_id)."""
    unique: dict[str, Record] = {}
    for ev in events:
        if ev["ts"] >= as_of:
            continue
        eid = str(ev["event_id"])
        seen = unique.get(eid)
        if seen is None or _earlier(ev, seen):
            unique[eid] = ev
    # event ids are text in canonical data; itemgetter keeps the sort in C
    return sorted(unique.values(), key=itemgetter("ts", "event_id"))


def _cap_note(rule: BehaviourRule) -> str:
    assert rule.max_points is not None
    return f"max_points {fmt_number(rule.max_points)} reached"


@dataclass(frozen=True)
class _Facts:
    grade: str | None
    level: str | None
    total: int
    fit: int
    behaviour: int
    priority: bool

    def holds(self, when: RouteWhen) -> bool:
        def ge(value: int, bound: float | None) -> bool:
            return bound is None or value >= round(bound * 100)

        def lt(value: int, bound: float | None) -> bool:
            return bound is None or value < round(bound * 100)

        return (
            (when.grade is None or self.grade in when.grade)
            and (when.engagement is None or self.level in when.engagement)
            and ge(self.total, when.min_total)
            and lt(self.total, when.max_total)
            and ge(self.fit, when.min_fit)
            and lt(self.fit, when.max_fit)
            and ge(self.behaviour, when.min_behaviour)
            and lt(self.behaviour, when.max_behaviour)
            and (when.priority is None or self.priority == when.priority)
        )


def score_many(
    model: ScoringModel | CompiledModel,
    leads: Iterable[Record],
    events: Iterable[Record],
    as_of: datetime,
    *,
    accounts: Iterable[Record] = (),
) -> list[LeadScore]:
    """Score many leads in Python: group events, count engaged stakeholders, roll up accounts."""
    compiled = model if isinstance(model, CompiledModel) else CompiledModel(model)
    as_of = utc_naive(as_of)
    now = micros(as_of)
    lead_rows = list(leads)
    known = {str(r["lead_id"]) for r in lead_rows}
    # Duplicate ids count once across all leads: keep the earliest, as score_one does.
    known_events = (ev for ev in events if str(ev["lead_id"]) in known)
    by_lead: dict[str, list[Record]] = defaultdict(list)
    for ev in prepare_events(known_events, as_of):
        by_lead[str(ev["lead_id"])].append(ev)
    account_rows: Mapping[str, Record] = {str(a["account_id"]): a for a in accounts}
    engaged: dict[str, int] = defaultdict(int)
    if compiled.stakeholders is not None:
        for r in lead_rows:
            acc = r.get("account_id")
            if acc is not None and compiled.engaged(by_lead.get(str(r["lead_id"]), []), now):
                engaged[str(acc)] += 1
    results = []
    for r in lead_rows:
        acc_id = r.get("account_id")
        results.append(
            compiled.score_one(
                r,
                by_lead.get(str(r["lead_id"]), ()),
                as_of,
                account=account_rows.get(str(acc_id)) if acc_id is not None else None,
                engaged_leads=engaged.get(str(acc_id), 0) if acc_id is not None else 0,
                prepared=True,
            )
        )
    rollup = compiled.model.account.rollup if compiled.model.account is not None else "sum"
    per_account: dict[str, list[int]] = defaultdict(list)
    for s in results:
        if s.account_id is not None:
            per_account[s.account_id].append(round(s.total * 100))
    for s in results:
        if s.account_id is not None:
            values = per_account[s.account_id]
            s.account_score = (sum(values) if rollup == "sum" else max(values)) / 100
    return results
