"""The engine: one semantics, two evaluators (reference in Python, batch compiled to Ibis)."""

from leadscore.engine.binding import Columns, bind, problems
from leadscore.engine.reference import CompiledModel, score_many
from leadscore.engine.result import LEDGER_COLUMNS, SCORE_COLUMNS, LeadScore, LedgerLine

__all__ = [
    "LEDGER_COLUMNS",
    "SCORE_COLUMNS",
    "Columns",
    "CompiledModel",
    "LeadScore",
    "LedgerLine",
    "bind",
    "problems",
    "score_many",
]
