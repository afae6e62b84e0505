"""The five example models in models/, scored: the story each one tells, in figures.

Every figure is worked out by hand from the model file; the comment next to it shows how.
Events are placed at ages that keep the arithmetic exact: a whole number of half-lives
(factor 0.5, 0.25, ...) or one minute old, which rounds to the full points (for a 30-day
half-life 40 x 0.5^(1 min / 30 d) = 39.9994 -> 40.00; lines are rounded to the hundredth).
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any

import pytest

from leadscore.engine.reference import score_many
from leadscore.engine.result import LeadScore
from leadscore.model import ScoringModel, load_model
from leadscore.schema import EVENTS, LEADS

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 3, 2, 12, 0)  # a Monday, noon UTC
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)

_event_ids = itertools.count(1)


@functools.cache
def model(name: str) -> ScoringModel:
    return load_model(MODELS / f"{name}.yaml")


def lead(lead_id: str, **fields: Any) -> dict[str, Any]:
    """A lead row: every canonical column (empty unless given) plus any custom ones."""
    return {**{c.name: None for c in LEADS}, "lead_id": lead_id, **fields}


def ev(
    lead_id: str, type_: str, ago: timedelta = MINUTE, *, at: datetime = AS_OF, **fields: Any
) -> dict[str, Any]:
    """An event row `ago` before `at` (one minute before as_of unless told), with a fresh id."""
    row: dict[str, Any] = {c.name: None for c in EVENTS}
    row.update(event_id=f"E{next(_event_ids)}", lead_id=lead_id, type=type_, ts=at - ago)
    row.update(fields)
    return row


def score(
    name: str,
    leads: list[dict[str, Any]],
    events: list[dict[str, Any]],
    as_of: datetime = AS_OF,
    accounts: list[dict[str, Any]] | None = None,
) -> dict[str, LeadScore]:
    """Score with the reference engine; every ledger must add up to its total, to the cent."""
    results = score_many(model(name), leads, events, as_of, accounts=accounts or [])
    for r in results:
        assert sum(round(line.points * 100) for line in r.ledger) == round(r.total * 100)
    return {r.lead_id: r for r in results}


def one(name: str, the_lead: dict[str, Any], events: list[dict[str, Any]], **kw: Any) -> LeadScore:
    return score(name, [the_lead], events, **kw)[the_lead["lead_id"]]


def points(r: LeadScore, kind: str | None = None, rule: str | None = None) -> list[float]:
    """The points of the ledger lines of a kind and/or rule, in ledger order."""
    return [
        line.points
        for line in r.ledger
        if (kind is None or line.kind == kind) and (rule is None or line.rule == rule)
    ]


def routed(r: LeadScore) -> tuple[Any, ...]:
    return (r.temperature, r.stage, r.queue, r.sla_hours)


# =============================================================================================
# three-stage: persona 1000 | factors 100 each | behaviour 0..99
# =============================================================================================

ACCOUNT_TIER1 = {"account_id": "ACC-T1", "priority": "tier1", "employees": 1200}


def marketing_vp(lead_id: str = "vp") -> dict[str, Any]:
    # persona_revenue_leader ("marketing" + "vp")                              1000
    # factors: decision_maker (vp), company_size (800), industry (Software),
    #          core_market (Germany); not: revenue (unknown), business e-mail
    #          (gmail), inbound (paid), target/large account (no account)  4 x 100
    return lead(
        lead_id,
        job_title="VP Marketing",
        employees=800,
        industry="Software",
        country="Germany",
        email="vera.berg@gmail.com",
        source="paid",
    )


def test_three_stage_persona_with_four_factors_reads_1_4_37() -> None:
    half, quarter = 45 * DAY, 90 * DAY  # the half-life is 45 days
    events = [
        ev("vp", "demo_request", half),  # 30 x 0.5   = 15.00
        ev("vp", "page_view", half, url="/pricing"),  # 8 x 0.5  = 4.00
        ev("vp", "page_view", quarter, url="/pricing"),  # 8 x 0.25 = 2.00 (another day)
        ev("vp", "webinar_attended", half, asset="webinar-crm-2026-01", topic="crm"),  # 6.00
        ev("vp", "download", half, asset="case-study-crm", topic="crm"),  # 6 x 0.5 = 3.00
        ev("vp", "download", half, asset="pricing-sheet-crm", topic="crm"),  # 3.00
        ev("vp", "page_view", half, url="/product/crm", topic="crm"),  # 2 x 0.5 = 1.00
        ev("vp", "page_view", half, url="/product/crm", topic="crm"),  # 1.00 (3 a day count)
        ev("vp", "email_click", half, topic="analytics"),  # 2 x 0.5 = 1.00
        ev("vp", "email_click", half, topic="analytics"),  # 1.00
    ]  # behaviour: 15 + 4 + 2 + 6 + 3 + 3 + 1 + 1 + 1 + 1 = 37
    r = one("three-stage", marketing_vp(), events)

    assert (r.tier_persona, r.tier_factors, r.tier_behaviour) == (1000, 400, 37)
    assert r.total == 1437  # reads 1|4|37
    assert (r.fit, r.behaviour, r.account) == (1400, 37, 0)
    # grade from persona + factors: 1400 is B (A needs 1500); 37 behaviour is level 2 (>= 25)
    assert (r.grade, r.engagement, r.cell) == ("B", "2", "B2")
    # hot: total >= 1400 and behaviour >= 25
    assert routed(r) == ("hot", "SQL", "ae", 24)
    fit_lines = [(line.rule, line.points) for line in r.ledger if line.kind == "fit"]
    assert fit_lines == [
        ("persona_revenue_leader", 1000),
        ("factor_decision_maker", 100),
        ("factor_company_size", 100),
        ("factor_industry", 100),
        ("factor_core_market", 100),
    ]
    assert not points(r, kind="tier_cap")
    # interests add up the topic's event lines: crm 6 + 3 + 3 + 1 + 1 = 14, analytics 1 + 1
    assert r.interests == {"analytics": 2, "crm": 14, "automation": 0}
    assert r.primary_interest == "crm"


def flood(lead_id: str) -> list[dict[str, Any]]:
    """Far more behaviour than 99 points' worth: every rule maxed out, recently."""
    events = [ev(lead_id, "demo_request", k * MINUTE) for k in range(1, 11)]
    events += [ev(lead_id, "page_view", k * DAY, url="/pricing") for k in range(1, 31)]
    events += [ev(lead_id, "webinar_attended", asset=f"webinar-{k}") for k in range(20)]
    events += [ev(lead_id, "download", asset=f"guide-{k}", topic="crm") for k in range(20)]
    events += [ev(lead_id, "page_view", k * DAY, url="/product/crm") for k in range(1, 31)]
    events += [ev(lead_id, "email_click", k * MINUTE) for k in range(1, 21)]
    return events


