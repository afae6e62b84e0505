"""Baselines for suggested points: what simpler, well-known scorers reach on the same split.

Two references a suggested model should be compared with, fitted on the same training examples
and judged on the same held-out examples as `leadscore.learn.suggest`:

- naive Bayes over won/lost frequencies of binary features, smoothed the way open-source CRMs
  do it (Odoo's predictive lead scoring adds 0.1 to its won and lost counts), and
- a plain L2 logistic regression on standardised features, with no feature selection and no
  rounding to points.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from leadscore.learn.features import Features

__all__ = ["BaselineAUCs", "compare_baselines", "logistic", "naive_bayes"]


class BaselineAUCs(TypedDict):
    """Holdout AUCs of the baselines and the sizes of the split they were judged on."""

    naive_bayes: float
    logistic: float
    train_leads: int
    holdout_leads: int


def naive_bayes(
    X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, smoothing: float = 0.1
) -> np.ndarray:
    """Log posterior odds of winning under (Bernoulli) naive Bayes with additive smoothing.

    A feature is present in a row when its value is > 0, absent otherwise. With ``W`` won and
    ``L`` lost training rows, ``w_j`` / ``l_j`` of which have feature ``j`` present, and the
    smoothing ``s`` (0.1 by default, as Odoo adds 0.1 to its frequencies)::

        P(j present | won)  = (w_j + s) / (W + 2 s)
        P(j absent  | won)  = (W - w_j + s) / (W + 2 s)
        P(j present | lost) = (l_j + s) / (L + 2 s)
        P(j absent  | lost) = (L - l_j + s) / (L + 2 s)

    and the score of a row ``x`` is its log posterior odds, the prior included::

        score(x) = log(W / L)
                   + sum_j [x_j > 0] * log(P(j present | won) / P(j present | lost))
                   + sum_j [x_j <= 0] * log(P(j absent | won) / P(j absent | lost))

    so ``1 / (1 + exp(-score))`` is the naive posterior probability of winning. Features are
    assumed independent given the outcome, which one-hot categories and overlapping behaviour
    counts are not: the score ranks leads, its probabilities are overconfident.
    """
    y = np.asarray(y_train, dtype=bool)
    present = np.asarray(X_train, dtype=float) > 0
    won, lost = int(y.sum()), int((~y).sum())
    if won == 0 or lost == 0:
        raise ValueError(f"naive Bayes needs won and lost rows ({won} won, {lost} lost)")
    won_with = present[y].sum(axis=0).astype(float)
    lost_with = present[~y].sum(axis=0).astype(float)
    p_won = (won_with + smoothing) / (won + 2 * smoothing)
    p_lost = (lost_with + smoothing) / (lost + 2 * smoothing)
    if_present = np.log(p_won) - np.log(p_lost)
    if_absent = np.log1p(-p_won) - np.log1p(-p_lost)
    test = (np.asarray(X_test, dtype=float) > 0).astype(float)
    prior = np.log(won) - np.log(lost)
    return np.asarray(prior + test @ if_present + (1.0 - test) @ if_absent, dtype=float)


def logistic(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, seed: int) -> np.ndarray:
    """Probabilities of winning from a plain logistic regression on standardised features.

    L2 (scikit-learn's default penalty), C = 1, lbfgs, every feature kept: the float model a
    suggested points model simplifies. `seed` is passed on for repeatability (lbfgs itself is
    deterministic).
    """
    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("fit", LogisticRegression(C=1.0, solver="lbfgs", max_iter=10_000, random_state=seed)),
        ]
    )
    pipeline.fit(np.asarray(X_train, dtype=float), np.asarray(y_train, dtype=bool))
    probabilities = pipeline.predict_proba(np.asarray(X_test, dtype=float))
    won = list(pipeline.classes_).index(True)
    return np.asarray(probabilities[:, won], dtype=float)


def compare_baselines(features: Features, seed: int = 42) -> BaselineAUCs:
    """Holdout AUCs of both baselines on the features' own training and held-out rows."""
    X, y = features.X, features.y
    train, test = np.flatnonzero(~features.holdout), np.flatnonzero(features.holdout)
    if len(test) == 0:
        raise ValueError("the features hold no held-out rows to judge the baselines on")
    nb = naive_bayes(X[train], y[train], X[test])
    lr = logistic(X[train], y[train], X[test], seed)
    return BaselineAUCs(
        naive_bayes=float(roc_auc_score(y[test], nb)),
        logistic=float(roc_auc_score(y[test], lr)),
        train_leads=len(train),
        holdout_leads=len(test),
    )
