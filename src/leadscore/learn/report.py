"""A suggestion as one self-contained HTML page, like the evaluation commands' reports.

    html = render_suggestion(suggest(data))
    write_report(Path("suggested.html"), html)

The page is built from the blocks of `leadscore.evaluate.report` (its plots are inline SVG, it
loads nothing, and every text the data or the model can reach is escaped), in this order: the
frame the examples were taken in and the figures that judge the model; each rule with the
training evidence for its points; calibration on the held-out examples; the backtest at the
evaluation cut-off (a split by time only); and the model's YAML as written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from leadscore.evaluate.report import (
    BLUE,
    DASH,
    GREY,
    MAX_BARS,
    ORANGE,
    TIMES,
    VERMILLION,
    Block,
    Figure,
    Note,
    Report,
    Section,
    Table,
    _capped,
    _e,
    _hbars,
    _num,
    _pct,
    _percent_axis,
    _when,
    _wilson,
    backtest_sections,
    plot,
)
from leadscore.learn.suggest import Rule, Suggestion

__all__ = ["Listing", "render_suggestion", "suggestion_report"]

# A label longer than this is cut in a plot (the table shows it whole).
PLOT_LABEL = 48
# A holdout base rate this many times the training one (or its inverse) shifts probabilities.
SHIFT = 1.25


@dataclass(frozen=True)
class Listing:
    """Text shown as written (a model's YAML), in a preformatted block; escaped."""

    key: str
    text: str

    def html(self) -> str:
        """The text in a <pre> block, escaped."""
        return (
            f'<pre id="{_e(self.key)}" style="overflow-x: auto; background: #f7f7f7; '
            f'padding: .6rem; font-size: .85rem;"><code>{_e(self.text)}</code></pre>'
        )


def render_suggestion(s: Suggestion) -> str:
    """The suggestion as one self-contained HTML page: the frame and the figures that judge
    the model, the evidence per rule, calibration, the backtest and the model's YAML."""
    return suggestion_report(s).page()


def suggestion_report(s: Suggestion) -> Report:
    """The suggestion's title, subtitle and sections (see `render_suggestion`)."""
    sections = [
        _summary(s),
        _rules(s),
        _calibration(s),
        *_backtest(s),
        Section(
            "model-yaml",
            "The model (YAML)",
            [Listing("model-yaml-text", s.yaml)],
            intro=(
                "As `leadscore suggest` wrote it, with each rule's evidence in the comment above "
                "it. Review every rule before publishing."
            ),
        ),
    ]
    judged = (
        f"holdout AUC {_num(s.holdout_auc_points, 3)} (the engine's scores of these points)"
        if s.holdout_auc_points is not None
        else "no holdout"
    )
    subtitle = f"{s.frame.describe()}. {len(s.rules):,} rules; {judged}."
    return Report(f"Suggested points: {s.model.name} {s.model.version}", sections, subtitle)


# --- summary --------------------------------------------------------------------------------


def _shift(s: Suggestion) -> tuple[float, float, float] | None:
    """Training and holdout base rates and their ratio, when both are known."""
    training, holdout = s.base_rates.get("training"), s.base_rates.get("holdout")
    if training is None or holdout is None:
        return None
    return training, holdout, (holdout / training if training else float("inf"))


def _shift_text(s: Suggestion) -> str:
    found = _shift(s)
    if found is None:
        return DASH
    training, holdout, ratio = found
    points = 100 * (holdout - training)
    return f"{points:+.1f} percentage points ({TIMES}{ratio:.2f})"


def _summary(s: Suggestion) -> Section:
    fr = s.frame
    first, last = fr.cutoffs[0], fr.cutoffs[-1]
    cutoffs = _when(first) if len(fr.cutoffs) == 1 else f"{_when(first)} {DASH} {_when(last)}"
    split = {
        "time": "by time: the holdout is the leads open at the evaluation cut-off",
        "stratified": f"stratified: {fr.holdout:.0%} of the leads at random within each class",
        "none": "none (--holdout 0): every example trained the model",
    }[fr.split]
    no_holdout = "no holdout" if not s.holdout_leads else DASH
    auc_points = _num(s.holdout_auc_points, 3) if s.holdout_auc_points is not None else no_holdout
    auc_float = _num(s.holdout_auc_float, 3) if s.holdout_auc_float is not None else no_holdout

    def baseline(key: str) -> str:
        value = s.baselines.get(key)
        return _num(value, 3) if value is not None else no_holdout

    rows: list[list[object]] = [
        ["Model", f"{s.model.name} {s.model.version}"],
        ["Split", split],
        [f"Training cut-offs ({len(fr.cutoffs):,})", cutoffs],
        ["Evaluation cut-off", _when(fr.evaluation)],
        ["Horizon (a win counts within)", f"{fr.horizon_days:g} days"],
        ["Training examples", f"{s.train_leads:,}"],
        ["Held-out examples", f"{s.holdout_leads:,}"],
        ["Holdout AUC: the integer points, scored by the engine", auc_points],
        ["Holdout AUC: the regression before rounding and selection", auc_float],
        ["Cross-validated AUC on the training examples (folds by lead)", _num(s.cv_auc, 3)],
        ["Baseline: naive Bayes, holdout AUC", baseline("naive_bayes_auc")],
        ["Baseline: unconstrained logistic regression, holdout AUC", baseline("logistic_auc")],
        ["Base rate: training examples", _pct(s.base_rates.get("training"))],
        ["Base rate: held-out examples", _pct(s.base_rates.get("holdout"))],
        ["Base-rate shift (holdout against training)", _shift_text(s)],
        ["Rules", f"{len(s.rules):,}"],
        ["Features refused by the leakage guard", f"{len(s.refused):,}"],
    ]
    blocks: list[Block] = [Table(["Measure", "Value"], rows, key="suggestion-table")]
    if fr.derived:
        blocks.append(
            Table(
                ["How the defaults were chosen"],
                [[text] for text in fr.derived],
                key="derived-table",
                numeric=(),
            )
        )
    if s.refused:
        blocks.append(
            Table(
                ["Refused", "Why"],
                [[r.name, r.reason] for r in s.refused],
                caption=(
                    "Features that know the outcome, left out before training (keep one with "
                    "--allow NAME)"
                ),
                key="refused-table",
                numeric=(),
            )
        )
    else:
        blocks.append(Note("The leakage guard refused no feature."))
    derived = set(fr.derived)
    blocks.extend(Note(note) for note in s.notes if note not in derived)
    return Section(
        "suggestion",
        "Summary",
        blocks,
        intro=(
            f"{fr.describe()}. An example is a lead open at a cut-off, labelled by a win within "
            "the horizon after it: the definition a backtest judges a model by."
        ),
    )


# --- rules ----------------------------------------------------------------------------------


def _ordered(rules: Sequence[Rule]) -> list[Rule]:
    """Strongest first, as the YAML lists them."""
    return sorted(rules, key=lambda r: (-abs(r.points), r.feature.name))


def _names(s: Suggestion) -> dict[str, str]:
    """Each rule's name in the written model, by its label (the feature as a person reads it)."""
    named = [*s.model.fit.rules, *s.model.behaviour.rules]
    return {rule.label or rule.name: rule.name for rule in named}


def _short(text: str) -> str:
    return text if len(text) <= PLOT_LABEL else text[: PLOT_LABEL - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _points_figure(rules: Sequence[Rule]) -> Figure:
    shown = list(rules[:MAX_BARS])

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        values = [float(r.points) for r in shown]
        _hbars(ax, [_short(r.feature.name) for r in shown], values, texts=[])
        for bar, value in zip(ax.patches, values, strict=True):
            bar.set_facecolor(BLUE if value > 0 else VERMILLION)
        for i, value in enumerate(values):
            ax.text(
                value,
                i,
                f" {value:+g} ",
                va="center",
                ha="left" if value > 0 else "right",
                fontsize=7,
            )
        ax.axvline(0.0, color=GREY, linewidth=0.8)
        reach = max(abs(v) for v in values)
        ax.set_xlim(min(0.0, min(values)) - 0.15 * reach, max(0.0, max(values)) + 0.15 * reach)
        ax.set_xlabel("Points")
        ax.set_title("Points per rule (blue: earns, vermillion: costs)")

    return plot(
        "points",
        "Each rule's integer points, strongest first: a rule after which more training "
        "examples were won earns points, one after which fewer were won costs them."
        + _capped("rules", len(shown), len(rules)),
        draw,
        (9.0, max(2.0, 0.3 * len(shown) + 1.2)),
    )


def _rules(s: Suggestion) -> Section:
    rules = _ordered(s.rules)
    names = _names(s)
    base = s.base_rates.get("training")
    rows = [
        [
            r.feature.name,
            names.get(r.feature.name, DASH),
            "fit" if r.feature.fit else "behaviour",
            f"{r.points:+d}",
            f"{r.support:,}",
            _pct(r.won_with),
            _pct(r.won_without),
            _num(r.won_with / base) if base else DASH,
        ]
        for r in rules
    ]
    table = Table(
        [
            "Rule",
            "Name in the model",
            "Part",
            "Points",
            "Training examples with it",
            "Won with it",
            "Won without it",
            "Lift",
        ],
        rows,
        caption="Evidence from the training examples",
        key="rules-table",
        numeric_from=3,
    )
    return Section(
        "rules",
        "Rules and their evidence",
        [_points_figure(rules), table],
        intro=(
            "One row per rule, strongest first. With it: the training examples the rule "
            "fires on (for events: at least one before the cut-off). Lift: their conversion "
            f"over the training base rate ({_pct(base)}). The points come from the regression "
            "of all rules together, so a rule's points need not follow its lift alone."
        ),
    )


# --- calibration ----------------------------------------------------------------------------


def _calibration_figure(s: Suggestion, bins: Sequence[Mapping[str, Any]]) -> Figure:
    predicted = [float(b["predicted"]) for b in bins]
    observed = [float(b["observed"]) for b in bins]
    leads = [int(b["leads"]) for b in bins]
    intervals = [_wilson(round(o * n), n) for o, n in zip(observed, leads, strict=True)]
    training, holdout = s.base_rates.get("training"), s.base_rates.get("holdout")

    def draw(figure: MplFigure) -> None:
        ax = figure.subplots()
        top = max([*predicted, *(hi for _, hi in intervals)]) * 1.1 + 0.01
        ax.plot([0, top], [0, top], color=GREY, linestyle="--", linewidth=1, label="perfect")
        errors = np.array(
            [[o - lo, hi - o] for o, (lo, hi) in zip(observed, intervals, strict=True)]
        )
        ax.errorbar(
            predicted,
            observed,
            yerr=errors.T,
            fmt="o-",
            color=BLUE,
            ecolor="#333333",
            capsize=2,
            markersize=4,
            linewidth=1,
            label="holdout deciles",
        )
        if holdout is not None:
            ax.axhline(holdout, color=ORANGE, linestyle=":", linewidth=1.2)
            ax.text(top, holdout, "holdout base rate", color=ORANGE, fontsize=8, ha="right")
        if training is not None:
            ax.axhline(training, color=GREY, linestyle=":", linewidth=1.2)
            ax.text(top, training, "training base rate", color=GREY, fontsize=8, ha="right")
        _percent_axis(ax, "x")
        _percent_axis(ax, "y")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("Predicted probability of a win (mean of the decile)")
        ax.set_ylabel("Won within the horizon")
        ax.set_title("Calibration on the held-out examples (bars: 95% interval)")
        ax.legend(loc="upper left", frameon=False)

    return plot(
        "holdout-calibration",
        "Held-out examples in ten equal groups by predicted probability: the share won against "
        "the probability the points give (through the regression's intercept). On the dashed "
        "line the probabilities can be read as they are.",
        draw,
        (9.0, 4.0),
    )


def _shift_note(s: Suggestion) -> Note | None:
    found = _shift(s)
    if found is None:
        return None
    training, holdout, ratio = found
    said = (
        f"Base-rate shift: {_pct(holdout)} of the held-out examples were won, {_pct(training)} "
        f"of the training examples ({TIMES}{ratio:.2f})."
    )
    if ratio >= SHIFT:
        said += (
            " The probabilities were learnt at the training rate, so they run low on the "
            "holdout whatever the ranking: read the points as an order, not as a probability."
        )
    elif ratio <= 1 / SHIFT:
        said += (
            " The probabilities were learnt at the training rate, so they run high on the "
            "holdout whatever the ranking: read the points as an order, not as a probability."
        )
    else:
        said += " Close enough for the probabilities to be read at face value."
    return Note(said)


def _calibration(s: Suggestion) -> Section:
    key, title = "holdout-calibration", "Calibration on the held-out examples"
    if not s.calibration:
        return Section(
            key,
            title,
            [
                Note(
                    "No calibration: there are no held-out examples (--holdout 0), so nothing "
                    "judges the probabilities.",
                    key,
                )
            ],
        )
    # highest predicted first, as a backtest numbers its deciles
    bins = list(reversed(s.calibration))
    rows = []
    for i, b in enumerate(bins, start=1):
        leads, predicted, observed = int(b["leads"]), float(b["predicted"]), float(b["observed"])
        lo, hi = _wilson(round(observed * leads), leads)
        rows.append(
            [
                i,
                f"{leads:,}",
                _pct(predicted),
                _pct(observed),
                f"{_pct(lo)}{DASH}{_pct(hi)}",
            ]
        )
    table = Table(
        ["Decile", "Leads", "Predicted", "Observed", "95% interval"],
        rows,
        caption="Deciles of the predicted probability (1 = highest)",
        key="holdout-calibration-table",
    )
    blocks: list[Block] = [_calibration_figure(s, s.calibration), table]
    note = _shift_note(s)
    if note is not None:
        blocks.append(note)
    return Section(
        key,
        title,
        blocks,
        intro=(
            "The probability of a win the points stand for, from the regression's intercept "
            "and the scale (how many points double the odds), against what the held-out "
            "examples did."
        ),
    )


# --- backtest -------------------------------------------------------------------------------


def _backtest(s: Suggestion) -> list[Section]:
    key, title = "backtest", "Backtest at the evaluation cut-off"
    run = s.backtest_run
    if run is None:
        fr = s.frame
        if fr.split == "none":
            why = (
                "There is no holdout (--holdout 0): every example trained the model, so no "
                "later cut-off is left to backtest it at."
            )
        elif not fr.timed:
            why = (
                "Every outcome is at one instant, so there is no later period to backtest at: "
                "the holdout is a stratified sample of leads instead."
            )
        else:
            why = (
                "The holdout is a stratified sample of leads from the same period as the "
                "training examples (--split stratified), so there is no evaluation cut-off to "
                "backtest at. A split by time (--split time) gives one; or run `leadscore "
                "backtest` with the written model on later data."
            )
        return [Section(key, title, [Note(why, key)])]
    sections = backtest_sections(run, run.per_lead)
    intro = (
        f"The written model run by `leadscore backtest` as of {_when(run.cutoff)} (UTC): the "
        "held-out examples are the leads open then, so these are the holdout figures above, "
        "computed by the backtest."
    )
    first = sections[0]
    out = [
        replace(first, key=key, title=title, intro=f"{intro} {first.intro}".strip()),
    ]
    out += [replace(x, key=f"backtest-{x.key}", title=f"Backtest: {x.title}") for x in sections[1:]]
    return out