def test_three_stage_behaviour_never_exceeds_99() -> None:
    leads = [
        marketing_vp("flooded"),  # persona + 4 factors, and a flood of events
        # persona + 5 factors (also 300m revenue) and nothing done at all: 1500
        {**marketing_vp("better_profile"), "annual_revenue": 300_000_000.0},
        # persona_executive ("owner"), no factor, unsubscribed: -15 is lifted back to 0
        lead("owner", job_title="Owner"),
    ]
    r = score("three-stage", leads, [*flood("flooded"), ev("owner", "unsubscribe", 10 * DAY)])

    flooded = r["flooded"]
    raw = sum(points(flooded, kind="event")) + sum(points(flooded, kind="cap"))
    # demo 30 + pricing 24 + webinars 240 + downloads 24 + products 16 + clicks 10, decayed
    assert raw > 250
    assert points(flooded, kind="tier_cap") == [pytest.approx(99 - raw)]
    assert (flooded.behaviour, flooded.tier_behaviour, flooded.total) == (99, 99, 1499)
    assert (flooded.grade, flooded.engagement) == ("B", "1")
    # no amount of behaviour lifts a lead over one with a better profile
    assert r["better_profile"].total == 1500 > flooded.total
    assert r["better_profile"].grade == "A"

    owner = r["owner"]
    assert points(owner, kind="event") == [-15]
    # the behaviour floor (default 0) lifts it before the tier clip is needed
    assert points(owner, kind="floor") == [15]
    assert points(owner, kind="tier_cap") == []
    assert (owner.behaviour, owner.total) == (0, 1000)


def test_three_stage_nine_factors_rank_below_any_persona() -> None:
    leads = [
        # "Head of Operations" is a decision maker (factor) but no persona; 9 factors:
        # decision maker, 200..5,000 employees, revenue >= 20m, Software, United States,
        # business e-mail, referral, tier1 account, account with >= 1,000 employees = 900
        lead(
            "nine",
            job_title="Head of Operations",
            employees=1200,
            annual_revenue=50_000_000.0,
            industry="Software",
            country="United States",
            email="ops@bigco.com",
            source="referral",
            account_id="ACC-T1",
        ),
        # the weakest persona: an owner of a company we know nothing about = 1000
        lead("owner", job_title="Owner"),
        # a CMO is a marketing leader even if the title does not say "marketing":
        # persona 1000 + decision maker 100
        lead("cmo", job_title="CMO"),
    ]
    r = score("three-stage", leads, flood("nine"), accounts=[ACCOUNT_TIER1])

    nine = r["nine"]
    assert (nine.tier_persona, nine.tier_factors, nine.tier_behaviour) == (0, 900, 99)
    assert nine.total == 999  # 0|9|99
    assert len(points(nine, kind="fit")) == 9
    assert not any(line.rule.startswith("persona") for line in nine.ledger)
    ranking = sorted(r.values(), key=lambda s: -s.total)
    assert [s.lead_id for s in ranking] == ["cmo", "owner", "nine"]
    assert (r["cmo"].total, r["owner"].total) == (1100, 1000)
    assert [line.rule for line in r["cmo"].ledger] == [
        "persona_revenue_leader",
        "factor_decision_maker",
    ]
    # the routing agrees: below 1000 is cold however busy; a bare persona is warm
    assert (nine.temperature, nine.stage, nine.grade) == ("cold", "nurture", "C")
    assert (r["owner"].temperature, r["owner"].stage) == ("warm", "MQL")


def test_three_stage_primary_interest_follows_topic_events() -> None:
    half = 45 * DAY
    webinar = ev("reader", "webinar_attended", half, asset="webinar-automation", topic="automation")
    pricing = ev("reader", "page_view", half, url="/pricing")  # 4.00, but no topic
    r = one("three-stage", lead("reader"), [webinar, pricing])
    # webinar 12 x 0.5 = 6.00 for automation
    assert r.interests == {"analytics": 0, "crm": 0, "automation": 6}
    assert r.primary_interest == "automation"

    downloads = [
        ev("reader", "download", half, asset=f"report-{k}", topic="analytics") for k in range(3)
    ]  # 3 x 6 x 0.5 = 9.00 for analytics
    r = one("three-stage", lead("reader"), [webinar, pricing, *downloads])
    assert r.interests == {"analytics": 9, "crm": 0, "automation": 6}
    assert r.primary_interest == "analytics"
    assert r.behaviour == 6 + 4 + 9

    r = one("three-stage", lead("reader"), [pricing])
    assert r.primary_interest is None  # no topic, no interest


# =============================================================================================
# fit-engagement: grade A-D x engagement 1-4, every cell routed
# =============================================================================================

