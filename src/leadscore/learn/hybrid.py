"""Hybrid models (S26): a predictive model's probability of winning, as a lead field that the
rules of a points model can use ("predicted_won >= 0.6: +30 points, grade A").

Whoever scores a model with a `prediction` section adds the field first: `enrich` for a
dataset (batch scoring, explain, backtests) and `predict_records` for the service. The
probability is computed as of the scoring instant, from the lead's fields and its events
before that instant, exactly as the artefact was trained.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from leadscore.io.readers import arrow_table
from leadscore.learn.predictive import ArtefactError, Predictor, load, predict
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

_loaded: dict[tuple[str, int, int], Predictor] = {}
_lock = threading.Lock()


def artefact_path(model: ScoringModel, base: Path | None = None) -> Path | None:
    """Where the model's predictive artefact is (None: the model has no prediction)."""
    if model.prediction is None:
        return None
    path = Path(model.prediction.artefact)
    if path.is_absolute():
        return path  # only load_model writes one, once it has confined it to the model's folder
    try:
        return model.prediction.inside(base if base is not None else Path.cwd())
    except ValueError as exc:
        raise ArtefactError(str(exc)) from None


def predictor_for(model: ScoringModel, base: Path | None = None) -> Predictor | None:
    """The model's predictive artefact, loaded once per file version (None: no prediction)."""
    path = artefact_path(model, base)
    if path is None:
        return None
    try:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = (str(path), 0, 0)  # load() names the problem
    with _lock:
        found = _loaded.get(key)
        if found is None:
            found = load(path)
            _loaded[key] = found
    return found


def enrich(
    data: Dataset,
    model: ScoringModel,
    as_of: datetime,
    base: Path | None = None,
    lead_ids: Sequence[str] | None = None,
) -> tuple[Dataset, list[str]]:
    """The data with the model's prediction field on every lead, and notes on the inputs."""
    predictor = predictor_for(model, base)
    if predictor is None or model.prediction is None:
        return data, []
    name = model.prediction.field
    if name in data.leads.columns:
        # e.g. probabilities computed elsewhere, or data enriched once already
        return data, [f"the leads already have {name!r}: used as given, not predicted again"]
    found = predict(predictor, data, as_of, lead_ids)
    table = pa.table({"lead_id": pa.array(found.lead_ids, pa.string()), name: found.probability})
    con = data.leads.get_backend()
    probabilities = arrow_table(con, f"prediction_{uuid.uuid4().hex[:8]}", table)
    leads = data.leads.left_join(probabilities, "lead_id").select(
        *data.leads.columns, probabilities[name]
    )
    return dataclasses.replace(data, leads=leads), found.notes
