"""The batch evaluator, feature by feature; every case is also checked against the reference."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

from leadscore.engine.batch import BatchResult, compile_batch
from leadscore.engine.binding import Columns, kind_of, problems
from leadscore.engine.result import LEDGER_COLUMNS, SCORE_COLUMNS, TRAILING_COLUMNS
from leadscore.errors import EngineError
from leadscore.model import parse_model
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

AS_OF = datetime(2026, 3, 2, 12, 0)  # a Monday


def model(body: str) -> ScoringModel:
    return parse_model('name: t\nversion: "1"\n' + body)


def ev(eid: str, lead: str, typ: str, days_ago: float, **props: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "lead_id": lead,
        "type": typ,
        "ts": AS_OF - timedelta(days=days_ago),
        **props,
    }


def lead(lead_id: str = "L1", **fields: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, **fields}


def lines(ledger: list[dict[str, Any]], kind: str, rule: str | None = None) -> list[Any]:
    return [r for r in ledger if r["kind"] == kind and (rule is None or r["rule"] == rule)]


# --- shape --------------------------------------------------------------------------------


def test_result_columns_and_lazy_tables(engines: Any) -> None:
    m = model(
        """
interests:
  - {name: ai, where: {field: topic, equals: ai}}
  - {name: crm, where: {field: topic, exists: true}}
"""
    )
    data = engines.dataset([lead("L1"), lead("L2")], [ev("e1", "L1", "view", 1, topic="AI")])
    result = compile_batch(m, data, AS_OF)
    assert isinstance(result, BatchResult)
    expected = [*SCORE_COLUMNS, "interest_ai", "interest_crm", *TRAILING_COLUMNS]
    assert result.scores.columns == tuple(expected)
    assert result.ledger.columns == LEDGER_COLUMNS
    assert "SELECT" in str(engines.con.compile(result.scores))
    scores, _ = engines.check(m, [lead("L1"), lead("L2")], [ev("e1", "L1", "view", 1)], AS_OF)
    assert set(scores) == {"L1", "L2"}
    assert scores["L2"]["model"] == "t" and scores["L2"]["model_version"] == "1"
    assert scores["L2"]["as_of"] == AS_OF


def test_aware_as_of_is_read_as_utc(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 1, within_days: 1}]}")
    data = engines.dataset([lead()], [ev("e1", "L1", "view", 0.9)])
    aware = AS_OF.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))
    scores, _ = engines.batch(m, data, aware)
    assert scores[0]["total"] == 1.0 and scores[0]["as_of"] == AS_OF


# --- behaviour rules and caps -------------------------------------------------------------


def test_max_count_keeps_latest_and_reports_the_rest(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 2, max_count: 2}]}")
    events = [ev(f"e{i}", "L1", "view", i) for i in range(1, 5)]
    scores, ledger = engines.check(m, [lead()], events, AS_OF)
    assert scores["L1"]["behaviour"] == 4.0
    assert sorted(r["event_id"] for r in lines(ledger, "event")) == ["e1", "e2"]
    (cap,) = lines(ledger, "cap")
    assert cap["points"] == 0.0 and cap["note"] == "2 more events not counted (caps)"


def test_first_time_only_keeps_earliest(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: f, event: form, points: 10, repeatable: false}]}")
    events = [ev("e1", "L1", "form", 1), ev("e2", "L1", "form", 5), ev("e3", "L1", "form", 3)]
    _, ledger = engines.check(m, [lead()], events, AS_OF)
    assert [r["event_id"] for r in lines(ledger, "event")] == ["e2"]


def test_ties_in_time_are_broken_by_event_id(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 1, max_count: 1}]}")
    events = [ev("e2", "L1", "view", 1), ev("e1", "L1", "view", 1), ev("e3", "L1", "view", 1)]
    _, ledger = engines.check(m, [lead()], events, AS_OF)
    assert [r["event_id"] for r in lines(ledger, "event")] == ["e3"]


@pytest.mark.parametrize("pooled", [False, True], ids=["shared", "pooled"])
def test_each_capped_rule_keeps_its_own_order_in_either_plan(engines: Any, pooled: bool) -> None:
    m = model(
        """
behaviour:
  decay: {type: half_life, days: 10}
  rules:
    - {name: first, event: view, points: 8, max_count: 1, keep: earliest}
    - {name: last, event: [view, click], points: 4, max_count: 2}
    - {name: clicks, event: click, points: 3, max_points: 5}
    - {name: once, event: click, points: 1, once_per: url}
