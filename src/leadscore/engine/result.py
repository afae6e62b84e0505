"""What the engine returns: one score record per lead and a ledger that sums to its total."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

# Ledger parts and kinds; the ledger of a lead sums exactly to its total.
PARTS: Final = ("fit", "behaviour", "account")
KINDS: Final = (
    "fit",  # a fit rule matched (tiered: persona or factor)
    "event",  # one counted event of a behaviour rule, decayed
    "cap",  # a cap: max_points correction, or (0 points) events that caps left out
    "frequency",  # a frequency rule reached
    "velocity",  # a velocity tier reached
    "inactivity",  # an inactivity penalty
    "floor",  # behaviour lifted to its floor
    "stakeholders",  # engaged stakeholders of the account
    "priority",  # priority (target) account boost
    "tier_cap",  # three-stage model: stage 3 clipped to its range
)


@dataclass(slots=True)
class LedgerLine:
    """One reason for points: a rule, and for behaviour the event that earned them."""

    lead_id: str
    part: str
    kind: str
    rule: str
    points: float
    event_id: str | None = None
    ts: datetime | None = None
    base: float | None = None
    factor: float | None = None
    detail: str | None = None
    note: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The line as a flat record."""
        return {
            "lead_id": self.lead_id,
            "part": self.part,
            "kind": self.kind,
            "rule": self.rule,
            "event_id": self.event_id,
            "ts": self.ts,
            "base": self.base,
            "factor": self.factor,
            "points": self.points,
            "detail": self.detail,
            "note": self.note,
        }


LEDGER_COLUMNS: Final = (
    "lead_id",
    "part",
    "kind",
    "rule",
    "event_id",
    "ts",
    "base",
    "factor",
    "points",
    "detail",
    "note",
)

SCORE_COLUMNS: Final = (
    "lead_id",
    "total",
    "fit",
    "behaviour",
    "account",
    "tier_persona",
    "tier_factors",
    "tier_behaviour",
    "grade",
    "engagement",
    "cell",
    "temperature",
    "stage",
    "queue",
    "sla_hours",
    "priority",
    "account_id",
    "account_score",
    "primary_interest",
)
# ...followed by one `interest_<name>` column per interest, then model, model_version, as_of.
TRAILING_COLUMNS: Final = ("model", "model_version", "as_of")


@dataclass
class LeadScore:
    """Everything the engine says about one lead as of one instant."""

    lead_id: str
    total: float
    fit: float
    behaviour: float
    account: float
    grade: str | None
    engagement: str | None
    cell: str | None
    temperature: str | None
    stage: str | None
    queue: str | None
    sla_hours: float | None
    priority: bool
    account_id: str | None
    primary_interest: str | None
    interests: dict[str, float]
    model: str
    model_version: str
    as_of: datetime
    ledger: list[LedgerLine] = field(default_factory=list)
    tier_persona: float | None = None
    tier_factors: float | None = None
    tier_behaviour: float | None = None
    account_score: float | None = None

    def as_row(self) -> dict[str, Any]:
        """The score as a flat record (interest sub-scores as `interest_<name>` columns)."""
        row: dict[str, Any] = {name: getattr(self, name) for name in SCORE_COLUMNS}
        for name, value in self.interests.items():
            row[f"interest_{name}"] = value
        for name in TRAILING_COLUMNS:
            row[name] = getattr(self, name)
        return row
