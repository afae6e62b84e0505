"""The reference evaluator's semantics, case by case, with figures worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from leadscore.engine.reference import CompiledModel, score_many
from leadscore.model import parse_model

AS_OF = datetime(2026, 3, 2, 12, 0)  # a Monday


def model(body: str) -> Any:
    return parse_model('name: t\nversion: "1"\n' + body)


def ev(eid: str, lead: str, typ: str, days_ago: float, **props: Any) -> dict[str, Any]:
    row = {"event_id": eid, "lead_id": lead, "type": typ, "ts": AS_OF - timedelta(days=days_ago)}
    for key in ("url", "asset", "campaign", "channel", "content_stage", "topic", "value"):
        row[key] = props.get(key)
    return row


def lead(lead_id: str = "L1", **fields: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "account_id": None, "created_at": None, **fields}


def one(m: Any, leads: list[dict[str, Any]], events: list[dict[str, Any]], **kw: Any) -> Any:
    results = score_many(m, leads, events, AS_OF, **kw)
    for r in results:
        assert round(sum(line.points for line in r.ledger), 2) == r.total
    return results[0]


def test_fit_rules_grades_and_negative_points() -> None:
    m = model(
        """
fit:
  rules:
    - {name: ceo, when: {field: job_title, regex: "\\\\bceo\\\\b|chief executive"}, points: 30}
    - {name: student, when: {field: job_title, contains: STUDENT}, points: -40}
    - {name: size, when: {all: [{field: employees, between: [50, 500]},
                               {not: {field: country, in: [xx]}}]}, points: 10}
  grades: [{grade: A, min: 30}, {grade: B, min: 10}, {grade: D}]
"""
    )
    ceo = one(m, [lead(job_title="CEO", employees=120, country=None)], [])
    assert (ceo.fit, ceo.grade) == (40.0, "A")
    assert [line.rule for line in ceo.ledger] == ["ceo", "size"]
    student = one(m, [lead(job_title="Working student", employees=None, country="XX")], [])
    assert (student.total, student.grade) == (-40.0, "D")


def test_half_life_decay_and_max_count_keep_the_latest() -> None:
    m = model(
        """
behaviour:
  decay: {type: half_life, days: 10}
  rules:
    - {name: pricing, event: page_view, where: {field: url, contains: /pricing}, points: 10,
       max_count: 2}
"""
    )
    events = [ev(f"e{d}", "L1", "page_view", d, url="/pricing") for d in (0, 10, 20, 30)]
    events.append(ev("other", "L1", "page_view", 1, url="/blog"))
    r = one(m, [lead()], events)
    # the event at as_of is ignored; the two latest before it are 10 and 20 days old
    assert [line.points for line in r.ledger if line.kind == "event"] == [5.0, 2.5]
    assert r.behaviour == 7.5
    assert [line.note for line in r.ledger if line.kind == "cap"] == [
        "1 more events not counted (caps)"
    ]


def test_first_time_only_counts_the_earliest_event() -> None:
    m = model(
        """
behaviour:
  decay: {type: linear, days: 100}
  rules:
    - {name: signup, event: newsletter_subscribe, points: 20, repeatable: false}
"""
    )
    r = one(m, [lead()], [ev("a", "L1", "newsletter_subscribe", d) for d in (50, 10)])
    (line,) = [x for x in r.ledger if x.kind == "event"]
    assert (line.event_id, line.points) == ("a", 10.0)


def test_max_points_once_per_asset_and_per_day_caps() -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: dl, event: download, points: 15, once_per: asset, max_points: 40}
    - {name: open, event: email_open, points: 1, max_per: {count: 2, period: week}}
"""
    )
    events = [ev(f"d{i}", "L1", "download", i + 1, asset=a) for i, a in enumerate("aabc")]
    # Monday 2026-03-02 12:00 is as_of: 1 and 2 days ago fall in the previous week.
    events += [ev(f"o{i}", "L1", "email_open", 0.1 * (i + 1)) for i in range(3)]
    events += [ev(f"p{i}", "L1", "email_open", 1 + i) for i in range(3)]
    r = one(m, [lead()], events)
    dl = [x for x in r.ledger if x.rule == "dl"]
    assert sum(x.points for x in dl if x.kind == "event") == 45.0
    assert [x.points for x in dl if x.kind == "cap" and x.points] == [-5.0]
    opens = [x for x in r.ledger if x.rule == "open" and x.kind == "event"]
    assert len(opens) == 4
    assert r.behaviour == 44.0