"""
    )
    events = [ev("v1", "L1", "view", 1), ev("v2", "L1", "view", 20), ev("v3", "L1", "view", 2)]
    events += [ev("c1", "L1", "click", 0.5, url="/a"), ev("c2", "L1", "click", 30, url="/a")]
    events += [ev("w1", "L2", "view", 10), ev("w2", "L2", "view", 10)]
    scores, _ = engines.check(m, [lead("L1"), lead("L2")], events, AS_OF, pooled=pooled)
    # first: the view of 20 days ago, 8 * 0.5^2; last: the click of 0.5 and the view of 1 day
    # ago; clicks: 3 * (0.5^0.05 + 0.5^3) under its cap of 5; once: the latest click on /a
    expected = 2.0 + (3.86 + 3.73) + (2.9 + 0.38) + 0.97
    assert scores["L1"]["behaviour"] == pytest.approx(expected, abs=0.015)
    assert scores["L2"]["behaviour"] == 4.0 + 2 * 2.0


def test_once_per_value_nulls_count_as_one_value(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: d, event: download, points: 5, once_per: asset}]}")
    events = [
        ev("e1", "L1", "download", 1, asset="wp"),
        ev("e2", "L1", "download", 2, asset="wp"),
        ev("e3", "L1", "download", 3, asset="WP"),
        ev("e4", "L1", "download", 4),
        ev("e5", "L1", "download", 5),
    ]
    scores, ledger = engines.check(m, [lead()], events, AS_OF)
    assert sorted(r["event_id"] for r in lines(ledger, "event")) == ["e1", "e3", "e4"]
    assert scores["L1"]["behaviour"] == 15.0


def test_max_per_week_starts_on_monday(engines: Any) -> None:
    m = model(
        "behaviour: {rules: [{name: v, event: view, points: 1, max_per: {count: 1, period: week}}]}"
    )
    # AS_OF is Monday noon: 0.1 days ago is this week, 0.6 days ago is Sunday (last week).
    events = [
        ev("e1", "L1", "view", 0.1),
        ev("e2", "L1", "view", 0.2),
        ev("e3", "L1", "view", 0.6),
        ev("e4", "L1", "view", 1.4),
    ]
    _, ledger = engines.check(m, [lead()], events, AS_OF)
    assert sorted(r["event_id"] for r in lines(ledger, "event")) == ["e1", "e3"]


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_caps_combined(engines: Any, period: str) -> None:
    m = model(
        f"""
behaviour:
  decay: {{type: half_life, days: 7}}
  rules:
    - name: d
      event: [download, view]
      points: 3
      once_per: asset
      max_per: {{count: 2, period: {period}}}
      max_count: 3
      keep: earliest
      max_points: 5
"""
    )
    events = [
        ev(f"e{i}", "L1", "download" if i % 2 else "view", i * 0.7, asset=f"a{i % 4}")
        for i in range(12)
    ]
    engines.check(m, [lead()], events, AS_OF)


def test_max_points_caps_positive_and_negative(engines: Any) -> None:
    m = model(
        """
behaviour:
  floor: null
  rules:
    - {name: up, event: view, points: 2, max_points: 3}
    - {name: down, event: click, points: -2, max_points: 3}
