"""Suggested points (S23, S26): a model a committee can read, learnt as of cut-offs and judged
the way `leadscore backtest` judges it.

Examples are the leads open at each cut-off, labelled by a win within the horizon
(`leadscore.learn.examples`); features are rules in the engine's semantics
(`leadscore.learn.features`); features that know the outcome are refused first
(`leadscore.learn.leakage`). The fit is a logistic regression with an L1 penalty (weak
features drop out; its strength chosen by cross-validated AUC, folds by lead) whose every
weight is held to the sign of its own evidence: a rule after which more leads won can only
earn points, one after which fewer won can only cost them, so no rule carries points against
its comment. Thresholds on a number all point one way, so its points are monotone.

The strongest behaviours, the strongest negative actions and the fit attributes that kept a
weight (at most `rules` in all) become rules; log-odds become integer points
(`points_to_double` points double the odds). Grades and engagement levels are quantiles of the
points rounded to numbers a person would write; the routing sends a grade x engagement cell to
sales only when it converted above the base rate. The written model is then scored by the
engine on the held-out examples: the printed figures are the engine's, and with a split by
time they are exactly a backtest at the evaluation cut-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import yaml
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from leadscore.errors import DataError, LeadscoreError
from leadscore.evaluate.backtest import Backtest
from leadscore.learn import examples as ex
from leadscore.learn.baselines import logistic, naive_bayes
from leadscore.learn.features import Feature, Features, build, correlation_sign
from leadscore.learn.leakage import Refusal, implausible, late_fields, without
from leadscore.model.loader import parse_model
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

GRADES = (("A", 0.8), ("B", 0.5), ("C", 0.2))  # share of leads below the grade's minimum
LEVELS = (("1", 0.9), ("2", 0.7), ("3", 0.4))
# Shares of leads routed to sales at once (hot) and to marketing qualification (warm), at most.
HOT, WARM = 0.12, 0.35
# Penalties tried, as shares of the smallest that leaves no feature a weight.
LAMBDA_SHARES = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
# A larger penalty is preferred while its AUC is within this of the best: fewer rules.
AUC_SLACK = 0.002
# Below this holdout AUC, or with 0.5 inside its 95 % interval, the data predicts nothing.
NO_SIGNAL = 0.55
# Training examples beyond this are sampled (stratified): the points are settled long before.
FIT_ROWS = 100_000
CV_ROWS = 40_000
STEPS = (
    "finding the examples",
    "building features",
    "choosing the regularisation",
    "fitting the regression",
    "turning weights into points",
    "scoring the written model",
)


class NoSignal(LeadscoreError):
    """The data predicts nothing: no model is written."""


@dataclass(frozen=True)
class Rule:
    """A suggested rule: the feature, its integer points and the evidence for them."""

    feature: Feature
    coefficient: float  # log-odds per unit (per event for counts)
    points: int
    support: int  # training examples with it
    won_with: float
    won_without: float


@dataclass
class Suggestion:
    """The suggested model, its YAML, and how it did on the held-out examples."""

    model: ScoringModel
    yaml: str
    rules: list[Rule]
    frame: ex.Frame
    holdout_auc_points: float | None  # the engine's scores of the written model
    holdout_auc_float: float | None  # the regression before rounding and selection
    train_leads: int  # training examples
    holdout_leads: int  # held-out examples
    penalty: float
    cv_auc: float
    notes: list[str] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)  # holdout AUCs, same rows
    calibration: list[dict[str, Any]] = field(default_factory=list)  # holdout deciles
    backtest: dict[str, Any] | None = None  # split by time: the backtest at the cut-off
    # the same backtest with its per-lead arrays, for a report; not part of the record
    backtest_run: Backtest | None = field(default=None, repr=False, compare=False)
    holdout_points: np.ndarray | None = field(default=None, repr=False, compare=False)
    holdout_won: np.ndarray | None = field(default=None, repr=False, compare=False)
    base_rates: dict[str, float] = field(default_factory=dict)  # training / holdout

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "model": self.model.name,
            "frame": self.frame.as_dict(),
            "rules": [
                {
                    "feature": r.feature.name,
                    "kind": r.feature.kind,
                    "points": r.points,
                    "coefficient": r.coefficient,
                    "support": r.support,
                    "conversion_with": r.won_with,
                    "conversion_without": r.won_without,
                }
                for r in self.rules
            ],
            "holdout_auc_points": self.holdout_auc_points,
            "holdout_auc_float": self.holdout_auc_float,
            "cv_auc": self.cv_auc,
            "train_examples": self.train_leads,
            "holdout_examples": self.holdout_leads,
            "penalty": self.penalty,
            "baselines": self.baselines,
            "base_rates": self.base_rates,
            "calibration": self.calibration,
            "backtest": self.backtest,
            "refused": [{"name": r.name, "reason": r.reason} for r in self.refused],
            "notes": self.notes,
        }


# --- the regression -------------------------------------------------------------------------


def _fit(
    X: np.ndarray,
    y: np.ndarray,
    signs: np.ndarray,
    lam: float,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Weights and intercept of an L1 logistic regression, each weight held to its sign."""
    n, p = X.shape
    yf = y.astype(float)

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:p], theta[p]
        z = X @ w + b
        loss = float(np.mean(np.logaddexp(0.0, z) - yf * z) + lam * signs @ w)
        r = expit(z) - yf
        grad = np.append(X.T @ r / n + lam * signs, r.mean())
        return loss, grad

    if start is None:
        rate = min(max(yf.mean(), 1e-6), 1 - 1e-6)
        start = np.append(np.zeros(p), math.log(rate / (1 - rate)))
    bounds = [(0.0, None) if s > 0 else (None, 0.0) for s in signs] + [(None, None)]
    found = minimize(
        objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000}
    )
    w = np.where(np.abs(found.x[:p]) < 1e-7, 0.0, found.x[:p])
    return w, float(found.x[p])


