"""The backtest report: one self-contained HTML page whose plots a real browser draws, that
loads nothing from anywhere, escapes what the data says and is the same for the same input."""

from __future__ import annotations

import itertools
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

import browser
from browser import Page
from leadscore.evaluate.backtest import Backtest, backtest, labelled
from leadscore.evaluate.report import (
    MIN_BAND_LEADS,
    Figure,
    Note,
    Section,
    render_backtest,
    score_bands,
    write_report,
)
from leadscore.io import generate, load_dataset
from leadscore.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
CUTOFF = datetime(2025, 10, 1)
PLOTS = ("lift", "distribution", "calibration", "conversion", "matrix")
HEADINGS = [
    "Summary",
    "Lift and gains",
    "Score distribution by outcome",
    "Calibration: conversion per score band",
    "Conversion per band",
    "Matrix: fit grade \N{MULTIPLICATION SIGN} engagement level",
    "Hand-over to sales",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backtest, dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("gen")
    generate(3000, seed=5, out=out, as_of=datetime(2026, 1, 1))
    data = load_dataset(out)
    model = load_model(MODELS / "committee.yaml")
    result = backtest(model, data, CUTOFF)
    per_lead, _ = labelled(model, data, CUTOFF, timedelta(days=result.horizon_days))
    return result, per_lead


@pytest.fixture(scope="module")
def page(run: tuple[Backtest, dict[str, np.ndarray]]) -> str:
    return render_backtest(*run)


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A real headless Chromium; a missing one fails the test (never skips it)."""
    try:
        with browser.chromium(width=1200, height=1000) as driver:
            yield driver
    except browser.BrowserUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def test_the_report_renders_in_a_real_browser(page: str, tmp_path: Path, driver: WebDriver) -> None:

    path = tmp_path / "report" / "backtest.html"
    write_report(path, page)
    driver.get(path.as_uri())
    assert driver.title == "Backtest: committee 1.0"
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
            return {
                width: box.width, height: box.height,
                shapes: svg.querySelectorAll('path, rect, use').length,
                caption: figure.querySelector('figcaption').textContent,
            };
            """,
            key,
        )
        assert found is not None, f"no <svg> in figure {key!r}"
        assert found["width"] > 100 and found["height"] > 100, (key, found)
        assert found["shapes"] > 10, (key, found["shapes"])
        assert found["caption"], key
    # the plots' text is text: searchable and selectable
    lift_text = driver.execute_script(
        "return document.querySelector('figure[data-plot=lift] svg').textContent"
    )
    assert "Lift per decile" in lift_text and "Cumulative gains" in lift_text
    assert (
        driver.execute_script("return document.querySelectorAll('[data-plot-missing]').length") == 0
    )
    deciles: list[list[str]] = driver.execute_script(
        """return [...document.querySelectorAll('table#deciles tbody tr')]
            .map(r => [...r.cells].map(c => c.textContent))"""
    )
    assert [row[0] for row in deciles] == [str(d) for d in range(1, 11)]
    header = driver.execute_script(
        "return [...document.querySelectorAll('table#deciles th')].map(c => c.textContent)"
    )
    assert "Lift" in header and "Conversion" in header
    # nothing fetched, nothing refused, nothing complained about
    assert driver.execute_script("return performance.getEntriesByType('resource')") == []
    assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('[id]')].map(e => e.id)"
    )
    assert len(ids) == len(set(ids)), "ids repeat across the inlined plots"


