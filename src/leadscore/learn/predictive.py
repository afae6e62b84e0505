"""A predictive score (S26): gradient boosting on the lead's fields and behaviour, calibrated
probabilities of winning, and per lead the reasons that raised or lowered them.

The estimator is scikit-learn's HistGradientBoostingClassifier: it is already a dependency, it
takes categories and missing values natively (no one-hot blow-up, no imputation to explain),
bins features into histograms so a million leads fit in minutes on two cores, and it is
deterministic given its seed. LightGBM is the same algorithm family and rarely better at this
size; it would add a native library for no gain.

Examples are those `suggest` learns from (`leadscore.learn.examples`): each lead open at a
cut-off, labelled by a win within the horizon. Columns are the candidates `suggest` draws on,
unbinned: each descriptive lead or account field (category, flag or number) and, per event
type, the number of events, their summed value and the days since the last one — all from
events before the cut-off (training) or before `as_of` (prediction). Fields and features the
leakage guard refuses are left out and listed.

Validation: with outcomes spread over time, the holdout is the leads open at the evaluation
cut-off, judged by wins within the horizon after it (what a backtest at that cut-off judges),
and training uses earlier cut-offs whose horizons end by then; otherwise a stratified share of
leads. The training examples are cut into five stratified folds by lead (two beyond 200,000
examples); each fold stops the boosting of a model fitted on the other folds early and
calibrates it (Platt scaling), and the calibrated models' probabilities are averaged — every
training example is used for fitting and for calibration, never both in one model. The saved
artefact is exactly the model the holdout judged.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import KFold, StratifiedGroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder
from threadpoolctl import threadpool_limits

from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError, LeadscoreError
from leadscore.learn import examples as ex
from leadscore.learn.baselines import logistic, naive_bayes
from leadscore.learn.features import Behaviour, behaviour, build, codes, described, numbers
from leadscore.learn.leakage import Refusal, implausible, late_fields
from leadscore.schema import Dataset

FORMAT = 1
ColumnKind = Literal["category", "flag", "number", "count", "value", "days_since"]
Split = ex.Split
# HistGradientBoosting bins a categorical feature into at most 255 bins, one kept for missing.
MAX_CATEGORIES = 254
FOLDS = 5
# More training leads than this are cross-fitted in two folds, not FOLDS.
LARGE = 200_000
# Fewer rows than this are predicted on one thread.
SMALL = 2000
STEPS = (
    "finding the examples",
    "counting events",
    *(f"fitting and calibrating gradient boosting, fold {k}" for k in range(1, FOLDS + 1)),
    "checking on the holdout",
    "baselines on the same split",
)


class ArtefactError(LeadscoreError):
    """A predictive model file that cannot be used."""


@dataclass(frozen=True)
class Column:
    """One input of the predictive model: a lead field or a statistic of an event type."""

    name: str
    kind: ColumnKind
    field: str  # the lead field, or the event type
    categories: tuple[str, ...] = ()  # category: the code of a value is its index here

    def describe(self, value: float) -> str:
        """The value of this column as a reader would say it."""
        if np.isnan(value):
            return "none" if self.kind in ("value", "days_since") else "missing"
        if self.kind == "category":
            return self.categories[int(value)]
        if self.kind == "flag":
            return "yes" if value else "no"
        return f"{value:g}"


@dataclass(frozen=True)
class Reason:
    """How much one column moved a lead's probability, against a typical lead's value."""

    column: str
    value: str
    effect: float  # probability with the lead's value minus with the typical one

    def text(self) -> str:
        """E.g. `occupation = Working Professional (+31 pp)`."""
        return f"{self.column} = {self.value} ({100 * self.effect:+.0f} pp)"


@dataclass
class Predictor:
    """A trained predictive model with everything needed to use and judge it without data."""

    name: str
    columns: list[Column]
    typical: np.ndarray  # per column: the value reasons compare against
    estimator: Any
    training: dict[str, Any]
    metrics: dict[str, Any]
    versions: dict[str, str]
    format: int = FORMAT

    @property
    def lead_fields(self) -> list[str]:
        """Lead fields the model reads (each must be in data it predicts for)."""
        return [c.field for c in self.columns if c.kind in ("category", "flag", "number")]

    def probabilities(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probability of winning per row."""
        if len(X) == 0:
            return np.zeros(0)
        won = list(self.estimator.classes_).index(True)
        if len(X) >= SMALL:
            return np.asarray(self.estimator.predict_proba(X)[:, won], dtype=float)
        # OpenMP threads cost more than they save on a few rows, and stall when the cores are
        # busy (the service scoring one lead per event)
        with threadpool_limits(limits=1, user_api="openmp"):
            return np.asarray(self.estimator.predict_proba(X)[:, won], dtype=float)

    def reasons(self, X: np.ndarray, top: int = 3) -> list[tuple[list[Reason], list[Reason]]]:
        """Per row: the columns that raised its probability most, and those that lowered it."""
        base = self.probabilities(X)
        effects = np.zeros(X.shape)
        for j in range(X.shape[1]):
            changed = X.copy()
            changed[:, j] = self.typical[j]
            effects[:, j] = base - self.probabilities(changed)
        out = []
        for i in range(len(X)):
            order = np.argsort(-effects[i], kind="stable")
            up = [self._reason(X, i, j, effects[i, j]) for j in order[:top] if effects[i, j] > 0]
            down_order = np.argsort(effects[i], kind="stable")[:top]
            down = [self._reason(X, i, j, effects[i, j]) for j in down_order if effects[i, j] < 0]
            out.append((up, down))
        return out

    def _reason(self, X: np.ndarray, i: int, j: int, effect: float) -> Reason:
        column = self.columns[j]
        return Reason(column.name, column.describe(float(X[i, j])), float(effect))

    def summary(self) -> dict[str, Any]:
        """What the artefact holds, JSON-ready (no estimator)."""
        return {
            "name": self.name,
            "format": self.format,
            "columns": [
                {"name": c.name, "kind": c.kind, "field": c.field, "categories": len(c.categories)}
                for c in self.columns
            ],
            "training": self.training,
            "metrics": self.metrics,
            "versions": self.versions,
        }


