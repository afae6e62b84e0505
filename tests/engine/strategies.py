# ruff: noqa: RUF001  (the look-alike letters are the point of these strategies)
"""Hypothesis strategies: random scoring models and the small datasets they are scored on.

Models use every feature (all condition operators, caps, windows, decays, frequency, velocity,
inactivity, floor, stakeholders, priority, tiers, interests, engagement, grades, routing);
data is a few leads, accounts and events with nulls, duplicate ids, ties in time and events
at or after as_of. Text mixes ASCII with letters that fold specially (dotted and dotless i,
sigma, sharp s, NFD spellings); it has no newlines (see docs/model.md on regex semantics).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from leadscore.model.scoring import ScoringModel

AS_OF = datetime(2024, 3, 15, 12, 0, 0)
MICROS_PER_DAY = 86_400_000_000

EVENT_TYPES = ("view", "click", "download", "form")
TEXTS = (
    *("a", "A", "ab", "Ab C", "b", "/pricing", "/Pricing/x", "1", "1.0", "2", "true", ""),
    # text that lower() and Python's str.lower() with `re` compared differently
    *("İstanbul", "ıstanbul", "ISTANBUL", "ΣΟΦΟΣ", "σοφος", "STRASSE", "straße"),
    *("Mu\u0308ller", "MÜLLER", "ǰ", "J\u030c", "ﬀ"),
)
CONTAINS = ("a", "B", "pric", "", "1", "x", "ß", "İ", "Σ", "ü", "ff")
REGEXES = (
    *("a", "^a", "b$", "a|b", "^/pricing", "PRIC", "[ab]c?", "^$", ".", r"1\.0", "^(a|b)+$"),
    *("^istanbul$", "^[iİı]stanbul", "σοφοσ$", "Σ", "stra(ss|ß)e", "ß+", "^m[uü]ller$"),
    *("[À-Ý]", "^m.ller$", r"\xDF", "^ǰ$", "^[^a-z]"),
)
NUMBERS = (0, 1, 2, 2.5, 1.0, -1, 10)

# Field name -> kind, per table (the custom columns `vip` and `n` included).
LEAD_FIELDS = {
    "job_title": "text",
    "industry": "text",
    "country": "text",
    "account_id": "text",
    "employees": "number",
    "annual_revenue": "number",
    "created_at": "timestamp",
    "vip": "boolean",
}
ACCOUNT_FIELDS = {
    "account.priority": "text",
    "account.industry": "text",
    "account.employees": "number",
    "account.annual_revenue": "number",
}
EVENT_FIELDS = {
    "url": "text",
    "asset": "text",
    "topic": "text",
    "channel": "text",
    "value": "number",
    "n": "number",
    "ts": "timestamp",
}

points = st.integers(-3000, 3000).map(lambda c: c / 100)
positive_points = st.integers(1, 3000).map(lambda c: c / 100)
days = st.one_of(
    st.sampled_from([0.5, 1, 2, 3.5, 7, 10, 30]),
    st.floats(min_value=0.01, max_value=40, allow_nan=False).map(lambda d: round(d, 3) or 0.01),
)


def _scalar(kind: str) -> st.SearchStrategy[Any]:
    if kind == "text":
        return st.one_of(st.sampled_from(TEXTS), st.sampled_from([1, 2.5, 1.0, True]))
    if kind == "number":
        return st.sampled_from(NUMBERS)
    return st.booleans()


@st.composite
def leaf(draw: st.DrawFn, fields: dict[str, str]) -> dict[str, Any]:
    """One test on one field, with an operator that suits the field's kind."""
    field = draw(st.sampled_from(sorted(fields)))
    kind = fields[field]
    ops = ["exists"]
    if kind == "text":
        ops += ["equals", "in", "contains", "regex"]
    elif kind == "number":
        ops += ["equals", "in", "gt", "gte", "lt", "lte", "between"]
    elif kind == "boolean":
        ops += ["equals", "in"]
    op = draw(st.sampled_from(ops))
    value: Any
    if op == "exists":
        value = draw(st.booleans())
    elif op == "equals":
        value = draw(_scalar(kind))
    elif op == "in":
        value = draw(st.lists(_scalar(kind), min_size=1, max_size=3))
    elif op == "contains":
        value = draw(st.sampled_from(CONTAINS))
    elif op == "regex":
        value = draw(st.sampled_from(REGEXES))
    elif op == "between":
        lo, hi = sorted(draw(st.lists(st.sampled_from(NUMBERS), min_size=2, max_size=2)))
        value = [lo, hi]
    else:
        value = draw(st.sampled_from(NUMBERS))
    return {"field": field, op: value}