def _lambda_max(X: np.ndarray, y: np.ndarray) -> float:
    r = y.astype(float) - y.mean()
    return float(np.max(np.abs(X.T @ r)) / len(y)) or 1e-3


def _choose(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, signs: np.ndarray
) -> tuple[float, float]:
    """The penalty (and its AUC) by 4-fold cross-validation, folds by lead."""
    top = _lambda_max(X, y)
    folds = list(GroupKFold(n_splits=4).split(X, y, groups))
    results: list[tuple[float, float]] = []
    # from the largest penalty down, each fit starts where the last one ended: a path of
    # small steps converges in a fraction of the iterations a cold start needs
    starts: dict[int, np.ndarray] = {}
    for share in LAMBDA_SHARES:
        lam = top * share
        aucs = []
        for k, (train, test) in enumerate(folds):
            if y[test].all() or not y[test].any() or y[train].all() or not y[train].any():
                continue
            w, b = _fit(X[train], y[train], signs, lam, starts.get(k))
            starts[k] = np.append(w, b)
            aucs.append(roc_auc_score(y[test], X[test] @ w + b))
        results.append((lam, float(np.mean(aucs)) if aucs else 0.5))
    best = max(a for _, a in results)
    # the largest penalty that is as good: fewer rules a committee has to read
    return next((lam, a) for lam, a in results if a >= best - AUC_SLACK)


def _evidence(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per column: +1 when leads with more of it won more often, -1 when less, 0 when neither."""
    signs = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        has = X[:, j] > 0
        if has.all() or not has.any():
            continue
        if len(np.unique(X[has, j])) > 1:
            signs[j] = correlation_sign(X[:, j], y.astype(float))
        else:
            signs[j] = np.sign(y[has].mean() - y[~has].mean())
    return signs


def _stratified_sample(rows: np.ndarray, y: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(rows) <= size:
        return rows
    rng = np.random.default_rng(seed)
    kept = []
    for label in (False, True):
        part = rows[y[rows] == label]
        share = round(size * len(part) / len(rows))
        kept.append(rng.choice(part, size=max(1, share), replace=False))
    return np.sort(np.concatenate(kept))


def _auc_interval(auc: float, won: int, other: int) -> tuple[float, float]:
    """95 % interval of an AUC (Hanley and McNeil)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (won - 1) * (q1 - auc * auc) + (other - 1) * (q2 - auc * auc)) / max(
        1, won * other
    )
    se = math.sqrt(max(var, 0.0))
    return auc - 1.96 * se, auc + 1.96 * se


# --- suggest ---------------------------------------------------------------------------------