"""
    )
    events = [ev(f"v{i}", "L1", "view", i) for i in range(1, 4)]
    events += [ev(f"c{i}", "L1", "click", i) for i in range(1, 4)]
    scores, ledger = engines.check(m, [lead()], events, AS_OF)
    caps = {r["rule"]: r for r in lines(ledger, "cap")}
    assert caps["up"]["points"] == -3.0 and caps["up"]["note"] == "max_points 3 reached"
    assert caps["down"]["points"] == 3.0
    assert scores["L1"]["behaviour"] == 0.0


def test_within_days_window(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 1, within_days: 2}]}")
    events = [ev("e1", "L1", "view", 1.99), ev("e2", "L1", "view", 2), ev("e3", "L1", "view", 3)]
    scores, _ = engines.check(m, [lead()], events, AS_OF)
    assert scores["L1"]["behaviour"] == 1.0


@pytest.mark.parametrize(
    "decay",
    [
        "{type: half_life, days: 3}",
        "{type: half_life, days: 0.37}",
        "{type: linear, days: 2.5}",
        "{type: step, steps: [{after_days: 1, factor: 0.5}, {after_days: 3, factor: 0.1}]}",
        "{type: none}",
    ],
)
def test_decay_kinds_are_bit_identical(engines: Any, decay: str) -> None:
    m = model(f"behaviour: {{decay: {decay}, rules: [{{name: v, event: view, points: 7.77}}]}}")
    events = [
        ev(f"e{i}", "L1", "view", 0, ts=AS_OF - timedelta(microseconds=i * 987_654_321 + 1))
        for i in range(40)
    ]
    _, ledger = engines.check(m, [lead()], events, AS_OF)
    assert all(0 <= r["factor"] <= 1 for r in lines(ledger, "event"))


def test_half_life_value(engines: Any) -> None:
    m = model(
        "behaviour: {decay: {type: half_life, days: 2},"
        " rules: [{name: v, event: view, points: 10}]}"
    )
    scores, ledger = engines.check(m, [lead()], [ev("e1", "L1", "view", 2)], AS_OF)
    assert scores["L1"]["behaviour"] == 5.0
    assert ledger[0]["factor"] == 0.5 and ledger[0]["base"] == 10.0


# --- frequency, velocity, inactivity, floor -----------------------------------------------


def test_frequency(engines: Any) -> None:
    m = model(
        """
behaviour:
  frequency: [{name: busy, event: [view, click], min_count: 3, within_days: 7, points: 4}]
"""
    )
    events = [ev("e1", "L1", "view", 1), ev("e2", "L1", "click", 2), ev("e3", "L1", "view", 6)]
    events += [ev("e4", "L2", "view", 1), ev("e5", "L2", "view", 8), ev("e6", "L2", "view", 9)]
    scores, ledger = engines.check(m, [lead("L1"), lead("L2")], events, AS_OF)
    assert scores["L1"]["behaviour"] == 4.0 and scores["L2"]["behaviour"] == 0.0
    (line,) = lines(ledger, "frequency")
    assert line["note"] == "3 events within 7 days"


def test_velocity_first_tier_that_covers_the_span(engines: Any) -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: seen, event: view, points: 0, within_days: 1}
    - {name: asked, event: demo, points: 0}
  velocity:
    - name: fast
      steps: [seen, asked]
      tiers: [{within_days: 1, points: 9}, {within_days: 5.5, points: 3}]
"""
    )
    events = [
        ev("e1", "L1", "view", 10),  # the step's first event ignores the rule's window
        ev("e2", "L1", "view", 9),
        ev("e3", "L1", "demo", 6),
        ev("e4", "L2", "view", 3),
        ev("e5", "L2", "demo", 2.5),
        ev("e6", "L3", "view", 3),
    ]
    scores, ledger = engines.check(m, [lead("L1"), lead("L2"), lead("L3")], events, AS_OF)
    assert [scores[x]["behaviour"] for x in ("L1", "L2", "L3")] == [3.0, 9.0, 0.0]
    assert {r["note"] for r in lines(ledger, "velocity")} == {
        "all steps within 5.5 days",
        "all steps within 1 days",
    }


def test_inactivity_from_last_event_or_creation(engines: Any) -> None:
    m = model(
        """
behaviour:
  floor: null
  inactivity: [{after_days: 30, points: -5}, {after_days: 90, points: -10}]
"""
    )
    leads = [
        lead("L1", created_at=AS_OF - timedelta(days=400)),
        lead("L2", created_at=AS_OF - timedelta(days=40)),
        lead("L3"),
        lead("L4", created_at=AS_OF - timedelta(days=400)),
        lead("L5", created_at=AS_OF + timedelta(days=1)),
    ]
    events = [ev("e1", "L1", "view", 35), ev("e2", "L4", "view", 3)]
    scores, ledger = engines.check(m, leads, events, AS_OF)
    assert [scores[x]["behaviour"] for x in ("L1", "L2", "L3", "L4", "L5")] == [
        -5.0,
        -5.0,
        0.0,
        0.0,
        0.0,
    ]
    assert lines(ledger, "inactivity")[0]["note"] == "no activity for 30+ days"