def condition(fields: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """A condition tree of leaves combined with all / any / not."""
    return st.recursive(
        leaf(fields),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"all": cs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: {"any": cs}),
            inner.map(lambda c: {"not": c}),
        ),
        max_leaves=4,
    )


event_types = st.one_of(
    st.sampled_from(EVENT_TYPES),
    st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3),
)


@st.composite
def decay(draw: st.DrawFn) -> dict[str, Any]:
    """Any of the decay settings."""
    kind = draw(st.sampled_from(["none", "half_life", "linear", "step"]))
    if kind == "none":
        return {"type": "none"}
    if kind in ("half_life", "linear"):
        return {"type": kind, "days": draw(days)}
    afters = sorted(set(draw(st.lists(days, min_size=1, max_size=3))))
    factors = draw(
        st.lists(
            st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1, allow_nan=False)),
            min_size=len(afters),
            max_size=len(afters),
        )
    )
    return {
        "type": "step",
        "steps": [{"after_days": a, "factor": f} for a, f in zip(afters, factors, strict=True)],
    }


@st.composite
def behaviour_rule(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A behaviour rule with random caps, window, decay and keep."""
    rule: dict[str, Any] = {"name": name, "event": draw(event_types), "points": draw(points)}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "where": condition(EVENT_FIELDS),
        "repeatable": st.booleans(),
        "keep": st.sampled_from(["latest", "earliest"]),
        "max_count": st.integers(1, 3),
        "max_points": positive_points,
        "max_per": st.fixed_dictionaries(
            {"count": st.integers(1, 2), "period": st.sampled_from(["day", "week", "month"])}
        ),
        "once_per": st.sampled_from(["asset", "url", "value", "n", "topic"]),
        "within_days": days,
        "decay": decay(),
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            rule[key] = draw(strategy)
    if rule.get("repeatable") is False:
        # first time only: the loader refuses `keep: latest` and a `max_count` above 1 with it
        if rule.get("keep") == "latest":
            del rule["keep"]
        if rule.get("max_count", 1) > 1:
            del rule["max_count"]
    return rule


@st.composite
def rising(draw: st.DrawFn, strategy: st.SearchStrategy[float], n: int) -> list[float]:
    """Up to n distinct values in rising order."""
    return sorted(set(draw(st.lists(strategy, min_size=1, max_size=n))))


@st.composite
def model(draw: st.DrawFn) -> ScoringModel:
    """A random valid scoring model."""
    tiered = draw(st.integers(0, 3)) == 0
    fit_rules = []
    for i in range(draw(st.integers(0, 4))):
        rule: dict[str, Any] = {
            "name": f"fit{i}",
            "when": draw(condition(LEAD_FIELDS | ACCOUNT_FIELDS)),
        }
        if tiered:
            rule["tier"] = draw(st.sampled_from(["persona", "factor"]))
        else:
            rule["points"] = draw(points)
        fit_rules.append(rule)
    grade_mins = sorted(set(draw(st.lists(st.integers(-20, 40), max_size=2))), reverse=True)
    grades = [{"grade": f"G{i}", "min": m} for i, m in enumerate(grade_mins)]
    if grade_mins or draw(st.booleans()):
        grades.append({"grade": "Z"})

    rules = [draw(behaviour_rule(f"b{i}")) for i in range(draw(st.integers(0, 4)))]
    frequency = [
        {
            "name": f"freq{i}",
            "event": draw(event_types),
            "min_count": draw(st.integers(1, 3)),
            "within_days": draw(days),
            "points": draw(points),
            **({"where": draw(condition(EVENT_FIELDS))} if draw(st.booleans()) else {}),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    velocity = []
    if len(rules) >= 2 and draw(st.booleans()):
        names = [r["name"] for r in rules]
        steps = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
        tier_days = draw(rising(days, 3))
        velocity.append(
            {
                "name": "vel",
                "steps": steps,
                "tiers": [{"within_days": d, "points": draw(points)} for d in tier_days],
            }
        )
    inactivity = (
        [{"after_days": d, "points": draw(points)} for d in draw(rising(days, 2))]
        if draw(st.booleans())
        else []
    )
    behaviour: dict[str, Any] = {
        "decay": draw(decay()),
        "floor": draw(st.sampled_from([None, 0, -5, 2.5, -0.5])),
        "rules": rules,
        "frequency": frequency,
        "velocity": velocity,
        "inactivity": inactivity,
    }

    account: dict[str, Any] | None = None
    if draw(st.booleans()):
        account = {"rollup": draw(st.sampled_from(["sum", "max"]))}
        if draw(st.booleans()):
            mins = draw(rising(st.integers(1, 3), 3))
            account["stakeholders"] = {
                "within_days": draw(days),
                "tiers": [{"min_leads": m, "points": draw(points)} for m in mins],
                **({"event": draw(event_types)} if draw(st.booleans()) else {}),
            }
        if draw(st.booleans()):
            route = draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "temperature": st.sampled_from(["hot", "warm"]),
                        "queue": st.sampled_from(["named", "ae"]),
                        "sla_hours": st.sampled_from([1.5, 4, 0.1]),
                    },
                )
            )
            account["priority"] = {
                "when": draw(condition(ACCOUNT_FIELDS | LEAD_FIELDS)),
                "points": draw(points),
                **({"route": route} if draw(st.booleans()) else {}),
            }

    interests = [
        {"name": f"int{i}", "where": draw(condition(EVENT_FIELDS))}
        for i in range(draw(st.integers(0, 3)))
    ]
    level_mins = sorted(set(draw(st.lists(st.integers(-10, 30), max_size=2))), reverse=True)
    engagement = [{"level": str(i + 1), "min": m} for i, m in enumerate(level_mins)]
    if level_mins or draw(st.booleans()):
        engagement.append({"level": "9"})
    grade_names = [g["grade"] for g in grades]
    level_names = [lv["level"] for lv in engagement]
    routing = []
    for i in range(draw(st.integers(0, 3))):
        when = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "grade": st.lists(st.sampled_from(grade_names), min_size=1, max_size=2)
                    if grade_names
                    else st.nothing(),
                    "engagement": st.lists(st.sampled_from(level_names), max_size=2)
                    if level_names
                    else st.nothing(),
                    "min_total": st.integers(-10, 40),
                    "max_total": st.integers(-10, 40),
                    "min_fit": st.integers(-10, 20),
                    "max_fit": st.integers(-10, 20),
                    "min_behaviour": st.sampled_from([-1, 0, 0.5, 5]),
                    "max_behaviour": st.sampled_from([0, 0.5, 5, 20]),
                    "priority": st.booleans(),
                },
            )
        )
        # the loader refuses tests that never hold and entries after one that always does
        for what in ("total", "fit", "behaviour"):
            if when.get(f"min_{what}", -1e9) >= when.get(f"max_{what}", 1e9):
                del when[f"max_{what}"]
        if when.get("engagement") == []:
            del when["engagement"]
        if routing and not routing[-1]["when"]:
            break
        entry = {
            "name": f"r{i}",
            "when": when,
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "temperature": st.sampled_from(["hot", "cold"]),
                        "stage": st.sampled_from(["MQL", "SQL"]),
                        "queue": st.sampled_from(["sdr", "ae"]),
                        "sla_hours": st.sampled_from([4, 24, 0.5]),
                    },
                )
            ),
        }
        routing.append(entry)

    data: dict[str, Any] = {
        "name": "random",
        "version": draw(st.sampled_from(["1", "2.0", "x"])),
        "fit": {"rules": fit_rules, "grades": grades},
        "behaviour": behaviour,
        "interests": interests,
        "engagement": engagement,
        "routing": routing,
    }
    if account is not None:
        data["account"] = account
    if tiered:
        data["tiers"] = {
            "max_factors": draw(st.integers(1, 3)),
            "behaviour_max": draw(st.sampled_from([0, 5, 20, 99])),
        }
    return ScoringModel.model_validate(data)


text_or_null = st.one_of(st.none(), st.sampled_from(TEXTS))


@st.composite
def moment(draw: st.DrawFn, as_of: datetime) -> datetime:
    """A time near as_of: often exactly on it or on whole days before it, sometimes after."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return as_of
    if kind == 1:
        return as_of - timedelta(days=draw(st.integers(-1, 40)))
    if kind == 2:
        return as_of + timedelta(microseconds=draw(st.integers(1, MICROS_PER_DAY)))
    return as_of - timedelta(microseconds=draw(st.integers(1, 45 * MICROS_PER_DAY)))


@st.composite
def data(
    draw: st.DrawFn,
) -> tuple[datetime, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(as_of, leads, events, accounts): a few rows each, with nulls and duplicate event ids."""
    as_of = AS_OF + timedelta(microseconds=draw(st.integers(0, MICROS_PER_DAY)))
    account_ids = ["A0", "A1", "A2"]
    leads = [
        {
            "lead_id": f"L{i}",
            "account_id": draw(st.one_of(st.none(), st.sampled_from(account_ids))),
            "job_title": draw(text_or_null),
            "industry": draw(text_or_null),
            "country": draw(text_or_null),
            "employees": draw(st.one_of(st.none(), st.integers(-2, 12))),
            "annual_revenue": draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 10.0]))),
            "created_at": draw(st.one_of(st.none(), moment(as_of))),
            "vip": draw(st.one_of(st.none(), st.booleans())),
        }
        for i in range(draw(st.integers(0, 5)))
    ]
    accounts = [
        {
            "account_id": a,
            "priority": draw(text_or_null),
            "industry": draw(text_or_null),
            "employees": draw(st.one_of(st.none(), st.integers(0, 12))),
            "annual_revenue": draw(st.one_of(st.none(), st.sampled_from([1.0, 2.5]))),
        }
        for a in account_ids
        if draw(st.booleans())
    ]
    lead_ids = [lead["lead_id"] for lead in leads] + ["LX"]
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 20))):
        event = {
            "event_id": f"E{draw(st.integers(0, 12))}",
            "lead_id": draw(st.sampled_from(lead_ids)),
            "type": draw(st.sampled_from(EVENT_TYPES)),
            "ts": draw(moment(as_of)),
            "url": draw(text_or_null),
            "asset": draw(text_or_null),
            "topic": draw(text_or_null),
            "channel": draw(text_or_null),
            "value": draw(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 10.0]))),
            "n": draw(st.one_of(st.none(), st.integers(0, 3))),
        }
        # Copies of one id that tie on (ts, lead, type) are whole copies: which of two
        # different rows wins such a tie is not defined (see the report).
        twin = next(
            (
                e
                for e in events
                if (e["event_id"], e["ts"], e["lead_id"], e["type"])
                == (event["event_id"], event["ts"], event["lead_id"], event["type"])
            ),
            None,
        )
        events.append(dict(twin) if twin is not None else event)
    return as_of, leads, events, accounts
