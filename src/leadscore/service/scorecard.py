"""One lead's score card: the stored score and the ledger that sums to it, in readable words.

Shared by the REST API (`/v1/leads/{id}/score`) and the dashboard's lead page. Only the
stored score is kept; the engine is deterministic, so the same model as of the same instant
gives that score again, now with every line of its ledger. That costs one lead's events
(and its account peers' when the model counts engaged stakeholders), never all leads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from leadscore.service.scoring import Scorer
from leadscore.store import records


@dataclass(frozen=True)
class ScoreCard:
    """The stored score, its ledger lines (each with its rule's text) and their sum."""

    score: dict[str, Any]
    ledger: list[dict[str, Any]]
    ledger_sum: float
    model: dict[str, Any]
    # why the ledger is empty: the engine cannot score the lead's data as it is now
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The card as the REST API returns it."""
        return {
            "score": self.score,
            "ledger": self.ledger,
            "ledger_sum": self.ledger_sum,
            "model": self.model,
            **({"problem": self.problem} if self.problem is not None else {}),
        }


def score_card(conn: Connection, scorer: Scorer, lead_id: str, lang: str) -> ScoreCard | None:
    """The lead's current score card with rule texts in `lang`; None while it has no score."""
    stored = records.score_of(conn, lead_id)
    if stored is None:
        return None
    active = scorer.registry.load(conn, stored["model_id"])
    computed = scorer.compute(conn, active, [lead_id], stored["as_of"])
    mine = next((s for s in computed.scores if s.lead_id == lead_id), None)
    model = {"id": active.model_id, "name": active.name, "version": active.version}
    if mine is None:
        why = computed.failed.get(lead_id, "not scored")
        problem = f"the lead's ledger cannot be computed from its data as it is now: {why}"
        return ScoreCard(score=stored, ledger=[], ledger_sum=0.0, model=model, problem=problem)
    labels = active.model.rule_labels(lang)
    ledger = []
    for line in mine.ledger:
        row = line.as_row()
        row["label"] = labels.get(line.rule, line.rule)
        ledger.append(row)
    return ScoreCard(
        score=stored,
        ledger=ledger,
        ledger_sum=round(sum(line.points for line in mine.ledger), 2),
        model=model,
    )
