"""A hybrid model shared by the hybrid tests: bands of the predicted probability, by hand.

The probability is of a win within the horizon after the instant (a few per cent on the
generated data), so the bands sit where the generated leads' probabilities spread.
"""

from __future__ import annotations

ARTEFACT = "predictive.joblib"

HYBRID = f"""\
name: hybrid
version: "1"
prediction: {{artefact: {ARTEFACT}, field: predicted_won}}
fit:
  rules:
    - {{name: likely, when: {{field: predicted_won, gte: 0.045}}, points: 40}}
    - {{name: possible, when: {{field: predicted_won, gte: 0.03}}, points: 15}}
    - {{name: unlikely, when: {{field: predicted_won, lt: 0.026}}, points: -10}}
  grades:
    - {{grade: A, min: 40}}
    - {{grade: B, min: 15}}
    - {{grade: C}}
behaviour:
  rules:
    - {{name: demo, event: demo_request, points: 25, max_count: 1}}
"""


def fit_points(p: float) -> float:
    """What the bands of HYBRID give a lead with probability `p` (the rules, by hand)."""
    return 40.0 * (p >= 0.045) + 15.0 * (p >= 0.03) - 10.0 * (p < 0.026)