@dataclass
class Ensemble:
    """Calibrated models fitted on different folds; their probabilities are averaged."""

    members: list[CalibratedClassifierCV]
    iterations: list[int]

    @property
    def classes_(self) -> np.ndarray:
        """The labels, as scikit-learn estimators give them."""
        return np.asarray(self.members[0].classes_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Mean of the members' probabilities."""
        return np.asarray(np.mean([m.predict_proba(X) for m in self.members], axis=0))


@dataclass
class Predictions:
    """Probabilities of winning for leads as of an instant, and the inputs behind them."""

    lead_ids: list[str]
    probability: np.ndarray
    X: np.ndarray
    notes: list[str] = field(default_factory=list)


# --- columns ---------------------------------------------------------------------------------


def _event_columns(stats: Behaviour) -> list[tuple[Column, np.ndarray]]:
    out: list[tuple[Column, np.ndarray]] = []
    for kind in sorted(stats.counts):
        out.append((Column(f"{kind} events", "count", kind), stats.counts[kind]))
        out.append((Column(f"{kind} value", "value", kind), stats.sums[kind]))
        out.append((Column(f"days since {kind}", "days_since", kind), stats.days_since[kind]))
    return out


def _varies(values: np.ndarray, kind: ColumnKind) -> bool:
    missing = np.isnan(values)
    distinct = len(np.unique(values[~missing]))
    if kind == "category":
        return distinct + int(missing.any()) >= 2
    # a number with one value besides "missing" says no more than the presence its event
    # count already tells (and scikit-learn cannot bin it)
    return distinct >= 2


def _candidates(
    table: pa.Table, stats: Behaviour, exclude: frozenset[str], rows: np.ndarray
) -> tuple[list[Column], list[np.ndarray], list[str]]:
    """Every column that varies among these (training) rows, and the ones dropped as constant."""
    # a field's variety is judged among leads, not examples (a lead recurs per cut-off)
    n = int(pc.count_distinct(table["lead_id"]).as_py())
    columns: list[Column] = []
    values: list[np.ndarray] = []
    constant: list[str] = []
    for name in table.column_names:
        how = described(name, table[name], n, exclude)
        if how is None:
            continue
        if how == "category":
            index, cats = codes(table[name])
            # the most frequent categories get codes; rarer ones count as missing
            counts = np.bincount(index[index >= 0], minlength=len(cats))
            kept = sorted(np.argsort(-counts, kind="stable")[:MAX_CATEGORIES].tolist())
            recode = np.full(len(cats) + 1, np.nan)
            for code, k in enumerate(kept):
                recode[k] = code
            column = Column(name, "category", name, tuple(str(cats[k]) for k in kept))
            columns.append(column)
            values.append(recode[index])  # index -1 (null) reads the trailing NaN
        else:
            columns.append(Column(name, "flag" if how == "flag" else "number", name))
            values.append(numbers(table[name]))
    for column, arr in _event_columns(stats):
        columns.append(column)
        values.append(arr)
    keep = [i for i, v in enumerate(values) if _varies(v[rows], columns[i].kind)]
    constant = [columns[i].name for i in range(len(columns)) if i not in set(keep)]
    return [columns[i] for i in keep], [values[i] for i in keep], constant


def _lead_matrix(columns: Sequence[Column], table: pa.Table, notes: list[str]) -> list[np.ndarray]:
    """The lead-field columns of the matrix from an Arrow table of leads, types checked."""
    out: list[np.ndarray] = []
    for c in columns:
        if c.kind not in ("category", "flag", "number"):
            continue
        column = table[c.field]  # predict() has named any missing field already
        if c.kind == "category":
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                raise DataError(
                    f"lead field {c.field!r} is {column.type}, but the model learnt it as text"
                )
            index, cats = codes(column)
            known = {v: i for i, v in enumerate(c.categories)}
            recode = np.array([known.get(str(v), np.nan) for v in cats] + [np.nan], dtype=float)
            unseen = sorted({str(v) for v in cats if str(v) not in known})
            if unseen:
                leads = int(
                    np.isin(index, [k for k, v in enumerate(cats) if str(v) in unseen]).sum()
                )
                shown = ", ".join(repr(v) for v in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
                notes.append(
                    f"lead field {c.field!r}: {leads:,} leads have values the model never saw "
                    f"({shown}); they are read as missing"
                )
            out.append(recode[index])
        else:
            if not (
                pa.types.is_boolean(column.type)
                or pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type)
            ):
                raise DataError(
                    f"lead field {c.field!r} is {column.type}, but the model learnt it as a "
                    f"{'flag' if c.kind == 'flag' else 'number'}"
                )
            out.append(numbers(column))
    return out


def _assemble(
    columns: Sequence[Column], leads: list[np.ndarray], stats: Behaviour, size: int
) -> np.ndarray:
    lead_values = iter(leads)
    matrix = np.zeros((size, len(columns)))
    for j, c in enumerate(columns):
        if c.kind in ("category", "flag", "number"):
            matrix[:, j] = next(lead_values)
        elif c.kind == "count":
            matrix[:, j] = stats.counts.get(c.field, np.zeros(size))
        elif c.kind == "value":
            matrix[:, j] = stats.sums.get(c.field, np.full(size, np.nan))
        else:
            matrix[:, j] = stats.days_since.get(c.field, np.full(size, np.nan))
    return matrix


# --- training --------------------------------------------------------------------------------


# The tree shapes tried, (max_leaf_nodes, min_samples_leaf): shallow trees for most lead data,
# larger leaves where wins are rare. The one that does best on the latest training cut-off (a
# model fitted on the earlier ones) is kept; without several cut-offs, on cross-validation.
# LINEAR is a regularised logistic regression on the same columns (categories one-hot, numbers
# in quantile bins, missing values flagged), averaged with the trees on data with times.
TREES = ((8, 40), (4, 200))
LINEAR = (0, 0)


def _estimator(categorical: np.ndarray, seed: int, shape: tuple[int, int] = TREES[0]) -> Any:
    """An unfitted estimator of this shape (see TREES and LINEAR)."""
    if shape == LINEAR:
        return _linear(categorical)
    # shallow trees and a slow rate with patience generalise best on lead data (a few
    # thousand to a few million rows, tens of columns); early stopping decides the length
    return HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=2000,
        max_leaf_nodes=shape[0],
        min_samples_leaf=shape[1],
        l2_regularization=1.0,
        categorical_features=categorical,
        early_stopping=True,
        n_iter_no_change=30,
        random_state=seed,
    )


