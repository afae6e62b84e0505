"""Evaluation metrics against hand-computed values, and refusals where they mean nothing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.errors import DataError
from leadscore.evaluate import metrics


def pairwise_auc(scores: list[float], won: list[bool]) -> float:
    """The definition: the share of (won, not won) pairs ordered right, ties counting half."""
    pos = [s for s, w in zip(scores, won, strict=True) if w]
    neg = [s for s, w in zip(scores, won, strict=True) if not w]
    good = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return good / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=12, max_size=60).filter(
        lambda xs: 5 <= sum(w for _, w in xs) <= len(xs) - 5
    )
)
def test_auc_is_the_share_of_well_ordered_pairs(pairs: list[tuple[int, bool]]) -> None:
    scores = [float(s) for s, _ in pairs]
    won = [w for _, w in pairs]
    got = metrics.auc(np.array(scores), np.array(won))
    assert got == pytest.approx(pairwise_auc(scores, won))


def test_auc_refuses_a_single_class_and_tiny_classes() -> None:
    with pytest.raises(DataError, match="every one of the 20 leads in the evaluation is not won"):
        metrics.auc(np.arange(20.0), np.zeros(20, dtype=bool))
    with pytest.raises(DataError, match="is won"):
        metrics.auc(np.arange(20.0), np.ones(20, dtype=bool))
    won = np.zeros(20, dtype=bool)
    won[:3] = True
    with pytest.raises(DataError, match="only 3 won and 17 not-won leads"):
        metrics.auc(np.arange(20.0), won)


def test_deciles_cover_every_lead_once_best_first() -> None:
    scores = np.array([float(i % 7) for i in range(103)])
    won = np.array([i % 7 >= 5 for i in range(103)])
    ids = [f"L{i:03d}" for i in range(103)]
    tenths = metrics.deciles(scores, won, ids)
    assert [d.decile for d in tenths] == list(range(1, 11))
    assert sum(d.leads for d in tenths) == 103 and {d.leads for d in tenths} == {10, 11}
    assert sum(d.won for d in tenths) == int(won.sum())
    assert [d.max_score for d in tenths] == sorted((d.max_score for d in tenths), reverse=True)
    assert tenths[-1].cumulative_gain == pytest.approx(1.0)
    base = won.mean()
    assert tenths[0].lift == pytest.approx(tenths[0].conversion / base)
    # the lift of all leads together is 1
    assert sum(d.lift * d.leads for d in tenths) / 103 == pytest.approx(1.0)
    # ties are cut by id, so the same data always gives the same deciles
    again = metrics.deciles(scores[::-1].copy(), won[::-1].copy(), ids[::-1])
    assert [d.as_row() for d in again] == [d.as_row() for d in tenths]
    with pytest.raises(DataError, match="only 9 leads"):
        metrics.deciles(np.arange(9.0), np.zeros(9, dtype=bool), [str(i) for i in range(9)])


def test_conversion_per_value_and_thresholds() -> None:
    values = ["A", "B", None, "A", "B", "A"]
    won = np.array([True, False, True, False, False, True])
    rows = metrics.conversion_by(values, won)
    assert rows == [
        {"value": "A", "leads": 3, "won": 2, "conversion": 2 / 3},
        {"value": "B", "leads": 2, "won": 0, "conversion": 0.0},
        {"value": None, "leads": 1, "won": 1, "conversion": 1.0},
    ]
    selected = np.array([True, True, False, False, False, True])
    assert metrics.threshold(selected, won) == {
        "leads": 3,
        "won": 2,
        "precision": 2 / 3,
        "recall": 2 / 3,
    }
    assert metrics.threshold(np.zeros(6, dtype=bool), won)["precision"] is None