def suggest(
    data: Dataset,
    *,
    name: str = "suggested",
    rules: int = 40,
    behaviours: int = 7,
    negatives: int = 5,
    points_to_double: float = 10.0,
    holdout: float = 0.2,
    seed: int = 42,
    cutoff: datetime | None = None,
    horizon: timedelta | None = None,
    every: timedelta | None = None,
    split: ex.Split = "auto",
    exclude: frozenset[str] = frozenset(),
    allow: frozenset[str] = frozenset(),
    progress: Callable[[str], None] | None = None,
) -> Suggestion:
    """Learn a points model from the data's outcomes (see the module docstring).

    `progress` is told each step (one of STEPS) as it starts.
    """
    if rules < 1:
        raise DataError(f"--rules {rules}: at least one rule is needed")
    step = progress or (lambda _: None)
    step(STEPS[0])
    fr = ex.frame(
        data, cutoff=cutoff, horizon=horizon, every=every, holdout=holdout, split=split, seed=seed
    )
    found_examples = ex.examples(data, fr)
    notes = list(fr.derived)
    train_mask = ~found_examples.holdout
    refused = late_fields(found_examples.table, found_examples.y, train_mask, allow)
    step(STEPS[1])
    found = build(data, found_examples, exclude=exclude | {r.name for r in refused})
    suspicious = implausible(found, allow)
    refused += suspicious
    found = without(found, suspicious)
    if not found.features:
        raise DataError(
            "every candidate feature was refused: " + "; ".join(r.text() for r in refused)
        )
    X, y = found.X, found.y
    train = np.flatnonzero(~found.holdout)
    test = np.flatnonzero(found.holdout)
    scale = np.array([float(f.cap or 1) for f in found.features])
    Xs = X / scale
    signs = _evidence(Xs[train], y[train])
    # a threshold points the way its field predicts (features.py): one whose own evidence
    # disagrees would make the points of its field go up and down, so it is left out
    thresholds = np.array(
        [f.kind in ("at_least", "below", "value_at_least", "value_below") for f in found.features]
    )
    signs[thresholds & (signs < 0)] = 0
    usable = signs != 0
    fitted_on = _stratified_sample(train, y, FIT_ROWS, seed)
    if len(fitted_on) < len(train):
        notes.append(
            f"the regression was fitted on a stratified sample of {len(fitted_on):,} of the "
            f"{len(train):,} training examples (the points are settled long before that)"
        )
    groups = np.asarray(found.lead_ids, dtype=object)
    step(STEPS[2])
    chosen_on = _stratified_sample(fitted_on, y, CV_ROWS, seed)
    cols = np.flatnonzero(usable)
    # matrix-vector products of a few hundred columns gain nothing from BLAS threads, whose
    # workers spin while they wait and slow everything on busy cores
    with threadpool_limits(limits=1, user_api="blas"):
        lam, cv_auc = _choose(Xs[chosen_on][:, cols], y[chosen_on], groups[chosen_on], signs[cols])
    step(STEPS[3])
    w_all = np.zeros(X.shape[1])
    with threadpool_limits(limits=1, user_api="blas"):
        w, b = _fit(Xs[fitted_on][:, cols], y[fitted_on], signs[cols], lam)
    w_all[cols] = w
    float_auc = float(roc_auc_score(y[test], Xs[test] @ w_all + b)) if len(test) else None
    _check_signal(float_auc, y[test] if len(test) else None, cv_auc)
    keep = _select(found.features, w_all, Xs[train], behaviours, negatives, rules)
    with threadpool_limits(limits=1, user_api="blas"):
        w_keep, b_keep = _fit(Xs[fitted_on][:, keep], y[fitted_on], signs[keep], lam)
    step(STEPS[4])
    points_per = points_to_double / math.log(2)
    chosen: list[Rule] = []
    weights = np.zeros(X.shape[1])
    for j, i in enumerate(keep):
        per_unit = float(w_keep[j] / scale[i])
        points = round(per_unit * points_per)
        if points == 0:
            continue
        weights[i] = points
        has = X[train, i] > 0
        chosen.append(
            Rule(
                feature=found.features[i],
                coefficient=per_unit,
                points=points,
                support=int(has.sum()),
                won_with=float(y[train][has].mean()),
                won_without=float(y[train][~has].mean()),
            )
        )
    if not chosen:
        raise NoSignal(
            "no rule is worth a whole point at --scale "
            f"{points_to_double:g}: the evidence is too weak to write a model"
        )
    fit_mask = np.array([f.fit for f in found.features])
    fit_points = X @ np.where(fit_mask, weights, 0.0)
    behaviour_points = X @ np.where(fit_mask, 0.0, weights)
    text = _yaml(
        name,
        chosen,
        fit_points[train],
        behaviour_points[train],
        y[train],
        points_to_double,
        fr,
    )
    model = parse_model(text, f"<suggested {name}>")
    step(STEPS[5])
    suggestion = Suggestion(
        model=model,
        yaml=text,
        rules=chosen,
        frame=fr,
        holdout_auc_points=None,
        holdout_auc_float=float_auc,
        train_leads=len(train),
        holdout_leads=len(test),
        penalty=lam,
        cv_auc=cv_auc,
        notes=notes,
        refused=refused,
        base_rates={"training": float(y[train].mean())},
    )
    if len(test):
        totals = X[test] @ weights
        _judge(suggestion, data, found, test, totals, b_keep, points_per)
        suggestion.baselines = {
            "naive_bayes_auc": float(
                roc_auc_score(y[test], naive_bayes(X[train], y[train], X[test]))
            ),
            "logistic_auc": float(
                roc_auc_score(y[test], logistic(X[fitted_on], y[fitted_on], X[test], seed))
            ),
        }
    else:
        notes.append(
            "no holdout (--holdout 0): learnt from every example; judge the model by the "
            "figures of a run with a holdout, or by a backtest on later data"
        )
    return suggestion