def test_floor_lifts_behaviour(engines: Any) -> None:
    m = model("behaviour: {floor: -2.5, rules: [{name: u, event: unsub, points: -20}]}")
    scores, ledger = engines.check(m, [lead()], [ev("e1", "L1", "unsub", 1)], AS_OF)
    assert scores["L1"]["behaviour"] == -2.5
    (line,) = lines(ledger, "floor")
    assert line["points"] == 17.5 and line["note"] == "behaviour floor -2.5"


# --- account signals, tiers, interests, routing --------------------------------------------


def test_stakeholders_and_priority_route(engines: Any) -> None:
    m = model(
        """
fit:
  grades: [{grade: A, min: 10}, {grade: B}]
account:
  rollup: max
  stakeholders:
    within_days: 30
    event: [view, demo]
    tiers: [{min_leads: 2, points: 5}, {min_leads: 3, points: 12}]
  priority:
    when: {field: account.priority, equals: TIER1}
    points: 7.5
    route: {queue: named, sla_hours: 2}
routing:
  - {name: hot, when: {min_total: 15}, temperature: hot, queue: sdr, sla_hours: 24}
  - {temperature: cold}
"""
    )
    leads = [
        lead("L1", account_id="A1"),
        lead("L2", account_id="A1"),
        lead("L3", account_id="A1"),
        lead("L4", account_id="A2"),
        lead("L5"),
        lead("L6", account_id="A9"),
    ]
    events = [
        ev("e1", "L1", "view", 1),
        ev("e2", "L2", "demo", 29),
        ev("e3", "L3", "click", 1),  # not an engaging type
        ev("e4", "L4", "view", 31),  # too old
        ev("e5", "L5", "view", 1),
    ]
    accounts = [{"account_id": "A1", "priority": "tier1"}, {"account_id": "A2"}]
    scores, ledger = engines.check(m, leads, events, AS_OF, accounts)
    assert scores["L3"]["account"] == 12.5 and scores["L3"]["priority"] is True
    assert scores["L3"]["queue"] == "named" and scores["L3"]["sla_hours"] == 2.0
    assert scores["L3"]["temperature"] == "cold"
    assert scores["L4"]["account"] == 0.0 and scores["L4"]["queue"] is None
    assert scores["L5"]["account_score"] is None and scores["L6"]["account_score"] == 0.0
    assert {r["note"] for r in lines(ledger, "stakeholders")} == {"2 engaged leads"}


def test_account_rollup_sum(engines: Any) -> None:
    m = model(
        """
fit: {rules: [{name: ceo, when: {field: job_title, equals: ceo}, points: 10}]}
account: {rollup: sum}
"""
    )
    leads = [lead("L1", account_id="A", job_title="CEO"), lead("L2", account_id="A")]
    scores, _ = engines.check(m, leads, [], AS_OF)
    assert scores["L2"]["account_score"] == 10.0


def test_tiers(engines: Any) -> None:
    m = model(
        """
tiers: {max_factors: 2, behaviour_max: 20}
fit:
  rules:
    - {name: p1, when: {field: job_title, exists: true}, tier: persona}
    - {name: p2, when: {field: job_title, equals: ceo}, tier: persona}
    - {name: f1, when: {field: employees, gt: 10}, tier: factor}
    - {name: f2, when: {field: industry, in: [software, saas]}, tier: factor}
    - {name: f3, when: {field: country, exists: true}, tier: factor}
behaviour: {rules: [{name: v, event: view, points: 15}]}
"""
    )
    leads = [
        lead("L1", job_title="CEO", employees=50, industry="SaaS", country="de"),
        lead("L2", employees=5),
    ]
    events = [ev("e1", "L1", "view", 1), ev("e2", "L1", "view", 2)]
    scores, ledger = engines.check(m, leads, events, AS_OF)
    s = scores["L1"]
    assert (s["tier_persona"], s["tier_factors"], s["tier_behaviour"]) == (1000.0, 200.0, 20.0)
    assert s["total"] == 1220.0
    assert sorted(r["rule"] for r in lines(ledger, "fit") if r["lead_id"] == "L1") == [
        "f1",
        "f2",
        "p1",
    ]
    (clip,) = lines(ledger, "tier_cap")
    assert clip["points"] == -10.0 and clip["note"] == "stage 3 kept within 0..20"


def test_interests_and_primary_interest(engines: Any) -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: v, event: view, points: 2}
    - {name: d, event: download, points: 5, max_count: 1}
interests:
  - {name: ai, where: {field: topic, equals: AI}}
  - {name: crm, where: {field: topic, regex: "^cr"}}