def test_the_page_loads_nothing_and_runs_nothing(page: str) -> None:
    tags = Page(page).tags
    names = {tag for tag, _ in tags}
    assert not names & {"script", "link", "iframe", "object", "embed", "img", "audio", "video"}
    for tag, attrs in tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                # only references within the page (an SVG <use>) or inline data
                assert value is not None and value.startswith(("#", "data:")), (tag, value)
    csp = [a for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")
    assert sorted(a["data-plot"] or "" for t, a in tags if t == "figure") == sorted(PLOTS)


def test_text_from_the_model_and_the_data_is_escaped(
    run: tuple[Backtest, dict[str, np.ndarray]],
) -> None:
    result, per_lead = run
    hostile = "<script>alert(1)</script>"
    conversion = dict(result.conversion)
    conversion["stage"] = [
        {**row, "value": f"{hostile} $\\frac{{1}}{{0}}$ {row['value']}"}
        for row in result.conversion["stage"]
    ]
    nasty = replace(
        result,
        model=hostile,
        model_version='"><img src=x onerror=alert(2)>',
        notes=["<b>bold</b> & co", "price in $"],
        conversion=conversion,
        thresholds=[{**t, "threshold": hostile} for t in result.thresholds],
    )
    text = render_backtest(nasty, per_lead)
    tags = {tag for tag, _ in Page(text).tags}
    assert not tags & {"script", "img", "b"}
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text
    # in the plots too: TeX is not parsed, the text is kept as written
    assert "$\\frac{1}{0}$" in text


def test_the_same_input_gives_the_same_page(
    run: tuple[Backtest, dict[str, np.ndarray]], page: str, tmp_path: Path
) -> None:
    assert render_backtest(*run) == page
    # ... in another process too (matplotlib's SVG ids are otherwise random)
    pickled = tmp_path / "run.pickle"
    pickled.write_bytes(pickle.dumps(run))
    code = (
        "import pickle, sys\n"
        "from leadscore.evaluate.report import render_backtest\n"
        "result, per_lead = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "sys.stdout.write(render_backtest(result, per_lead))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(pickled)],
        capture_output=True,
        check=True,
        encoding="utf-8",
    ).stdout
    assert other == page


def test_without_per_lead_scores_two_plots_are_left_out_with_a_note(
    run: tuple[Backtest, dict[str, np.ndarray]],
) -> None:
    text = render_backtest(run[0])
    tags = Page(text).tags
    missing = sorted(a["data-plot-missing"] or "" for t, a in tags if "data-plot-missing" in a)
    assert missing == ["calibration", "distribution"]
    plots = sorted(a["data-plot"] or "" for t, a in tags if t == "figure")
    assert plots == ["conversion", "lift", "matrix"]
    assert "which were not given to the report" in text


def test_a_backtest_without_deciles_says_so(run: tuple[Backtest, dict[str, np.ndarray]]) -> None:
    text = render_backtest(replace(run[0], deciles=[]), run[1])
    assert 'data-plot-missing="lift"' in text
    assert 'id="deciles"' not in text


def test_more_sections_can_be_added(run: tuple[Backtest, dict[str, np.ndarray]]) -> None:
    extra = Section(
        "drift",
        "Drift <over time>",
        [Figure("drift", "AUC per cut-off", "<svg></svg>"), Note("two cut-offs only")],
    )
    text = render_backtest(*run, sections=[extra])
    assert text.index('<section id="drift">') > text.index('<section id="thresholds">')
    assert "<h2>Drift &lt;over time&gt;</h2>" in text
    assert '<figure data-plot="drift">' in text


def test_score_bands_cover_every_lead_with_full_ends() -> None:
    rng = np.random.default_rng(3)
    totals = np.concatenate([rng.normal(30, 20, 2000), [250.0, 260.0, -90.0]])
    won = rng.random(len(totals)) < 0.1
    bands = score_bands(totals, won)
    assert sum(b.leads for b in bands) == len(totals)
    assert sum(b.won for b in bands) == int(won.sum())
    assert bands[0].leads >= MIN_BAND_LEADS and bands[-1].leads >= MIN_BAND_LEADS
    assert bands[0].low <= totals.min() and bands[-1].high > totals.max()
    assert all(a.high <= b.low for a, b in itertools.pairwise(bands))
    # one score for everyone: one band
    assert len(score_bands(np.full(50, 7.0), np.zeros(50, dtype=bool))) == 1


def test_write_report_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "report.html"
    write_report(path, "<p>first</p>")
    write_report(path, "<p>zweite Fassung \N{EM DASH} ok</p>")
    assert path.read_text(encoding="utf-8") == "<p>zweite Fassung \N{EM DASH} ok</p>"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_a_missing_browser_says_to_run_make_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(browser.BrowserUnavailable, match=r"run `make test`"), browser.chromium():
        pass