FIT_PROFILES = {
    # decision maker 25 + 50..5,000 employees 15 + Software 15 + Germany 10 = 65 -> A (>= 50)
    "A": {"job_title": "VP Sales", "employees": 300, "industry": "Software", "country": "Germany"},
    # manager 10 + employees 15 + Software 15 = 40 -> B (30..49)
    "B": {"job_title": "Marketing Manager", "employees": 300, "industry": "Software"},
    # manager 10 + Software 15 = 25 -> C (15..29)
    "C": {"job_title": "Marketing Manager", "industry": "Software"},
    # student/intern -40 + free mail -10 = -50 -> D
    "D": {"job_title": "Marketing Intern", "email": "kim.novak@gmail.com"},
}
FIT_POINTS = {"A": 65, "B": 40, "C": 25, "D": -50}


def fe_behaviour(level: str, lead_id: str, at: datetime = AS_OF) -> list[dict[str, Any]]:
    """Events one minute before `at` worth each engagement level of fit-engagement."""
    sets: dict[str, list[tuple[str, dict[str, Any]]]] = {
        # demo 40 + contact form 15 + pricing 10 = 65 -> level 1 (>= 60)
        "1": [
            ("demo_request", {}),
            ("form_submit", {"url": "/contact"}),
            ("page_view", {"url": "/pricing"}),
        ],
        # contact form 15 + webinar 12 + download 6 = 33 -> level 2 (30..59)
        "2": [
            ("form_submit", {"url": "/contact"}),
            ("webinar_attended", {"asset": "webinar-crm"}),
            ("download", {"asset": "ebook-crm-101"}),
        ],
        # pricing 10 + e-mail click 3 = 13 -> level 3 (10..29)
        "3": [("page_view", {"url": "/pricing"}), ("email_click", {})],
        # e-mail click 3 + a blog visit 1 = 4 -> level 4 (< 10)
        "4": [("email_click", {}), ("page_view", {"url": "/blog/crm-trends"})],
    }
    return [ev(lead_id, t, at=at, **f) for t, f in sets[level]]


FE_BEHAVIOUR = {"1": 65, "2": 33, "3": 13, "4": 4}
HOT = ("hot", "SQL", "ae", 24)
WARM = ("warm", "MQL", "sdr", 48)
NURTURE = ("cold", "nurture", "marketing", None)
# the matrix in the comment at the top of fit-engagement.yaml
MATRIX = {
    "A": (HOT, HOT, WARM, NURTURE),
    "B": (HOT, WARM, WARM, NURTURE),
    "C": (("warm", "MQL", "sdr", 72), NURTURE, NURTURE, NURTURE),
    "D": (NURTURE, NURTURE, NURTURE, ("cold", "disqualified", None, None)),
}


@pytest.mark.parametrize("level", ["1", "2", "3", "4"])
@pytest.mark.parametrize("grade", ["A", "B", "C", "D"])
def test_fit_engagement_cell_follows_grade_and_engagement(grade: str, level: str) -> None:
    r = one("fit-engagement", lead("x", **FIT_PROFILES[grade]), fe_behaviour(level, "x"))
    assert (r.fit, r.behaviour) == (FIT_POINTS[grade], FE_BEHAVIOUR[level])
    assert r.total == FIT_POINTS[grade] + FE_BEHAVIOUR[level]
    assert (r.grade, r.engagement, r.cell) == (grade, level, grade + level)
    assert routed(r) == MATRIX[grade][int(level) - 1]


def test_fit_engagement_a1_is_hot_and_cools_as_events_decay() -> None:
    t0 = AS_OF
    events = fe_behaviour("1", "vp", at=t0 + MINUTE)  # all at t0
    vp = lead("vp", **FIT_PROFILES["A"])

    def at(later: timedelta) -> LeadScore:
        return one("fit-engagement", vp, events, as_of=t0 + later)

    fresh, month, two_months, four_months = at(MINUTE), at(30 * DAY), at(60 * DAY), at(120 * DAY)
    # half-life 30 days (a minute old is full value, see the top of this file):
    #   today        40 + 15 + 10                     = 65     -> level 1, A1 hot
    #   30 days      20 + 7.50 + 5                    = 32.50  -> level 2, A2 still hot
    #   60 days      10 + 3.75 + 2.50                 = 16.25  -> level 3, A3 warm
    #   120 days     2.50 + 0.94 + 0.63 (half up)     = 4.07   -> level 4, A4 nurture
    assert [s.behaviour for s in (fresh, month, two_months, four_months)] == [
        65,
        32.5,
        16.25,
        4.07,
    ]
    assert [s.cell for s in (fresh, month, two_months, four_months)] == ["A1", "A2", "A3", "A4"]
    assert routed(fresh) == routed(month) == HOT
    assert routed(two_months) == WARM
    assert routed(four_months) == NURTURE
    assert points(four_months, kind="event") == [2.5, 0.94, 0.63]
    assert [line.factor for line in four_months.ledger if line.kind == "event"] == [0.0625] * 3
    assert {s.fit for s in (fresh, month, two_months, four_months)} == {65}  # fit never decays


def test_fit_engagement_negative_actions_push_a_lead_down_a_level() -> None:
    events = fe_behaviour("2", "b")  # 33 -> B2, warm
    r = one("fit-engagement", lead("b", **FIT_PROFILES["B"]), events)
    assert (r.cell, routed(r)) == ("B2", WARM)
    # unsubscribing (-20, no decay, even 100 days ago) leaves 13 -> B3, still warm; a bounce
    # as well (-20) would be -7, lifted to the floor 0 -> B4, nurture
    unsub = ev("b", "unsubscribe", 100 * DAY)
    r = one("fit-engagement", lead("b", **FIT_PROFILES["B"]), [*events, unsub])
    assert (r.behaviour, r.cell, routed(r)) == (13, "B3", WARM)
    bounce = ev("b", "email_bounce", 100 * DAY)
    r = one("fit-engagement", lead("b", **FIT_PROFILES["B"]), [*events, unsub, bounce])
    assert points(r, kind="floor") == [7]
    assert (r.behaviour, r.total, r.cell, routed(r)) == (0, 40, "B4", NURTURE)


# =============================================================================================
# b2c-hot-warm-cold: 7-day half-life, only hot goes to sales
# =============================================================================================