"""
    )
    events = [
        ev("e1", "L1", "view", 1, topic="ai"),
        ev("e2", "L1", "download", 1, topic="CRM"),
        ev("e3", "L1", "download", 2, topic="ai"),
        ev("e4", "L2", "view", 1, topic="crm"),
        ev("e5", "L2", "view", 1, topic="ai"),
    ]
    scores, _ = engines.check(m, [lead("L1"), lead("L2"), lead("L3")], events, AS_OF)
    assert (scores["L1"]["interest_ai"], scores["L1"]["interest_crm"]) == (2.0, 5.0)
    assert scores["L1"]["primary_interest"] == "crm"
    assert scores["L2"]["primary_interest"] == "ai"  # a tie goes to the first interest
    assert scores["L3"]["primary_interest"] is None


def test_grades_engagement_cell_and_routing(engines: Any) -> None:
    m = model(
        """
fit:
  rules: [{name: ceo, when: {field: job_title, contains: CEO}, points: 25}]
  grades: [{grade: A, min: 20}, {grade: B}]
behaviour: {rules: [{name: v, event: view, points: 3}]}
engagement: [{level: 1, min: 5}, {level: 2}]
routing:
  - {name: sales, when: {grade: [A], engagement: [1]}, temperature: hot, stage: SQL, sla_hours: 4}
  - {name: warm, when: {min_fit: 20, max_behaviour: 5}, temperature: warm}
  - {name: rest, stage: nurture}
"""
    )
    leads = [lead("L1", job_title="vice ceo"), lead("L2", job_title="ceo"), lead("L3")]
    events = [ev("e1", "L1", "view", 1), ev("e2", "L1", "view", 2)]
    scores, _ = engines.check(m, leads, events, AS_OF)
    assert scores["L1"]["cell"] == "A1" and scores["L1"]["stage"] == "SQL"
    assert scores["L2"]["cell"] == "A2" and scores["L2"]["temperature"] == "warm"
    assert scores["L3"]["stage"] == "nurture" and scores["L3"]["temperature"] is None


# --- conditions -------------------------------------------------------------------------


def test_condition_semantics(engines: Any) -> None:
    m = model(
        """
fit:
  rules:
    - {name: eq, when: {field: job_title, equals: Ceo}, points: 1}
    - {name: num_text, when: {field: country, in: [1, 2.5, true]}, points: 2}
    - {name: regex, when: {field: job_title, regex: "^c.o$"}, points: 4}
    - {name: not_null, when: {not: {field: industry, equals: x}}, points: 8}
    - {name: num, when: {field: employees, between: [1, 10]}, points: 16}
    - {name: num_eq, when: {field: employees, in: [3, 4.5]}, points: 32}
    - {name: flag, when: {field: vip, equals: true}, points: 64}
    - {name: nan, when: {field: annual_revenue, gt: 0}, points: 128}
"""
    )
    leads = [
        lead("L1", job_title="CEO", country="2.5", employees=3, vip=True, annual_revenue=1.0),
        lead("L2", job_title="cto", country="True", industry="X", annual_revenue=float("nan")),
        lead("L3", country="1.0", employees=11, vip=False),
    ]
    scores, _ = engines.check(m, leads, [], AS_OF)
    assert [scores[x]["fit"] for x in ("L1", "L2", "L3")] == [255.0, 6.0, 8.0]


# --- data handling ----------------------------------------------------------------------


def test_duplicates_future_and_unknown_leads(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: [view, click], points: 1}]}")
    events = [
        ev("d1", "L1", "view", 2),
        ev("d1", "L2", "view", 1),  # later copy of d1: ignored
        ev("d2", "L2", "click", 3),
        ev("d2", "L1", "click", 3),  # same time: the smaller lead id wins
        ev("d3", "LX", "view", 5),  # unknown lead: dropped before the dedupe
        ev("d3", "L2", "view", 4),
        ev("f1", "L1", "view", 0),  # at as_of: ignored
        ev("f2", "L1", "view", -1),  # after as_of: ignored
        ev("d4", "L1", "view", -1),
        ev("d4", "L2", "view", 6),  # the copy after as_of does not hide this one
    ]
    _, ledger = engines.check(m, [lead("L1"), lead("L2")], events, AS_OF)
    assert sorted((r["lead_id"], r["event_id"]) for r in lines(ledger, "event")) == [
        ("L1", "d1"),
        ("L1", "d2"),
        ("L2", "d3"),
        ("L2", "d4"),
    ]


def test_leads_without_events_and_empty_tables(engines: Any) -> None:
    m = model(
        """
