"""Leads, accounts, outcomes and GDPR access/erasure through the REST API of a running service.

Expected points are read from the model files (the rules each test relies on), not copied.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from leadscore.store import records, tables
from servicekit import MODELS, T0, Running

STARTER = (MODELS / "starter.yaml").read_text()
COMMITTEE = (MODELS / "committee.yaml").read_text()


def rules(source: str, part: str) -> dict[str, dict[str, Any]]:
    """The rules of one part (fit, behaviour) of a model, by name."""
    return {r["name"]: r for r in yaml.safe_load(source)[part]["rules"]}


def points(source: str, part: str, *names: str) -> float:
    """The sum of the points of these rules."""
    found = rules(source, part)
    return float(sum(found[name]["points"] for name in names))


def grade(source: str, fit: float) -> str:
    """The grade a fit score gets (grades are listed best first)."""
    for band in yaml.safe_load(source)["fit"]["grades"]:
        if fit >= band.get("min", float("-inf")):
            return str(band["grade"])
    raise AssertionError("no grade matched")


def route(source: str, total: float, fit_grade: str) -> dict[str, Any]:
    """The first route whose `min_total` and `grade` conditions hold (starter routing)."""
    for r in yaml.safe_load(source)["routing"]:
        when = r.get("when", {})
        assert set(when) <= {"min_total", "grade"}, "this helper knows min_total and grade only"
        if total >= when.get("min_total", float("-inf")) and fit_grade in when.get(
            "grade", [fit_grade]
        ):
            return dict(r)
    raise AssertionError("no route matched")


def ev(event_id: str, lead_id: str, kind: str, age: timedelta, **fields: Any) -> dict[str, Any]:
    """An event `age` before the service's default now."""
    return {
        "event_id": event_id,
        "lead_id": lead_id,
        "type": kind,
        "ts": (T0 - age).isoformat() + "Z",
        **fields,
    }


