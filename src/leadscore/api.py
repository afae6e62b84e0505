"""The public Python API: load, score, explain, check. The CLI is a thin layer over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis

from leadscore.engine.batch import compile_batch
from leadscore.engine.binding import Columns, kind_of, problems
from leadscore.engine.reference import score_many
from leadscore.engine.result import LeadScore
from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError, EngineError, LeadscoreError
from leadscore.io.health import unmatched_event_types
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

Paths = str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class Scores:
    """Scores of every lead and the ledger behind them, as lazy Ibis tables (DuckDB)."""

    model: ScoringModel
    as_of: datetime
    table: ibis.Table
    ledger: ibis.Table
    notes: tuple[str, ...] = ()  # e.g. values a hybrid model's prediction never saw

    def top(self, n: int = 10) -> list[dict[str, Any]]:
        """The n leads with the highest totals (ties by lead id), as records."""
        ordered = self.table.order_by([ibis.desc("total"), "lead_id"]).limit(n)
        rows: list[dict[str, Any]] = ordered.to_pyarrow().to_pylist()
        return rows


def columns_of(data: Dataset) -> Columns:
    """The column kinds of a dataset's tables, for binding a model."""

    def kinds(table: ibis.Table | None) -> dict[str, Any] | None:
        if table is None:
            return None
        return {name: kind_of(str(dtype)) for name, dtype in table.schema().items()}

    leads = kinds(data.leads) or {}
    events = kinds(data.events) or {}
    return Columns(leads=leads, events=events, accounts=kinds(data.accounts))


def check(model: ScoringModel, data: Dataset | None = None) -> list[str]:
    """Problems between a (valid) model and the data's columns; empty when they fit.

    A hybrid model's predictive artefact must load, and its lead fields be in the data.
    """
    out: list[str] = []
    if model.prediction is not None:
        # imported here: scikit-learn loads only for models that need it
        from leadscore.learn.hybrid import predictor_for

        try:
            predictor = predictor_for(model)
        except LeadscoreError as exc:
            out.append(f"prediction: {exc}")
        else:
            have = set(data.leads.columns) if data is not None else set()
            if data is not None and data.accounts is not None and "account_id" in have:
                # account fields reach the predictor through the lead's account
                have |= {f"account.{c}" for c in data.accounts.columns}
            # leads that bring their own probability need nothing the predictor reads
            given = model.prediction.field in have
            missing = []
            if predictor is not None and data is not None and not given:
                missing = [f for f in predictor.lead_fields if f not in have]
            if missing:
                out.append(
                    f"prediction: the leads have no {', '.join(repr(m) for m in missing)}, "
                    "which the predictive model was trained with"
                )
    if data is None:
        return out
    return out + problems(model, columns_of(data))


def score(model: ScoringModel, data: Dataset, as_of: datetime) -> Scores:
    """Score every lead of `data` as of `as_of` with the batch engine."""
    as_of = utc_naive(as_of)
    notes: list[str] = []
    if model.prediction is not None:
        from leadscore.learn.hybrid import enrich

        data, notes = enrich(data, model, as_of)
    result = compile_batch(model, data, as_of)
    # events no rule names give no points; say so rather than ignore them in silence
    notes = [*notes, *unmatched_event_types(model, data.events)]
    return Scores(
        model=model, as_of=as_of, table=result.scores, ledger=result.ledger, notes=tuple(notes)
    )


def _rows(table: ibis.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pyarrow().to_pylist()
    return rows


def explain(model: ScoringModel, data: Dataset, lead_id: str, as_of: datetime) -> LeadScore:
    """Score one lead with the reference evaluator and return its score with the full ledger.

    The lead is scored together with the other leads of its account, so that stakeholder
    counts and the account score are the ones the batch engine gives.
    """
    as_of = utc_naive(as_of)
    found = check(model, data)
    if found:
        raise EngineError(
            f"model {model.name!r} does not fit the data:\n" + "\n".join(f"  {p}" for p in found)
        )
    leads = _rows(data.leads.filter(data.leads.lead_id == lead_id))
    if not leads:
        raise DataError(f"no lead with lead_id {lead_id!r} in the data")
    account_id = leads[0].get("account_id")
    accounts: list[dict[str, Any]] = []
    if account_id is not None:
        leads = _rows(data.leads.filter(data.leads.account_id == account_id))
        if data.accounts is not None:
            accounts = _rows(data.accounts.filter(data.accounts.account_id == account_id))
    ids = [r["lead_id"] for r in leads]
    if model.prediction is not None:
        from leadscore.learn.hybrid import enrich

        enriched, _ = enrich(data, model, as_of, lead_ids=ids)
        leads = _rows(enriched.leads.filter(enriched.leads.lead_id.isin(ids)))
    events = _rows(data.events.filter(data.events.lead_id.isin(ids)))
    results = score_many(model, leads, events, as_of, accounts=accounts)
    return next(r for r in results if r.lead_id == lead_id)
