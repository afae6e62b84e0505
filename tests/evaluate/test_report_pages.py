"""The pages of cases, compare, channels, capacity and sample: self-contained HTML like the
backtest's, with the figures and tables each needs, escaped and the same for the same input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

import browser
from browser import Page
from leadscore.evaluate.capacity import Capacity, Conversion, Handover
from leadscore.evaluate.cases import Case, Step, cases
from leadscore.evaluate.channels import ChannelRow, Channels
from leadscore.evaluate.report import (
    MAX_BARS,
    MAX_CASES_PER_PLOT,
    render_capacity,
    render_cases,
    render_channels,
    render_compare,
    render_sample,
    write_report,
)
from leadscore.evaluate.sample import Sample, SampledLead, Stratum
from leadscore.io import generate, load_dataset
from leadscore.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
AS_OF = datetime(2026, 1, 1)
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NASTY = '"><img src=x onerror=alert(2)> $\\frac{1}{0}$ <b>b</b>'


def assert_safe(text: str) -> None:
    """Nothing in the page loads or runs; hostile text stayed text."""
    page = Page(text)
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "img", "b", "link", "iframe", "object", "embed"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert value is not None and value.startswith(("#", "data:")), (tag, value)
    assert "<script" not in text.lower()
    ids = [a["id"] for _, a in page.tags if "id" in a]
    assert len(ids) == len(set(ids)), "ids repeat"


# --- cases ----------------------------------------------------------------------------------


def step(ts: datetime, total: float, stage: str | None, event: str | None = "page_view") -> Step:
    return Step(
        ts=ts,
        event_id=None if event is None else f"E{ts:%j%H%M}",
        event_type=event,
        total=total,
        grade="B",
        temperature="warm" if total >= 50 else "cold",
        stage=stage,
    )


def made_case(lead_id: str, kind: str, start: datetime, totals: list[float]) -> Case:
    stages = ["MQL" if t >= 50 else "nurture" for t in totals]
    steps = [step(start, totals[0], stages[0], None)]
    steps += [
        step(start + timedelta(days=i), t, s)
        for i, (t, s) in enumerate(zip(totals[1:-1], stages[1:-1], strict=True), 1)
    ]
    end = start + timedelta(days=len(totals))
    steps.append(step(end, totals[-1], stages[-1], None))
    outcome = end if kind in ("won", "lost") else None
    return Case(lead_id, kind, outcome, steps, steps[-1] if outcome else None)


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    out = tmp_path_factory.mktemp("gen")
    generate(800, seed=2, out=out, as_of=AS_OF)
    data = load_dataset(out)
    return cases(load_model(MODELS / "committee.yaml"), data, AS_OF, won=3, lost=2, recent=2)


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A real headless Chromium; a missing one fails the test (never skips it)."""
    try:
        with browser.chromium(width=1200, height=1000) as driver:
            yield driver
    except browser.BrowserUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def test_the_cases_page_draws_trajectories_in_a_real_browser(
    found: list[Case], tmp_path: Path, driver: WebDriver
) -> None:
    path = tmp_path / "cases.html"
    write_report(path, render_cases(found, title="Cases: committee 1.0", as_of=AS_OF))
    driver.get(path.as_uri())
    assert driver.title == "Cases: committee 1.0"
    sections: list[dict[str, Any]] = driver.execute_script(
        """
        return [...document.querySelectorAll('section')].map(section => {
            const figure = section.querySelector('figure[data-plot^="trajectory-"]');
            const svg = figure && figure.querySelector(':scope > svg');
            const box = svg && svg.getBoundingClientRect();
            return {
                id: section.id,
                plot: figure && figure.dataset.plot,
                width: box ? box.width : 0,
                height: box ? box.height : 0,
                lines: svg ? svg.querySelectorAll('path').length : 0,
                tables: [...section.querySelectorAll('table')].map(t => ({
                    caption: t.caption.textContent, rows: t.tBodies[0].rows.length,
                })),
            };
        });
        """
    )
    kinds = {"won": 3, "lost": 2, "recent": 2}
    assert [s["id"] for s in sections] == list(kinds)
    for section, (kind, count) in zip(sections, kinds.items(), strict=True):
        assert section["plot"] == f"trajectory-{kind}"
        assert section["width"] > 100 and section["height"] > 100, section
        assert section["lines"] > count
        mine = [c for c in found if c.kind == kind]
        assert len(section["tables"]) == len(mine) == count
        for table, case in zip(section["tables"], mine, strict=True):
            assert table["caption"].startswith(f"{case.lead_id}: {kind}")
            assert table["rows"] == len(case.steps)
    legend = driver.execute_script(
        "return document.querySelector('figure[data-plot=trajectory-won] svg').textContent"
    )
    assert "just before won" in legend and found[0].lead_id in legend
    assert driver.execute_script("return performance.getEntriesByType('resource')") == []
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_cases_page_is_safe_and_the_same_each_time(found: list[Case]) -> None:
    page = render_cases(found, as_of=AS_OF)
    assert render_cases(found, as_of=AS_OF) == page
    assert Page(page).plots() == ["trajectory-won", "trajectory-lost", "trajectory-recent"]
    assert len(Page(page).tables()) == len(found)
    nasty = [replace(found[0], lead_id=NASTY), *found[1:]]
    text = render_cases(nasty, title=HOSTILE)
    assert_safe(text)
    assert f"<title>{ESCAPED}</title>" in text
    legend = text.split('data-plot="trajectory-won"')[1].split("</svg>")[0]
    assert "$\\frac{1}{0}$" in legend  # not TeX: the legend shows it as written


