"""The statements of docs/model.md "How scores are computed" that edge cases hang on, each held
by both engines (reference and batch agree, and give what the page says)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leadscore.model import parse_model
from leadscore.model.scoring import ScoringModel

AS_OF = datetime(2026, 3, 2, 12, 0)


def model(body: str) -> ScoringModel:
    return parse_model('name: t\nversion: "1"\n' + body)


def ev(eid: str, typ: str, days_ago: float, lead: str = "L1") -> dict[str, Any]:
    return {"event_id": eid, "lead_id": lead, "type": typ, "ts": AS_OF - timedelta(days=days_ago)}


def of(ledger: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in ledger if r["kind"] == kind]


def test_equal_timestamps_are_ordered_by_event_id_as_text(engines: Any) -> None:
    # "e10" < "e9" as text: with keep: latest, e9 is the newer of the two
    m = model("behaviour: {rules: [{name: r, event: x, points: 5, max_count: 1}]}")
    events = [ev("e9", "x", 1), ev("e10", "x", 1)]
    _, ledger = engines.check(m, [{"lead_id": "L1"}], events, AS_OF)
    assert [r["event_id"] for r in of(ledger, "event")] == ["e9"]
    m = model("behaviour: {rules: [{name: r, event: x, points: 5, max_count: 1, keep: earliest}]}")
    _, ledger = engines.check(m, [{"lead_id": "L1"}], events, AS_OF)
    assert [r["event_id"] for r in of(ledger, "event")] == ["e10"]


def test_repeatable_false_with_within_days_counts_the_first_event_in_the_window(
    engines: Any,
) -> None:
    m = model(
        "behaviour: {rules: [{name: r, event: x, points: 5, repeatable: false, within_days: 30}]}"
    )
    events = [ev("old", "x", 100), ev("a", "x", 20), ev("b", "x", 10)]
    _, ledger = engines.check(m, [{"lead_id": "L1"}], events, AS_OF)
    assert [r["event_id"] for r in of(ledger, "event")] == ["a"]


def test_velocity_points_do_not_decay(engines: Any) -> None:
    m = model(
        """
behaviour:
  decay: {type: half_life, days: 1}
  rules:
    - {name: a, event: a, points: 0}
    - {name: b, event: b, points: 0}
  velocity:
    - {name: v, steps: [a, b], tiers: [{within_days: 2, points: 10}]}
"""
    )
    events = [ev("1", "a", 61), ev("2", "b", 60)]
    scores, ledger = engines.check(m, [{"lead_id": "L1"}], events, AS_OF)
    (line,) = of(ledger, "velocity")
    assert line["points"] == 10.0 and line["factor"] is None
    assert scores["L1"]["behaviour"] == 10.0


def test_interest_sub_scores_ignore_caps_and_the_floor(engines: Any) -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: view, event: view, points: 10, max_points: 15}
    - {name: spam, event: spam, points: -30}
interests:
  - {name: ai, where: {field: type, equals: view}}
  - {name: junk, where: {field: type, equals: spam}}
"""
    )
    leads = [{"lead_id": "L1"}, {"lead_id": "L2"}]
    events = [ev("1", "view", 1), ev("2", "view", 2), ev("3", "view", 3)]
    events += [ev("4", "spam", 1, lead="L2")]
    scores, _ = engines.check(m, leads, events, AS_OF)
    # the max_points cap takes behaviour to 15; the interest keeps the 30 of its event lines
    assert scores["L1"]["behaviour"] == 15.0 and scores["L1"]["interest_ai"] == 30.0
    # the floor lifts behaviour to 0; the interest stays negative
    assert scores["L2"]["behaviour"] == 0.0 and scores["L2"]["interest_junk"] == -30.0
    assert scores["L2"]["primary_interest"] is None


def test_caps_that_drop_events_leave_a_zero_point_cap_line(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: r, event: x, points: 5, max_count: 1}]}")
    events = [ev("1", "x", 1), ev("2", "x", 2), ev("3", "x", 3)]
    _, ledger = engines.check(m, [{"lead_id": "L1"}], events, AS_OF)
    (cap,) = of(ledger, "cap")
    assert cap["points"] == 0.0 and cap["note"] == "2 more events not counted (caps)"


def test_events_before_created_at_count_and_inactivity_runs_from_them(engines: Any) -> None:
    m = model(
        """
behaviour:
  rules: [{name: r, event: x, points: 5}]
  inactivity: [{after_days: 30, points: -2}]
  floor: null
"""
    )
    leads = [{"lead_id": "L1", "created_at": AS_OF - timedelta(days=5)}]
    scores, ledger = engines.check(m, leads, [ev("1", "x", 40)], AS_OF)
    assert sorted(r["kind"] for r in ledger) == ["event", "inactivity"]
    assert scores["L1"]["behaviour"] == 3.0


def test_a_lead_created_after_as_of_is_scored_with_no_inactivity(engines: Any) -> None:
    m = model(
        """
fit: {rules: [{name: f, when: {field: job_title, exists: true}, points: 7}]}
behaviour: {inactivity: [{after_days: 1, points: -2}], floor: null}
"""
    )
    leads = [{"lead_id": "L1", "job_title": "CEO", "created_at": AS_OF + timedelta(days=10)}]
    scores, ledger = engines.check(m, leads, [], AS_OF)
    assert scores["L1"]["total"] == 7.0 and [r["kind"] for r in ledger] == ["fit"]


def test_the_tier_cap_line_is_part_behaviour_and_clips_behaviour_plus_account(
    engines: Any,
) -> None:
    m = model(
        """
tiers: {behaviour_max: 20}
fit: {rules: [{name: p, tier: persona, when: {field: job_title, exists: true}}]}
behaviour: {rules: [{name: r, event: x, points: 15}]}
account: {priority: {when: {field: account.priority, equals: tier1}, points: 10}}
"""
    )
    leads = [{"lead_id": "L1", "job_title": "CEO", "account_id": "A1"}]
    accounts = [{"account_id": "A1", "priority": "tier1"}]
    scores, ledger = engines.check(m, leads, [ev("1", "x", 1)], AS_OF, accounts)
    (cap,) = of(ledger, "tier_cap")
    assert cap["part"] == "behaviour" and cap["points"] == -5.0
    row = scores["L1"]
    assert (row["behaviour"], row["account"], row["tier_behaviour"]) == (10.0, 10.0, 20.0)
    assert row["total"] == 1020.0
