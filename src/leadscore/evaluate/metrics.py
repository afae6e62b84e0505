"""Metrics of a score against won/lost truth: AUC, deciles (lift, gains), conversion by group,
precision and recall of thresholds. Pure functions over arrays; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from leadscore.errors import DataError

# Fewer leads than this of either class make an AUC too noisy to report.
MIN_PER_CLASS = 5


def auc(scores: np.ndarray, won: np.ndarray) -> float:
    """Area under the ROC curve: the chance a won lead outscores a not-won one (ties half)."""
    positives = int(won.sum())
    negatives = int(len(won) - positives)
    if positives == 0 or negatives == 0:
        only = "won" if negatives == 0 else "not won"
        raise DataError(
            f"every one of the {len(won)} leads in the evaluation is {only}: an AUC needs won "
            "and not-won leads (widen the horizon, move the cut-off, or add outcomes)"
        )
    if min(positives, negatives) < MIN_PER_CLASS:
        raise DataError(
            f"only {positives} won and {negatives} not-won leads: at least {MIN_PER_CLASS} of "
            "each are needed for a meaningful AUC"
        )
    return float(roc_auc_score(won, scores))


@dataclass(frozen=True)
class Decile:
    """One tenth of the leads, best scores first."""

    decile: int
    leads: int
    won: int
    min_score: float
    max_score: float
    conversion: float
    lift: float
    cumulative_gain: float  # share of all won leads in this and the better deciles

    def as_row(self) -> dict[str, Any]:
        """The decile as a flat record."""
        return {
            "decile": self.decile,
            "leads": self.leads,
            "won": self.won,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "conversion": self.conversion,
            "lift": self.lift,
            "cumulative_gain": self.cumulative_gain,
        }


def deciles(scores: np.ndarray, won: np.ndarray, ids: Sequence[str]) -> list[Decile]:
    """Leads ranked by score (ties by id), cut into ten groups as equal as possible."""
    n = len(scores)
    if n < 10:
        raise DataError(f"only {n} leads in the evaluation: deciles need at least 10")
    # best first; ties broken by id so that the cut is deterministic
    order = np.lexsort((np.asarray(ids), -scores))
    ranked_scores, ranked_won = scores[order], won[order]
    base = won.mean()
    total_won = int(won.sum())
    out = []
    cumulative = 0
    for d, part in enumerate(np.array_split(np.arange(n), 10), start=1):
        got = int(ranked_won[part].sum())
        cumulative += got
        rate = got / len(part)
        out.append(
            Decile(
                decile=d,
                leads=len(part),
                won=got,
                min_score=float(ranked_scores[part].min()),
                max_score=float(ranked_scores[part].max()),
                conversion=rate,
                lift=float(rate / base) if base > 0 else 0.0,
                cumulative_gain=cumulative / total_won if total_won else 0.0,
            )
        )
    return out


def conversion_by(values: Sequence[Any], won: np.ndarray) -> list[dict[str, Any]]:
    """Leads, won and conversion per distinct value (None last), in order of first appearance
    sorted by value."""
    groups: dict[Any, list[int]] = {}
    for value, w in zip(values, won.tolist(), strict=True):
        entry = groups.setdefault(value, [0, 0])
        entry[0] += 1
        entry[1] += int(w)
    keys = sorted((k for k in groups if k is not None), key=str)
    if None in groups:
        keys.append(None)
    return [
        {
            "value": k,
            "leads": groups[k][0],
            "won": groups[k][1],
            "conversion": groups[k][1] / groups[k][0],
        }
        for k in keys
    ]


def threshold(selected: np.ndarray, won: np.ndarray) -> dict[str, Any]:
    """Precision and recall of a selection (e.g. "MQL or better") against won leads."""
    chosen = int(selected.sum())
    hits = int((selected & won).sum())
    total = int(won.sum())
    return {
        "leads": chosen,
        "won": hits,
        "precision": hits / chosen if chosen else None,
        "recall": hits / total if total else None,
    }
