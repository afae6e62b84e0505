"""Baselines for suggested points: naive Bayes as CRMs do it, and a plain logistic regression."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.naive_bayes import BernoulliNB

from leadscore.io import load_dataset
from leadscore.io.mapping import packaged_mapping
from leadscore.learn.baselines import compare_baselines, logistic, naive_bayes
from leadscore.learn.features import build
from leadscore.learn.suggest import suggest
from leadscore.schema import Dataset

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LEADS = DATA / "x-education" / "Leads.csv"

# 2 won and 3 lost rows; a value counts as present when > 0 (so -1 is absent)
X_TRAIN = np.array(
    [
        [1.0, 0.0],  # won
        [2.0, -1.0],  # won
        [1.0, 3.0],  # lost
        [0.0, 1.0],  # lost
        [0.0, 0.0],  # lost
    ]
)
Y_TRAIN = np.array([True, True, False, False, False])


def test_naive_bayes_is_the_smoothed_formula_computed_by_hand() -> None:
    scores = naive_bayes(X_TRAIN, Y_TRAIN, np.array([[1.0, 0.0], [0.0, 5.0]]))
    # feature 0: present in 2 of 2 won and 1 of 3 lost; feature 1: in 0 of 2 won, 2 of 3 lost
    prior = math.log(2 / 3)
    first = prior + math.log((2.1 / 2.2) / (1.1 / 3.2)) + math.log((2.1 / 2.2) / (1.1 / 3.2))
    second = prior + math.log((0.1 / 2.2) / (2.1 / 3.2)) + math.log((0.1 / 2.2) / (2.1 / 3.2))
    assert scores == pytest.approx([first, second], abs=1e-12)


def test_naive_bayes_with_another_smoothing() -> None:
    (score,) = naive_bayes(X_TRAIN, Y_TRAIN, np.array([[0.0, 0.0]]), smoothing=1.0)
    absent_0 = math.log((1 / 4) / (3 / 5))  # (2 - 2 + 1) / (2 + 2) vs (3 - 1 + 1) / (3 + 2)
    absent_1 = math.log((3 / 4) / (2 / 5))  # (2 - 0 + 1) / (2 + 2) vs (3 - 2 + 1) / (3 + 2)
    assert score == pytest.approx(math.log(2 / 3) + absent_0 + absent_1, abs=1e-12)


def test_naive_bayes_agrees_with_scikit_learns_bernoulli_naive_bayes() -> None:
    rng = np.random.default_rng(5)
    X = rng.integers(0, 4, size=(400, 12)).astype(float) * (rng.random((400, 12)) < 0.4)
    y = rng.random(400) < 0.3 + 0.1 * (X[:, 0] > 0)
    ours = naive_bayes(X[:300], y[:300], X[300:])
    reference = BernoulliNB(alpha=0.1, binarize=0.0).fit(X[:300], y[:300])
    joint = reference.predict_joint_log_proba(X[300:])
    won = list(reference.classes_).index(True)
    assert ours == pytest.approx(joint[:, won] - joint[:, 1 - won], abs=1e-9)


def test_naive_bayes_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="0 lost"):
        naive_bayes(X_TRAIN, np.ones(5, dtype=bool), X_TRAIN)


def test_logistic_gives_repeatable_probabilities() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5))
    y = X[:, 0] + rng.normal(size=300) > 0.5
    p = logistic(X[:200], y[:200], X[200:], seed=1)
    assert p.shape == (100,)
    assert ((p > 0) & (p < 1)).all()
    assert np.array_equal(p, logistic(X[:200], y[:200], X[200:], seed=1))
    # the probability of winning, not of losing: it rises with the informative feature
    assert np.corrcoef(X[200:, 0], p)[0, 1] > 0.9


@pytest.fixture(scope="module")
def x_education() -> Dataset:
    return load_dataset(LEADS, mapping=packaged_mapping("x-education"))


def test_baselines_on_x_education_frame_the_suggested_points(x_education: Dataset) -> None:
    from leadscore.learn import examples as ex

    found = compare_baselines(build(x_education, ex.examples(x_education, ex.frame(x_education))))
    suggested = suggest(x_education)
    # the same stratified 20 % holdout as the suggested model
    assert (found["train_leads"], found["holdout_leads"]) == (7392, 1848)
    assert (suggested.train_leads, suggested.holdout_leads) == (7392, 1848)
    # observed: naive Bayes 0.842, logistic 0.897, suggested points 0.893, float model 0.895
    assert 0.82 < found["naive_bayes"] < suggested.holdout_auc_points
    assert found["logistic"] > 0.88
    # a handful of integer points lose little against the full float regression
    assert abs(found["logistic"] - suggested.holdout_auc_float) < 0.01
    assert found["logistic"] - suggested.holdout_auc_points < 0.015