def test_negative_actions_floor_and_inactivity() -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: visit, event: page_view, points: 5}
    - {name: unsub, event: unsubscribe, points: -20}
  inactivity: [{after_days: 30, points: -5}, {after_days: 90, points: -15}]
"""
    )
    r = one(m, [lead()], [ev("v", "L1", "page_view", 100), ev("u", "L1", "unsubscribe", 95)])
    kinds = {x.kind: x.points for x in r.ledger}
    assert kinds["inactivity"] == -15.0
    assert kinds["floor"] == 30.0  # 5 - 20 - 15 = -30, lifted to 0
    assert r.behaviour == 0.0
    fresh = one(m, [lead(created_at=AS_OF - timedelta(days=10))], [])
    assert fresh.ledger == []
    old = one(m, [lead(created_at=AS_OF - timedelta(days=40))], [])
    assert [x.kind for x in old.ledger] == ["inactivity", "floor"]


def test_frequency_and_velocity() -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: pricing, event: page_view, where: {field: url, contains: pricing}, points: 0}
    - {name: demo, event: demo_request, points: 0}
  frequency:
    - {name: three_in_week, event: page_view, min_count: 3, within_days: 7, points: 15}
  velocity:
    - name: fast
      steps: [pricing, demo]
      tiers: [{within_days: 2, points: 20}, {within_days: 14, points: 5}]
"""
    )
    quick = [ev(f"p{i}", "L1", "page_view", 5 - i, url="/pricing") for i in range(3)]
    quick.append(ev("d", "L1", "demo_request", 4))
    r = one(m, [lead()], quick)
    assert {(x.kind, x.points, x.note) for x in r.ledger} == {
        ("frequency", 15.0, "3 events within 7 days"),
        ("velocity", 20.0, "all steps within 2 days"),
    }
    slow = [ev("p", "L1", "page_view", 20, url="/pricing"), ev("d", "L1", "demo_request", 10)]
    assert one(m, [lead()], slow).total == 5.0


def test_stakeholders_priority_rollup_and_route() -> None:
    m = model(
        """
account:
  stakeholders: {within_days: 30, tiers: [{min_leads: 2, points: 10}, {min_leads: 3, points: 25}]}
  priority: {when: {field: account.priority, equals: tier1}, points: 50,
             route: {stage: SQL, queue: strategic, sla_hours: 4}}
  rollup: max
behaviour:
  rules: [{name: visit, event: page_view, points: 1}]
routing:
  - {when: {min_total: 1000}, temperature: hot, stage: SQL, queue: ae, sla_hours: 24}
  - {temperature: cold, stage: nurture}
"""
    )
    leads = [lead("L1", account_id="A"), lead("L2", account_id="A"), lead("L3", account_id="B")]
    events = [ev("1", "L1", "page_view", 3), ev("2", "L2", "page_view", 40)]
    events += [ev("3", "L3", "page_view", 1)]
    accounts = [{"account_id": "A", "priority": "Tier1"}, {"account_id": "B", "priority": None}]
    results = score_many(m, leads, events, AS_OF, accounts=accounts)
    l1, l2, l3 = results
    assert l1.account == 50.0  # only one engaged lead in the window: no stakeholder points
    assert (l1.priority, l1.stage, l1.queue, l1.sla_hours, l1.temperature) == (
        True,
        "SQL",
        "strategic",
        4,
        "cold",
    )
    assert l1.account_score == l2.account_score == max(l1.total, l2.total)
    assert (l3.priority, l3.stage) == (False, "nurture")
    events.append(ev("4", "L2", "page_view", 2))
    l1, l2, _ = score_many(m, leads, events, AS_OF, accounts=accounts)
    assert [x.note for x in l1.ledger if x.kind == "stakeholders"] == ["2 engaged leads"]


