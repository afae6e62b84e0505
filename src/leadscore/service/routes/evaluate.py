"""Evaluation on the service's own data: backtest, channels, capacity, compare (issue #4).

Each request reads the store into an in-memory DuckDB and runs the evaluate layer there, as
the CLI does on files; with many leads these take seconds, like their commands.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from leadscore.errors import LeadscoreError
from leadscore.evaluate.backtest import backtest as run_backtest
from leadscore.evaluate.capacity import capacity as run_capacity
from leadscore.evaluate.channels import channels as run_channels
from leadscore.evaluate.compare import compare as run_compare
from leadscore.model.scoring import ScoringModel
from leadscore.service.dataset import StoreData, read_store
from leadscore.service.deps import Admin, ServiceDep
from leadscore.service.inputs import Integer, Timestamp

router = APIRouter(prefix="/v1/evaluate", tags=["evaluate"])

ModelId = Annotated[
    Integer | None, Query(description="A stored model version; default: the published one.")
]
Days = Annotated[float, Query(gt=0, le=3650, description="Horizon in days.")]
# Instants are read by the one timestamp rule of files and bodies (service.inputs.Timestamp).
_INSTANT = "as in docs/data.md#timestamps (UTC if no offset)"
Cutoff = Annotated[Timestamp, Query(description=f"The cut-off, {_INSTANT}.")]
MaybeCutoff = Annotated[Timestamp | None, Query(description=f"A cut-off, {_INSTANT}.")]
MaybeAsOf = Annotated[
    Timestamp | None, Query(description=f"Score as of this instant, {_INSTANT}; default: now.")
]


def _model(service: Any, model_id: int | None) -> ScoringModel:
    with service.store.read() as conn:
        try:
            active = (
                service.scorer.registry.load(conn, model_id)
                if model_id is not None
                else service.scorer.registry.active(conn)
            )
        except KeyError:
            raise HTTPException(404, f"unknown model {model_id}") from None
    if active is None:
        raise HTTPException(409, "no model is published yet: pass model_id or publish one")
    model: ScoringModel = active.model
    return model


def _run(work: Any, read: StoreData) -> dict[str, Any]:
    try:
        result: dict[str, Any] = work()
    except LeadscoreError as exc:
        raise HTTPException(422, str(exc)) from exc
    # attribute values of mixed types were read as text (or numbers): say which
    return {**result, "conversions": read.notes()}


@router.get("/backtest")
def backtest(
    service: ServiceDep,
    _: Admin,
    cutoff: Cutoff,
    horizon_days: Days = 90,
    model_id: ModelId = None,
) -> dict[str, Any]:
    """Score every lead as of the cut-off and judge it by who was won within the horizon."""
    model = _model(service, model_id)
    read = read_store(service.store)
    data = read.dataset
    when = cutoff
    return _run(
        lambda: run_backtest(model, data, when, timedelta(days=horizon_days)).as_dict(), read
    )


@router.get("/channels")
def channels(
    service: ServiceDep,
    _: Admin,
    as_of: MaybeAsOf = None,
    model_id: ModelId = None,
) -> dict[str, Any]:
    """Conversion, hot share and value per source, campaign and content stage."""
    model = _model(service, model_id)
    read = read_store(service.store)
    data = read.dataset
    when = as_of if as_of is not None else service.clock()
    return _run(lambda: run_channels(model, data, when).as_dict(), read)


@router.get("/capacity")
def capacity(
    service: ServiceDep,
    _: Admin,
    per_week: Annotated[float, Query(gt=0, description="Leads sales can take a week.")],
    cutoff: MaybeCutoff = None,
    weeks: Annotated[int, Query(ge=1, le=520)] = 12,
    horizon_days: Days = 90,
    model_id: ModelId = None,
) -> dict[str, Any]:
    """The threshold that sends at most `per_week` leads a week, and its conversion."""
    model = _model(service, model_id)
    read = read_store(service.store)
    data = read.dataset
    when = cutoff if cutoff is not None else service.clock()
    window = timedelta(days=horizon_days)
    return _run(
        lambda: run_capacity(model, data, when, per_week, horizon=window, weeks=weeks).as_dict(),
        read,
    )


@router.get("/compare")
def compare(
    service: ServiceDep,
    _: Admin,
    candidate: Annotated[Integer, Query(description="The model version to compare with.")],
    model_id: ModelId = None,
    cutoff: MaybeCutoff = None,
    horizon_days: Days = 90,
) -> dict[str, Any]:
    """The current model and a candidate side by side (with a cut-off: both backtested)."""
    current = _model(service, model_id)
    other = _model(service, candidate)
    read = read_store(service.store)
    data = read.dataset
    when = service.clock()
    return _run(
        lambda: run_compare(
            current,
            other,
            data,
            when,
            cutoff=cutoff,
            horizon=timedelta(days=horizon_days),
        ),
        read,
    )