def _linear(categorical: np.ndarray) -> Pipeline:
    cats = [int(j) for j in np.flatnonzero(categorical)]
    nums = [int(j) for j in np.flatnonzero(~categorical)]
    parts: list[tuple[str, Any, list[int]]] = []
    if cats:
        coded = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=-1),
            OneHotEncoder(handle_unknown="ignore", min_frequency=20),
        )
        parts.append(("categories", coded, cats))
    if nums:
        binned = make_pipeline(
            SimpleImputer(strategy="constant", fill_value=-1, add_indicator=True),
            KBinsDiscretizer(
                n_bins=8,
                encode="onehot",
                strategy="quantile",
                quantile_method="averaged_inverted_cdf",
            ),
        )
        parts.append(("numbers", binned, nums))
    return make_pipeline(ColumnTransformer(parts), LogisticRegression(C=0.3, max_iter=5000))


def _fit(estimator: Any, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> Any:
    """Fit either kind: boosting stops early on the validation rows, the regression ignores them."""
    with warnings.catch_warnings():
        # quantile bins of counts with many ties merge; that is the intent, not a problem
        warnings.filterwarnings("ignore", message="Bins whose width", category=UserWarning)
        warnings.filterwarnings("ignore", message="Feature .* is constant", category=UserWarning)
        if isinstance(estimator, HistGradientBoostingClassifier):
            return estimator.fit(X, y, X_val=X_val, y_val=y_val)
        return estimator.fit(X, y)


def _calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    order = np.argsort(p, kind="stable")
    out = []
    for part in np.array_split(order, bins):
        if len(part) == 0:
            continue
        out.append(
            {
                "leads": len(part),
                "predicted": round(float(p[part].mean()), 4),
                "observed": round(float(y[part].mean()), 4),
            }
        )
    return out


def train(
    data: Dataset,
    *,
    name: str = "predictive",
    holdout: float = 0.2,
    seed: int = 42,
    how: Split = "auto",
    cutoff: datetime | None = None,
    horizon: timedelta | None = None,
    every: timedelta | None = None,
    exclude: frozenset[str] = frozenset(),
    allow: frozenset[str] = frozenset(),
    baselines: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Predictor:
    """Train, calibrate and judge a predictive model on the data's outcomes (module docstring)."""
    step = progress or (lambda _: None)
    step(STEPS[0])
    fr = ex.frame(
        data, cutoff=cutoff, horizon=horizon, every=every, holdout=holdout, split=how, seed=seed
    )
    found = ex.examples(data, fr)
    table, y, at = found.table, found.y, found.at
    ids = table["lead_id"].combine_chunks()
    train_rows = np.flatnonzero(~found.holdout)
    test_rows = np.flatnonzero(found.holdout)
    refused = late_fields(table, y, ~found.holdout, allow)
    readable = None
    # no readable feature may vary while the predictive columns still do
    with contextlib.suppress(DataError):
        readable = build(data, found, exclude=exclude | {r.name for r in refused})
    if readable is not None:
        for r in implausible(readable, allow):
            feature = next(f for f in readable.features if f.name == r.name)
            refused.append(Refusal(feature.field, f"{r.name!r}: {r.reason}"))
    dropped = exclude | {r.name for r in refused}
    step(STEPS[1])
    stats = behaviour(data, ids, at)
    for r in refused:
        for part in (stats.counts, stats.sums, stats.days_since):
            part.pop(r.name, None)
    columns, values, constant = _candidates(table, stats, dropped, train_rows)
    if not columns:
        raise DataError(
            f"every candidate feature is the same for all {len(train_rows):,} training examples: "
            "nothing to learn from"
        )
    X = np.column_stack(values)
    categorical = np.array([c.kind == "category" for c in columns])
    # past LARGE training examples two folds fit as well as five, at two fifths of the time
    n_folds = FOLDS if len(train_rows) <= LARGE else 2
    folds = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    groups = np.asarray(found.lead_ids, dtype=object)[train_rows]
    splits = list(folds.split(train_rows, y[train_rows], groups))

    def cross_fit(shape: tuple[int, int]) -> tuple[list[CalibratedClassifierCV], list[int], float]:
        """One calibrated model per fold, and their out-of-fold AUC."""
        members: list[CalibratedClassifierCV] = []
        iterations: list[int] = []
        out_of_fold = np.zeros(len(y))
        for k, (fit_part, held_part) in enumerate(splits):
            step(STEPS[2 + k])
            fit_rows, held_rows = train_rows[fit_part], train_rows[held_part]
            fitted = _fit(
                _estimator(categorical, seed, shape),
                X[fit_rows],
                y[fit_rows],
                X[held_rows],
                y[held_rows],
            )
            # a frozen model's cross-validated predictions are its own: the folds only need
            # to exist, and unstratified ones do for any class balance
            calibrated = CalibratedClassifierCV(
                FrozenEstimator(fitted), method="sigmoid", cv=KFold(2)
            )
            members.append(calibrated.fit(X[held_rows], y[held_rows]))
            iterations.append(0 if shape == LINEAR else int(fitted.n_iter_))
            won = list(calibrated.classes_).index(True)
            out_of_fold[held_rows] = calibrated.predict_proba(X[held_rows])[:, won]
        return members, iterations, float(roc_auc_score(y[train_rows], out_of_fold[train_rows]))

    # past LARGE training examples the first shape is kept: a second fit would double the time
    shapes = TREES if len(train_rows) <= LARGE else TREES[:1]
    best: tuple[float, list[CalibratedClassifierCV], list[int], tuple[int, int]] | None = None
    chosen_by = "cross-validation"
    if len(shapes) > 1:
        # one fit per shape on the earlier cut-offs decides; only the chosen one is cross-fitted
        forward = {s: _forward_auc(X, y, at, train_rows, categorical, seed, s) for s in shapes}
        scores = {s: v for s, v in forward.items() if v is not None}
        if len(scores) == len(shapes):
            chosen_by = "the latest training cut-off"
            pick = shapes[0]
            for s in shapes[1:]:
                if scores[s] > scores[pick] + 1e-3:
                    pick = s
            members, iterations, _ = cross_fit(pick)
            best = (scores[pick], members, iterations, pick)
    if best is None:
        for shape in shapes:
            members, iterations, oof = cross_fit(shape)
            if best is None or oof > best[0] + 1e-3:
                best = (oof, members, iterations, shape)
    assert best is not None
    cv_auc, members, iterations, shape = best
    blended = fr.timed
    if blended:
        # a later period differs from the ones learnt from (new leads stop, the base rate
        # moves): averaged with a regularised linear model on the same columns, the trees'
        # probabilities hold up where trees alone chase patterns of the training periods
        linear, _, _ = cross_fit(LINEAR)
        members = members + linear
    typical = np.array(
        [_typical(X[train_rows, j], columns[j].kind) for j in range(len(columns))], dtype=float
    )
    predictor = Predictor(
        name=name,
        columns=columns,
        typical=typical,
        estimator=Ensemble(members, iterations),
        training={},
        metrics={},
        versions={
            "leadscore": _version(),
            "scikit-learn": sklearn.__version__,
            "python": platform.python_version(),
        },
    )
    step(STEPS[2 + FOLDS])
    base_train = float(y[train_rows].mean())
    notes = [*fr.derived, *(r.text() for r in refused)]
    if len(test_rows):
        p = predictor.probabilities(X[test_rows])
        yt = y[test_rows]
        top = np.argsort(-p, kind="stable")[: max(1, len(p) // 10)]
        base_held = float(yt.mean())
        predictor.metrics = {
            "holdout_auc": float(roc_auc_score(yt, p)),
            "brier": float(brier_score_loss(yt, p)),
            "log_loss": float(log_loss(yt, p, labels=[False, True])),
            "top_decile_lift": float(yt[top].mean() / yt.mean()),
            "calibration": _calibration_table(yt, p),
            "mean_predicted": float(p.mean()),
            "base_rates": {"training": base_train, "holdout": base_held},
            "boosting_iterations": iterations,
            "learner": {
                "kind": "gradient boosting"
                + (" averaged with a logistic regression" if blended else ""),
                "max_leaf_nodes": shape[0],
                "min_samples_leaf": shape[1],
                "chosen_by": chosen_by,
                "auc_there": cv_auc,
            },
        }
        if fr.split == "time":
            predictor.metrics["drift"] = _drift(base_train, base_held, float(p.mean()))
    else:
        predictor.metrics = {
            "base_rates": {"training": base_train},
            "boosting_iterations": iterations,
        }
        notes.append(
            "no holdout (--holdout 0): learnt from every example; judge the model by the "
            "figures of a run with a holdout, or by a backtest on later data"
        )
    predictor.training = {
        "examples": len(y),
        "won": int(y.sum()),
        "lost": int((~y).sum()),
        "train_leads": len(train_rows),
        "folds": n_folds,
        "holdout_leads": len(test_rows),
        "holdout_won": int(y[test_rows].sum()),
        "split": {"kind": fr.split, **fr.as_dict()},
        "frame": fr.describe(),
        "excluded_fields": sorted(exclude),
        "refused": [{"name": r.name, "reason": r.reason} for r in refused],
        "constant_dropped": constant,
        "notes": notes,
    }
    if baselines and len(test_rows):
        step(STEPS[3 + FOLDS])
        predictor.metrics["baselines"] = _baselines(readable, train_rows, test_rows, y)
    return predictor


def _forward_auc(
    X: np.ndarray,
    y: np.ndarray,
    at: np.ndarray,
    train_rows: np.ndarray,
    categorical: np.ndarray,
    seed: int,
    shape: tuple[int, int],
) -> float | None:
    """AUC on the latest training cut-off of a model fitted on the earlier ones: how a shape
    fares on a later period, as the holdout will judge it (None: one cut-off only)."""
    moments = np.unique(at[train_rows])
    if len(moments) < 2:
        return None
    latest = train_rows[at[train_rows] == moments[-1]]
    earlier = train_rows[at[train_rows] < moments[-1]]
    if min(y[latest].sum(), (~y[latest]).sum()) < 5 or y[earlier].sum() < 10:
        return None
    boosted = _fit(
        _estimator(categorical, seed, shape), X[earlier], y[earlier], X[latest], y[latest]
    )
    won = list(boosted.classes_).index(True)
    return float(roc_auc_score(y[latest], boosted.predict_proba(X[latest])[:, won]))


def _drift(base_train: float, base_held: float, mean_predicted: float) -> str:
    """The base-rate shift between the training periods and the later one, in words."""
    shift = 100 * (base_held - base_train)
    return (
        f"base rate {100 * base_train:.1f} % in the training periods, {100 * base_held:.1f} % "
        f"in the later period ({shift:+.1f} pp); the model predicted {100 * mean_predicted:.1f} % "
        "on average there"
    )


def _typical(values: np.ndarray, kind: ColumnKind) -> float:
    present = values[~np.isnan(values)]
    # most leads have no such event: "none" is the typical value unless most do
    if kind in ("value", "days_since") and len(present) < 0.5 * len(values):
        return float("nan")
    if len(present) == 0:
        return float("nan")
    if kind in ("category", "flag"):
        found, counts = np.unique(present, return_counts=True)
        return float(found[np.argmax(counts)])
    return float(np.median(present))


def _baselines(
    readable: Any, train_rows: np.ndarray, test_rows: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    """Naive Bayes and plain logistic regression on the readable features, same rows."""
    if readable is None:
        # the baselines need readable features that vary; the predictive model may not
        return {"skipped": "baselines skipped: no readable feature varies among the examples"}
    X = readable.X
    nb = naive_bayes(X[train_rows], y[train_rows], X[test_rows])
    lr = logistic(X[train_rows], y[train_rows], X[test_rows], seed=0)
    return {
        "naive_bayes_auc": float(roc_auc_score(y[test_rows], nb)),
        "logistic_auc": float(roc_auc_score(y[test_rows], lr)),
    }


def _version() -> str:
    from importlib.metadata import version

    return version("leadscore")


# --- using it --------------------------------------------------------------------------------


def predict(
    predictor: Predictor,
    data: Dataset,
    as_of: datetime,
    lead_ids: Sequence[str] | None = None,
) -> Predictions:
    """Probabilities of winning as of `as_of`, from fields and events before it."""
    as_of = utc_naive(as_of)
    table = ex.lead_table(data)
    if lead_ids is not None:
        wanted = pa.array(sorted({str(i) for i in lead_ids}), pa.string())
        table = table.filter(pc.is_in(pc.cast(table["lead_id"], pa.string()), value_set=wanted))
    missing = sorted(set(predictor.lead_fields) - set(table.column_names))
    if missing:
        raise DataError(
            f"the leads have no {', '.join(repr(m) for m in missing)}: the predictive model "
            f"{predictor.name!r} was trained with {'them' if len(missing) > 1 else 'it'}"
        )
    ids = table["lead_id"].combine_chunks()
    notes: list[str] = []
    lead_values = _lead_matrix(predictor.columns, table, notes)
    moments = np.full(table.num_rows, np.datetime64(as_of, "us"))
    stats = behaviour(data, ids, moments)
    X = _assemble(predictor.columns, lead_values, stats, table.num_rows)
    return Predictions(ids.to_pylist(), predictor.probabilities(X), X, notes)


def predict_records(
    predictor: Predictor,
    leads: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    as_of: datetime,
    accounts: Sequence[Mapping[str, Any]] = (),
) -> np.ndarray:
    """Probabilities for leads given as records (the service's path), as `predict` computes;
    account fields (`account.<field>`) come from `accounts` by the lead's account_id."""
    as_of = utc_naive(as_of)
    by_account = {str(a["account_id"]): a for a in accounts if a.get("account_id") is not None}
    leads = [
        {
            **r,
            **{
                f"{ex.ACCOUNT_PREFIX}{k}": v
                for k, v in by_account.get(str(r.get("account_id")), {}).items()
                if k != "account_id"
            },
        }
        for r in leads
    ]
    ids = [str(r["lead_id"]) for r in leads]
    index = {lead: i for i, lead in enumerate(ids)}
    size = len(ids)
    stats = Behaviour({}, {}, {}, {}, {}, {})
    for ev in events:
        i = index.get(str(ev["lead_id"]))
        ts = utc_naive(ev["ts"])
        if i is None or ts >= as_of:
            continue
        kind = str(ev["type"])
        counts = stats.counts.setdefault(kind, np.zeros(size))
        counts[i] += 1
        value = ev.get("value")
        if value is not None:
            sums = stats.sums.setdefault(kind, np.full(size, np.nan))
            sums[i] = value if np.isnan(sums[i]) else sums[i] + value
        days = (as_of - ts).total_seconds() / 86_400
        since = stats.days_since.setdefault(kind, np.full(size, np.nan))
        since[i] = days if np.isnan(since[i]) else min(since[i], days)
    lead_values = []
    for c in predictor.columns:
        if c.kind == "category":
            known = {v: k for k, v in enumerate(c.categories)}
            found = [r.get(c.field) for r in leads]
            lead_values.append(
                np.array(
                    [np.nan if v is None else known.get(str(v), np.nan) for v in found],
                    dtype=float,
                )
            )
        elif c.kind in ("flag", "number"):
            lead_values.append(
                np.array(
                    [np.nan if r.get(c.field) is None else float(r[c.field]) for r in leads],
                    dtype=float,
                )
            )
    return predictor.probabilities(_assemble(predictor.columns, lead_values, stats, size))


def save(predictor: Predictor, path: Path) -> None:
    """Write the artefact atomically: a reader never sees half a file, a failure leaves none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        joblib.dump(predictor, partial, compress=3)
        # mkstemp makes the file private; give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def load(path: Path) -> Predictor:
    """Read an artefact `save` wrote; refuses anything else with the reason.

    Artefacts are pickles: load only files you (or your team) trained.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtefactError(f"{path}: no such predictive model file")
    try:
        found = joblib.load(path)
    except Exception as exc:  # any unpickling failure means "not ours"
        # The reason only by its kind: unpickling errors quote the file's bytes, which may be
        # anyone's secrets (a settings file named as an artefact).
        raise ArtefactError(
            f"{path}: not a leadscore predictive model (it cannot be read as one: "
            f"{type(exc).__name__})"
        ) from None
    if not isinstance(found, Predictor):
        raise ArtefactError(f"{path}: not a leadscore predictive model")
    if found.format != FORMAT:
        raise ArtefactError(
            f"{path}: artefact format {found.format}, this leadscore reads format {FORMAT}: "
            "train it again"
        )
    return found