def test_three_stage_tiers_keep_their_order() -> None:
    m = model(
        """
tiers: {persona_points: 1000, factor_points: 100, max_factors: 2, behaviour_max: 99}
fit:
  rules:
    - {name: persona_a, tier: persona, when: {field: job_title, contains: ceo}}
    - {name: persona_b, tier: persona, when: {field: job_title, contains: chief}}
    - {name: f1, tier: factor, when: {field: employees, gte: 10}}
    - {name: f2, tier: factor, when: {field: country, equals: de}}
    - {name: f3, tier: factor, when: {field: industry, exists: true}}
behaviour:
  rules: [{name: visit, event: page_view, points: 30}]
"""
    )
    row = lead(job_title="Chief CEO", employees=20, country="DE", industry="x")
    r = one(m, [row], [ev(str(i), "L1", "page_view", 1 + i) for i in range(5)])
    assert (r.tier_persona, r.tier_factors, r.tier_behaviour, r.total) == (
        1000.0,
        200.0,
        99.0,
        1299.0,
    )
    assert [x.rule for x in r.ledger if x.kind == "fit"] == ["persona_a", "f1", "f2"]
    assert [x.points for x in r.ledger if x.kind == "tier_cap"] == [-51.0]


def test_interests_engagement_cell_and_duplicates() -> None:
    m = model(
        """
fit:
  rules: [{name: any, when: {field: lead_id, exists: true}, points: 40}]
  grades: [{grade: A, min: 40}, {grade: B}]
behaviour:
  rules: [{name: dl, event: download, points: 10}]
interests:
  - {name: crm, where: {field: topic, equals: CRM}}
  - {name: analytics, where: {field: topic, equals: analytics}}
engagement: [{level: "1", min: 20}, {level: "2"}]
routing: [{when: {grade: [A], engagement: ["1"]}, temperature: hot}]
"""
    )
    events = [
        ev("a", "L1", "download", 1, topic="analytics"),
        ev("c", "L1", "download", 2, topic="crm"),
    ]
    events += [dict(events[0]), ev("c2", "L1", "download", 3, topic="crm")]
    r = one(m, [lead()], events)
    assert r.interests == {"crm": 20.0, "analytics": 10.0}
    assert (r.primary_interest, r.engagement, r.cell, r.temperature) == ("crm", "1", "A1", "hot")


def test_score_one_matches_score_many_and_ignores_the_future() -> None:
    m = model("behaviour:\n  rules: [{name: v, event: page_view, points: 3}]\n")
    events = [ev("a", "L1", "page_view", 1), ev("future", "L1", "page_view", -1)]
    single = CompiledModel(m).score_one(lead(), events, AS_OF)
    assert single.total == 3.0 == one(m, [lead()], events).total


@pytest.mark.parametrize("order", [1, -1])
def test_event_order_does_not_matter(order: int) -> None:
    m = model(
        "behaviour:\n  decay: {type: half_life, days: 3}\n"
        "  rules: [{name: v, event: page_view, points: 7, max_count: 3}]\n"
    )
    events = [ev(str(i), "L1", "page_view", i * 0.7 + 0.1) for i in range(8)][::order]
    # 7 x 0.5^(0.1/3), 0.5^(0.8/3), 0.5^(1.5/3) = 6.84 + 5.82 + 4.95
    assert one(m, [lead()], events).total == 17.61