def shopper(lead_id: str, **fields: Any) -> dict[str, Any]:
    # core age 25-34: 10 + high purchasing power 15 + Germany (we deliver) 5 = 30 -> A
    profile = {"age_band": "25-34", "purchasing_power": "high", "country": "Germany"}
    return lead(lead_id, **{**profile, **fields})


def student(lead_id: str) -> dict[str, Any]:
    # 18-24, low purchasing power, France (no delivery): 0 fit points -> C
    return lead(
        lead_id, job_title="Student", age_band="18-24", purchasing_power="low", country="France"
    )


def cart_session(lead_id: str, at: datetime) -> list[dict[str, Any]]:
    return [
        ev(lead_id, "page_view", at=at, url="/product/automation", topic="automation"),
        ev(lead_id, "page_view", at=at, url="/product/automation", topic="automation"),
        ev(lead_id, "page_view", at=at, url="/product/crm", topic="crm"),
        ev(lead_id, "add_to_cart", at=at, url="/cart", value=129.0),
        ev(lead_id, "page_view", at=at, url="/checkout"),
        ev(lead_id, "cart_abandoned", at=at, url="/cart", value=129.0),
    ]


def test_b2c_cart_abandoner_is_hot_today_and_cools_within_days() -> None:
    t0 = AS_OF
    events = cart_session("s", t0)  # one minute before t0

    today = one("b2c-hot-warm-cold", shopper("s"), events, as_of=t0)
    # 3 product views 3 x 2 = 6, "back again" (3 views in 3 days, no decay) 10, cart 15,
    # cart >= 100: 10, checkout 10, abandoned cart 20: 71; fit 30 -> 101
    assert (today.fit, today.behaviour, today.total) == (30, 71, 101)
    assert points(today, kind="frequency") == [10]
    assert (today.grade, today.engagement) == ("A", "1")
    assert routed(today) == ("hot", "SQL", "sales", 4)

    week = one("b2c-hot-warm-cold", shopper("s"), events, as_of=t0 + 7 * DAY - MINUTE)
    # one half-life later: views 3 x 1, cart 7.50, big cart 5, checkout 5 = 20.50; the 3-day
    # frequency has lapsed and the abandoned cart counts only within 7 days -> total 50.50
    assert points(week, rule="cart_abandoned") == []
    assert points(week, kind="frequency") == []
    assert (week.behaviour, week.total) == (20.5, 50.5)
    assert routed(week) == ("warm", "MQL", "retargeting", None)

    fortnight = one("b2c-hot-warm-cold", shopper("s"), events, as_of=t0 + 14 * DAY - MINUTE)
    # two half-lives: 1.50 + 3.75 + 2.50 + 2.50 = 10.25 -> 40.25, warm on fit alone
    assert (fortnight.behaviour, fortnight.total, fortnight.engagement) == (10.25, 40.25, "3")


def test_b2c_only_hot_goes_to_sales_and_a_student_stays_cold() -> None:
    browsing = [
        ("page_view", {"url": "/product/crm", "topic": "crm"}),  # 2
        ("page_view", {"url": "/product/crm", "topic": "crm"}),  # 2
        ("page_view", {"url": "/product/analytics", "topic": "analytics"}),  # 2, and back_again 10
        ("newsletter_subscribe", {}),  # 5
        ("ad_click", {"url": "/product/crm"}),  # 2
        ("social_like", {}),  # 1
    ]  # 2 + 2 + 2 + 10 + 5 + 2 + 1 = 24
    leads = [shopper("shopper"), student("student"), student("student_buying")]
    events = [ev(who, t, **f) for who in ("shopper", "student") for t, f in browsing]
    events += cart_session("student_buying", AS_OF)  # behaviour 71 (see above), fit 0
    r = score("b2c-hot-warm-cold", leads, events)

    assert (r["student"].fit, r["student"].behaviour, r["student"].total) == (0, 24, 24)
    assert routed(r["student"]) == ("cold", "nurture", "newsletter", None)  # below 25
    assert (r["shopper"].total, routed(r["shopper"])) == (54, ("warm", "MQL", "retargeting", None))
    # in B2C behaviour decides: a student who fills a cart right now is hot too (71 >= 60)
    assert r["student_buying"].total == 71
    assert routed(r["student_buying"]) == ("hot", "SQL", "sales", 4)
    for s in r.values():
        assert (s.queue == "sales") is (s.temperature == "hot")


def test_b2c_inactivity_takes_five_but_not_below_zero() -> None:
    # last seen 30 days ago: product view 2 x 0.5^(30/7) = 0.10, inactivity -5 -> floor 0
    r = one(
        "b2c-hot-warm-cold",
        shopper("quiet"),
        [ev("quiet", "page_view", 30 * DAY, url="/product/crm")],
    )
    assert points(r, kind="event") == [0.1]
    assert points(r, kind="inactivity") == [-5]
    assert points(r, kind="floor") == [4.9]
    assert (r.behaviour, r.total, r.temperature) == (0, 30, "warm")


# =============================================================================================
# committee: the full framework
# =============================================================================================

ACCOUNTS = [
    # 800 employees (200..5,000), Software, 50m revenue; not a target account
    {"account_id": "ACME", "priority": "tier2", "employees": 800, "industry": "Software",
     "annual_revenue": 50_000_000.0},
    {"account_id": "TARGET", "priority": "tier1", "employees": 800, "industry": "Software",
     "annual_revenue": 50_000_000.0},
]  # fmt: skip


def vp_no_account(lead_id: str) -> dict[str, Any]:
    # vp_or_head 15 + marketing role 10 + company_size (the lead's own 800 employees, as it has
    # no account) 10 + Germany 5 = 40 -> B (25..44)
    return lead(
        lead_id,
        job_title="VP Marketing",
        employees=800,
        country="Germany",
        email="vera@acme.com",
    )


