"""A backtest as one self-contained HTML page: plots inlined as SVG, tables as plain HTML.

The page loads nothing: no script, no external style sheet, font or image (a content security
policy says so to the browser too), so it can be mailed, archived or opened offline. Plots are
drawn with matplotlib on its own figures (never pyplot's global state) and inlined as SVG, so
they stay crisp and their text searchable. The same backtest gives the same bytes.

    html = render_backtest(result, per_lead)   # per_lead: the arrays of `labelled()`
    write_report(Path("backtest.html"), html)

A page is a list of `Section`s, each a heading and blocks (`Figure`, `Table`, `Note`);
`render_backtest` builds the backtest's own and appends any given `sections`, and
`render_page` renders any list of them. The other evaluations have pages of their own:
`render_cases`, `render_compare`, `render_channels`, `render_capacity` and `render_sample`.
Each but compare also has a `*_report` twin that returns the `Report` (title, subtitle,
sections) unrendered, for pages that place the sections in a layout of their own.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.style import context as style_context
from matplotlib.ticker import MaxNLocator, PercentFormatter

if TYPE_CHECKING:
    from leadscore.evaluate.backtest import Backtest
    from leadscore.evaluate.capacity import Capacity
    from leadscore.evaluate.cases import Case
    from leadscore.evaluate.channels import ChannelRow, Channels
    from leadscore.evaluate.sample import Sample

__all__ = [
    "Band",
    "Block",
    "Figure",
    "Note",
    "Report",
    "Section",
    "Table",
    "backtest_report",
    "backtest_sections",
    "capacity_report",
    "cases_report",
    "channels_report",
    "plot",
    "render_backtest",
    "render_capacity",
    "render_cases",
    "render_channels",
    "render_compare",
    "render_page",
    "render_sample",
    "sample_report",
    "score_bands",
    "write_report",
]

# colour-blind safe (Okabe-Ito)
BLUE = "#0072B2"
ORANGE = "#E69F00"
GREY = "#666666"
# Score bands at either end with fewer leads than this are merged inwards.
MIN_BAND_LEADS = 20
GROUP_TITLES = {
    "grade": "Fit grade",
    "engagement": "Engagement level",
    "temperature": "Temperature",
    "stage": "Stage",
}

DASH = "\N{EN DASH}"
TIMES = "\N{MULTIPLICATION SIGN}"
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
_URL_REF = re.compile(r"url\(#([^)]+)\)")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --- the page structure -------------------------------------------------------------------


class Block(Protocol):
    """Anything a section holds: it renders itself as (safe) HTML."""

    def html(self) -> str: ...


@dataclass(frozen=True)
class Figure:
    """A plot: inline SVG markup (made by `plot`, trusted) and a caption (plain text)."""

    key: str
    caption: str
    svg: str

    def html(self) -> str:
        return (
            f'<figure data-plot="{_e(self.key)}">\n{self.svg}\n'
            f"<figcaption>{_e(self.caption)}</figcaption>\n</figure>"
        )


@dataclass(frozen=True)
class Table:
    """A plain HTML table of text cells; columns from `numeric_from` on are right-aligned, or
    exactly the columns `numeric` when it is given."""

    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""
    key: str | None = None
    numeric_from: int = 1
    numeric: tuple[int, ...] | None = None

    def html(self) -> str:
        def right(i: int) -> bool:
            return i in self.numeric if self.numeric is not None else i >= self.numeric_from

        def cells(tag: str, values: Sequence[object]) -> str:
            return "".join(
                f'<{tag} class="num">{_e(v)}</{tag}>' if right(i) else f"<{tag}>{_e(v)}</{tag}>"
                for i, v in enumerate(values)
            )

        ident = f' id="{_e(self.key)}"' if self.key else ""
        caption = f"<caption>{_e(self.caption)}</caption>\n" if self.caption else ""
        body = "\n".join(f"<tr>{cells('td', row)}</tr>" for row in self.rows)
        return (
            f"<table{ident}>\n{caption}<thead><tr>{cells('th', self.header)}</tr></thead>\n"
            f"<tbody>\n{body}\n</tbody>\n</table>"
        )


@dataclass(frozen=True)
class Note:
    """A remark in plain text; `missing` names a plot that could not be drawn and says why."""

    text: str
    missing: str | None = None

    def html(self) -> str:
        attr = f' data-plot-missing="{_e(self.missing)}"' if self.missing else ""
        return f'<p class="note"{attr}>{_e(self.text)}</p>'


@dataclass(frozen=True)
class Section:
    """A heading with an optional introduction (plain text) and blocks, in order."""

    key: str
    title: str
    blocks: Sequence[Block] = field(default_factory=tuple)
    intro: str = ""

    def html(self) -> str:
        parts = [f'<section id="{_e(self.key)}">', f"<h2>{_e(self.title)}</h2>"]
        if self.intro:
            parts.append(f"<p>{_e(self.intro)}</p>")
        parts.extend(block.html() for block in self.blocks)
        parts.append("</section>")
        return "\n".join(parts)


@dataclass(frozen=True)
class Report:
    """A report before it becomes a page: its title, a subtitle and the sections, so that a
    page of our own (the dashboard's) can place them in its layout."""

    title: str
    sections: Sequence[Section]
    subtitle: str = ""

    def body(self) -> str:
        """The sections' HTML, in order."""
        return "\n".join(section.html() for section in self.sections)

    def page(self) -> str:
        """The report as one self-contained HTML document."""
        return render_page(self.title, self.sections, self.subtitle)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
  max-width: 62rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.meta, .note, figcaption { color: #555; }
.note { border-left: 3px solid #E69F00; padding-left: .6rem; }
figure { margin: 1rem 0; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: .9rem; margin-top: .3rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { background: #f5f5f5; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
""".strip()

# Nothing may be fetched or run: inline styles only; data: images at most.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def render_page(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """A complete, self-contained HTML document of the sections."""
    body = "\n".join(section.html() for section in sections)
    meta = f'<p class="meta">{_e(subtitle)}</p>\n' if subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(title)}</h1>\n{meta}{body}\n</main>\n</body>\n</html>\n"
    )


def write_report(path: Path, html: str) -> None:
    """Write the page as UTF-8, atomically: a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- plots ----------------------------------------------------------------------------------


def _inline_svg(svg: str, key: str, label: str) -> str:
    """matplotlib's SVG made fit to inline: no prolog or metadata, ids prefixed by the key."""
    root = ET.fromstring(svg[svg.index("<svg") :])
    prefix = f"plot-{key}-"
    for parent in root.iter():
        for child in list(parent):
            if child.tag == f"{{{_SVG_NS}}}metadata":
                parent.remove(child)
    for element in root.iter():
        element.tag = element.tag.removeprefix(f"{{{_SVG_NS}}}")
        for name, value in list(element.attrib.items()):
            if name == "id":
                element.set(name, prefix + value)
            elif name == _XLINK_HREF:
                # SVG 2 `href`: the HTML parser knows it without a namespace
                del element.attrib[name]
                local = value.startswith("#")
                element.set("href", f"#{prefix}{value[1:]}" if local else value)
            elif "url(#" in value:
                element.set(name, _URL_REF.sub(lambda m: f"url(#{prefix}{m.group(1)})", value))
    root.set("xmlns", _SVG_NS)
    root.set("id", f"plot-{key}")
    root.set("role", "img")
    root.set("aria-label", label)
    return ET.tostring(root, encoding="unicode")


def plot(
    key: str, caption: str, draw: Callable[[MplFigure], None], size: tuple[float, float]
) -> Figure:
    """Draw a plot on a fresh matplotlib figure (`size` in inches) and inline it as SVG."""
    with (
        style_context("default"),
        mpl.rc_context(
            {
                # ids in the SVG are hashes salted with this: fixed, so the output is
                # reproducible, and per plot, so two plots on one page never share an id
                "svg.hashsalt": f"leadscore-report-{key}",
                # text stays text: searchable, selectable, small
                "svg.fonttype": "none",
                # "$" in a stage or model name is a dollar sign, not TeX
                "text.parse_math": False,
                "text.usetex": False,
                "font.family": "sans-serif",
                "font.sans-serif": ["DejaVu Sans"],
                "font.size": 9.0,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.titlesize": 10.0,
                "axes.titleweight": "bold",
            }
        ),
    ):
        figure = MplFigure(figsize=size, layout="constrained")
        draw(figure)
        out = io.StringIO()
        figure.savefig(
            out,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return Figure(key=key, caption=caption, svg=_inline_svg(out.getvalue(), key, caption))


def _percent_axis(ax: Axes, axis: str = "y") -> None:
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def _label(value: object) -> str:
    return "(none)" if value is None else str(value)


def _natural(values: Sequence[object]) -> list[object]:
    """Values in order, numerically when they are all integers (levels "1" … "10")."""
    if all(str(v).lstrip("-").isdigit() for v in values):
        return sorted(values, key=lambda v: int(str(v)))
    return sorted(values, key=str)


# --- numbers --------------------------------------------------------------------------------


def _pct(value: float | None, decimals: int = 1) -> str:
    return DASH if value is None else f"{100 * value:.{decimals}f}%"


def _num(value: float | None, decimals: int = 2) -> str:
    return DASH if value is None else f"{value:,.{decimals}f}"


def _wilson(won: int, leads: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson interval of a conversion rate: honest for small bands and 0 or 100%."""
    if leads == 0:
        return (0.0, 1.0)
    p = won / leads
    d = 1 + z * z / leads
    centre = (p + z * z / (2 * leads)) / d
    half = z * math.sqrt(p * (1 - p) / leads + z * z / (4 * leads * leads)) / d
    return (max(0.0, centre - half), min(1.0, centre + half))


def _nice_step(span: float, parts: int) -> float:
    """The widest round width (1, 2, 2.5 or 5 times a power of ten) cutting `span` into at
    least `parts`."""
    raw = span / parts if span > 0 else 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return max(m * magnitude for m in (1.0, 2.0, 2.5, 5.0) if m * magnitude <= raw * (1 + 1e-9))


def _edges(totals: np.ndarray, parts: int) -> np.ndarray:
    low, high = float(totals.min()), float(totals.max())
    step = _nice_step(high - low, parts)
    start = math.floor(low / step) * step
    count = max(1, math.floor((high - start) / step) + 1)
    return start + step * np.arange(count + 1)


@dataclass(frozen=True)
class Band:
    """Leads scoring at least `low` and below `high`."""

    low: float
    high: float
    leads: int
    won: int

    @property
    def conversion(self) -> float:
        return self.won / self.leads

    @property
    def label(self) -> str:
        return f"{self.low:g} to {self.high:g}".replace("-", "\N{MINUS SIGN}")


def score_bands(totals: np.ndarray, won: np.ndarray, parts: int = 10) -> list[Band]:
    """Round-numbered score bands, sparse ends merged inwards, empty bands left out."""
    edges = _edges(totals, parts)
    index = np.clip(np.searchsorted(edges, totals, side="right") - 1, 0, len(edges) - 2)
    leads = np.bincount(index, minlength=len(edges) - 1)
    wins = np.bincount(index, weights=won.astype(float), minlength=len(edges) - 1)
    bands = [
        Band(float(edges[i]), float(edges[i + 1]), int(leads[i]), int(wins[i]))
        for i in range(len(edges) - 1)
    ]

    def merge(a: Band, b: Band) -> Band:
        return Band(a.low, b.high, a.leads + b.leads, a.won + b.won)

    while len(bands) > 1 and bands[-1].leads < MIN_BAND_LEADS:
        bands[-2:] = [merge(bands[-2], bands[-1])]
    while len(bands) > 1 and bands[0].leads < MIN_BAND_LEADS:
        bands[:2] = [merge(bands[0], bands[1])]
    return [b for b in bands if b.leads > 0]


# --- the backtest's sections ----------------------------------------------------------------


def _summary(result: Backtest) -> Section:
    t = result.truth
    rows = [
        ["Leads evaluated", f"{t.leads:,}"],
        ["Won within the horizon", f"{t.won:,}"],
        ["Lost within the horizon", f"{t.lost:,}"],
        ["Base rate (won / evaluated)", _pct(result.base_rate)],
        ["AUC", _num(result.auc, 3)],
        ["Top-decile lift", _num(result.deciles[0].lift) if result.deciles else DASH],
        ["Left out: created after the cut-off", f"{t.not_yet_created:,}"],
        ["Left out: won or lost before the cut-off", f"{t.decided_before:,}"],
    ]
    blocks: list[Block] = [Table(["Measure", "Value"], rows, key="summary-table")]
    blocks.extend(Note(note) for note in result.notes)
    return Section(
        "summary",
        "Summary",
        blocks,
        intro=(
            "Every lead that existed and was undecided at the cut-off is scored from what was "
            "known then; the truth is who was won within the horizon after it."
        ),
    )


def _lift(result: Backtest) -> Section:
    deciles = result.deciles
    if not deciles:
        return Section(
            "lift",
            "Lift and gains",
            [Note("No deciles in this backtest (see the notes above): no lift chart.", "lift")],
        )
    total = sum(d.leads for d in deciles)

    def draw(figure: MplFigure) -> None:
        left, right = figure.subplots(1, 2)
        x = [d.decile for d in deciles]
        left.bar(x, [d.lift for d in deciles], color=BLUE, width=0.7)
        left.axhline(1.0, color=GREY, linestyle="--", linewidth=1)
        left.text(10.4, 1.0, "no model", color=GREY, fontsize=8, va="bottom", ha="right")
        left.set_xticks(x)
        left.set_xlabel("Decile (1 = highest scores)")
        left.set_ylabel("Lift (conversion / base rate)")
        left.set_title("Lift per decile")
        share = np.cumsum([0] + [d.leads for d in deciles]) / total
        gains = [0.0] + [d.cumulative_gain for d in deciles]
        right.plot(share, gains, color=BLUE, marker="o", markersize=3.5, label="model")
        right.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="random")
        if result.base_rate > 0:
            right.plot(
                [0, result.base_rate, 1],
                [0, 1, 1],
                color=ORANGE,
                linestyle=":",
                linewidth=1.2,
                label="perfect",
            )
        _percent_axis(right, "x")
        _percent_axis(right, "y")
        right.set_xlim(0, 1)
        right.set_ylim(0, 1.02)
        right.set_xlabel("Leads contacted, best scores first")
        right.set_ylabel("Share of all won leads")
        right.set_title("Cumulative gains")
        right.legend(loc="lower right", frameon=False)

    figure = plot(
        "lift",
        f"Lift per score decile and cumulative gains. The top tenth of the leads converts "
        f"{deciles[0].lift:.2f} times as often as the average lead and holds "
        f"{_pct(deciles[0].cumulative_gain, 0)} of all won leads.",
        draw,
        (9.0, 3.6),
    )
    rows = [
        [
            d.decile,
            f"{d.leads:,}",
            f"{d.won:,}",
            _num(d.min_score),
            _num(d.max_score),
            _pct(d.conversion),
            _num(d.lift),
            _pct(d.cumulative_gain),
        ]
        for d in deciles
    ]
    table = Table(
        ["Decile", "Leads", "Won", "Lowest score", "Highest score", "Conversion", "Lift", "Gain"],
        rows,
        caption="Deciles (ties broken by lead id)",
        key="deciles",
    )
    return Section("lift", "Lift and gains", [figure, table])


def _needs_leads(key: str, what: str) -> Note:
    return Note(
        f"No {what}: it needs each lead's score and outcome, which were not given to the report.",
        key,
    )


def _per_lead(per_lead: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    missing = [k for k in ("total", "won") if k not in per_lead]
    if missing:
        raise ValueError(f"per_lead lacks {', '.join(missing)}: pass the arrays of labelled()")
    totals = np.asarray(per_lead["total"], dtype=float)
    won = np.asarray(per_lead["won"], dtype=bool)
    if totals.shape != won.shape or totals.ndim != 1:
        raise ValueError(
            f"per_lead total and won must be 1-d arrays of one length, not {totals.shape} and "
            f"{won.shape}"
        )
    return totals, won


def _distribution(per_lead: Mapping[str, np.ndarray] | None) -> Section:
    key, title = "distribution", "Score distribution by outcome"
    if per_lead is None:
        return Section(key, title, [_needs_leads(key, "score distribution")])
    totals, won = _per_lead(per_lead)
    if len(totals) == 0:
        return Section(key, title, [Note("No leads to plot.", key)])
    bins = _edges(totals, 25).tolist()
    groups = [
        (f"won (n={int(won.sum()):,})", totals[won], ORANGE),
        (f"not won (n={int((~won).sum()):,})", totals[~won], BLUE),
    ]

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        for label, values, colour in groups:
            if len(values) == 0:
                continue
            weights = np.full(len(values), 1 / len(values))
            ax.hist(values, bins=bins, weights=weights, color=colour, alpha=0.3)
            ax.hist(
                values,
                bins=bins,
                weights=weights,
                color=colour,
                histtype="step",
                label=label,
            )
            ax.axvline(float(np.median(values)), color=colour, linestyle="--", linewidth=1)
        _percent_axis(ax)
        ax.set_xlabel("Total score at the cut-off")
        ax.set_ylabel("Share of the group's leads")
        ax.set_title("Scores of won and not-won leads (dashed: medians)")
        ax.legend(frameon=False)

    medians = ", ".join(
        f"{label.split(' (')[0]} {np.median(values):.1f}"
        for label, values, _ in groups
        if len(values)
    )
    figure = plot(
        key,
        f"Each group's scores as a share of the group, so that the few won leads show as "
        f"clearly as the many others. Median score: {medians}.",
        draw,
        (9.0, 3.6),
    )
    return Section(key, title, [figure])


def _calibration(result: Backtest, per_lead: Mapping[str, np.ndarray] | None) -> Section:
    key, title = "calibration", "Calibration: conversion per score band"
    if per_lead is None:
        return Section(key, title, [_needs_leads(key, "calibration")])
    totals, won = _per_lead(per_lead)
    if len(totals) == 0:
        return Section(key, title, [Note("No leads to plot.", key)])
    bands = score_bands(totals, won)
    intervals = [_wilson(b.won, b.leads) for b in bands]

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        x = np.arange(len(bands))
        rates = np.array([b.conversion for b in bands])
        errors = np.array([[r - lo, hi - r] for r, (lo, hi) in zip(rates, intervals, strict=True)])
        ax.bar(x, rates, color=BLUE, width=0.7)
        ax.errorbar(x, rates, yerr=errors.T, fmt="none", ecolor="#333333", capsize=3, lw=1)
        ax.axhline(result.base_rate, color=GREY, linestyle="--", linewidth=1)
        ax.text(
            -0.45,
            result.base_rate,
            f"base rate {_pct(result.base_rate)}",
            color=GREY,
            fontsize=8,
            ha="left",
            va="bottom",
        )
        for i, (b, (_, hi)) in enumerate(zip(bands, intervals, strict=True)):
            ax.text(i, hi + 0.01, f"n={b.leads:,}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [b.label for b in bands], rotation=30, ha="right")
        _percent_axis(ax)
        ax.set_ylim(0, min(1.05, max(hi for _, hi in intervals) + 0.08))
        ax.set_xlabel("Total score at the cut-off")
        ax.set_ylabel("Won within the horizon")
        ax.set_title("Conversion per score band (bars: 95% interval)")

    figure = plot(
        key,
        "Share of the leads in each score band that were won: higher scores should convert "
        f"more. Bands are {bands[0].high - bands[0].low:g} points wide where the leads allow; "
        f"sparse ends are merged until they hold at least {MIN_BAND_LEADS} leads.",
        draw,
        (9.0, 3.8),
    )
    rows = [
        [b.label, f"{b.leads:,}", f"{b.won:,}", _pct(b.conversion), f"{_pct(lo)}{DASH}{_pct(hi)}"]
        for b, (lo, hi) in zip(bands, intervals, strict=True)
    ]
    table = Table(
        ["Score band", "Leads", "Won", "Conversion", "95% interval"],
        rows,
        caption="Score bands (at least the lower bound, below the upper)",
        key="calibration-table",
    )
    return Section(key, title, [figure, table])


def _conversion(result: Backtest) -> Section:
    key, title = "conversion", "Conversion per band"
    groups = [g for g in result.conversion if g != "cell" and result.conversion[g]]
    if not groups:
        return Section(key, title, [Note("The model gives no grades, levels or stages.", key)])

    def draw(figure: MplFigure) -> None:
        columns = min(2, len(groups))
        rows = math.ceil(len(groups) / columns)
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, group in zip(axes, groups, strict=False):
            entries = result.conversion[group]
            labels = [_label(r["value"]) for r in entries]
            rates = [float(r["conversion"]) for r in entries]
            x = np.arange(len(entries))
            ax.bar(x, rates, color=BLUE, width=0.7)
            ax.axhline(result.base_rate, color=GREY, linestyle="--", linewidth=1)
            for i, r in enumerate(entries):
                ax.text(i, rates[i], f"n={r['leads']:,}", ha="center", va="bottom", fontsize=7)
            long = max(len(s) for s in labels) > 6
            ax.set_xticks(x, labels, rotation=30 if long else 0, ha="right" if long else "center")
            _percent_axis(ax)
            ax.set_ylim(0, max([*rates, result.base_rate]) * 1.2 + 0.01)
            ax.set_title(GROUP_TITLES.get(group, group))
            ax.set_ylabel("Conversion")
        for ax in axes[len(groups) :]:
            ax.set_visible(False)

    rows_per_figure = math.ceil(len(groups) / 2)
    figure = plot(
        key,
        "Share of the leads won, per value the model gave at the cut-off (dashed: base rate).",
        draw,
        (9.0, 3.0 * rows_per_figure),
    )
    tables: list[Block] = [
        Table(
            [GROUP_TITLES.get(g, g), "Leads", "Won", "Conversion"],
            [
                [_label(r["value"]), f"{r['leads']:,}", f"{r['won']:,}", _pct(r["conversion"])]
                for r in result.conversion[g]
            ],
            key=f"conversion-{g}",
        )
        for g in groups
    ]
    return Section(key, title, [figure, *tables])


def _matrix(result: Backtest) -> Section:
    key, title = "matrix", f"Matrix: fit grade {TIMES} engagement level"
    conv = result.conversion
    if not all(conv.get(g) for g in ("grade", "engagement", "cell")):
        return Section(
            key, title, [Note(f"The model has no grade {TIMES} engagement matrix.", key)]
        )
    grades = [r["value"] for r in conv["grade"] if r["value"] is not None]
    levels = _natural([r["value"] for r in conv["engagement"] if r["value"] is not None])
    cells = {r["value"]: r for r in conv["cell"] if r["value"] is not None}
    rate = np.full((len(grades), len(levels)), np.nan)
    leads = np.zeros((len(grades), len(levels)), dtype=int)
    won = np.zeros((len(grades), len(levels)), dtype=int)
    for i, g in enumerate(grades):
        for j, level in enumerate(levels):
            entry = cells.get(f"{g}{level}")
            if entry is not None:
                rate[i, j], leads[i, j], won[i, j] = (
                    entry["conversion"],
                    entry["leads"],
                    entry["won"],
                )
    if np.isnan(rate).all():
        return Section(key, title, [Note("No lead has both a grade and a level.", key)])

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        cmap = mpl.colormaps["YlGnBu"].with_extremes(bad="#f0f0f0")
        norm = Normalize(vmin=0.0, vmax=max(float(np.nanmax(rate)), 1e-9))
        image = ax.pcolormesh(
            np.ma.masked_invalid(rate), cmap=cmap, norm=norm, edgecolors="white", linewidth=2
        )
        ax.invert_yaxis()
        for i in range(len(grades)):
            for j in range(len(levels)):
                if leads[i, j] == 0:
                    ax.text(j + 0.5, i + 0.5, DASH, ha="center", va="center", color=GREY)
                    continue
                r, g, b, _ = cmap(norm(rate[i, j]))
                ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "#222222"
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{_pct(rate[i, j])}\n{won[i, j]:,}/{leads[i, j]:,}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=ink,
                )
        ax.set_xticks(np.arange(len(levels)) + 0.5, [_label(v) for v in levels])
        ax.set_yticks(np.arange(len(grades)) + 0.5, [_label(v) for v in grades])
        ax.set_xlabel("Engagement level")
        ax.set_ylabel("Fit grade")
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        bar = figure.colorbar(image, ax=ax, shrink=0.9)
        bar.outline.set_visible(False)
        bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        bar.ax.yaxis.set_major_locator(MaxNLocator(5))
        bar.set_label("Conversion")
        ax.set_title("Conversion per matrix cell (won / leads)")

    figure = plot(
        key,
        "Share of the leads won in each cell of fit grade and engagement level; grey cells "
        "have no leads. Small cells are noisy: read them with their counts.",
        draw,
        (max(5.0, 1.2 * len(levels) + 2.8), max(3.0, 0.75 * len(grades) + 1.4)),
    )
    rows = [
        [
            _label(g),
            *[
                f"{_pct(rate[i, j])} ({won[i, j]:,}/{leads[i, j]:,})" if leads[i, j] else DASH
                for j in range(len(levels))
            ],
        ]
        for i, g in enumerate(grades)
    ]
    table = Table(
        ["Grade \\ level", *[_label(v) for v in levels]],
        rows,
        caption="Conversion per cell (won / leads)",
        key="matrix-table",
    )
    return Section(key, title, [figure, table])


def _thresholds(result: Backtest) -> Section | None:
    if not result.thresholds:
        return None
    rows = [
        [
            r["threshold"],
            f"{r['leads']:,}",
            f"{r['won']:,}",
            _pct(r["precision"]),
            _pct(r["recall"]),
        ]
        for r in result.thresholds
    ]
    return Section(
        "thresholds",
        "Hand-over to sales",
        [
            Table(
                ["Stage", "Leads", "Won", "Precision", "Recall"],
                rows,
                key="thresholds-table",
            )
        ],
        intro=(
            "Precision: the share of the leads handed over that were won. Recall: the share of "
            "all won leads that were handed over."
        ),
    )


def backtest_sections(
    result: Backtest, per_lead: Mapping[str, np.ndarray] | None = None
) -> list[Section]:
    """The sections of a backtest report, in page order."""
    sections = [
        _summary(result),
        _lift(result),
        _distribution(per_lead),
        _calibration(result, per_lead),
        _conversion(result),
        _matrix(result),
        _thresholds(result),
    ]
    return [s for s in sections if s is not None]


def render_backtest(
    result: Backtest,
    per_lead: Mapping[str, np.ndarray] | None = None,
    *,
    sections: Sequence[Section] = (),
) -> str:
    """The backtest as one self-contained HTML page.

    `per_lead` are the per-lead arrays of `labelled()` (at least `total` and `won`); without
    them the score distribution and calibration are left out, with a note saying so.
    `sections` are appended after the backtest's own.
    """
    return backtest_report(result, per_lead, sections=sections).page()


def backtest_report(
    result: Backtest,
    per_lead: Mapping[str, np.ndarray] | None = None,
    *,
    sections: Sequence[Section] = (),
) -> Report:
    """The backtest's title, subtitle and sections (see `render_backtest`)."""
    title = f"Backtest: {result.model} {result.model_version}"
    subtitle = (
        f"Scored as of {result.cutoff.isoformat(sep=' ')} (UTC); won within "
        f"{result.horizon_days:g} days after it is the truth. {result.truth.leads:,} leads, "
        f"{result.truth.won:,} won ({_pct(result.base_rate)})."
    )
    return Report(title, [*backtest_sections(result, per_lead), *sections], subtitle)


# --- the other evaluations' pages -----------------------------------------------------------

#: At most this many leads' trajectories in one plot (the tables list every case).
MAX_CASES_PER_PLOT = 50
#: At most this many bars in one bar chart (the tables list every row).
MAX_BARS = 30

VERMILLION = "#D55E00"
GREEN = "#009E73"
ARROW = "\N{RIGHTWARDS ARROW}"
# one colour per lead of a plot, repeating (matplotlib's tab10)
_LINE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# one marker per stage a lead moves into, in the order the plot meets them
_STAGE_MARKERS = ("o", "s", "^", "D", "v", "P", "h", "<", ">", "p")
_CASE_KINDS = {
    "won": (
        "Won leads",
        "The most recently won leads: their score after each of their events, up to just "
        "before they were won. Would the model have handed them to sales, and in time?",
    ),
    "lost": (
        "Lost leads",
        "The most recently lost leads: their score after each of their events, up to just "
        "before they were lost.",
    ),
    "recent": (
        "Recent open leads",
        "The most recently created leads that are still open: their score after each of their "
        "events, up to the as-of.",
    ),
}


def _when(ts: datetime | str | None) -> str:
    """A timestamp as shown on a page: ISO 8601 with a space, or a dash."""
    if ts is None:
        return DASH
    if isinstance(ts, str):
        return ts.replace("T", " ")
    return ts.isoformat(sep=" ")


def _text(value: object) -> str:
    """A cell: numbers with two decimals, yes/no, a dash for nothing."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return _when(value)
    return str(value)


def _notes(notes: Sequence[str]) -> list[Block]:
    return [Note(note) for note in notes]


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _times(values: Sequence[datetime]) -> np.ndarray:
    """Datetimes as an array matplotlib puts on a date axis."""
    return np.array(values, dtype="datetime64[us]")


def _hbars(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    colour: str = BLUE,
    texts: Sequence[str] | None = None,
) -> None:
    """Horizontal bars, the first at the top, each with its text at its end."""
    y = np.arange(len(values))
    ax.barh(y, values, color=colour, height=0.7)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    for i, text in enumerate(texts or []):
        ax.text(values[i], i, f" {text}", va="center", ha="left", fontsize=7)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)


def _capped(what: str, shown: int, total: int, rest: str = "the table lists all") -> str:
    """What a plot capped at `shown` of `total` leaves out, for its caption ("" if nothing)."""
    if shown >= total:
        return ""
    return f" The plot shows the first {shown} of the {total} {what}; {rest}."


# cases


def _case_verdict(case: Case) -> str:
    last = case.before_outcome or (case.steps[-1] if case.steps else None)
    if last is None:
        return f"{case.lead_id}: {case.kind}, no steps"
    state = f"{last.total:,.2f} points, {last.temperature or DASH}, {last.stage or DASH}"
    if case.outcome_ts is not None:
        return f"{case.lead_id}: {case.kind} {_when(case.outcome_ts)}; just before: {state}"
    return f"{case.lead_id}: {case.kind}; at {_when(last.ts)}: {state}"


def _case_table(case: Case, key: str) -> Table:
    rows = []
    last = len(case.steps) - 1
    for i, step in enumerate(case.steps):
        if step.event_type is not None:
            event = step.event_type
        elif i == 0:
            event = "(start)"
        elif i == last and case.outcome_ts is not None:
            event = f"(just before {case.kind})"
        else:
            event = "(as of)"
        stage = step.stage or DASH
        if i > 0 and step.stage != case.steps[i - 1].stage:
            stage = f"{ARROW} {stage}"
        rows.append([_when(step.ts), event, f"{step.total:,.2f}", step.temperature or DASH, stage])
    return Table(
        ["Time (UTC)", "Event", "Points", "Temperature", "Stage"],
        rows,
        caption=_case_verdict(case),
        key=key,
        numeric=(2,),
    )


def _trajectories(key: str, kind: str, shown: Sequence[Case], total: int) -> Figure:
    outcome = any(c.before_outcome is not None for c in shown)
    named = len(shown) <= len(_LINE_COLOURS)

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        markers: dict[str, str] = {}
        before = False
        for i, case in enumerate(shown):
            if not case.steps:
                continue
            colour = _LINE_COLOURS[i % len(_LINE_COLOURS)]
            times = _times([s.ts for s in case.steps])
            totals = [s.total for s in case.steps]
            ax.step(times, totals, where="post", color=colour, linewidth=1.2, alpha=0.85)
            for prev, step in zip(case.steps, case.steps[1:], strict=False):
                if step.stage == prev.stage:
                    continue
                stage = _label(step.stage)
                marker = markers.setdefault(
                    stage, _STAGE_MARKERS[len(markers) % len(_STAGE_MARKERS)]
                )
                ax.scatter(
                    _times([step.ts]),
                    [step.total],
                    marker=marker,
                    s=34,
                    facecolor=colour,
                    edgecolor="#222222",
                    linewidth=0.8,
                    zorder=3,
                )
            if case.before_outcome is not None:
                before = True
                b = case.before_outcome
                ax.scatter(
                    _times([b.ts]),
                    [b.total],
                    marker="*",
                    s=150,
                    facecolor=colour,
                    edgecolor="#222222",
                    linewidth=0.8,
                    zorder=4,
                )
        _date_axis(ax)
        ax.set_xlabel("Time (UTC)")
        ax.set_ylabel("Total score")
        ax.set_title(f"Score after each event: {len(shown)} {kind} leads")
        handles = [
            Line2D(
                [],
                [],
                marker=marker,
                linestyle="none",
                markerfacecolor="white",
                markeredgecolor="#222222",
                label=f"stage {ARROW} {stage}",
            )
            for stage, marker in markers.items()
        ]
        if before:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="*",
                    markersize=11,
                    linestyle="none",
                    markerfacecolor="white",
                    markeredgecolor="#222222",
                    label=f"just before {kind}",
                )
            )
        if named:
            handles += [
                Line2D([], [], color=_LINE_COLOURS[i], linewidth=1.5, label=case.lead_id)
                for i, case in enumerate(shown)
            ]
        if handles:
            figure.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=8)

    caption = (
        "Each line is one lead's total score over time, stepping after each of its events. "
        "Markers show where the stage changes (shape: the stage moved into)"
        + ("; the star is the score just before the outcome." if outcome else ".")
        + ("" if named else " Colours repeat: the tables below name each lead.")
        + _capped("cases", len(shown), total, "the tables below list every one")
    )
    return plot(key, caption, draw, (9.0, 4.0))


def render_cases(
    cases: Sequence[Case], *, title: str = "Cases", as_of: datetime | None = None
) -> str:
    """Cases (won, lost and recent leads) as one self-contained HTML page: per kind a plot of
    the leads' score trajectories and, per lead, the table of its steps."""
    return cases_report(cases, title=title, as_of=as_of).page()


def cases_report(
    cases: Sequence[Case], *, title: str = "Cases", as_of: datetime | None = None
) -> Report:
    """The cases' title, subtitle and sections (see `render_cases`)."""
    kinds = [k for k in _CASE_KINDS if any(c.kind == k for c in cases)]
    kinds += sorted({c.kind for c in cases} - set(_CASE_KINDS))
    sections = []
    for index, kind in enumerate(kinds):
        mine = [c for c in cases if c.kind == kind]
        key = kind if kind in _CASE_KINDS else f"kind-{index}"
        heading, intro = _CASE_KINDS.get(kind, (f"{kind} leads", ""))
        blocks: list[Block] = []
        shown = [c for c in mine if c.steps][:MAX_CASES_PER_PLOT]
        if shown:
            blocks.append(_trajectories(f"trajectory-{key}", kind, shown, len(mine)))
        else:
            blocks.append(Note("No case has a step to plot.", f"trajectory-{key}"))
        blocks += [_case_table(c, f"case-{key}-{i + 1}") for i, c in enumerate(mine)]
        sections.append(Section(key, f"{heading} ({len(mine):,})", blocks, intro=intro))
    if not sections:
        sections.append(Section("cases", "Cases", [Note("No cases: nothing to show.")]))
    counts = ", ".join(f"{sum(c.kind == k for c in cases):,} {k}" for k in kinds)
    subtitle = (f"As of {_when(as_of)} (UTC): " if as_of else "") + (
        f"{counts} leads, each scored after every one of its events." if counts else ""
    )
    return Report(title, sections, subtitle)


# compare


def _model_name(entry: Mapping[str, Any]) -> str:
    return f"{entry['name'] if 'name' in entry else entry['model']} {entry['version']}"


def _moves_figure(panels: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> Figure:
    def draw(figure: MplFigure) -> None:
        axes = figure.subplots(1, len(panels), squeeze=False).ravel()
        for ax, (name, moves) in zip(axes, panels, strict=True):
            shown = moves[:MAX_BARS]
            labels = [f"{_label(m['from'])} {ARROW} {_label(m['to'])}" for m in shown]
            counts = [float(m["leads"]) for m in shown]
            _hbars(ax, labels, counts, texts=[f"{m['leads']:,}" for m in shown])
            ax.set_xlim(0, max(counts) * 1.18)
            ax.set_xlabel("Leads")
            ax.set_title(f"{name} moves")

    most = max(len(m) for _, m in panels)
    return plot(
        "moves",
        "Leads whose stage or temperature would change with the candidate model, per move "
        "(current to candidate), most first." + _capped("moves", min(most, MAX_BARS), most),
        draw,
        (9.0, max(2.4, 0.3 * min(most, MAX_BARS) + 1.3)),
    )


def _backtest_figure(metrics: Sequence[Mapping[str, Any]], cutoff: str) -> Figure:
    names = [
        f"{role}\n{_model_name(m)}"
        for role, m in zip(("current", "candidate"), metrics, strict=False)
    ]
    colours = [GREY, BLUE][: len(metrics)]

    def draw(figure: MplFigure) -> None:
        axes = figure.subplots(1, 2)
        for ax, field_name, title, random, top in (
            (axes[0], "auc", "AUC", 0.5, 1.0),
            (axes[1], "top_decile_lift", "Top-decile lift", 1.0, None),
        ):
            values = [m[field_name] for m in metrics]
            heights = [0.0 if v is None else float(v) for v in values]
            x = np.arange(len(values))
            ax.bar(x, heights, color=colours, width=0.6)
            for i, v in enumerate(values):
                text = DASH if v is None else f"{v:.3f}" if field_name == "auc" else f"{v:.2f}"
                ax.text(i, heights[i], text, ha="center", va="bottom", fontsize=8)
            ax.axhline(random, color=GREY, linestyle="--", linewidth=1)
            ax.set_xticks(x, names)
            ax.set_ylim(0, top if top is not None else max([*heights, random]) * 1.2)
            ax.set_title(title)

    return plot(
        "backtest",
        f"Both models backtested on the same truth (cut-off {_when(cutoff)}): AUC (dashed: "
        "random, 0.5) and the top-decile lift (dashed: no model, 1).",
        draw,
        (9.0, 3.2),
    )


def render_compare(report: Mapping[str, Any]) -> str:
    """A comparison of two models (the dict of `leadscore.evaluate.compare.compare`) as one
    self-contained HTML page: the moves in stage and temperature, and the backtests."""
    current, candidate = report["models"]
    a, b = _model_name(current), _model_name(candidate)
    leads, changed = int(report["leads"]), int(report["changed"])
    share = changed / leads if leads else None
    summary = Section(
        "summary",
        "Summary",
        [
            Table(
                ["Measure", "Value"],
                [
                    ["Current model", a],
                    ["Candidate model", b],
                    ["Scored as of (UTC)", _when(report["as_of"])],
                    ["Leads scored", f"{leads:,}"],
                    ["Leads changing temperature or stage", f"{changed:,} ({_pct(share)})"],
                ],
                key="summary-table",
            )
        ],
    )
    panels = [
        (name, report[key])
        for name, key in (("Stage", "stage_moves"), ("Temperature", "temperature_moves"))
        if report[key]
    ]
    blocks: list[Block] = (
        [_moves_figure(panels)]
        if panels
        else [Note("No lead changes stage or temperature: nothing to plot.", "moves")]
    )
    for name, moves in panels:
        blocks.append(
            Table(
                ["From (current)", "To (candidate)", "Leads"],
                [[_label(m["from"]), _label(m["to"]), f"{m['leads']:,}"] for m in moves],
                caption=f"{name} moves",
                key=f"{name.lower()}-moves",
                numeric_from=2,
            )
        )
    band = str(report["changed_per"])
    if report["changed_per_band"]:
        blocks.append(
            Table(
                [f"{band.capitalize()} (current model)", "Leads changing"],
                [[_label(r[band]), f"{r['leads']:,}"] for r in report["changed_per_band"]],
                caption=f"Changes per {band}",
                key="changes-per-band",
            )
        )
    sections = [summary, Section("moves", "Who moves", blocks)]
    if "backtest" in report:
        run = report["backtest"]
        metrics = run["metrics"]
        rows = [
            [
                _model_name(m),
                _num(m["auc"], 3),
                _num(m["top_decile_lift"]),
                _pct(m["base_rate"]),
            ]
            for m in metrics
        ]
        handovers = [
            [
                _model_name(m),
                _label(t["threshold"]),
                f"{t['leads']:,}",
                f"{t['won']:,}",
                _pct(t["precision"]),
                _pct(t["recall"]),
            ]
            for m in metrics
            for t in m["thresholds"]
        ]
        bt_blocks: list[Block] = [
            _backtest_figure(metrics, run["cutoff"]),
            Table(["Model", "AUC", "Top-decile lift", "Base rate"], rows, key="backtest-metrics"),
        ]
        if handovers:
            bt_blocks.append(
                Table(
                    ["Model", "Hand-over", "Leads", "Won", "Precision", "Recall"],
                    handovers,
                    caption="Hand-over to sales at the cut-off",
                    key="backtest-handover",
                    numeric_from=2,
                )
            )
        sections.append(
            Section(
                "backtest",
                "Backtest side by side",
                bt_blocks,
                intro=(
                    f"Both models score every lead undecided at the cut-off "
                    f"{_when(run['cutoff'])}; the truth is who was won afterwards."
                ),
            )
        )
    if report["examples"]:
        rows = [
            [
                _label(r["lead_id"]),
                _num(r["total_a"]),
                _num(r["total_b"]),
                _num(r["total_b"] - r["total_a"]),
                f"{_label(r['temperature_a'])} {ARROW} {_label(r['temperature_b'])}",
                f"{_label(r['stage_a'])} {ARROW} {_label(r['stage_b'])}",
            ]
            for r in report["examples"]
        ]
        sections.append(
            Section(
                "examples",
                "The biggest changes",
                [
                    Table(
                        [
                            "Lead",
                            "Points (current)",
                            "Points (candidate)",
                            "Change",
                            "Temperature",
                            "Stage",
                        ],
                        rows,
                        key="examples-table",
                        numeric=(1, 2, 3),
                    )
                ],
                intro=(
                    "Of the leads that change temperature or stage, those whose total changes "
                    f"most ({len(rows):,} shown)."
                ),
            )
        )
    subtitle = (
        f"Both models score the same {leads:,} leads as of {_when(report['as_of'])} (UTC); "
        f"{changed:,} ({_pct(share)}) would change temperature or stage."
    )
    return render_page(f"Compare: {a} {ARROW} {b}", sections, subtitle)


# channels

_DIMENSIONS = (
    ("source", "Lead source", "sources"),
    ("campaign", "Campaign", "campaigns"),
    ("content_stage", "Content stage", "content_stages"),
)


def _channel_figure(key: str, name: str, rows: Sequence[ChannelRow], overall: float) -> Figure:
    shown = rows[:MAX_BARS]
    intervals = [_wilson(r.won, r.leads) for r in shown]

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        rates = [r.conversion for r in shown]
        _hbars(ax, [r.value for r in shown], rates)
        errors = np.array([[r - lo, hi - r] for r, (lo, hi) in zip(rates, intervals, strict=True)])
        y = np.arange(len(shown))
        ax.errorbar(rates, y, xerr=errors.T, fmt="none", ecolor="#333333", capsize=2, lw=0.8)
        for i, (r, (_, hi)) in enumerate(zip(shown, intervals, strict=True)):
            ax.text(hi, i, f" {r.won:,}/{r.leads:,}", va="center", ha="left", fontsize=7)
        ax.axvline(overall, color=GREY, linestyle="--", linewidth=1)
        _percent_axis(ax, "x")
        ax.set_xlim(0, min(1.0, max(hi for _, hi in intervals)) * 1.25 + 0.01)
        ax.set_xlabel("Conversion (won / leads)")
        ax.set_title(f"Conversion per {name.lower()} (bars: 95% interval)")

    return plot(
        key,
        f"Share of the leads won, per {name.lower()}, with won / leads at each bar (dashed: "
        f"all leads, {_pct(overall)}). Sorted by won leads, most first."
        + _capped(f"{name.lower()}s", len(shown), len(rows)),
        draw,
        (9.0, max(2.4, 0.28 * len(shown) + 1.3)),
    )


def _channel_table(key: str, name: str, rows: Sequence[ChannelRow], values: bool) -> Table:
    header = [name, "Leads", "Won", "Conversion", "Hot share", "Mean score"]
    if values:
        header += ["Won value", "Value per lead", "Repeat buyers", "Lifetime value"]
    body = []
    for r in rows:
        cells = [
            r.value,
            f"{r.leads:,}",
            f"{r.won:,}",
            _pct(r.conversion),
            _pct(r.hot_share),
            _num(r.mean_score, 1),
        ]
        if values:
            cells += [
                _num(r.won_value, 0),
                _num(r.value_per_lead),
                DASH if r.repeat_purchases is None else f"{r.repeat_purchases:,}",
                _num(r.lifetime_value, 0),
            ]
        body.append(cells)
    return Table(header, body, key=key)


def render_channels(result: Channels) -> str:
    """Leads and buyers per lead source, campaign and content stage as one self-contained HTML
    page: per dimension a conversion bar chart and the table."""
    return channels_report(result).page()


def channels_report(result: Channels) -> Report:
    """The channels' title, subtitle and sections (see `render_channels`)."""
    overall = result.won / result.leads if result.leads else 0.0
    summary = Section(
        "summary",
        "Summary",
        [
            Table(
                ["Measure", "Value"],
                [
                    ["Leads that existed at the as-of", f"{result.leads:,}"],
                    ["Won up to the as-of", f"{result.won:,}"],
                    ["Conversion", _pct(overall if result.leads else None)],
                    ["Left out: created after the as-of", f"{result.not_yet_created:,}"],
                    ["Hot means", result.hot_basis or DASH],
                ],
                key="summary-table",
            ),
            *_notes(result.notes),
        ],
    )
    sections = [summary]
    for key, name, attribute in _DIMENSIONS:
        rows: list[ChannelRow] = getattr(result, attribute)
        blocks: list[Block] = []
        if rows:
            blocks.append(_channel_figure(f"conversion-{key}", name, rows, overall))
            blocks.append(_channel_table(f"{key}-table", name, rows, result.has_values))
        else:
            blocks.append(Note(f"No {name.lower()}: nothing to plot.", f"conversion-{key}"))
        intro = (
            "Each lead counts under its own source."
            if key == "source"
            else f"A lead counts for every {name.lower()} it touched with an event before the "
            "as-of, so these rows add up to more than the leads; leads that touched none count "
            "under (none)."
        )
        sections.append(Section(key, f"By {name.lower()}", blocks, intro=intro))
    subtitle = (
        f"As of {_when(result.as_of)} (UTC): {result.leads:,} leads, {result.won:,} won "
        f"({_pct(overall if result.leads else None)})."
    )
    return Report(f"Channels: {result.model} {result.model_version}", sections, subtitle)


# capacity


def _capacity_figure(result: Capacity) -> Figure:
    inflow = result.leads / result.weeks
    judged = [
        (name, c)
        for name, c in (("at or above T", result.above), ("below T", result.below))
        if c.conversion is not None
    ]

    def draw(figure: MplFigure) -> None:
        left, right = figure.subplots(1, 2)
        labels = ["came in", "at or above T", "model's hand-over"]
        values = [inflow, result.leads_per_week, result.handover_per_week]
        x = np.arange(len(values))
        left.bar(x, values, color=[GREY, BLUE, ORANGE], width=0.6)
        for i, v in enumerate(values):
            left.text(i, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        left.axhline(result.per_week, color=VERMILLION, linestyle="--", linewidth=1.2)
        left.text(
            len(values) - 0.5,
            result.per_week,
            f"sales can take {result.per_week:g}",
            color=VERMILLION,
            fontsize=8,
            ha="right",
            va="bottom",
        )
        left.set_xticks(x, labels)
        left.set_ylim(0, max([*values, result.per_week]) * 1.2)
        left.set_ylabel("Leads a week")
        left.set_title("Leads a week")
        if not judged:
            right.text(0.5, 0.5, "no outcome to judge by", ha="center", va="center")
            right.set_axis_off()
            return
        rates = [float(c.conversion or 0.0) for _, c in judged]
        intervals = [_wilson(c.won, c.leads) for _, c in judged]
        errors = np.array([[r - lo, hi - r] for r, (lo, hi) in zip(rates, intervals, strict=True)])
        x = np.arange(len(judged))
        right.bar(x, rates, color=[BLUE, GREY][: len(judged)], width=0.6)
        right.errorbar(x, rates, yerr=errors.T, fmt="none", ecolor="#333333", capsize=3, lw=1)
        for i, (_, c) in enumerate(judged):
            right.text(i, intervals[i][1], f"{c.won:,}/{c.leads:,}", ha="center", va="bottom")
        right.set_xticks(x, [name for name, _ in judged])
        _percent_axis(right)
        right.set_ylim(0, min(1.05, max(hi for _, hi in intervals) + 0.1))
        right.set_title(f"Won within {result.horizon_days:g} days (bars: 95% interval)")

    threshold = "no threshold fits" if result.threshold is None else f"T = {result.threshold:g}"
    return plot(
        "capacity",
        f"Leads a week over the {result.weeks} weeks before the cut-off ({threshold}): all that "
        "came in, those at or above the threshold and those the model's routing hands to sales, "
        "against what sales can take; and the conversion of the leads undecided at the cut-off, "
        "at or above the threshold and below it.",
        draw,
        (9.0, 3.4),
    )


def render_capacity(result: Capacity) -> str:
    """The capacity threshold as one self-contained HTML page: leads a week against what
    sales can take, the conversion above and below the threshold, and the tables."""
    return capacity_report(result).page()


def capacity_report(result: Capacity) -> Report:
    """The capacity's title, subtitle and sections (see `render_capacity`)."""
    inflow = result.leads / result.weeks
    threshold = DASH if result.threshold is None else f"{result.threshold:g}"
    rows = [
        ["Cut-off (UTC)", _when(result.cutoff)],
        ["Window", f"{_when(result.window_start)} {DASH} {_when(result.cutoff)}"],
        ["Leads created in the window", f"{result.leads:,}"],
        ["Came in a week", f"{inflow:,.1f}"],
        ["Sales can take a week", f"{result.per_week:g}"],
        ["Threshold T (total at least)", threshold],
        ["Leads at or above T", f"{result.leads_above:,}"],
        ["Sent a week at T", f"{result.leads_per_week:,.1f}"],
        ["The model's hand-over a week", f"{result.handover_per_week:,.1f}"],
        ["Left out of the conversion: decided at the cut-off", f"{result.decided_before:,}"],
    ]
    summary = Section(
        "summary",
        "Summary",
        [Table(["Measure", "Value"], rows, key="summary-table"), *_notes(result.notes)],
        intro=(
            "T is the lowest total such that the leads of the window at or above it, per week, "
            "are at most what sales can take; leads tied at T are all sent."
        ),
    )
    conversion = Table(
        ["Leads", "Undecided at the cut-off", "Won", "Conversion"],
        [
            [name, f"{c.leads:,}", f"{c.won:,}", _pct(c.conversion)]
            for name, c in (("At or above T", result.above), ("Below T", result.below))
        ],
        caption=f"Won within {result.horizon_days:g} days after the cut-off",
        key="conversion-table",
    )
    blocks: list[Block] = [_capacity_figure(result), conversion]
    if result.handover:
        blocks.append(
            Table(
                ["Hand-over stage", "Leads", "A week"],
                [[h.stage, f"{h.leads:,}", f"{h.per_week:,.1f}"] for h in result.handover],
                caption="What the model's own routing hands to sales",
                key="handover-table",
            )
        )
    sections = [summary, Section("volume", "Leads a week and conversion", blocks)]
    subtitle = (
        f"Leads created in the {result.weeks} weeks before {_when(result.cutoff)} (UTC), scored "
        f"as of the cut-off; sales can take {result.per_week:g} a week, T = {threshold}."
    )
    return Report(f"Capacity: {result.model} {result.model_version}", sections, subtitle)


# sample

_SCORE_COLUMNS = (
    ("lead_id", "Lead"),
    ("total", "Total"),
    ("fit", "Fit"),
    ("behaviour", "Behaviour"),
    ("account", "Account"),
    ("grade", "Grade"),
    ("engagement", "Engagement"),
    ("cell", "Cell"),
    ("temperature", "Temperature"),
    ("queue", "Queue"),
    ("priority", "Priority account"),
)
_LEDGER_COLUMNS = (
    ("part", "Part"),
    ("kind", "Kind"),
    ("rule", "Rule"),
    ("event_id", "Event"),
    ("ts", "When (UTC)"),
    ("detail", "Detail"),
    ("base", "Base"),
    ("factor", "Factor"),
    ("points", "Points"),
    ("note", "Note"),
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _columns(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]
) -> tuple[list[tuple[str, str]], tuple[int, ...]]:
    """The columns some row fills, and which of them hold numbers."""
    kept = [(k, n) for k, n in columns if any(r.get(k) is not None for r in rows)]
    numeric = tuple(
        i
        for i, (k, _) in enumerate(kept)
        if k != "lead_id" and all(_is_number(r[k]) for r in rows if r.get(k) is not None)
    )
    return kept, numeric


def _ledger_cell(key: str, value: object) -> str:
    if key == "factor" and _is_number(value):
        return f"{value:.3f}"
    return _text(value)


def _stages_figure(result: Sample) -> Figure:
    strata = result.strata[:MAX_BARS]

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        sizes = [float(s.size) for s in strata]
        _hbars(
            ax,
            [s.stage for s in strata],
            sizes,
            texts=[f"{len(s.leads):,} of {s.size:,} sampled" for s in strata],
        )
        ax.set_xlim(0, max(sizes) * 1.3)
        ax.set_xlabel("Leads at the stage")
        ax.set_title("Leads per stage")

    return plot(
        "stages",
        "Leads per stage as of the as-of, and how many of them are in the sample."
        + _capped("stages", len(strata), len(result.strata)),
        draw,
        (9.0, max(2.0, 0.35 * len(strata) + 1.2)),
    )


def render_sample(result: Sample) -> str:
    """A review sample as one self-contained HTML page: per stage the sampled leads and each
    lead's ledger."""
    return sample_report(result).page()


def sample_report(result: Sample) -> Report:
    """The sample's title, subtitle and sections (see `render_sample`)."""
    overview = Table(
        ["Stage", "Leads at the stage", "Sampled", "Taken whole"],
        [
            [s.stage, f"{s.size:,}", f"{len(s.leads):,}", "yes" if s.whole else "no"]
            for s in result.strata
        ],
        key="strata-table",
    )
    summary_blocks: list[Block] = []
    if result.strata:
        summary_blocks.append(_stages_figure(result))
    summary_blocks += [overview, *_notes(result.notes)]
    sections = [
        Section(
            "summary",
            "Stages",
            summary_blocks,
            intro=(
                f"From every stage the {result.per_stage} leads with the smallest "
                f'md5("{result.seed}:<lead_id>") are taken: the same seed gives the same sample.'
            ),
        )
    ]
    for i, stratum in enumerate(result.strata, start=1):
        scores = [lead.score for lead in stratum.leads]
        columns, numeric = _columns(scores, _SCORE_COLUMNS)
        blocks: list[Block] = [
            Table(
                [name for _, name in columns],
                [[_text(row.get(k)) for k, _ in columns] for row in scores],
                caption="The sampled leads",
                key=f"stage-{i}-leads",
                numeric=numeric,
            )
        ]
        for j, lead in enumerate(stratum.leads, start=1):
            lines, numbers = _columns(lead.ledger, _LEDGER_COLUMNS)
            points = (
                next(n for n, (k, _) in enumerate(lines) if k == "points")
                if any(k == "points" for k, _ in lines)
                else None
            )
            body = [[_ledger_cell(k, line.get(k)) for k, _ in lines] for line in lead.ledger]
            if points is not None:
                last = ["" for _ in lines]
                last[0] = "Total"
                last[points] = _text(lead.score.get("total"))
                body.append(last)
            blocks.append(
                Table(
                    [name for _, name in lines] or ["Ledger"],
                    body or [["no ledger lines"]],
                    caption=(
                        f"{_label(lead.lead_id)}: {_text(lead.score.get('total'))} points, "
                        f"{lead.score.get('temperature') or DASH}"
                    ),
                    key=f"stage-{i}-ledger-{j}",
                    numeric=numbers,
                )
            )
        sections.append(
            Section(
                f"stage-{i}",
                f"Stage {stratum.stage}",
                blocks,
                intro=(
                    f"{len(stratum.leads):,} of the {stratum.size:,} leads at this stage, each "
                    "with its ledger: would we have routed it so?"
                ),
            )
        )
    total = len(result.leads)
    subtitle = (
        f"As of {_when(result.as_of)} (UTC), seed {result.seed}: up to {result.per_stage} "
        f"leads from every stage, {total:,} in all."
    )
    return Report(f"Sample: {result.model} {result.model_version}", sections, subtitle)
