"""The batch engine gives exactly the reference evaluator's scores and ledgers (property test)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from leadscore.model.scoring import ScoringModel


def _strategies() -> Any:
    # pytest runs with --import-mode=importlib, so a sibling module is loaded by its path.
    name = "leadscore_tests_engine_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("strategies.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


model = _strategies().model
data = _strategies().data


# pooled: the plan Spark gets (count-capped rules ranked in one pass); None: DuckDB's own
@pytest.mark.parametrize("pooled", [None, True], ids=["shared", "pooled"])
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(m=model(), d=data())
def test_batch_equals_reference(
    engines: Any,
    pooled: bool | None,
    m: ScoringModel,
    d: tuple[datetime, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    as_of, leads, events, accounts = d
    engines.check(m, leads, events, as_of, accounts, pooled=pooled)