def test_many_cases_are_plotted_fifty_at_most_and_tabled_all() -> None:
    start = datetime(2025, 6, 1)
    many = [
        made_case(f"L{i:03}", "won", start + timedelta(days=i), [10.0, 30.0 + i, 60.0, 55.0])
        for i in range(MAX_CASES_PER_PLOT + 10)
    ]
    text = render_cases(many)
    page = Page(text)
    assert page.plots() == ["trajectory-won"]
    assert len(page.tables()) == MAX_CASES_PER_PLOT + 10
    assert f"first {MAX_CASES_PER_PLOT} of the {MAX_CASES_PER_PLOT + 10} cases" in text
    assert "Colours repeat" in text


def test_odd_cases_still_render() -> None:
    when = datetime(2025, 6, 1)
    lonely = Case("single", "recent", None, [step(when, 5.0, None, None)])
    still = made_case("still", "lost", when, [20.0, 20.0])
    still.steps = [replace(s, ts=when) for s in still.steps]  # every step at one instant
    empty = Case("empty", "won", when, [])
    text = render_cases([lonely, still, empty])
    page = Page(text)
    assert page.plots() == ["trajectory-lost", "trajectory-recent"]
    assert page.missing() == ["trajectory-won"]
    assert "No cases" in render_cases([])


# --- compare --------------------------------------------------------------------------------


def comparison(name: str = "candidate") -> dict[str, Any]:
    thresholds = [
        {"threshold": "SQL", "leads": 20, "won": 8, "precision": 0.4, "recall": 0.3},
        {"threshold": "MQL or better", "leads": 40, "won": 12, "precision": 0.3, "recall": 0.45},
    ]
    return {
        "as_of": "2026-01-01T00:00:00",
        "models": [{"name": "current", "version": "1.0"}, {"name": name, "version": "2.0"}],
        "leads": 800,
        "changed": 60,
        "stage_moves": [
            {"from": "nurture", "to": "MQL", "leads": 40},
            {"from": None, "to": "SQL", "leads": 5},
        ],
        "temperature_moves": [{"from": "cold", "to": "warm", "leads": 45}],
        "changed_per": "cell",
        "changed_per_band": [{"cell": "A1", "leads": 20}, {"cell": None, "leads": 40}],
        "examples": [
            {
                "lead_id": "L1",
                "total_a": 20.0,
                "total_b": 75.5,
                "temperature_a": "cold",
                "temperature_b": "warm",
                "stage_a": "nurture",
                "stage_b": "MQL",
            }
        ],
        "backtest": {
            "cutoff": "2025-10-01T00:00:00",
            "metrics": [
                {
                    "model": "current",
                    "version": "1.0",
                    "auc": 0.70,
                    "base_rate": 0.08,
                    "top_decile_lift": 2.5,
                    "thresholds": thresholds,
                },
                {
                    "model": name,
                    "version": "2.0",
                    "auc": None,
                    "base_rate": 0.08,
                    "top_decile_lift": None,
                    "thresholds": [],
                },
            ],
        },
    }