def _check_signal(auc: float | None, held: np.ndarray | None, cv_auc: float) -> None:
    if auc is None or held is None:
        if cv_auc < NO_SIGNAL:
            raise NoSignal(
                f"no signal: cross-validated AUC {cv_auc:.2f}; the data predicts nothing, so "
                "no model was written"
            )
        return
    won, other = int(held.sum()), int((~held).sum())
    low, _ = _auc_interval(auc, won, other)
    if auc < NO_SIGNAL or low <= 0.5:
        raise NoSignal(
            f"no signal: holdout AUC {auc:.2f} (95 % interval from {low:.2f}) on {won + other:,} "
            f"held-out examples, {won:,} won; the data predicts nothing, so no model was written"
        )


def _judge(
    s: Suggestion,
    data: Dataset,
    found: Features,
    test: np.ndarray,
    totals: np.ndarray,
    intercept: float,
    points_per: float,
) -> None:
    """The engine's scores of the written model on the held-out examples, and calibration."""
    from leadscore.engine.batch import compile_batch
    from leadscore.evaluate.backtest import backtest

    y = found.y[test]
    s.base_rates["holdout"] = float(y.mean())
    at = found.at[test]
    engine = np.full(len(test), np.nan)
    ids = np.asarray(found.lead_ids, dtype=object)[test]
    run: Backtest | None = None
    if s.frame.split == "time" and s.frame.evaluation is not None:
        run = backtest(s.model, data, s.frame.evaluation, s.frame.horizon)
    for moment in np.unique(at):
        rows = np.flatnonzero(at == moment)
        if run is not None and run.per_lead is not None:
            # the backtest scored these very leads as of this cut-off: no second scoring
            pairs = zip(
                run.per_lead["lead_id"].tolist(), run.per_lead["total"].tolist(), strict=True
            )
        else:
            when = moment.astype("datetime64[us]").item()
            table = (
                compile_batch(s.model, data, when).scores.select("lead_id", "total").to_pyarrow()
            )
            pairs = zip(table["lead_id"].to_pylist(), table["total"].to_pylist(), strict=True)
        by_id = {str(i): float(t) for i, t in pairs}
        engine[rows] = [by_id[str(i)] for i in ids[rows]]
    differ = int(np.count_nonzero(np.abs(engine - totals) > 1e-6))
    if differ:
        s.notes.append(
            f"the engine's scores of the written model differ from the regression's points on "
            f"{differ:,} held-out examples: the figures below are the engine's"
        )
    s.holdout_auc_points = float(roc_auc_score(y, engine))
    s.holdout_points, s.holdout_won = engine, y
    p = expit(intercept + engine / points_per)
    s.calibration = _calibration(y, p)
    if run is not None:
        s.backtest_run = run
        s.backtest = {
            "cutoff": run.cutoff.isoformat(),
            "horizon_days": run.horizon_days,
            "auc": run.auc,
            "leads": run.truth.leads,
            "won": run.truth.won,
            "base_rate": run.base_rate,
            "deciles": [d.as_row() for d in run.deciles],
            "conversion": run.conversion,
            "thresholds": run.thresholds,
        }


def _calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part):
            out.append(
                {
                    "leads": len(part),
                    "predicted": round(float(p[part].mean()), 4),
                    "observed": round(float(y[part].mean()), 4),
                }
            )
    return out