def test_committee_the_story_in_its_comment() -> None:
    # "a lead of a good-fit company (about 40 fit points) who came to a webinar, read two
    # whitepapers and looked at pricing twice this month (about 50 behaviour points) lands
    # around 90 and goes to sales as an MQL"
    manager = lead(
        "m",
        job_title="Marketing Manager",  # manager 8 + marketing role 10
        account_id="ACME",  # company size 10 + Software 10 + revenue 5
        country="Germany",  # core market 5
        email="max@acme.com",
    )  # fit 48 -> A
    events = [
        ev("m", "webinar_attended", asset="webinar-crm-2026-02", topic="crm"),  # 12
        ev("m", "download", asset="whitepaper-crm-roi", content_stage="MOFU", topic="crm"),  # 8
        ev("m", "download", asset="report-state-of-crm", content_stage="MOFU", topic="crm"),  # 8
        ev("m", "page_view", url="/pricing"),  # 10
        ev("m", "page_view", 30 * DAY, url="/pricing"),  # 10 x 0.5 = 5
    ]  # 43
    r = one("committee", manager, events, accounts=ACCOUNTS)
    assert (r.fit, r.behaviour, r.account, r.total) == (48, 43, 0, 91)
    assert (r.grade, r.engagement) == ("A", "2")
    assert routed(r) == ("warm", "MQL", "sdr", 48)  # 60 <= 91 < 100
    assert r.interests == {"analytics": 0, "crm": 28, "automation": 0}
    assert r.account_score == 91  # the only lead of its account


def test_committee_negative_fit_and_job_seekers() -> None:
    leads = [
        lead("student", job_title="Student", email="ann.kim@gmail.com"),
        lead("rival", job_title="Marketing Manager", email="spy@hubspot.com"),
        lead("dev", job_title="Software Developer", email="dev@acme.com"),
    ]
    events = [
        ev("student", "page_view", url="/careers"),  # -5 (once)
        ev("student", "form_submit", url="/careers/apply"),  # -30, and not a contact form
        ev("rival", "page_view", url="/pricing"),  # 10
        ev("dev", "webinar_attended", asset="webinar-analytics", topic="analytics"),  # 12
        *[ev("dev", "page_view", k * MINUTE, url="/careers") for k in (1, 2, 3)],
    ]
    r = score("committee", leads, events)

    student = r["student"]
    # student -30 + free mail -5 = -35 -> D; behaviour -5 - 30 = -35, lifted to the floor 0
    assert [(line.rule, line.points) for line in student.ledger if line.part == "fit"] == [
        ("student", -30),
        ("free_mail", -5),
    ]
    assert points(student, rule="careers_application") == [-30]
    assert points(student, rule="contact_form") == []
    assert points(student, kind="floor") == [35]
    assert (student.fit, student.behaviour, student.total, student.grade) == (-35, 0, -35, "D")
    # negative fit and (almost) no behaviour: disqualified, nobody's queue
    assert routed(student) == ("cold", "disqualified", None, None)

    rival = r["rival"]
    # manager 8 + marketing 10 - competitor 50 = -32
    assert points(rival, rule="competitor_domain") == [-50]
    assert (rival.fit, rival.behaviour, rival.stage) == (-32, 10, "nurture")

    dev = r["dev"]
    # webinar 12, careers -5 once (two more visits not counted); three careers visits are
    # no "3 visits in 7 days": 7 (and not 17)
    assert points(dev, rule="careers_page") == [-5, 0]
    assert points(dev, kind="frequency") == []
    assert dev.behaviour == 7


def test_committee_unsubscribe_and_bounce_do_not_fade() -> None:
    hand_raiser = [
        ("webinar_attended", {"asset": "webinar-crm"}),  # 12
        ("download", {"asset": "case-study-crm", "content_stage": "BOFU"}),  # 15
        ("demo_request", {"url": "/demo"}),  # 40
        ("form_submit", {"url": "/contact"}),  # 20
    ]  # 87
    leads = [vp_no_account("keen"), vp_no_account("gone")]
    events = [ev(who, t, **f) for who in ("keen", "gone") for t, f in hand_raiser]
    events += [
        ev("gone", "unsubscribe", 90 * DAY),  # -20, no decay even after 90 days
        ev("gone", "email_bounce", 90 * DAY),  # -25, no decay
    ]
    r = score("committee", leads, events)
    assert (r["keen"].behaviour, r["keen"].total) == (87, 127)  # fit 40
    assert routed(r["keen"]) == ("hot", "SQL", "ae", 24)
    assert points(r["gone"], rule="unsubscribe") == [-20]
    assert points(r["gone"], rule="email_bounce") == [-25]
    assert (r["gone"].behaviour, r["gone"].total) == (42, 82)  # 87 - 45
    assert routed(r["gone"]) == ("warm", "MQL", "sdr", 48)


def test_committee_inactivity_penalty_after_30_60_120_days() -> None:
    t0 = AS_OF
    events = [
        ev("v", "download", at=t0, ago=timedelta(0), asset="case-study-crm", content_stage="BOFU"),
        ev("v", "demo_request", at=t0, ago=timedelta(0)),
        ev("v", "form_submit", at=t0, ago=timedelta(0), url="/contact"),
    ]  # 15 + 40 + 20 = 75, all at t0

    def at(later: timedelta) -> LeadScore:
        return one("committee", vp_no_account("v"), events, as_of=t0 + later)

    just_before = at(30 * DAY - timedelta(microseconds=1))
    # 75 x 0.5 (a hair more, which rounds away) = 37.50, silent for just under 30 days: no penalty
    assert points(just_before, kind="inactivity") == []
    assert just_before.behaviour == 37.5
    month = at(30 * DAY)  # 37.50 - 5
    assert points(month, kind="inactivity") == [-5]
    assert month.behaviour == 32.5
    assert [line.note for line in month.ledger if line.kind == "inactivity"] == [
        "no activity for 30+ days"
    ]
    two_months = at(60 * DAY)  # 75 x 0.25 = 18.75 - 10
    assert (points(two_months, kind="inactivity"), two_months.behaviour) == ([-10], 8.75)
    four_months = at(120 * DAY)  # 0.94 + 2.50 + 1.25 = 4.69 - 20 = -15.31 -> floor 0
    assert points(four_months, kind="inactivity") == [-20]
    assert points(four_months, kind="floor") == [15.31]
    assert four_months.behaviour == 0

    # a lead that never did anything counts from its creation
    created = lead("new", created_at=AS_OF - 61 * DAY)
    r = one("committee", created, [])
    assert points(r, kind="inactivity") == [-10]
    assert points(r, kind="floor") == [10]


