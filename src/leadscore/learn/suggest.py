"""Suggested points (S23, S26): a regularised logistic regression on readable features, turned
into an editable model whose rules carry their evidence.

The regression (L1, so that weak features drop out; its strength chosen by cross-validated
AUC) is fitted on a stratified training split. The strongest positive behaviours, the strongest
negative actions and every fit attribute that kept a weight become rules; the regression is
refitted on just those, and its log-odds become integer points: `points_to_double` points
double the odds of winning. Bands of fit points and behaviour points give grades and
engagement levels, and a matrix routes leads to SQL, MQL or nurture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from leadscore.learn.baselines import logistic, naive_bayes
from leadscore.learn.features import Feature, Features, build
from leadscore.model.loader import parse_model
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

GRADES = (("A", 0.8), ("B", 0.5), ("C", 0.2))  # share of leads below the grade's minimum
LEVELS = (("1", 0.9), ("2", 0.7), ("3", 0.4))
HOT, WARM = 0.1, 0.3  # shares of leads routed to sales at once, and to marketing qualification
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
# A regression on about a hundred 0/1 and small-count features is settled long before these
# many rows, while liblinear's time grows faster than linearly: larger training sets are
# sampled (stratified) down to them.
FIT_ROWS = 100_000
CV_ROWS = 40_000
STEPS = (
    "building features",
    "choosing the regularisation",
    "fitting the regression",
    "turning weights into points",
)


@dataclass(frozen=True)
class Rule:
    """A suggested rule: the feature, its integer points and the evidence for them."""

    feature: Feature
    coefficient: float
    points: int
    support: int
    won_with: float
    won_without: float


@dataclass
class Suggestion:
    """The suggested model, its YAML, and how it and the float model did on the holdout."""

    model: ScoringModel
    yaml: str
    rules: list[Rule]
    holdout_auc_points: float
    holdout_auc_float: float
    train_leads: int
    holdout_leads: int
    c: float
    notes: list[str] = field(default_factory=list)
    baselines: dict[str, float] = field(default_factory=dict)  # holdout AUCs, same split

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "model": self.model.name,
            "rules": [
                {
                    "feature": r.feature.name,
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
            "train_leads": self.train_leads,
            "holdout_leads": self.holdout_leads,
            "regularisation_c": self.c,
            "baselines": self.baselines,
            "notes": self.notes,
        }


def _fit(X: np.ndarray, y: np.ndarray, c: float, seed: int) -> LogisticRegression:
    # liblinear visits coordinates in a random order: the seed makes the fit repeatable
    fitted = LogisticRegression(
        l1_ratio=1.0, solver="liblinear", C=c, max_iter=5000, random_state=seed
    )
    return fitted.fit(X, y)


def _sample(rows: np.ndarray, y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` of these rows, stratified by outcome."""
    if len(rows) <= size:
        return rows
    kept, _ = train_test_split(rows, train_size=size, stratify=y[rows], random_state=seed)
    return np.sort(kept)


def _choose_c(X: np.ndarray, y: np.ndarray, seed: int) -> float:
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=seed)
    best, best_auc = C_GRID[0], -1.0
    for c in C_GRID:
        aucs = []
        for train, test in folds.split(X, y):
            fitted = _fit(X[train], y[train], c, seed)
            aucs.append(roc_auc_score(y[test], fitted.decision_function(X[test])))
        if float(np.mean(aucs)) > best_auc + 1e-4:
            best, best_auc = c, float(np.mean(aucs))
    return best


def _select(
    features: list[Feature], coefs: np.ndarray, behaviours: int, negatives: int
) -> list[int]:
    acts = ("count", "recent")
    chosen = [i for i, f in enumerate(features) if f.kind not in acts and coefs[i] != 0]
    counts = [i for i, f in enumerate(features) if f.kind in acts and coefs[i] != 0]
    # a behaviour's strength is what its capped count can add
    strength = {i: coefs[i] * (features[i].cap or 1) for i in counts}
    positive = sorted((i for i in counts if strength[i] > 0), key=lambda i: -strength[i])
    negative = sorted((i for i in counts if strength[i] < 0), key=lambda i: strength[i])
    return sorted(chosen + positive[:behaviours] + negative[:negatives])


