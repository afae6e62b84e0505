"""The leakage guard: features that know the outcome are refused by name before training.

Two signs that a column was filled in after the decision, checked on the training examples:

- a lead field that is set almost only on won leads (a deal's segment, a signed-contract
  date): present on most won examples and hardly any other;
- a feature after which nearly every lead is won, far above the base rate ("first contact in
  the last 30 days: 100 % won") — no pre-sales signal is that certain.

Both are refused with the numbers behind the verdict; a user who knows better keeps them with
`--allow NAME`. Features that are only strong (a source that converts at 98 % when the base rate
is 40 %) pass: they are rare but real.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from leadscore.learn.features import Feature, Features, described

# A feature whose examples are won at least this often ...
CERTAIN = 0.95
# ... and at least this many times the base rate, is implausible before the outcome.
LIFT = 3.0
# A field present on this share of won examples and at most PRESENT_OTHER of the others is
# written after the outcome.
PRESENT_WON, PRESENT_OTHER = 0.9, 0.05
MIN_SUPPORT = 10


@dataclass(frozen=True)
class Refusal:
    """A feature or field left out, and why."""

    name: str
    reason: str

    def text(self) -> str:
        """E.g. `refused 'segment': set on 98 % of won leads and 0 % of the others ...`."""
        return f"refused {self.name!r}: {self.reason}"


def late_fields(
    table: pa.Table, y: np.ndarray, train: np.ndarray, allow: frozenset[str]
) -> list[Refusal]:
    """Lead fields set almost only on won examples."""
    out: list[Refusal] = []
    won, other = y & train, ~y & train
    if not won.any() or not other.any():
        return out
    for name in table.column_names:
        if name in allow or described(name, table[name], table.num_rows, frozenset()) is None:
            continue
        present = np.asarray(table[name].is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        on_won, on_other = present[won].mean(), present[other].mean()
        if on_won >= PRESENT_WON and on_other <= PRESENT_OTHER:
            out.append(
                Refusal(
                    name,
                    f"set on {100 * on_won:.0f} % of won training leads and {100 * on_other:.0f} % "
                    "of the others: it looks filled in after the outcome (--allow to keep it)",
                )
            )
    return out


def implausible(found: Features, allow: frozenset[str]) -> list[Refusal]:
    """Features after which nearly every training example was won, far above the base rate."""
    train = ~found.holdout
    y = found.y[train]
    base = float(y.mean())
    out: list[Refusal] = []
    for j, f in enumerate(found.features):
        if f.name in allow or f.field in allow:
            continue
        has = found.X[train, j] > 0
        support = int(has.sum())
        if support < MIN_SUPPORT:
            continue
        rate = float(y[has].mean())
        if rate >= CERTAIN and rate >= LIFT * base:
            out.append(
                Refusal(
                    f.name,
                    f"{100 * rate:.1f} % of the {support:,} training examples with it were won "
                    f"against {100 * base:.1f} % overall: no signal known before the outcome is "
                    "that certain (--allow to keep it)",
                )
            )
    return out


def without(found: Features, refused: list[Refusal]) -> Features:
    """The features minus the refused ones (by feature name or field)."""
    names = {r.name for r in refused}
    keep = [j for j, f in enumerate(found.features) if f.name not in names and f.field not in names]
    kept: list[Feature] = [found.features[j] for j in keep]
    return Features(found.lead_ids, kept, found.X[:, keep], found.y, found.at, found.holdout)