def test_committee_fast_journey_beats_slow_journey() -> None:
    def journey(lead_id: str, download_and_pricing_ago: timedelta) -> list[dict[str, Any]]:
        return [
            ev(
                lead_id,
                "download",
                download_and_pricing_ago,
                asset="comparison-crm-tools",
                content_stage="MOFU",
            ),
            ev(lead_id, "page_view", download_and_pricing_ago, url="/pricing"),
            ev(lead_id, "demo_request", url="/demo"),  # a minute ago
        ]

    leads = [vp_no_account(n) for n in ("fast", "slow", "slowest", "no_demo")]
    events = [
        *journey("fast", MINUTE),  # every step within minutes
        *journey("slow", 30 * DAY),  # MOFU download and pricing a month ago, demo now
        *journey("slowest", 60 * DAY),  # two months ago: too slow for any tier
        *journey("no_demo", MINUTE)[:2],
    ]
    r = score("committee", leads, events)

    # fast: 8 + 10 + 40 + velocity 15 (<= 7 days) = 73 -> 113, SQL
    assert points(r["fast"], kind="velocity") == [15]
    assert [line.note for line in r["fast"].ledger if line.kind == "velocity"] == [
        "all steps within 7 days"
    ]
    assert (r["fast"].behaviour, r["fast"].total) == (73, 113)
    assert routed(r["fast"]) == ("hot", "SQL", "ae", 24)
    # slow: 8 x 0.5 + 10 x 0.5 + 40 + velocity 3 (span 30 days: <= 45) = 52 -> 92, MQL
    assert points(r["slow"], kind="velocity") == [3]
    assert (r["slow"].behaviour, r["slow"].total) == (52, 92)
    assert routed(r["slow"]) == ("warm", "MQL", "sdr", 48)
    # slowest: 8 x 0.25 + 10 x 0.25 + 40 = 44.50, no velocity (span 60 days > 45)
    assert points(r["slowest"], kind="velocity") == []
    assert r["slowest"].behaviour == 44.5
    # no demo, no journey: 8 + 10
    assert (points(r["no_demo"], kind="velocity"), r["no_demo"].behaviour) == ([], 18)


def test_committee_stakeholders_three_engaged_get_more_than_two() -> None:
    accounts = [
        {"account_id": "THREE", "priority": "tier3"},
        {"account_id": "TWO", "priority": "tier3"},
    ]
    leads = [lead(f"three-{k}", account_id="THREE") for k in range(3)]
    leads += [lead(f"two-{k}", account_id="TWO") for k in range(2)]
    leads += [lead("two-dormant", account_id="TWO")]
    leads += [lead("alone")]  # no account
    events = [ev(x["lead_id"], "webinar_attended", asset="webinar-crm") for x in leads]
    # the third lead of TWO attended 60 days ago: not engaged (30 days), so TWO has two
    events[-2] = ev("two-dormant", "webinar_attended", 60 * DAY, asset="webinar-crm")
    r = score("committee", leads, events, accounts=accounts)

    for k in range(3):  # webinar 12 + three engaged stakeholders 10
        s = r[f"three-{k}"]
        assert points(s, kind="stakeholders") == [10]
        assert [line.note for line in s.ledger if line.kind == "stakeholders"] == [
            "3 engaged leads"
        ]
        assert (s.account, s.total) == (10, 22)
        assert s.account_score == 66  # rollup: sum of the account's leads
    for k in range(2):  # two engaged: the lower tier, 5
        assert points(r[f"two-{k}"], kind="stakeholders") == [5]
        assert r[f"two-{k}"].total == 17
    # the tier goes to each lead of the account, engaged or not: 12 x 0.25 = 3, inactive for
    # 60 days -10, floor back to 0, plus 5
    dormant = r["two-dormant"]
    assert (dormant.behaviour, dormant.account, dormant.total) == (0, 5, 5)
    assert dormant.account_score == 17 + 17 + 5
    assert points(r["alone"], kind="stakeholders") == []
    assert (r["alone"].total, r["alone"].account_score) == (12, None)


def test_committee_priority_account_goes_to_sales_at_once() -> None:
    leads = [
        lead("target", job_title="Marketing Manager", account_id="TARGET"),
        lead("other", job_title="Marketing Manager", account_id="ACME"),
    ]
    r = score("committee", leads, [], accounts=ACCOUNTS)
    # manager 8 + marketing 10 + size 10 + Software 10 + revenue 5 = 43 (B), nothing done yet
    target, other = r["target"], r["other"]
    assert (other.fit, other.total, other.priority) == (43, 43, False)
    assert routed(other) == ("cold", "nurture", "marketing", None)
    assert points(target, kind="priority") == [15]
    assert (target.fit, target.account, target.total, target.priority) == (43, 15, 58, True)
    # 58 would be nurture; the priority route overrides all four fields
    assert routed(target) == ("hot", "SQL", "ae-strategic", 4)