def _condition(f: Feature) -> dict[str, Any]:
    if f.kind == "category":
        return {"field": f.field, "equals": f.value}
    if f.kind == "flag":
        return {"field": f.field, "equals": True}
    parts = []
    if f.low is not None:
        parts.append({"field": f.field, "gte": f.low})
    if f.high is not None:
        parts.append({"field": f.field, "lt": f.high})
    return parts[0] if len(parts) == 1 else {"all": parts}


def _value_condition(f: Feature) -> dict[str, Any]:
    parts = []
    if f.low is not None:
        parts.append({"field": "value", "gte": f.low})
    if f.high is not None:
        parts.append({"field": "value", "lt": f.high})
    return parts[0] if len(parts) == 1 else {"all": parts}


def _slug(text: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in text.lower())
    return "_".join(p for p in out.split("_") if p)[:60] or "rule"


def _cutoffs(values: np.ndarray, bands: tuple[tuple[str, float], ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    last: float | None = None
    for name, share in bands:
        minimum = float(np.quantile(values, share))
        if last is not None and minimum >= last:
            continue  # too few distinct values for this band: merge it into the one above
        out.append({"name": name, "min": minimum})
        last = minimum
    return out


def suggest(
    data: Dataset,
    *,
    name: str = "suggested",
    behaviours: int = 7,
    negatives: int = 5,
    points_to_double: float = 10.0,
    holdout: float = 0.2,
    seed: int = 42,
    cutoff: datetime | None = None,
    exclude: frozenset[str] = frozenset(),
    progress: Callable[[str], None] | None = None,
) -> Suggestion:
    """Learn a points model from the data's outcomes (see the module docstring).

    `progress` is told each step (one of STEPS) as it starts.
    """
    step = progress or (lambda _: None)
    step(STEPS[0])
    found: Features = build(data, cutoff=cutoff, exclude=exclude)
    X, y = found.X, found.y
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=holdout, stratify=y, random_state=seed)
    notes: list[str] = []
    fitted_on = _sample(train, y, FIT_ROWS, seed)
    if len(fitted_on) < len(train):
        notes.append(
            f"the regression was fitted on a stratified sample of {len(fitted_on):,} of the "
            f"{len(train):,} training leads (the points are settled long before that)"
        )
    step(STEPS[1])
    chosen_on = _sample(fitted_on, y, CV_ROWS, seed)
    c = _choose_c(X[chosen_on], y[chosen_on], seed)
    step(STEPS[2])
    full = _fit(X[fitted_on], y[fitted_on], c, seed)
    float_auc = float(roc_auc_score(y[test], full.decision_function(X[test])))
    keep = _select(found.features, full.coef_[0], behaviours, negatives)
    refit = _fit(X[fitted_on][:, keep], y[fitted_on], c, seed)
    step(STEPS[3])
    scale = points_to_double / math.log(2)
    rules: list[Rule] = []
    weights = np.zeros(len(keep))
    for j, i in enumerate(keep):
        coefficient = float(refit.coef_[0][j])
        points = round(coefficient * scale)
        if points == 0:
            continue
        weights[j] = points
        has = X[:, i] > 0
        rules.append(
            Rule(
                feature=found.features[i],
                coefficient=coefficient,
                points=points,
                support=int(has.sum()),
                won_with=float(y[has].mean()),
                won_without=float(y[~has].mean()),
            )
        )
    points_auc = float(roc_auc_score(y[test], X[test][:, keep] @ weights))
    baselines = {
        "naive_bayes_auc": float(roc_auc_score(y[test], naive_bayes(X[train], y[train], X[test]))),
        "logistic_auc": float(
            roc_auc_score(y[test], logistic(X[fitted_on], y[fitted_on], X[test], seed))
        ),
    }
    fit_points = X[:, keep] @ np.where(
        [found.features[i].kind in ("category", "flag", "band") for i in keep], weights, 0
    )
    behaviour_points = X[:, keep] @ weights - fit_points
    text = _yaml(
        name, rules, fit_points[train], behaviour_points[train], y[train], points_to_double
    )
    model = parse_model(text, f"<suggested {name}>")
    return Suggestion(
        model=model,
        yaml=text,
        rules=rules,
        holdout_auc_points=points_auc,
        holdout_auc_float=float_auc,
        train_leads=len(train),
        holdout_leads=len(test),
        c=c,
        notes=notes,
        baselines=baselines,
    )


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
    """Routing by grade x engagement cell: the cells that converted best in training become
    hot (about the top HOT share of leads), the next ones warm (up to WARM), the rest cold."""
    grade = _band(fit_points, grades, "grade")
    level = _band(behaviour_points, levels, "level")
    cells: list[tuple[float, int, str, str]] = []
    for g in [str(b["grade"]) for b in grades]:
        for lv in [str(b["level"]) for b in levels]:
            inside = (grade == g) & (level == lv)
            if inside.any():
                cells.append((float(won[inside].mean()), int(inside.sum()), g, lv))
    cells.sort(key=lambda c: (-c[0], c[2], c[3]))
    routing: list[dict[str, Any]] = []
    covered = 0
    for rate, leads, g, lv in cells:
        share = covered / len(won)
        if share >= WARM:
            break
        hot = share < HOT
        routing.append(
            {
                "name": f"{g}{lv}",
                "when": {"grade": [g], "engagement": [lv]},
                "temperature": "hot" if hot else "warm",
                "stage": "SQL" if hot else "MQL",
                "sla_hours": 24 if hot else 72,
            }
        )
        evidence[f"{g}{lv}"] = f"{100 * rate:.1f}% of the {leads:,} training leads in this cell won"
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
) -> str:
    fit_rules: list[dict[str, Any]] = []
    behaviour_rules: list[dict[str, Any]] = []
    evidence: dict[str, str] = {}
    used: set[str] = set()
    for r in sorted(rules, key=lambda r: (-abs(r.points), r.feature.name)):
        slug = _slug(r.feature.name)
        while slug in used:
            slug += "_"
        used.add(slug)
        evidence[slug] = (
            f"coefficient {r.coefficient:+.3f}, {r.support:,} leads, "
            f"{100 * r.won_with:.1f}% won with it vs {100 * r.won_without:.1f}% without"
        )
        f = r.feature
        if f.kind == "count":
            rule: dict[str, Any] = {
                "name": slug,
                "label": f.name,
                "event": f.field,
                "points": r.points,
            }
            if f.cap and f.cap > 0:
                rule["max_count"] = f.cap
            behaviour_rules.append(rule)
        elif f.kind == "recent":
            behaviour_rules.append(
                {
                    "name": slug,
                    "label": f.name,
                    "event": f.field,
                    "points": r.points,
                    "max_count": 1,
                    "within_days": f.days,
                }
            )
        elif f.kind == "value_band":
            behaviour_rules.append(
                {
                    "name": slug,
                    "label": f.name,
                    "event": f.field,
                    "where": _value_condition(f),
                    "points": r.points,
                    "max_count": 1,
                }
            )
        else:
            fit_rules.append(
                {"name": slug, "label": f.name, "when": _condition(f), "points": r.points}
            )
    grades = [{"grade": g["name"], "min": round(g["min"], 2)} for g in _cutoffs(fit_points, GRADES)]
    grades.append({"grade": "D"})
    levels = [
        {"level": lv["name"], "min": round(lv["min"], 2)}
        for lv in _cutoffs(behaviour_points, LEVELS)
    ]
    levels.append({"level": "4"})
    routing = _matrix(grades, levels, fit_points, behaviour_points, won, evidence)
    doc: dict[str, Any] = {
        "name": name,
        "version": "1",
        "description": (
            f"Suggested by leadscore from won/lost outcomes: {points_to_double:g} points double "
            "the odds of winning. Review every rule before publishing."
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
            slug = stripped.removeprefix("- name: ")
            if slug in evidence:
                indent = line[: len(line) - len(stripped)]
                lines.append(f"{indent}# evidence: {evidence[slug]}")
        lines.append(line)
    header = (
        "# Suggested by `leadscore suggest` (a regularised logistic regression, log-odds turned\n"
        "# into integer points). Each rule's evidence is in the comment above it.\n"
    )
    return header + "\n".join(lines) + "\n"
