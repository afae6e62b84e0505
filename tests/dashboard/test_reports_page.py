"""The reports page in a real headless Chromium, on a real service with data put in by the API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from leadscore.dashboard.auth import create_user
from leadscore.io.generate import generate_tables
from leadscore.store import tables as t
from servicekit import MODELS, Running

from .conftest import sign_in

STARTER = (MODELS / "starter.yaml").read_text()
AS_OF = datetime(2026, 1, 1)
CUSTOM = ("segment", "age_band", "purchasing_power")
DONE = 60_000  # ms a report may take in the test (seconds in practice)


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items() if v is not None
    }


def _load(running: Running, leads: int = 300) -> None:
    """Generated leads, accounts, events and won/lost outcomes, through the REST API."""
    tables = generate_tables(leads, seed=21, as_of=AS_OF)
    accounts = [_json(r) for r in tables["accounts"].to_pylist()]
    r = running.admin.post("/v1/accounts", json={"accounts": accounts})
    assert r.status_code == 200, r.text
    people = [
        {
            **_json({k: v for k, v in row.items() if k not in CUSTOM}),
            "attributes": {k: row[k] for k in CUSTOM if row[k] is not None},
        }
        for row in tables["leads"].to_pylist()
    ]
    r = running.admin.post("/v1/leads", json={"leads": people})
    assert r.status_code == 200, r.text
    events = [_json(e) for e in tables["events"].to_pylist()]
    r = running.tracking.post("/v1/events/batch", json={"events": events})
    assert r.status_code == 200 and not r.json().get("rejected"), r.text
    for outcome in tables["outcomes"].to_pylist():
        lead = outcome.pop("lead_id")
        r = running.admin.post(f"/v1/leads/{lead}/outcome", json=_json(outcome))
        assert r.status_code == 201, r.text


def _run(page: Page, kind: str, button: str, fields: dict[str, str] | None = None) -> None:
    form = page.locator("form").filter(has=page.locator(f"input[name=kind][value={kind}]"))
    for label, value in (fields or {}).items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name=button).click()
    expect(page).to_have_url(re.compile(r"/ui/reports/\d+$"))


def _finished(page: Page, status: str = "done") -> None:
    expect(page.locator("dd[data-status]")).to_have_attribute("data-status", status, timeout=DONE)


def _runs_stored(running: Running) -> int:
    with running.service.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.report_runs)).scalar_one())


def test_every_report_runs_from_the_browser(running: Running, page: Page) -> None:
    running.publish(STARTER)
    _load(running)
    base = running.base_url
    sign_in(page, base)
    page.goto(f"{base}/ui/reports")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    expect(page.get_by_text("No report has been run yet.")).to_be_visible()
    # a full horizon before the last outcome (2025-12-31)
    expect(page.locator("#backtest-cutoff")).to_have_value("2025-10-02")
    expect(page.locator("#channels-as_of")).to_have_value("2026-03-02 09:00")

    _run(page, "backtest", "Run backtest", {"Cut-off (UTC)": "2025-09-01", "Horizon (days)": "120"})
    _finished(page)
    rest = running.admin.get(
        "/v1/evaluate/backtest", params={"cutoff": "2025-09-01T00:00:00", "horizon_days": 120}
    ).json()
    truth = rest["truth"]
    expect(page.locator(".report-summary")).to_have_text(
        f"AUC {rest['auc']:.3f}; {truth['leads']:,} leads, {truth['won']:,} won "
        f"({truth['won'] / truth['leads']:.1%})"
    )
    summary = page.locator("#summary-table")
    expect(summary.locator("tr", has_text="Leads evaluated")).to_contain_text(f"{truth['leads']:,}")
    expect(summary.locator("tr", has_text="AUC")).to_contain_text(f"{rest['auc']:.3f}")
    expect(page.locator("figure[data-plot='lift'] svg")).to_be_visible()
    assert page.locator("figure[data-plot] svg").count() >= 3
    expect(page.locator("dl.report-run")).to_contain_text(
        "Cut-off (UTC): 2025-09-01; Horizon (days): 120"
    )
    expect(page.locator("dl.report-run")).to_contain_text("maria")

    page.goto(f"{base}/ui/reports")
    _run(page, "capacity", "Run capacity", {"Leads sales can take a week": "5"})
    _finished(page)
    rest = running.admin.get(
        "/v1/evaluate/capacity", params={"per_week": 5, "cutoff": "2025-10-02T00:00:00"}
    ).json()
    assert rest["threshold"] is not None
    expect(page.locator(".report-summary")).to_contain_text(f"T = {rest['threshold']:g}")
    expect(page.locator("figure[data-plot] svg").first).to_be_visible()

    page.goto(f"{base}/ui/reports")
    _run(page, "channels", "Run channels")
    _finished(page)
    rest = running.admin.get("/v1/evaluate/channels", params={"as_of": "2026-03-02T09:00"}).json()
    expect(page.locator(".report-summary")).to_contain_text(
        f"{rest['leads']:,} leads, {rest['won']:,} won"
    )
    expect(page.locator("figure[data-plot='conversion-source'] svg")).to_be_visible()

    page.goto(f"{base}/ui/reports")
    _run(page, "sample", "Run sample", {"Leads per stage": "3", "Seed": "7"})
    _finished(page)
    expect(page.locator(".report-summary")).to_contain_text(
        re.compile(r"\d+ leads from \d+ stages")
    )
    expect(page.locator("figure[data-plot] svg").first).to_be_visible()
    expect(page.locator("#strata-table")).to_be_visible()

    page.goto(f"{base}/ui/reports")
    _run(
        page, "cases", "Run cases", {"Won leads": "2", "Lost leads": "2", "Recent open leads": "1"}
    )
    _finished(page)
    expect(page.locator(".report-summary")).to_have_text("2 won, 2 lost, 1 recent")
    expect(page.locator("figure[data-plot='trajectory-won'] svg")).to_be_visible()

    page.goto(f"{base}/ui/reports")
    rows = page.locator("table.report-runs tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("Cases")  # newest first
    for i in range(5):
        expect(rows.nth(i)).to_contain_text("maria")
        expect(rows.nth(i).locator("td.status-done")).to_have_text("done")
    rows.last.get_by_role("link", name="Backtest").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Backtest report #\d+"))
    expect(page.locator("figure[data-plot='lift'] svg")).to_be_visible()


def test_bad_input_gets_field_messages_and_runs_nothing(running: Running, page: Page) -> None:
    running.publish(STARTER)
    base = running.base_url
    sign_in(page, base)
    page.goto(f"{base}/ui/reports")
    backtest = page.locator("form").filter(has=page.locator("input[value=backtest]"))
    backtest.get_by_label("Cut-off (UTC)").fill("soon")
    backtest.get_by_label("Horizon (days)").fill("0")
    with page.expect_response(f"{base}/ui/reports") as posted:
        backtest.get_by_role("button", name="Run backtest").click()
    assert posted.value.status == 422
    cutoff = page.locator("#backtest-cutoff")
    expect(cutoff).to_have_value("soon")
    expect(cutoff).to_have_attribute("aria-invalid", "true")
    expect(cutoff).to_have_attribute("aria-describedby", "backtest-cutoff-error")
    expect(page.locator("#backtest-cutoff-error")).to_have_text(
        "Cut-off (UTC): enter a date like 2025-10-01 or a date and time like 2025-10-01 14:30, "
        "optionally with a UTC offset (Z, +02:00); not a zone name such as CET"
    )
    expect(page.locator("#backtest-horizon_days")).to_have_value("0")
    expect(page.locator("#backtest-horizon_days-error")).to_have_text(
        "Horizon (days): enter a whole number from 1 to 3,650"
    )
    # the other forms keep their defaults and no message
    expect(page.locator("#capacity-horizon_days")).to_have_value("90")
    expect(page.locator("#capacity-horizon_days")).not_to_have_attribute("aria-invalid", "true")

    sample = page.locator("form").filter(has=page.locator("input[value=sample]"))
    sample.get_by_label("Leads per stage").fill("1000")
    sample.get_by_role("button", name="Run sample").click()
    expect(page.locator("#sample-per_stage-error")).to_have_text(
        "Leads per stage: enter a whole number from 1 to 100"
    )
    expect(page.locator("#sample-per_stage")).to_have_value("1000")
    capacity = page.locator("form").filter(has=page.locator("input[value=capacity]"))
    capacity.get_by_label("Leads sales can take a week").fill("-3")
    capacity.get_by_role("button", name="Run capacity").click()
    expect(page.locator("#capacity-per_week-error")).to_have_text(
        "Leads sales can take a week: enter a number greater than 0 and at most 1,000,000"
    )
    expect(page.get_by_text("No report has been run yet.")).to_be_visible()
    assert _runs_stored(running) == 0


def test_what_the_data_refuses_is_shown(running: Running, page: Page) -> None:
    with running.service.store.write() as conn:  # left running by a service that stopped
        conn.execute(
            t.report_runs.insert(),
            {
                "kind": "channels",
                "params": {"as_of": "2026-01-01T00:00:00"},
                "requested_by": "maria",
                "status": "running",
                "created_at": running.clock(),
            },
        )
    base = running.base_url
    sign_in(page, base)
    page.goto(f"{base}/ui/reports")
    _run(page, "channels", "Run channels")
    _finished(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text("no model is published yet")

    running.publish(STARTER)
    assert running.admin.put("/v1/leads/L1", json={"lead_id": "L1"}).status_code in (200, 201)
    page.goto(f"{base}/ui/reports")
    _run(page, "backtest", "Run backtest", {"Cut-off (UTC)": "2025-10-01"})
    _finished(page, "failed")
    expect(page.get_by_role("alert")).to_contain_text("outcomes")
    expect(page.locator("figure[data-plot]")).to_have_count(0)
    page.goto(f"{base}/ui/reports")
    expect(page.locator("table.report-runs td.status-failed")).to_have_count(3)
    expect(page.locator("tr[data-run='1']")).to_contain_text("the service stopped")
    page.goto(f"{base}/ui/reports/999")
    expect(page.get_by_text("There is no report #999.")).to_be_visible()


def test_analysts_who_are_not_admins_run_reports(running: Running, page: Page) -> None:
    running.publish(STARTER)
    _load(running, leads=120)
    with running.service.store.write() as conn:
        create_user(conn, "jonas", "another long password", admin=False, now=running.clock())
    base = running.base_url
    anonymous = httpx.get(f"{base}/ui/reports")
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    sign_in(page, base, "jonas", "another long password")
    page.goto(f"{base}/ui/reports")
    _run(page, "channels", "Run channels")
    _finished(page)
    expect(page.locator("dl.report-run")).to_contain_text("jonas")
    expect(page.locator("figure[data-plot] svg").first).to_be_visible()

    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    form = {"kind": "channels", "as_of": "2026-01-01"}
    with httpx.Client(base_url=base, cookies=cookies) as client:
        assert client.post("/ui/reports", data={**form, "csrf": "guess"}).status_code == 400
    outsider = httpx.post(f"{base}/ui/reports", data={**form, "csrf": "x"})
    assert outsider.status_code == 303 and "/ui/login" in outsider.headers["location"]
    assert _runs_stored(running) == 1


def test_the_reports_page_speaks_german(running: Running, page: Page) -> None:
    sign_in(page, running.base_url)
    page.goto(f"{running.base_url}/ui/reports?lang=de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Berichte")
    expect(page.get_by_label("Stichtag (UTC)").first).to_be_visible()
    expect(page.get_by_role("button", name="Backtest starten")).to_be_visible()
    expect(page.get_by_text("Es wurde noch kein Bericht erstellt.")).to_be_visible()
    form = page.locator("form").filter(has=page.locator("input[value=backtest]"))
    form.get_by_label("Zeitraum (Tage)").fill("viele")
    form.get_by_role("button", name="Backtest starten").click()
    expect(page.locator("#backtest-horizon_days-error")).to_have_text(
        "Zeitraum (Tage): eine ganze Zahl von 1 bis 3.650 eingeben"
    )
    expect(page.locator("html")).to_have_attribute("lang", "de")
