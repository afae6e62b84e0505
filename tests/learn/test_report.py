"""The suggestion's page: every rule with its evidence, calibration on the holdout, the backtest
at the evaluation cut-off and the YAML, self-contained like the evaluation commands' pages and
escaping whatever the data says."""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

import browser
from browser import Page
from leadscore.evaluate.report import write_report
from leadscore.io import load_dataset
from leadscore.io.generate import generate_dataset
from leadscore.learn.report import render_suggestion
from leadscore.learn.suggest import Suggestion, suggest

HOSTILE = '<script>alert(1)</script> & "co"'
HEADINGS = [
    "Summary",
    "Rules and their evidence",
    "Calibration on the held-out examples",
    "Backtest at the evaluation cut-off",
    "Backtest: Lift and gains",
    "Backtest: Score distribution by outcome",
    "Backtest: Calibration: conversion per score band",
    "Backtest: Conversion per band",
    "Backtest: Matrix: fit grade \N{MULTIPLICATION SIGN} engagement level",
    "Backtest: Hand-over to sales",
    "The model (YAML)",
]
PLOTS = ("points", "holdout-calibration", "lift", "distribution", "calibration", "conversion")


def minute(ts: datetime) -> str:
    return ts.replace(second=0, microsecond=0).isoformat()


def write_tiny(folder: Path, leads: int = 600, seed: int = 1) -> None:
    """Leads, events and outcomes as CSV files: a source whose name is markup wins most often."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1)
    rates = {HOSTILE: 0.6, "web": 0.15, "partner": 0.05}
    sources = list(rates)
    tables: dict[str, tuple[list[str], list[list[str]]]] = {
        "leads": (["lead_id", "source", "created_at"], []),
        "events": (["event_id", "lead_id", "type", "ts"], []),
        "outcomes": (["lead_id", "outcome", "ts"], []),
    }
    for i in range(leads):
        lead = f"L{i:04d}"
        created = start + timedelta(days=float(rng.uniform(0, 300)))
        source = sources[int(rng.integers(0, len(sources)))]
        tables["leads"][1].append([lead, source, minute(created)])
        won = bool(rng.random() < rates[source])
        for k in range(int(rng.integers(1, 5))):
            ts = created + timedelta(days=float(rng.uniform(0, 20)))
            tables["events"][1].append([f"E{i:04d}-{k}", lead, "page_view", minute(ts)])
        if won:
            ts = created + timedelta(days=float(rng.uniform(21, 50)))
            tables["outcomes"][1].append([lead, "won", minute(ts)])
        elif rng.random() < 0.5:
            ts = created + timedelta(days=float(rng.uniform(21, 90)))
            tables["outcomes"][1].append([lead, "lost", minute(ts)])
    for name, (header, rows) in tables.items():
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


class Tables(Page):
    """A page's start tags, and the text of every cell of every table with an id."""

    def __init__(self, text: str) -> None:
        self.cells: dict[str, list[list[str]]] = {}
        self.pre: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_pre = False
        self._body = False
        super().__init__(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        found = dict(attrs)
        if tag == "table" and found.get("id"):
            self._table = found["id"]
            self.cells[self._table or ""] = []
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._table and self._body:
            self.cells[self._table].append([])
        elif tag == "td" and self._table and self._body:
            self._cell = []
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table, self._body = None, False
        elif tag == "td" and self._cell is not None and self._table:
            self.cells[self._table][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_pre:
            self.pre[-1] += data


def pairs(rows: list[list[str]]) -> dict[str, str]:
    """A two-column table as a mapping of its first column to its second."""
    return {row[0]: row[1] for row in rows}


def assert_safe(text: str) -> None:
    """Nothing in the page loads or runs; hostile text stayed text; no id twice."""
    tags = Page(text).tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "img", "audio", "video"}
    assert not names & {"b"}
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert value is not None and value.startswith(("#", "data:")), (tag, value)
    assert "<script" not in text.lower()
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    ids = [a["id"] for _, a in tags if "id" in a]
    assert len(ids) == len(set(ids)), "ids repeat"


@pytest.fixture(scope="module")
def generated() -> Suggestion:
    # a split by time (the default on data spread over a year): a backtest comes with it
    return suggest(generate_dataset(3000, seed=5), name="generated")


@pytest.fixture(scope="module")
def page(generated: Suggestion) -> str:
    return render_suggestion(generated)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    write_tiny(folder)
    return folder


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A real headless Chromium; a missing one fails the test (never skips it)."""
    try:
        with browser.chromium(width=1200, height=1000) as driver:
            yield driver
    except browser.BrowserUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def test_the_page_renders_in_a_real_browser(
    generated: Suggestion, page: str, tmp_path: Path, driver: WebDriver
) -> None:
    path = tmp_path / "suggested.html"
    write_report(path, page)
    driver.get(path.as_uri())
    assert driver.title == f"Suggested points: generated {generated.model.version}"
    headings: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('h2')].map(h => h.textContent)"
    )
    assert headings == HEADINGS
    for key in PLOTS:
        found: dict[str, Any] = driver.execute_script(
            """
            const figure = document.querySelector(`figure[data-plot="${arguments[0]}"]`);
            const svg = figure && figure.querySelector(':scope > svg');
            if (!svg) return null;
            const box = svg.getBoundingClientRect();
            return {width: box.width, height: box.height,
                    shapes: svg.querySelectorAll('path, rect, use').length};
            """,
            key,
        )
        assert found is not None, f"no <svg> in figure {key!r}"
        assert found["width"] > 100 and found["height"] > 100, (key, found)
        assert found["shapes"] > 10, (key, found["shapes"])
    labels: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('table#rules-table tbody tr')]"
        ".map(r => r.cells[0].textContent)"
    )
    strongest = sorted(generated.rules, key=lambda r: (-abs(r.points), r.feature.name))
    assert labels == [r.feature.name for r in strongest]
    # the bars are labelled with the rules, as text
    bars = driver.execute_script(
        "return document.querySelector('figure[data-plot=points] svg').textContent"
    )
    assert strongest[0].feature.name in bars
    assert driver.execute_script("return performance.getEntriesByType('resource')") == []
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('[id]')].map(e => e.id)"
    )
    assert len(ids) == len(set(ids)), "ids repeat across the sections and inlined plots"


def test_every_rule_is_a_row_with_its_evidence(generated: Suggestion, page: str) -> None:
    rows = Tables(page).cells["rules-table"]
    assert len(rows) == len(generated.rules)
    by_label = {row[0]: row for row in rows}
    base = generated.base_rates["training"]
    for rule in generated.rules:
        assert html.escape(rule.feature.name, quote=True) in page
        row = by_label[rule.feature.name]
        assert row[3] == f"{rule.points:+d}"
        assert row[4] == f"{rule.support:,}"
        assert row[5] == f"{100 * rule.won_with:.1f}%"
        assert row[6] == f"{100 * rule.won_without:.1f}%"
        assert row[7] == f"{rule.won_with / base:.2f}"
    # each rule is named as the YAML names it
    for row in rows:
        assert f"name: {row[1]}" in generated.yaml


def test_the_summary_names_the_frame_the_figures_and_the_shift(
    generated: Suggestion, page: str
) -> None:
    summary = pairs(Tables(page).cells["suggestion-table"])
    assert summary["Holdout AUC: the integer points, scored by the engine"] == (
        f"{generated.holdout_auc_points:.3f}"
    )
    assert summary["Baseline: naive Bayes, holdout AUC"] == (
        f"{generated.baselines['naive_bayes_auc']:.3f}"
    )
    assert summary["Held-out examples"] == f"{generated.holdout_leads:,}"
    training, holdout = generated.base_rates["training"], generated.base_rates["holdout"]
    assert summary["Base-rate shift (holdout against training)"].startswith(
        f"{100 * (holdout - training):+.1f} percentage points"
    )
    assert html.escape(generated.frame.describe()) in page
    derived = [row[0] for row in Tables(page).cells["derived-table"]]
    assert derived == list(generated.frame.derived)
    assert "The leakage guard refused no feature." in page


def test_calibration_is_plotted_and_tabled_per_holdout_decile(
    generated: Suggestion, page: str
) -> None:
    rows = Tables(page).cells["holdout-calibration-table"]
    deciles = list(reversed(generated.calibration))
    assert [row[0] for row in rows] == [str(i) for i in range(1, len(deciles) + 1)]
    assert [row[2] for row in rows] == [f"{100 * d['predicted']:.1f}%" for d in deciles]
    assert [row[3] for row in rows] == [f"{100 * d['observed']:.1f}%" for d in deciles]
    ratio = generated.base_rates["holdout"] / generated.base_rates["training"]
    assert re.search(rf"Base-rate shift: .*\N{{MULTIPLICATION SIGN}}{ratio:.2f}", page)


def test_the_backtest_at_the_evaluation_cut_off_is_on_the_page(
    generated: Suggestion, page: str
) -> None:
    run = generated.backtest_run
    assert run is not None and run.cutoff == generated.frame.evaluation
    sections = [a["id"] for t, a in Page(page).tags if t == "section"]
    assert sections == [
        "suggestion",
        "rules",
        "holdout-calibration",
        "backtest",
        "backtest-lift",
        "backtest-distribution",
        "backtest-calibration",
        "backtest-conversion",
        "backtest-matrix",
        "backtest-thresholds",
        "model-yaml",
    ]
    backtest = pairs(Tables(page).cells["summary-table"])
    # the holdout is the leads open at the cut-off: the backtest's AUC is the summary's
    assert backtest["AUC"] == f"{generated.holdout_auc_points:.3f}"
    assert len(Tables(page).cells["deciles"]) == 10


def test_the_yaml_is_shown_as_written(generated: Suggestion, page: str) -> None:
    assert Tables(page).pre == [generated.yaml]


def test_the_page_loads_nothing_and_is_the_same_each_time(generated: Suggestion, page: str) -> None:
    assert_safe(page)
    plots = sorted(a["data-plot"] or "" for t, a in Page(page).tags if t == "figure")
    assert plots == sorted([*PLOTS, "matrix"])
    assert render_suggestion(generated) == page


def test_a_category_value_and_a_model_name_with_markup_stay_text(tiny: Path) -> None:
    found = suggest(load_dataset(tiny), name="<b>tiny</b>")
    label = f"source = {HOSTILE}"
    assert label in [r.feature.name for r in found.rules]
    text = render_suggestion(found)
    assert_safe(text)
    escaped = html.escape(label, quote=True)
    rows = Tables(text).cells["rules-table"]
    assert label in [row[0] for row in rows]
    assert f"<td>{escaped}</td>" in text
    assert "&lt;b&gt;tiny&lt;/b&gt;" in text
    # in the bar chart's SVG text and in the YAML too
    svg = text[text.index('<figure data-plot="points">') :]
    svg = svg[: svg.index("</figure>")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert Tables(text).pre == [found.yaml]


def test_without_a_split_by_time_the_page_says_why_there_is_no_backtest(tiny: Path) -> None:
    data = load_dataset(tiny)
    stratified = render_suggestion(suggest(data, split="stratified"))
    assert_safe(stratified)
    missing = [a["data-plot-missing"] for t, a in Page(stratified).tags if "data-plot-missing" in a]
    assert missing == ["backtest"]
    assert "stratified sample of leads from the same period" in stratified
    assert "holdout-calibration-table" in stratified
    alone = suggest(data, holdout=0)
    text = render_suggestion(alone)
    assert_safe(text)
    missing = [a["data-plot-missing"] for t, a in Page(text).tags if "data-plot-missing" in a]
    assert missing == ["holdout-calibration", "backtest"]
    assert "There is no holdout (--holdout 0)" in text
    summary = pairs(Tables(text).cells["suggestion-table"])
    assert summary["Holdout AUC: the integer points, scored by the engine"] == "no holdout"
    assert Tables(text).pre == [alone.yaml]
