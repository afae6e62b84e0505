"""The example models in models/: they load, and each keeps the promise it is shipped for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leadscore.model import (
    All,
    AnyOf,
    BehaviourRule,
    Condition,
    Leaf,
    ScoringModel,
    fields_of,
    load_model,
    parse_model,
)
from leadscore.model.scoring import HalfLife, RoutingEntry
from leadscore.schema import ACCOUNTS, EVENTS, LEADS

MODELS = Path(__file__).resolve().parents[2] / "models"
PATHS = sorted(MODELS.glob("*.yaml"))
NAMES = {"three-stage", "fit-engagement", "b2c-hot-warm-cold", "committee", "starter"}

EVENT_TYPES = {
    "page_view",
    "email_open",
    "email_click",
    "download",
    "webinar_attended",
    "form_submit",
    "demo_request",
    "newsletter_subscribe",
    "unsubscribe",
    "email_bounce",
    "chat",
    "add_to_cart",
    "cart_abandoned",
    "ad_click",
    "social_like",
}
# Custom lead attributes the examples read besides the canonical columns (B2C profile).
CUSTOM_LEAD_COLUMNS = {"age_band", "purchasing_power"}


def model(name: str) -> ScoringModel:
    """An example model by file stem."""
    return load_model(MODELS / f"{name}.yaml")


def _rules(m: ScoringModel) -> int:
    return len(m.fit.rules) + len(m.behaviour.rules) + len(m.behaviour.frequency)


# --- every example ----------------------------------------------------------------------------


def test_the_five_examples_are_there() -> None:
    assert {p.stem for p in PATHS} >= NAMES


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_loads_and_is_named_after_its_file(path: Path) -> None:
    m = load_model(path)
    assert m.name == path.stem
    assert m.description
    assert _rules(m) > 0


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_is_commented(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "an example opens with a comment saying what it is for"
    assert sum(1 for line in text.splitlines() if line.lstrip().startswith("#")) >= 3


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_main_rules_have_german_labels(path: Path) -> None:
    m = load_model(path)
    rules = [*m.fit.rules, *m.behaviour.rules, *m.behaviour.frequency]
    labelled = [r for r in rules if r.labels is not None and r.labels.de]
    assert len(labelled) >= len(rules) * 0.8, [r.name for r in rules if r not in labelled]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_reads_only_known_event_types_and_columns(path: Path) -> None:
    m = load_model(path)
    for rule in [*m.behaviour.rules, *m.behaviour.frequency]:
        assert set(rule.types) <= EVENT_TYPES, rule.name
    event_columns = {c.name for c in EVENTS}
    assert set(m.event_fields()) <= event_columns, m.event_fields()
    fit_columns = (
        {c.name for c in LEADS} | {f"account.{c.name}" for c in ACCOUNTS} | CUSTOM_LEAD_COLUMNS
    )
    assert set(m.fit_fields()) <= fit_columns, m.fit_fields()
    if m.account is not None and m.account.stakeholders is not None:
        assert set(m.account.stakeholders.types or ()) <= EVENT_TYPES


def _leaves(condition: Condition) -> list[Leaf]:
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, All):
        return [leaf for c in condition.all for leaf in _leaves(c)]
    if isinstance(condition, AnyOf):
        return [leaf for c in condition.any for leaf in _leaves(c)]
    return _leaves(condition.not_)


def _conditions(m: ScoringModel) -> list[Condition]:
    found: list[Condition] = [r.when for r in m.fit.rules]
    found += [r.where for r in [*m.behaviour.rules, *m.behaviour.frequency] if r.where]
    found += [i.where for i in m.interests]
    if m.account is not None and m.account.priority is not None:
        found.append(m.account.priority.when)
    return found


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_regexes_run_on_re2(path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    patterns = [
        leaf.regex
        for c in _conditions(load_model(path))
        for leaf in _leaves(c)
        if leaf.regex is not None
    ]
    for pattern in patterns:
        con.execute("select regexp_matches('x', ?, 'i')", [pattern]).fetchall()


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_example_round_trips_through_yaml(path: Path) -> None:
    m = load_model(path)
    dumped = yaml.safe_dump(m.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert parse_model(dumped, f"dumped {path.name}") == m


# --- three-stage (S12) ------------------------------------------------------------------------


def test_three_stage_tier_order_holds() -> None:
    m = model("three-stage")
    t = m.tiers
    assert t is not None
    assert (t.persona_points, t.factor_points, t.max_factors, t.behaviour_max) == (
        1000,
        100,
        9,
        99,
    )
    # no amount of behaviour outweighs a factor, no number of factors outweighs a persona
    assert t.behaviour_max < t.factor_points
    assert t.max_factors * t.factor_points + t.behaviour_max < t.persona_points
    assert t.persona_points + t.max_factors * t.factor_points + t.behaviour_max == 1999
    tiers = [r.tier for r in m.fit.rules]
    assert None not in tiers
    assert "persona" in tiers and tiers.count("factor") >= t.max_factors
    # personas first, then factors: the order the total reads in
    assert tiers == sorted(tiers, key=lambda tier: tier != "persona")
    assert all(r.points is None for r in m.fit.rules)


def test_three_stage_grades_read_persona_and_factors() -> None:
    m = model("three-stage")
    assert m.tiers is not None
    highest = m.tiers.persona_points + m.tiers.max_factors * m.tiers.factor_points
    mins = [g.min for g in m.fit.grades if g.min is not None]
    assert mins and all(0 < x <= highest for x in mins)
    assert all(x % 100 == 0 for x in mins)


def test_three_stage_interests_follow_topics() -> None:
    m = model("three-stage")
    assert {i.name for i in m.interests} >= {"analytics", "crm", "automation"}
    assert all(fields_of(i.where) == ["topic"] for i in m.interests)
    # events that carry a topic (downloads, webinars, product pages) are scored
    assert {"download", "webinar_attended", "page_view"} <= {
        t for r in m.behaviour.rules for t in r.types
    }


# --- fit x engagement -------------------------------------------------------------------------


def _route(m: ScoringModel, grade: str, level: str) -> RoutingEntry | None:
    for entry in m.routing:
        w = entry.when
        if w.grade is not None and grade not in w.grade:
            continue
        if w.engagement is not None and level not in w.engagement:
            continue
        return entry
    return None


def test_fit_engagement_routing_covers_every_cell() -> None:
    m = model("fit-engagement")
    grades = [g.grade for g in m.fit.grades]
    levels = [lv.level for lv in m.engagement]
    assert grades == ["A", "B", "C", "D"]
    assert levels == ["1", "2", "3", "4"]
    for entry in m.routing:
        tests = entry.when.model_dump(exclude_none=True)
        assert set(tests) <= {"grade", "engagement"}, "cells are decided by grade and level only"
        assert entry.temperature in {"hot", "warm", "cold"}
        assert entry.stage in {"SQL", "MQL", "nurture", "disqualified"}
    seen: dict[str, RoutingEntry] = {}
    for g in grades:
        for lv in levels:
            found = _route(m, g, lv)
            assert found is not None, f"cell {g}{lv} has no routing"
            seen[f"{g}{lv}"] = found
    cells_per_entry = [
        len(e.when.grade or grades) * len(e.when.engagement or levels) for e in m.routing
    ]
    assert sum(cells_per_entry) == 16, "every cell appears exactly once"
    for cell in ("A1", "A2", "B1"):
        e = seen[cell]
        assert (e.temperature, e.stage, e.queue, e.sla_hours) == ("hot", "SQL", "ae", 24)
    assert seen["D4"].stage == "disqualified"
    assert {e.stage for e in seen.values()} == {"SQL", "MQL", "nurture", "disqualified"}


# --- B2C hot / warm / cold (S17) --------------------------------------------------------------


def test_b2c_model() -> None:
    m = model("b2c-hot-warm-cold")
    assert m.kind == "b2c"
    assert m.account is None and m.tiers is None
    assert isinstance(m.behaviour.decay, HalfLife) and m.behaviour.decay.days <= 7
    assert {"age_band", "purchasing_power"} <= set(m.fit_fields())
    types = {t for r in m.behaviour.rules for t in r.types}
    assert {"add_to_cart", "cart_abandoned", "page_view"} <= types
    assert any(
        r.where is not None and "url" in fields_of(r.where)
        for r in m.behaviour.rules
        if "page_view" in r.types
    )
    assert [e.temperature for e in m.routing] == ["hot", "warm", "cold"]
    assert [e.when.min_total is not None for e in m.routing] == [True, True, False]
    to_sales = [e.temperature for e in m.routing if e.queue == "sales"]
    assert to_sales == ["hot"], "only hot leads go to sales"


# --- committee --------------------------------------------------------------------------------


def _has(rules: list[BehaviourRule], **caps: object) -> bool:
    return any(all(getattr(r, k) is not None for k in caps) for r in rules)


def test_committee_is_the_full_framework() -> None:
    m = model("committee")
    b = m.behaviour
    assert _rules(m) >= 30
    assert any((r.points or 0) < 0 for r in m.fit.rules)
    fit_negatives = {r.name for r in m.fit.rules if (r.points or 0) < 0}
    assert {"student", "competitor_domain"} <= fit_negatives
    negatives = {t for r in b.rules if r.points < 0 for t in r.types}
    assert {"unsubscribe", "email_bounce", "page_view"} <= negatives
    assert b.inactivity and all(s.points < 0 for s in b.inactivity)
    assert b.velocity and len(b.velocity[0].steps) >= 2
    assert isinstance(b.decay, HalfLife)
    assert _has(b.rules, max_count=True)
    assert _has(b.rules, max_points=True)
    assert _has(b.rules, max_per=True)
    assert any(r.once_per == "asset" for r in b.rules)
    assert any(f.min_count == 3 and f.within_days == 7 for f in b.frequency)
    assert m.account is not None
    assert m.account.stakeholders is not None and m.account.stakeholders.tiers
    priority = m.account.priority
    assert priority is not None and priority.route is not None
    assert priority.route.queue and priority.route.sla_hours is not None
    assert m.interests and m.engagement
    assert any(e.sla_hours is not None for e in m.routing)


# --- starter (S23) ----------------------------------------------------------------------------


def test_starter_has_six_positive_and_four_negative_actions() -> None:
    m = model("starter")
    positive = [r for r in m.behaviour.rules if r.points > 0]
    negative = [r for r in m.behaviour.rules if r.points < 0]
    assert (len(positive), len(negative)) == (6, 4)
    assert len(m.behaviour.rules) == 10
    assert 2 <= len(m.fit.rules) <= 6
    assert not m.behaviour.frequency and not m.behaviour.velocity
    assert [g.grade for g in m.fit.grades] == ["A", "B", "C"]
    assert [e.stage for e in m.routing] == ["SQL", "MQL", "nurture"]
    assert m.routing[-1].when.model_dump(exclude_none=True) == {}, "the last entry: otherwise"
