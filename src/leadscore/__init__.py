"""leadscore: open-source lead scoring with readable models and explained points.

    import leadscore
    model = leadscore.load_model("models/starter.yaml")
    data = leadscore.load_dataset("data/")
    scores = leadscore.score(model, data, as_of=datetime(2026, 1, 1))
    why = leadscore.explain(model, data, "L0000001", datetime(2026, 1, 1))

Names are imported on first use, so `import leadscore` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leadscore.api import Scores, check, explain, score
    from leadscore.engine.reference import CompiledModel
    from leadscore.engine.result import LeadScore, LedgerLine
    from leadscore.errors import DataError, EngineError, LeadscoreError, ModelError
    from leadscore.io import generate, load_dataset, write_table
    from leadscore.model import ScoringModel, load_model, parse_model
    from leadscore.schema import Dataset, Rejection

__version__ = "0.1.0"

_HOMES = {
    "Scores": "leadscore.api",
    "check": "leadscore.api",
    "explain": "leadscore.api",
    "score": "leadscore.api",
    "CompiledModel": "leadscore.engine.reference",
    "LeadScore": "leadscore.engine.result",
    "LedgerLine": "leadscore.engine.result",
    "DataError": "leadscore.errors",
    "EngineError": "leadscore.errors",
    "LeadscoreError": "leadscore.errors",
    "ModelError": "leadscore.errors",
    "generate": "leadscore.io",
    "load_dataset": "leadscore.io",
    "write_table": "leadscore.io",
    "ScoringModel": "leadscore.model",
    "load_model": "leadscore.model",
    "parse_model": "leadscore.model",
    "Dataset": "leadscore.schema",
    "Rejection": "leadscore.schema",
}

__all__ = [
    "CompiledModel",
    "DataError",
    "Dataset",
    "EngineError",
    "LeadScore",
    "LeadscoreError",
    "LedgerLine",
    "ModelError",
    "Rejection",
    "Scores",
    "ScoringModel",
    "check",
    "explain",
    "generate",
    "load_dataset",
    "load_model",
    "parse_model",
    "score",
    "write_table",
]
assert sorted(__all__) == sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'leadscore' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