behaviour:
  floor: 1
  rules: [{name: v, event: view, points: 1, max_count: 1, max_points: 1}]
interests: [{name: x, where: {field: url, exists: true}}]
"""
    )
    scores, ledger = engines.check(m, [lead("L1")], [], AS_OF)
    assert scores["L1"]["behaviour"] == 1.0 and scores["L1"]["interest_x"] == 0.0
    assert [r["kind"] for r in ledger] == ["floor"]
    scores, ledger = engines.check(m, [], [], AS_OF)
    assert scores == {} and ledger == []


def test_missing_optional_columns(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 1}]}")
    lead_schema = pa.schema([("lead_id", pa.string())])
    event_schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("lead_id", pa.string()),
            ("type", pa.string()),
            ("ts", pa.timestamp("us")),
        ]
    )
    data = engines.dataset(
        [lead()],
        [ev("e1", "L1", "view", 1)],
        lead_schema=lead_schema,
        event_schema=event_schema,
    )
    scores, ledger = engines.batch(m, data, AS_OF)
    assert scores[0]["account_id"] is None and scores[0]["total"] == 1.0
    assert ledger[0]["detail"] is None


# --- binding ------------------------------------------------------------------------------


def test_bad_model_fails_as_binding_says(engines: Any) -> None:
    m = model(
        """
fit: {rules: [{name: a, when: {field: nope, equals: 1}, points: 1}]}
behaviour:
  rules:
    - {name: b, event: view, where: {field: value, contains: x}, points: 1}
    - {name: c, event: view, once_per: missing, points: 1}
"""
    )
    data = engines.dataset([lead()], [], [])
    with pytest.raises(EngineError) as caught:
        compile_batch(m, data, AS_OF)
    columns = Columns(
        leads={n: kind_of(str(t)) for n, t in data.leads.schema().items()},
        events={n: kind_of(str(t)) for n, t in data.events.schema().items()},
        accounts={n: kind_of(str(t)) for n, t in data.accounts.schema().items()},
    )
    found = problems(m, columns)
    assert len(found) == 3
    for problem in found:
        assert problem in str(caught.value)


def test_account_fields_need_an_accounts_table(engines: Any) -> None:
    m = model("fit: {rules: [{name: a, when: {field: account.priority, exists: true}, points: 1}]}")
    data = engines.dataset([lead()], [], None)
    with pytest.raises(EngineError, match=r"unknown field 'account.priority'"):
        compile_batch(m, data, AS_OF)


def test_missing_required_column(engines: Any) -> None:
    m = model("behaviour: {rules: [{name: v, event: view, points: 1}]}")
    schema = pa.schema([("event_id", pa.string()), ("lead_id", pa.string()), ("type", pa.string())])
    data = engines.dataset([lead()], [], event_schema=schema)
    with pytest.raises(EngineError, match=r"events table has no 'ts' column"):
        compile_batch(m, data, AS_OF)


def test_validated_dataset_skips_dedupe_with_the_same_result(engines: Any) -> None:
    m = model(
        """
behaviour:
  rules:
    - {name: v, event: view, points: 1.5, max_count: 2}
    - {name: c, event: click, points: 2, max_points: 3}
    - {name: d, event: download, points: 4}
interests: [{name: x, where: {field: url, contains: a}}]
"""
    )
    leads = [lead("L1"), lead("L2")]
    events = [
        ev(f"e{i}", f"L{i % 2 + 1}", ("view", "click", "download")[i % 3], i / 3 + 0.1, url="a")
        for i in range(12)
    ]
    expected, expected_ledger = engines.check(m, leads, events, AS_OF)
    data = engines.dataset(leads, events)
    validated = Dataset(leads=data.leads, events=data.events, validated=True)
    scores, ledger = engines.batch(m, validated, AS_OF)
    assert {r["lead_id"]: r for r in scores} == expected
    assert len(ledger) == len(expected_ledger)
    sql = str(engines.con.compile(compile_batch(m, validated, AS_OF).scores))
    assert "SEMI JOIN" not in sql
    assert re.search(r'PARTITION BY "\w+"\."event_id"', sql) is None