def _select(
    features: list[Feature],
    w: np.ndarray,
    X: np.ndarray,
    behaviours: int,
    negatives: int,
    rules: int,
) -> list[int]:
    """The rules to keep: fit attributes with a weight, the strongest behaviours and negative
    actions, at most `rules` in all (the strongest by effect: weight times spread)."""
    spread = X.std(axis=0)
    strength = {i: abs(w[i]) * spread[i] for i in range(len(features)) if w[i] != 0}
    fit = [i for i in strength if features[i].fit]
    acts = [i for i in strength if not features[i].fit]
    positive = sorted((i for i in acts if w[i] > 0), key=lambda i: -strength[i])[:behaviours]
    negative = sorted((i for i in acts if w[i] < 0), key=lambda i: -strength[i])[:negatives]
    pool = sorted(fit + positive + negative, key=lambda i: -strength[i])[:rules]
    return sorted(pool)


# --- the model's YAML -----------------------------------------------------------------------


def _word(value: float) -> str:
    text = f"{abs(value):g}".replace("e+", "e")
    return ("minus_" if value < 0 else "") + text


def slug(f: Feature) -> str:
    """A rule name that keeps the feature's meaning: `emp_var_rate_below_minus_1.8`."""

    def clean(text: str) -> str:
        out = "".join(ch if ch.isalnum() or ch == "." else "_" for ch in text.lower())
        return "_".join(p for p in out.replace(".", "_").split("_") if p)

    base = clean(f.field)
    if f.kind == "category":
        tail = clean(str(f.value)) or "empty"
    elif f.kind == "flag":
        tail = "yes"
    elif f.kind in ("at_least", "value_at_least"):
        tail = f"{'value_' if f.kind == 'value_at_least' else ''}{_word(f.threshold or 0)}_or_more"
    elif f.kind in ("below", "value_below"):
        tail = f"{'value_' if f.kind == 'value_below' else ''}below_{_word(f.threshold or 0)}"
    elif f.kind == "recent":
        tail = f"last_{f.days:g}_days"
    else:
        tail = "events"
    return f"{base}_{tail}"[:80]


def _condition(f: Feature) -> dict[str, Any]:
    if f.kind == "category":
        return {"field": f.field, "equals": f.value}
    if f.kind == "flag":
        return {"field": f.field, "equals": True}
    op = "gte" if f.kind == "at_least" else "lt"
    return {"field": f.field, op: f.threshold}


def _step(values: np.ndarray) -> float:
    """A round step for thresholds over these points: 1, 2, 5, 10, 20, 25, 50, ..."""
    spread = float(np.quantile(values, 0.95) - np.quantile(values, 0.05)) if len(values) else 0
    target = max(spread / 20, 1.0)
    magnitude = 10 ** math.floor(math.log10(target))
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= target))


def _cutoffs(values: np.ndarray, bands: tuple[tuple[str, float], ...]) -> list[dict[str, Any]]:
    """Band minimums at these shares, rounded to a round step and not below zero."""
    step = _step(values)
    out: list[dict[str, Any]] = []
    last: float | None = None
    for band, share in bands:
        raw = float(np.quantile(values, share))
        rounded = max(0.0, round(raw / step) * step)
        minimum: float = int(rounded) if float(rounded).is_integer() else rounded
        if len(values) and minimum <= float(np.min(values)):
            continue  # every lead reaches it: the band would hold everyone
        if last is not None and minimum >= last:
            continue  # too few distinct values for this band: merge it into the one above
        out.append({"name": band, "min": minimum})
        last = minimum
    return out


def _band(points: np.ndarray, bands: list[dict[str, Any]], key: str) -> np.ndarray:
    """Each value's band, as the engine assigns it: the first whose `min` it reaches."""
    out = np.full(len(points), str(bands[-1][key]), dtype=object)
    for band in reversed(bands[:-1]):
        out[points >= band["min"]] = str(band[key])
    return out