def test_committee_caps() -> None:
    leads = [vp_no_account(n) for n in ("demos", "tofu", "webinars", "pricing", "blog")]
    events = [
        # max_count 2: three demo requests, the latest two count (40 each)
        *[ev("demos", "demo_request", k * MINUTE) for k in (1, 2, 3)],
        # max_points 12: five awareness downloads, 5 x 4 = 20 capped to 12; five downloads
        # in 14 days also reach "binge reader" (+10)
        *[ev("tofu", "download", asset=f"ebook-{k}", content_stage="TOFU") for k in range(5)],
        # once_per asset: the same webinar twice (live and replay) counts once, another once more
        ev("webinars", "webinar_attended", 1 * MINUTE, asset="webinar-crm"),
        ev("webinars", "webinar_attended", 2 * MINUTE, asset="webinar-crm"),
        ev("webinars", "webinar_attended", 3 * MINUTE, asset="webinar-analytics"),
        # max_per 1 a day: pricing three times this morning counts once; three page views in
        # 7 days add the frequency bonus (+10)
        *[ev("pricing", "page_view", k * MINUTE, url="/pricing") for k in (1, 2, 3)],
        # max_per 3 a week: five blog posts this week, three count (1 each), plus frequency 10
        *[ev("blog", "page_view", k * MINUTE, url=f"/blog/post-{k}") for k in range(1, 6)],
    ]
    r = score("committee", leads, events)

    assert points(r["demos"], rule="demo_request") == [40, 40, 0]
    notes = [line.note for line in r["demos"].ledger if line.kind == "cap"]
    assert notes == ["1 more events not counted (caps)"]
    assert r["demos"].behaviour == 80

    assert points(r["tofu"], kind="cap", rule="tofu_download") == [-8]
    assert points(r["tofu"], rule="binge_reader") == [10]
    assert r["tofu"].behaviour == 12 + 10

    assert points(r["webinars"], rule="webinar") == [12, 12, 0]
    assert r["webinars"].behaviour == 24

    assert points(r["pricing"], rule="pricing_page") == [10, 0]
    assert [line.note for line in r["pricing"].ledger if line.kind == "cap"] == [
        "2 more events not counted (caps)"
    ]
    assert points(r["pricing"], rule="three_visits_in_7_days") == [10]
    assert r["pricing"].behaviour == 20

    assert points(r["blog"], rule="blog_post") == [1, 1, 1, 0]
    assert r["blog"].behaviour == 3 + 10


def test_committee_frequency_needs_three_visits_within_seven_days() -> None:
    leads = [vp_no_account("three"), vp_no_account("two"), vp_no_account("old")]
    events = [
        *[ev("three", "page_view", k * MINUTE, url="/integrations") for k in (1, 2, 3)],
        *[ev("two", "page_view", k * MINUTE, url="/integrations") for k in (1, 2)],
        *[ev("old", "page_view", k * MINUTE, url="/integrations") for k in (1, 2)],
        ev("old", "page_view", 7 * DAY, url="/integrations"),  # exactly 7 days: not within
    ]
    r = score("committee", leads, events)
    assert points(r["three"], kind="frequency") == [10]
    assert r["three"].ledger[-1].note == "3 events within 7 days"
    assert points(r["two"], kind="frequency") == []
    assert points(r["old"], kind="frequency") == []
    # frequency points do not decay; the visits themselves score nothing in this model
    assert (r["three"].behaviour, r["two"].behaviour, r["old"].behaviour) == (10, 0, 0)


def test_committee_interests_sum_the_topic_lines() -> None:
    events = [
        ev("i", "download", asset="case-study-crm", content_stage="BOFU", topic="crm"),  # 15
        ev("i", "webinar_attended", asset="webinar-crm", topic="crm"),  # 12
        ev("i", "download", 30 * DAY, asset="whitepaper-analytics-roi", content_stage="MOFU",
           topic="analytics"),  # 8 x 0.5 = 4
        ev("i", "email_click", topic="automation"),  # 3
        ev("i", "page_view", url="/pricing"),  # 10, no topic
    ]  # fmt: skip
    r = one("committee", vp_no_account("i"), events)
    assert r.interests == {"analytics": 4, "crm": 27, "automation": 3}
    assert r.primary_interest == "crm"
    assert r.behaviour == 15 + 12 + 4 + 3 + 10


# =============================================================================================
# starter: six behaviours earn, four cost
# =============================================================================================

EARNERS = [
    ("demo_request", {}, "demo_request", 30),
    ("page_view", {"url": "/pricing"}, "pricing_page", 10),
    ("form_submit", {"url": "/contact"}, "form_submit", 15),
    ("webinar_attended", {"asset": "webinar-crm"}, "webinar", 10),
    ("download", {"asset": "ebook-crm-101"}, "download", 5),
    ("email_click", {}, "email_click", 2),
]
COSTS = [
    ("unsubscribe", {}, "unsubscribe", -20),
    ("email_bounce", {}, "email_bounce", -15),
    ("page_view", {"url": "/careers"}, "careers_page", -5),
    ("form_submit", {"url": "/careers/apply"}, "job_application", -30),
]


@pytest.mark.parametrize(("type_", "fields", "rule", "worth"), EARNERS, ids=[e[2] for e in EARNERS])
def test_starter_six_behaviours_earn(
    type_: str, fields: dict[str, Any], rule: str, worth: float
) -> None:
    # a minute old: linear decay over 90 days leaves 1 - 1/129600 of it, which rounds away
    r = one("starter", lead("x"), [ev("x", type_, **fields)])
    assert [(line.rule, line.points) for line in r.ledger] == [(rule, worth)]
    assert r.behaviour == worth


@pytest.mark.parametrize(("type_", "fields", "rule", "worth"), COSTS, ids=[c[2] for c in COSTS])
def test_starter_four_behaviours_cost(
    type_: str, fields: dict[str, Any], rule: str, worth: float
) -> None:
    active = [
        ev("x", "webinar_attended", asset="webinar-crm"),  # 10
        ev("x", "page_view", url="/pricing"),  # 10
        ev("x", "download", asset="ebook-crm-101"),  # 5
        ev("x", "form_submit", url="/contact"),  # 15
    ]  # 40
    r = one("starter", lead("x"), [*active, ev("x", type_, **fields)])
    assert points(r, rule=rule) == [worth]
    assert r.behaviour == 40 + worth