def lead(running: Running, lead_id: str) -> dict[str, Any]:
    r = running.admin.get(f"/v1/leads/{lead_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def listed(running: Running, **params: Any) -> tuple[list[str], int]:
    """Lead ids of GET /v1/leads with these parameters, and the `total`."""
    r = running.admin.get("/v1/leads", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["limit"] == params.get("limit", 100)
    assert body["offset"] == params.get("offset", 0)
    return [item["lead_id"] for item in body["items"]], body["total"]


def account(running: Running, account_id: str) -> dict[str, Any]:
    r = running.admin.get(f"/v1/accounts/{account_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# -- one lead -------------------------------------------------------------------------------------


def test_put_creates_then_merges_only_the_fields_sent(running: Running) -> None:
    running.publish(STARTER)
    first = {
        "lead_id": "ann",
        "name": "Ann Example",
        "email": "ann@example.com",
        "job_title": "VP Marketing",
        "employees": 120,
        "industry": "Software",
        "country": "DE",
        "attributes": {"plan": "pro", "seats": 5, "trial": True},
    }
    r = running.admin.put("/v1/leads/ann", json=first)
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 1, "created": ["ann"]}

    got = lead(running, "ann")
    stored = got["lead"]
    for name, value in first.items():
        assert stored[name] == value, name
    assert stored["company"] is None and stored["updated_at"] == T0.isoformat()
    fit = points(STARTER, "fit", "decision_maker", "company_size", "target_industry")
    score = got["score"]
    assert score["fit"] == fit and score["behaviour"] == 0 and score["total"] == fit
    assert score["grade"] == grade(STARTER, fit) == "A"
    expected = route(STARTER, fit, "A")
    assert (score["stage"], score["temperature"], score["queue"]) == (
        expected["stage"],
        expected["temperature"],
        expected["queue"],
    )
    assert score["as_of"] == T0.isoformat() and score["model_version"] == "1.0"

    # Only what is sent changes; attributes merge key by key and null removes one.
    later = running.clock.advance(hours=1)
    r = running.admin.put(
        "/v1/leads/ann",
        json={
            "lead_id": "ann",
            "job_title": "Marketing student",
            "attributes": {"plan": None, "seats": 6, "region": "EU"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 1, "created": []}
    got = lead(running, "ann")
    stored = got["lead"]
    assert stored["job_title"] == "Marketing student"
    for name in ("name", "email", "employees", "industry", "country"):
        assert stored[name] == first[name], name
    assert stored["attributes"] == {"seats": 6, "trial": True, "region": "EU"}
    assert stored["updated_at"] == later.isoformat()
    fit = points(STARTER, "fit", "company_size", "target_industry", "student")
    assert got["score"]["fit"] == fit == 0
    assert got["score"]["grade"] == grade(STARTER, fit)
    assert got["score"]["as_of"] == later.isoformat()

    # An explicit null clears a field (and the rule that needed it).
    r = running.admin.put("/v1/leads/ann", json={"lead_id": "ann", "industry": None})
    assert r.status_code == 200, r.text
    got = lead(running, "ann")
    assert got["lead"]["industry"] is None and got["lead"]["employees"] == 120
    assert got["score"]["fit"] == points(STARTER, "fit", "company_size", "student")

    history = running.admin.get("/v1/leads/ann/history").json()["items"]
    assert [h["total"] for h in history] == [-10.0, 0.0, 40.0]  # newest first
    assert {h["cause"] for h in history} == {"lead"}


def test_put_with_another_lead_id_in_the_body_is_refused(running: Running) -> None:
    running.admin.put("/v1/leads/ann", json={"lead_id": "ann", "name": "Ann"})
    r = running.admin.put("/v1/leads/ann", json={"lead_id": "bob", "name": "Bob"})
    assert r.status_code == 422
    assert "lead_id" in r.json()["detail"]
    assert running.admin.get("/v1/leads/bob").status_code == 404
    assert lead(running, "ann")["lead"]["name"] == "Ann"
    r = running.admin.get("/v1/leads/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    # Without a published model a lead has no score yet.
    assert lead(running, "ann")["score"] is None


# -- many leads -----------------------------------------------------------------------------------

BATCH = [
    {"lead_id": "l1", "job_title": "CEO", "employees": 100, "industry": "Software"},
    {"lead_id": "l2", "job_title": "Director", "employees": 100, "industry": "Software"},
    {"lead_id": "l3", "job_title": "Engineer", "employees": 100, "industry": "Software"},
    {"lead_id": "l4", "job_title": "Engineer", "employees": 10, "industry": "Retail"},
    {"lead_id": "l5", "job_title": "Student", "employees": 10, "industry": "Retail"},
    {"lead_id": "l6", "job_title": "CEO", "employees": 10, "industry": "Retail"},
]
ACCOUNTS = {"l1": "acme", "l2": "acme", "l3": "beta", "l5": "beta"}


def test_batch_upsert_then_list_with_filters_sorting_and_pages(running: Running) -> None:
    running.publish(STARTER)
    body = {"leads": [{**row, "account_id": ACCOUNTS.get(row["lead_id"])} for row in BATCH]}
    r = running.admin.post("/v1/leads", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 6, "created": ["l1", "l2", "l3", "l4", "l5", "l6"]}
    # l1 raises its hand: a demo request and a form, nine days ago (linear decay over 90 days).
    events = [
        ev("d1", "l1", "demo_request", timedelta(days=9)),
        ev("f1", "l1", "form_submit", timedelta(days=9), url="/contact"),
    ]
    r = running.tracking.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 200 and r.json()["accepted"] == ["d1", "f1"], r.text
    running.wait_idle()

    fit = {
        "l1": points(STARTER, "fit", "decision_maker", "company_size", "target_industry"),
        "l2": points(STARTER, "fit", "decision_maker", "company_size", "target_industry"),
        "l3": points(STARTER, "fit", "company_size", "target_industry"),
        "l4": 0.0,
        "l5": points(STARTER, "fit", "student"),
        "l6": points(STARTER, "fit", "decision_maker"),
    }
    behaviour = round(points(STARTER, "behaviour", "demo_request", "form_submit") * 0.9, 2)
    totals = {**fit, "l1": fit["l1"] + behaviour}
    assert totals == {"l1": 80.5, "l2": 40, "l3": 20, "l4": 0, "l5": -20, "l6": 20}
    items = {i["lead_id"]: i for i in running.admin.get("/v1/leads").json()["items"]}
    for lead_id, total in totals.items():
        item = items[lead_id]
        assert item["total"] == total and item["fit"] == fit[lead_id], lead_id
        assert item["grade"] == grade(STARTER, fit[lead_id]), lead_id
        expected = route(STARTER, total, item["grade"])
        assert (item["stage"], item["temperature"], item["queue"]) == (
            expected["stage"],
            expected["temperature"],
            expected["queue"],
        ), lead_id
        assert item["account_id"] == ACCOUNTS.get(lead_id)

    by_score = ["l1", "l2", "l3", "l6", "l4", "l5"]  # ties broken by lead_id
    assert listed(running) == (by_score, 6)
    assert listed(running, sort="-score") == (by_score, 6)
    assert listed(running, sort="score") == (["l5", "l4", "l3", "l6", "l2", "l1"], 6)
    assert listed(running, sort="lead_id") == (["l1", "l2", "l3", "l4", "l5", "l6"], 6)

    # Filters, alone and together; `total` counts every match, not just the page.
    assert listed(running, temperature="hot") == (["l1"], 1)
    assert listed(running, temperature="warm") == (["l2"], 1)
    assert listed(running, temperature="cold") == (["l3", "l6", "l4", "l5"], 4)
    assert listed(running, stage="SQL") == (["l1"], 1)
    assert listed(running, stage="nurture") == (["l3", "l6", "l4", "l5"], 4)
    assert listed(running, grade="A") == (["l1", "l2"], 2)
    assert listed(running, grade="B") == (["l3", "l6"], 2)
    assert listed(running, grade="C") == (["l4", "l5"], 2)
    assert listed(running, queue="sales") == (["l1"], 1)
    assert listed(running, queue="sdr") == (["l2"], 1)
    assert listed(running, account_id="acme") == (["l1", "l2"], 2)
    assert listed(running, account_id="beta") == (["l3", "l5"], 2)
    assert listed(running, account_id="nobody") == ([], 0)
    # min_score is inclusive, max_score exclusive: [min, max)
    assert listed(running, min_score=20) == (["l1", "l2", "l3", "l6"], 4)
    assert listed(running, max_score=20) == (["l4", "l5"], 2)
    assert listed(running, min_score=0, max_score=40.5) == (["l2", "l3", "l6", "l4"], 4)
    assert listed(running, stage="nurture", account_id="beta") == (["l3", "l5"], 2)
    assert listed(running, grade="B", min_score=1, sort="lead_id") == (["l3", "l6"], 2)

    # Pages: limit and offset, with the total of all matches.
    assert listed(running, limit=2) == (["l1", "l2"], 6)
    assert listed(running, limit=2, offset=2) == (["l3", "l6"], 6)
    assert listed(running, limit=2, offset=4) == (["l4", "l5"], 6)
    assert listed(running, limit=2, offset=6) == ([], 6)
    assert listed(running, stage="nurture", limit=1, offset=1) == (["l6"], 4)
    assert listed(running, limit=1000) == (by_score, 6)

    # Recently updated first: l4 is edited an hour later.
    running.clock.advance(hours=1)
    assert running.admin.put("/v1/leads/l4", json={"lead_id": "l4", "name": "Li"}).is_success
    assert listed(running, sort="updated") == (["l4", "l1", "l2", "l3", "l5", "l6"], 6)

    for params, name in [
        ({"limit": 1001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sort": "name"}, "sort"),
        ({"min_score": "high"}, "min_score"),
    ]:
        r = running.admin.get("/v1/leads", params=params)
        assert r.status_code == 422, params
        assert f"'{name}'" in r.json()["detail"], r.text


def test_leads_without_a_score_yet_come_last_in_both_orders(running: Running) -> None:
    running.publish(STARTER)
    for row in BATCH[:3]:
        assert running.admin.put(f"/v1/leads/{row['lead_id']}", json=row).is_success
    # A lead stored but not scored yet, as between a batch upsert and the worker's pass.
    with running.service.store.write() as conn:
        records.upsert_leads(conn, [{"lead_id": "l0"}], running.clock())
    assert lead(running, "l0")["score"] is None
    assert listed(running, sort="-score") == (["l1", "l2", "l3", "l0"], 4)
    assert listed(running, sort="score") == (["l3", "l1", "l2", "l0"], 4)
    assert listed(running, min_score=-1000) == (["l1", "l2", "l3"], 3)


# -- accounts -------------------------------------------------------------------------------------

ACME = {
    "account_id": "acme",
    "name": "Acme",
    "employees": 1000,
    "industry": "Software",
    "annual_revenue": 20_000_000,
}
COMMITTEE_LEADS = [
    {"lead_id": "a1", "account_id": "acme", "job_title": "CEO"},
    {"lead_id": "a2", "account_id": "acme", "job_title": "Marketing Manager"},
    {"lead_id": "a3", "account_id": "acme"},
    {"lead_id": "b1", "account_id": "beta", "job_title": "Student"},
]
# What acme's data is worth to each of its leads in the committee model.
ACME_FIT = ("company_size", "target_industry", "revenue")


def stakeholder_tier(min_leads: int) -> float:
    tiers = yaml.safe_load(COMMITTEE)["account"]["stakeholders"]["tiers"]
    return float(next(t["points"] for t in tiers if t["min_leads"] == min_leads))


def committee_setup(running: Running) -> None:
    running.publish(COMMITTEE)
    r = running.admin.post(
        "/v1/accounts", json={"accounts": [ACME, {"account_id": "beta", "name": "Beta"}]}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 2, "created": ["acme", "beta"]}
    r = running.admin.post("/v1/leads", json={"leads": COMMITTEE_LEADS})
    assert r.status_code == 200, r.text
    running.wait_idle()


def test_account_put_merges_and_checks_the_id(running: Running) -> None:
    r = running.admin.put("/v1/accounts/acme", json=ACME)
    assert r.status_code == 200 and r.json() == {"count": 1, "created": ["acme"]}, r.text
    r = running.admin.put(
        "/v1/accounts/acme",
        json={"account_id": "acme", "domain": "acme.example", "attributes": {"tier": "gold"}},
    )
    assert r.status_code == 200 and r.json() == {"count": 1, "created": []}, r.text
    got = account(running, "acme")["account"]
    assert got["name"] == "Acme" and got["employees"] == 1000
    assert got["domain"] == "acme.example" and got["attributes"] == {"tier": "gold"}

    r = running.admin.put("/v1/accounts/acme", json={"account_id": "other", "name": "X"})
    assert r.status_code == 422 and "account_id" in r.json()["detail"]
    assert running.admin.get("/v1/accounts/other").status_code == 404
    assert account(running, "acme")["account"]["name"] == "Acme"

    r = running.admin.get("/v1/accounts/nobody")
    assert r.status_code == 404 and "nobody" in r.json()["detail"]


def test_account_view_rolls_up_and_counts_engaged_stakeholders(running: Running) -> None:
    committee_setup(running)
    fit = {
        "a1": points(COMMITTEE, "fit", "c_level", *ACME_FIT),
        "a2": points(COMMITTEE, "fit", "manager", "marketing_or_sales_role", *ACME_FIT),
        "a3": points(COMMITTEE, "fit", *ACME_FIT),
    }
    view = account(running, "acme")
    assert view["account"]["name"] == "Acme" and view["rollup"] == "sum"
    assert view["leads"] == 3 and view["engaged"] == 0
    stakeholders = view["stakeholders"]
    assert [s["lead_id"] for s in stakeholders] == ["a1", "a2", "a3"]  # best first
    assert {s["lead_id"]: s["fit"] for s in stakeholders} == fit
    assert all(s["total"] == fit[s["lead_id"]] for s in stakeholders)
    assert all(s["engaged"] is False and s["account_points"] == 0 for s in stakeholders)
    assert view["account_score"] == sum(fit.values())
    lead = running.admin.get("/v1/leads/a3").json()["score"]
    assert lead["account_score"] == view["account_score"]

    # a1 and a2 looked at pricing yesterday, a3 only forty days ago: two engaged people.
    events = [
        ev("p1", "a1", "page_view", timedelta(days=1), url="/pricing"),
        ev("p2", "a2", "page_view", timedelta(days=1, hours=2), url="/pricing"),
        ev("p3", "a3", "page_view", timedelta(days=40), url="/pricing"),
    ]
    r = running.tracking.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 200 and len(r.json()["accepted"]) == 3, r.text
    running.wait_idle()

    view = account(running, "acme")
    stakeholders = view["stakeholders"]
    assert view["engaged"] == 2
    assert {s["lead_id"]: s["engaged"] for s in stakeholders} == {
        "a1": True,
        "a2": True,
        "a3": False,
    }
    # Every lead of the account gets the stakeholder points, engaged or not.
    assert {s["account_points"] for s in stakeholders} == {stakeholder_tier(2)}
    totals = [s["total"] for s in stakeholders]
    assert totals == sorted(totals, reverse=True)
    for s in stakeholders:
        assert s["total"] == pytest.approx(s["fit"] + s["behaviour"] + s["account_points"])
    assert view["account_score"] == pytest.approx(sum(totals), abs=0.005)
    assert view["account_score"] > sum(fit.values()) + 3 * stakeholder_tier(2)

    listing = running.admin.get("/v1/accounts").json()
    assert listing["total"] == 2
    assert [(a["account_id"], a["leads"]) for a in listing["items"]] == [("acme", 3), ("beta", 1)]
    assert listing["items"][0]["account_score"] == view["account_score"]
    beta = listing["items"][1]
    assert beta["name"] == "Beta"
    assert beta["account_score"] == points(COMMITTEE, "fit", "student")
    page = running.admin.get("/v1/accounts", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [a["account_id"] for a in page["items"]] == ["beta"]


def test_moving_a_lead_rescores_its_old_account(running: Running) -> None:
    committee_setup(running)
    events = [
        ev("p1", "a1", "page_view", timedelta(days=1), url="/pricing"),
        ev("p2", "a2", "page_view", timedelta(days=1), url="/pricing"),
    ]
    assert running.tracking.post("/v1/events/batch", json={"events": events}).is_success
    running.wait_idle()
    before = account(running, "acme")
    assert before["engaged"] == 2 and before["leads"] == 3
    a1 = next(s for s in before["stakeholders"] if s["lead_id"] == "a1")

    r = running.admin.put("/v1/leads/a1", json={"lead_id": "a1", "account_id": "beta"})
    assert r.status_code == 200, r.text

    after = account(running, "acme")
    assert after["leads"] == 2 and after["engaged"] == 1
    stakeholders = {s["lead_id"]: s for s in after["stakeholders"]}
    assert set(stakeholders) == {"a2", "a3"}
    # The committee shrank to one engaged person: a2 and a3 lost their stakeholder points.
    for lead_id, s in stakeholders.items():
        old = next(o for o in before["stakeholders"] if o["lead_id"] == lead_id)
        assert s["account_points"] == 0, lead_id
        assert s["total"] == pytest.approx(old["total"] - stakeholder_tier(2)), lead_id
    totals = [s["total"] for s in stakeholders.values()]
    assert after["account_score"] == pytest.approx(sum(totals), abs=0.005)
    assert after["account_score"] == pytest.approx(
        before["account_score"] - a1["total"] - 2 * stakeholder_tier(2), abs=0.01
    )

    # a1 now counts for beta, with beta's (empty) company data.
    beta = account(running, "beta")
    moved = next(s for s in beta["stakeholders"] if s["lead_id"] == "a1")
    assert moved["fit"] == points(COMMITTEE, "fit", "c_level")
    assert beta["account_score"] == pytest.approx(
        sum(s["total"] for s in beta["stakeholders"]), abs=0.005
    )


def test_deleting_an_account_keeps_its_leads_without_its_data(running: Running) -> None:
    committee_setup(running)
    assert lead(running, "a2")["score"]["fit"] == points(
        COMMITTEE, "fit", "manager", "marketing_or_sales_role", *ACME_FIT
    )
    r = running.admin.delete("/v1/accounts/acme")
    assert r.status_code == 204 and r.content == b""
    running.wait_idle()

    view = account(running, "acme")  # the leads still name it
    assert view["account"] is None and view["leads"] == 3
    assert lead(running, "a2")["lead"]["account_id"] == "acme"
    assert lead(running, "a2")["score"]["fit"] == points(
        COMMITTEE, "fit", "manager", "marketing_or_sales_role"
    )
    assert view["account_score"] == sum(s["total"] for s in view["stakeholders"])
    listing = running.admin.get("/v1/accounts").json()
    assert listing["total"] == 1 and [a["account_id"] for a in listing["items"]] == ["beta"]
    assert account(running, "beta")["account"]["name"] == "Beta"

    r = running.admin.delete("/v1/accounts/acme")
    assert r.status_code == 404 and "acme" in r.json()["detail"]


# -- outcomes -------------------------------------------------------------------------------------


def test_outcomes_are_recorded_and_listed(running: Running) -> None:
    running.admin.put("/v1/leads/ann", json={"lead_id": "ann"})
    r = running.admin.post(
        "/v1/leads/ann/outcome",
        json={"outcome": "won", "value": 12500.5, "ts": "2026-03-01T12:00:00+01:00"},
    )
    assert r.status_code == 201, r.text
    won = r.json()
    assert won["lead_id"] == "ann" and won["outcome"] == "won" and won["value"] == 12500.5
    assert won["ts"] == "2026-03-01T11:00:00"  # stored as naive UTC

    running.clock.advance(minutes=30)
    r = running.admin.post("/v1/leads/ann/outcome", json={"outcome": "lost"})
    assert r.status_code == 201, r.text
    lost = r.json()
    assert lost["ts"] == running.clock().isoformat() and lost["value"] is None
    assert lost["id"] != won["id"]

    for body, name in [
        ({"outcome": "maybe"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "won", "value": "lots"}, "value"),
        ({"outcome": "won", "ts": "soon"}, "ts"),
        ({"outcome": "won", "by": "me"}, "by"),
    ]:
        r = running.admin.post("/v1/leads/ann/outcome", json=body)
        assert r.status_code == 422, body
        assert f"'{name}'" in r.json()["detail"], r.text

    r = running.admin.get("/v1/leads/ann/outcomes")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["id"], i["outcome"], i["value"]) for i in items] == [
        (won["id"], "won", 12500.5),
        (lost["id"], "lost", None),
    ]
    assert items[1]["recorded_at"] == running.clock().isoformat()

    assert (
        running.admin.post("/v1/leads/nobody/outcome", json={"outcome": "won"}).status_code == 404
    )
    assert running.admin.get("/v1/leads/nobody/outcomes").status_code == 404


# -- GDPR -----------------------------------------------------------------------------------------


def test_export_has_everything_and_erasure_removes_it(running: Running) -> None:
    running.publish(STARTER)
    for lead_id in ("ann", "bob"):
        row = {"lead_id": lead_id, "job_title": "CEO", "employees": 100, "account_id": "acme"}
        assert running.admin.put(f"/v1/leads/{lead_id}", json=row).is_success
    events = [
        ev("ann-1", "ann", "page_view", timedelta(days=2), url="/pricing"),
        ev("ann-2", "ann", "demo_request", timedelta(days=1)),
        ev("bob-1", "bob", "webinar_attended", timedelta(days=1)),
    ]
    for e in events:
        assert running.tracking.post("/v1/events", json=e).status_code == 200
    running.admin.post("/v1/leads/ann/outcome", json={"outcome": "won", "value": 900})

    r = running.admin.get("/v1/leads/ann/export")
    assert r.status_code == 200, r.text
    export = r.json()
    data = export["data"]
    assert export["lead_id"] == "ann"
    assert [row["lead_id"] for row in data["lead"]] == ["ann"]
    assert data["lead"][0]["job_title"] == "CEO"
    assert sorted(e["event_id"] for e in data["events"]) == ["ann-1", "ann-2"]
    assert [(o["outcome"], o["value"]) for o in data["outcomes"]] == [("won", 900.0)]
    current = lead(running, "ann")["score"]
    # the export is table by table: the account roll-up lives in its own table
    assert data["scores"] == [{k: v for k, v in current.items() if k != "account_score"}]
    history = data["score_history"]
    assert [h["cause_id"] for h in history] == [None, "ann-1", "ann-2"]
    assert history[-1]["total"] == current["total"]
    assert data["transitions"] and data["sla_tasks"]
    for table, rows in data.items():
        assert all(row["lead_id"] == "ann" for row in rows), table
    bob_before = running.admin.get("/v1/leads/bob/export").json()["data"]
    bob_rollup_before = lead(running, "bob")["score"]["account_score"]

    r = running.admin.delete("/v1/leads/ann")
    assert r.status_code == 200, r.text
    deleted = r.json()
    assert deleted["lead_id"] == "ann"
    counts = {table: len(rows) for table, rows in data.items() if table != "lead"}
    assert deleted["deleted"] == {**counts, "leads": 1}
    assert counts["events"] == 2 and counts["outcomes"] == 1 and counts["score_history"] == 3

    assert running.admin.get("/v1/leads/ann/export").status_code == 404
    assert running.admin.get("/v1/leads/ann").status_code == 404
    assert running.admin.get("/v1/leads/ann/outcomes").status_code == 404
    assert running.admin.get("/v1/events", params={"lead_id": "ann"}).json()["items"] == []
    assert listed(running) == (["bob"], 1)
    # Nothing anywhere still names ann.
    with running.service.store.read() as conn:
        for table in tables.metadata.sorted_tables:
            if "lead_id" in table.c:
                left = conn.execute(table.select().where(table.c.lead_id == "ann")).all()
                assert left == [], table.name

    # bob keeps everything; his account roll-up no longer counts ann.
    bob_after = running.admin.get("/v1/leads/bob/export").json()["data"]
    for table in ("lead", "events", "outcomes", "transitions", "sla_tasks"):
        assert bob_after[table] == bob_before[table], table
    bob_score = bob_after["scores"][0]
    assert bob_score["total"] == bob_before["scores"][0]["total"]
    assert bob_rollup_before == pytest.approx(bob_score["total"] + current["total"])
    assert lead(running, "bob")["score"]["account_score"] == bob_score["total"]

    r = running.admin.delete("/v1/leads/ann")
    assert r.status_code == 404 and "ann" in r.json()["detail"]
    assert running.admin.delete("/v1/leads/nobody").status_code == 404
    assert running.admin.get("/v1/leads/nobody/export").status_code == 404


def test_erasing_an_accounts_last_lead_removes_its_roll_up(running: Running) -> None:
    running.publish(STARTER)
    running.admin.put("/v1/accounts/solo", json={"account_id": "solo", "name": "Solo GmbH"})
    running.admin.put(
        "/v1/leads/only", json={"lead_id": "only", "job_title": "CEO", "account_id": "solo"}
    )
    assert running.admin.get("/v1/accounts/solo").json()["account_score"] == 20.0
    assert running.admin.delete("/v1/leads/only").status_code == 200
    view = running.admin.get("/v1/accounts/solo").json()
    assert view["account_score"] is None and view["leads"] == 0
    listed = running.admin.get("/v1/accounts").json()["items"]
    assert [(a["account_id"], a["account_score"], a["leads"]) for a in listed] == [
        ("solo", None, 0)
    ]
