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
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as MplFigure
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
    "Section",
    "Table",
    "backtest_sections",
    "plot",
    "render_backtest",
    "render_capacity",
    "render_cases",
    "render_channels",
    "render_compare",
    "render_page",
    "render_sample",
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
    title = f"Backtest: {result.model} {result.model_version}"
    subtitle = (
        f"Scored as of {result.cutoff.isoformat(sep=' ')} (UTC); won within "
        f"{result.horizon_days:g} days after it is the truth. {result.truth.leads:,} leads, "
        f"{result.truth.won:,} won ({_pct(result.base_rate)})."
    )
    return render_page(title, [*backtest_sections(result, per_lead), *sections], subtitle)