def _matrix(
    grades: list[dict[str, Any]],
    levels: list[dict[str, Any]],
    fit_points: np.ndarray,
    behaviour_points: np.ndarray,
    won: np.ndarray,
    evidence: dict[str, str],
) -> list[dict[str, Any]]:
    """Routing by grade x engagement cell: the best-converting cells go hot while they hold
    at most HOT of the leads, the next warm up to WARM; a cell converting at or below the
    base rate never goes to sales."""
    grade = _band(fit_points, grades, "grade")
    level = _band(behaviour_points, levels, "level")
    base = float(won.mean())
    cells: list[tuple[float, int, str, str]] = []
    for g in [str(b["grade"]) for b in grades]:
        for lv in [str(b["level"]) for b in levels]:
            inside = (grade == g) & (level == lv)
            if inside.any():
                cells.append((float(won[inside].mean()), int(inside.sum()), g, lv))
    cells.sort(key=lambda c: (-c[0], c[2], c[3]))
    routing: list[dict[str, Any]] = []
    covered = 0
    hot_open = True
    for rate, leads, g, lv in cells:
        if rate <= base:
            break  # no better than a lead taken at random
        after = (covered + leads) / len(won)
        if after > WARM:
            break
        hot = hot_open and after <= HOT
        hot_open = hot
        routing.append(
            {
                "name": f"{g}{lv}",
                "when": {"grade": [g], "engagement": [lv]},
                "temperature": "hot" if hot else "warm",
                "stage": "SQL" if hot else "MQL",
                "sla_hours": 24 if hot else 72,
            }
        )
        evidence[f"{g}{lv}"] = (
            f"{100 * rate:.1f}% of the {leads:,} training examples in this cell won "
            f"(base rate {100 * base:.1f}%)"
        )
        covered += leads
    routing.append({"name": "nurture", "temperature": "cold", "stage": "nurture"})
    return routing


def _yaml(
    name: str,
    rules: list[Rule],
    fit_points: np.ndarray,
    behaviour_points: np.ndarray,
    won: np.ndarray,
    points_to_double: float,
    fr: ex.Frame,
) -> str:
    fit_rules: list[dict[str, Any]] = []
    behaviour_rules: list[dict[str, Any]] = []
    evidence: dict[str, str] = {}
    used: set[str] = set()
    for r in sorted(rules, key=lambda r: (-abs(r.points), r.feature.name)):
        base = slug(r.feature)
        name_ = base
        k = 2
        while name_ in used:
            name_ = f"{base}_{k}"
            k += 1
        used.add(name_)
        evidence[name_] = (
            f"{r.support:,} training examples, {100 * r.won_with:.1f}% won with it vs "
            f"{100 * r.won_without:.1f}% without"
        )
        f = r.feature
        rule: dict[str, Any] = {"name": name_, "label": f.name}
        if f.kind == "count":
            rule.update(event=f.field, points=r.points)
            if f.cap and f.cap > 0:
                rule["max_count"] = f.cap
            behaviour_rules.append(rule)
        elif f.kind == "recent":
            rule.update(event=f.field, points=r.points, max_count=1, within_days=f.days)
            behaviour_rules.append(rule)
        elif f.kind in ("value_at_least", "value_below"):
            op = "gte" if f.kind == "value_at_least" else "lt"
            rule.update(
                event=f.field,
                where={"field": "value", op: f.threshold},
                points=r.points,
                max_count=1,
            )
            behaviour_rules.append(rule)
        else:
            rule.update(when=_condition(f), points=r.points)
            fit_rules.append(rule)
    grades = [{"grade": g["name"], "min": g["min"]} for g in _cutoffs(fit_points, GRADES)]
    grades.append({"grade": "D"})
    levels = [{"level": lv["name"], "min": lv["min"]} for lv in _cutoffs(behaviour_points, LEVELS)]
    levels.append({"level": "4"})
    routing = _matrix(grades, levels, fit_points, behaviour_points, won, evidence)
    doc: dict[str, Any] = {
        "name": name,
        "version": "1",
        "description": (
            f"Suggested by leadscore from won/lost outcomes: {points_to_double:g} points double "
            f"the odds of a win within {fr.horizon_days:g} days. Review every rule before "
            "publishing."
        ),
        "fit": {"rules": fit_rules, "grades": grades},
        # the points are a linear model: negative actions may take behaviour below zero
        "behaviour": {"decay": {"type": "none"}, "floor": None, "rules": behaviour_rules},
        "engagement": levels,
        "routing": routing,
    }
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- name: "):
            key = stripped.removeprefix("- name: ").strip("'\"")
            if key in evidence:
                indent = line[: len(line) - len(stripped)]
                lines.append(f"{indent}# evidence: {evidence[key]}")
        lines.append(line)
    header = (
        "# Suggested by `leadscore suggest`: a logistic regression whose every weight keeps the\n"
        "# sign of its own evidence, log-odds turned into integer points. Learnt as of\n"
        f"# {', '.join(c.date().isoformat() for c in fr.cutoffs)}; a win counts within "
        f"{fr.horizon_days:g} days.\n"
        "# Each rule's evidence is in the comment above it.\n"
    )
    return header + "\n".join(lines) + "\n"