def test_the_compare_page_shows_moves_and_both_backtests() -> None:
    text = render_compare(comparison())
    assert render_compare(comparison()) == text
    page = Page(text)
    assert page.plots() == ["moves", "backtest"]
    assert page.tables() == [
        "summary-table",
        "stage-moves",
        "temperature-moves",
        "changes-per-band",
        "backtest-metrics",
        "backtest-handover",
        "examples-table",
    ]
    assert "<title>Compare: current 1.0 \N{RIGHTWARDS ARROW} candidate 2.0</title>" in text
    assert "60 (7.5%)" in text and "(none)" in text and "55.50" in text


def test_the_compare_page_escapes_and_says_when_nobody_moves() -> None:
    text = render_compare(comparison(HOSTILE))
    assert_safe(text)
    assert ESCAPED in text
    quiet = comparison()
    del quiet["backtest"]
    quiet.update(changed=0, stage_moves=[], temperature_moves=[], changed_per_band=[], examples=[])
    page = Page(render_compare(quiet))
    assert page.plots() == [] and page.missing() == ["moves"]
    assert page.tables() == ["summary-table"]


# --- channels -------------------------------------------------------------------------------


def row(value: str, leads: int, won: int, values: bool = True) -> ChannelRow:
    return ChannelRow(
        value=value,
        leads=leads,
        won=won,
        conversion=won / leads,
        hot=leads // 10,
        hot_share=(leads // 10) / leads,
        mean_score=25.0,
        won_value=1000.0 * won if values else None,
        value_per_lead=1000.0 * won / leads if values else None,
        repeat_purchases=0 if values else None,
        lifetime_value=1000.0 if values and won else None,
    )


def channel_result(name: str = "committee", campaigns: int = 3) -> Channels:
    return Channels(
        model=name,
        model_version="1.0",
        as_of=AS_OF,
        leads=300,
        won=30,
        not_yet_created=7,
        hot_basis="temperature == 'hot'",
        has_values=True,
        sources=[row("organic", 200, 25), row(NASTY, 100, 5)],
        campaigns=[row(f"campaign-{i}", 50 + i, 40 - i) for i in range(campaigns)],
        content_stages=[],
        notes=["<i>note</i> & more"],
    )


def test_the_channels_page_plots_conversion_per_source_and_campaign() -> None:
    result = channel_result()
    text = render_channels(result)
    assert render_channels(result) == text
    page = Page(text)
    assert page.plots() == ["conversion-source", "conversion-campaign"]
    assert page.missing() == ["conversion-content_stage"]
    assert page.tables() == ["summary-table", "source-table", "campaign-table"]
    assert "Lifetime value" in text and "12.5%" in text and "25,000" in text
    assert "&lt;i&gt;note&lt;/i&gt; &amp; more" in text


def test_the_channels_page_escapes_and_caps_its_bars() -> None:
    text = render_channels(channel_result(HOSTILE, campaigns=MAX_BARS + 5))
    assert_safe(text)
    assert ESCAPED in text and "$\\frac{1}{0}$" in text
    assert f"first {MAX_BARS} of the {MAX_BARS + 5} campaigns" in text
    plain = replace(
        channel_result(),
        has_values=False,
        hot_basis=None,
        sources=[row("organic", 300, 30, values=False)],
    )
    assert "Lifetime value" not in render_channels(plain)


# --- capacity -------------------------------------------------------------------------------


def capacity_result(name: str = "committee") -> Capacity:
    return Capacity(
        model=name,
        model_version="1.0",
        cutoff=datetime(2025, 10, 1),
        weeks=12,
        window_start=datetime(2025, 7, 9),
        per_week=5.0,
        horizon_days=90.0,
        leads=187,
        threshold=33.91,
        leads_above=60,
        leads_per_week=5.0,
        above=Conversion(48, 10, 10 / 48),
        below=Conversion(103, 2, 2 / 103),
        decided_before=36,
        handover=[Handover("SQL", 18, 1.5), Handover(NASTY, 10, 10 / 12)],
        handover_per_week=28 / 12,
        notes=["within the 5 it can take"],
    )


def test_the_capacity_page_shows_volume_and_conversion() -> None:
    text = render_capacity(capacity_result())
    assert render_capacity(capacity_result()) == text
    page = Page(text)
    assert page.plots() == ["capacity"]
    assert page.tables() == ["summary-table", "conversion-table", "handover-table"]
    assert "33.91" in text and "20.8%" in text and "15.6" in text
    assert "sales can take 5" in text  # in the plot, as text


def test_the_capacity_page_escapes_and_copes_without_threshold_or_truth() -> None:
    text = render_capacity(capacity_result(HOSTILE))
    assert_safe(text)
    assert ESCAPED in text
    none = replace(
        capacity_result(),
        threshold=None,
        leads_above=0,
        leads_per_week=0.0,
        above=Conversion(0, 0, None),
        below=Conversion(151, 0, None),
        handover=[],
        handover_per_week=0.0,
    )
    text = render_capacity(none)
    assert Page(text).plots() == ["capacity"] and "no threshold fits" in text
    assert "no outcome to judge by" in text


# --- sample ---------------------------------------------------------------------------------


def sampled(lead_id: str, stage: str, total: float) -> SampledLead:
    score = {
        "lead_id": lead_id,
        "total": total,
        "fit": 10.0,
        "behaviour": total - 10.0,
        "grade": "B",
        "cell": None,
        "temperature": "warm",
        "stage": stage,
        "priority": False,
    }
    ledger = [
        {"part": "fit", "kind": "fit", "rule": "size", "event_id": None, "ts": None,
         "base": 10.0, "factor": None, "points": 10.0, "detail": None, "note": None},
        {"part": "behaviour", "kind": "event", "rule": "demo", "event_id": "E1",
         "ts": datetime(2025, 12, 1, 9, 30), "base": 20.0, "factor": 0.5,
         "points": total - 10.0, "detail": NASTY, "note": None},
    ]  # fmt: skip
    return SampledLead(stage, score, ledger)


def sample_result(name: str = "committee") -> Sample:
    return Sample(
        model=name,
        model_version="1.0",
        as_of=AS_OF,
        seed=4,
        per_stage=2,
        strata=[
            Stratum("SQL", 30, [sampled("L1", "SQL", 80.0), sampled("L2", "SQL", 70.0)]),
            Stratum("(none)", 1, [sampled("L3", "(none)", 10.5)]),
        ],
        notes=["stage '(none)' holds only 1 lead"],
    )


def test_the_sample_page_shows_every_lead_with_its_ledger() -> None:
    text = render_sample(sample_result())
    assert render_sample(sample_result()) == text
    page = Page(text)
    assert page.plots() == ["stages"]
    assert page.tables() == [
        "strata-table",
        "stage-1-leads",
        "stage-1-ledger-1",
        "stage-1-ledger-2",
        "stage-2-leads",
        "stage-2-ledger-1",
    ]
    assert "2 of 30 sampled" in text and "0.500" in text and "2025-12-01 09:30:00" in text
    assert "<th>Cell</th>" not in text  # no lead has a cell: no column for it


def test_the_sample_page_escapes() -> None:
    text = render_sample(sample_result(HOSTILE))
    assert_safe(text)
    assert ESCAPED in text


@pytest.mark.parametrize(
    "render",
    [
        lambda: render_cases([made_case("L1", "won", AS_OF, [1.0, 60.0, 40.0])]),
        lambda: render_compare(comparison()),
        lambda: render_channels(channel_result()),
        lambda: render_capacity(capacity_result()),
        lambda: render_sample(sample_result()),
    ],
    ids=["cases", "compare", "channels", "capacity", "sample"],
)
def test_every_page_loads_nothing(render: Callable[[], str]) -> None:
    text = render()
    assert_safe(text)
    csp = [a for t, a in Page(text).tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