def test_starter_typical_sql_mql_and_nurture_leads() -> None:
    leads = [
        # decision maker 20 + 50..5,000 employees 10 + SaaS 10 = 40 -> A
        lead("sql", job_title="Head of Marketing", employees=200, industry="SaaS"),
        # employees 10 + Software 10 = 20 -> B
        lead("mql", job_title="Marketing Manager", employees=200, industry="Software"),
        # student -20 -> C; very busy, but grade C never makes SQL
        lead("busy_student", job_title="Student"),
        lead("reader", job_title="Marketing Manager", employees=200, industry="Software"),
        lead("faded", job_title="Marketing Manager", employees=200, industry="Software"),
    ]
    events = [
        ev("sql", "demo_request"),  # 30
        ev("sql", "page_view", url="/pricing"),  # 10
        ev("mql", "webinar_attended", asset="webinar-crm"),  # 10
        ev("mql", "download", asset="ebook-crm-101"),  # 5
        ev("mql", "download", asset="whitepaper-crm-roi"),  # 5
        ev("mql", "form_submit", url="/contact"),  # 15
        ev("mql", "email_click"),  # 2
        # demo 30 + pricing 3 x 10 + forms 2 x 15 + webinars 2 x 10 = 110
        ev("busy_student", "demo_request"),
        *[ev("busy_student", "page_view", k * MINUTE, url="/pricing") for k in (1, 2, 3)],
        *[ev("busy_student", "form_submit", k * MINUTE, url="/contact") for k in (1, 2)],
        *[ev("busy_student", "webinar_attended", k * MINUTE, asset="w") for k in (1, 2)],
        # two downloads 45 days ago: 5 x (1 - 45/90) = 2.50 each
        ev("reader", "download", 45 * DAY, asset="ebook-crm-101"),
        ev("reader", "download", 45 * DAY, asset="checklist-crm-basics"),
        # 90 days ago nothing is left (and a line of 0 is not shown)
        ev("faded", "demo_request", 90 * DAY),
    ]
    r = score("starter", leads, events)

    assert (r["sql"].fit, r["sql"].behaviour, r["sql"].total, r["sql"].grade) == (40, 40, 80, "A")
    assert routed(r["sql"]) == ("hot", "SQL", "sales", 24)  # >= 70 and A or B
    assert (r["mql"].fit, r["mql"].behaviour, r["mql"].total, r["mql"].grade) == (20, 37, 57, "B")
    assert routed(r["mql"]) == ("warm", "MQL", "sdr", 72)  # >= 40
    busy = r["busy_student"]
    assert (busy.fit, busy.behaviour, busy.total, busy.grade) == (-20, 110, 90, "C")
    assert routed(busy) == ("warm", "MQL", "sdr", 72)
    assert (r["reader"].behaviour, r["reader"].total) == (5, 25)
    assert routed(r["reader"]) == ("cold", "nurture", "marketing", None)
    assert (r["faded"].ledger[-1].kind, r["faded"].behaviour, r["faded"].total) == ("fit", 0, 20)
    assert all(s.cell is None and s.engagement is None for s in r.values())  # no levels

    # the MQL lead 45 days later: every line halves, 18.50 -> 38.50, back to nurture
    later = one(
        "starter", leads[1], [e for e in events if e["lead_id"] == "mql"], as_of=AS_OF + 45 * DAY
    )
    assert (later.behaviour, later.total) == (18.5, 38.5)
    assert later.stage == "nurture"


# =============================================================================================
# every model on generated data
# =============================================================================================

ALL_MODELS = ["three-stage", "fit-engagement", "b2c-hot-warm-cold", "committee", "starter"]


def _data(name: str, request: pytest.FixtureRequest) -> Any:
    fixture = "generated_consumers" if name == "b2c-hot-warm-cold" else "generated_mixed"
    return request.getfixturevalue(fixture)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_on_generated_data(name: str, request: pytest.FixtureRequest) -> None:
    data = _data(name, request)
    assert 1_800 <= len(data.leads) <= 2_200
    results = score_many(model(name), data.leads, data.events, data.as_of, accounts=data.accounts)
    assert len(results) == len(data.leads)
    for r in results:
        assert sum(round(line.points * 100) for line in r.ledger) == round(r.total * 100)
        assert round((r.fit + r.behaviour + r.account) * 100) == round(r.total * 100)

    # a sensible spread: several grades, every temperature, several stages, many totals
    grades = Counter(r.grade for r in results)
    assert len(grades) >= 3, grades
    assert {r.temperature for r in results} == {"hot", "warm", "cold"}
    assert len({r.stage for r in results}) >= 3
    totals = Counter(r.total for r in results)
    assert len(totals) >= 100, len(totals)
    assert totals.most_common(1)[0][1] < 0.5 * len(results)
    assert any(r.behaviour > 0 for r in results) and any(r.behaviour == 0 for r in results)
    hot = [r for r in results if r.temperature == "hot"]
    assert 0 < len(hot) < 0.25 * len(results)

    # the generator lets outcomes depend on fit and behaviour: won leads score higher
    won = [r.total for r in results if data.outcomes.get(r.lead_id) == "won"]
    lost = [r.total for r in results if data.outcomes.get(r.lead_id) == "lost"]
    assert len(won) >= 20 and len(lost) >= 100
    assert mean(won) > mean(lost), (mean(won), mean(lost))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_batch_engine_agrees_with_reference_on_generated_data(
    name: str, request: pytest.FixtureRequest
) -> None:
    from leadscore.engine import batch

    data = _data(name, request)
    m = model(name)
    expected = [
        r.as_row()
        for r in score_many(m, data.leads, data.events, data.as_of, accounts=data.accounts)
    ]
    got = batch.compile_batch(m, data.dataset(), data.as_of).scores.to_pyarrow().to_pylist()

    def by_lead(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(rows, key=lambda row: row["lead_id"])

    assert len(got) == len(expected)
    assert by_lead(got) == by_lead(expected)
