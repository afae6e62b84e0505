"""Model versions in the store: drafts, the published one, and the publishing history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from leadscore.engine.reference import CompiledModel
from leadscore.learn.hybrid import predictor_for
from leadscore.learn.predictive import Predictor
from leadscore.model.loader import parse_model
from leadscore.model.scoring import ScoringModel
from leadscore.store import tables as t

ACTIVE_KEY = "active_model"


@dataclass(frozen=True)
class Active:
    """The published model: its id in the store, version and compiled form."""

    model_id: int
    name: str
    version: str
    compiled: CompiledModel
    predictor: Predictor | None = None  # a hybrid model's predictive artefact

    @property
    def model(self) -> ScoringModel:
        """The model itself."""
        return self.compiled.model


def add_draft(conn: Connection, source: str, now: datetime, filename: str = "<upload>") -> int:
    """Validate a model's YAML and store it as a draft; raises ModelError naming line and field."""
    model = parse_model(source, filename)
    result = conn.execute(
        t.models.insert().returning(t.models.c.id),
        {
            "name": model.name,
            "version": model.version,
            "source": source,
            "status": "draft",
            "uploaded_at": now,
        },
    )
    return int(result.scalar_one())


def get_model_row(conn: Connection, model_id: int) -> dict[str, Any] | None:
    """One stored model version, or None."""
    row = conn.execute(sa.select(t.models).where(t.models.c.id == model_id)).mappings().first()
    return dict(row) if row is not None else None


def list_models(conn: Connection) -> list[dict[str, Any]]:
    """Every stored model version, newest first, without sources."""
    cols = [c for c in t.models.columns if c.name != "source"]
    rows = conn.execute(sa.select(*cols).order_by(t.models.c.id.desc())).mappings()
    return [dict(r) for r in rows]


def active_id(conn: Connection) -> int | None:
    """Id of the published model, if any."""
    value = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == ACTIVE_KEY)).scalar()
    return int(value) if value is not None else None


def set_active(conn: Connection, model_id: int, now: datetime) -> None:
    """Make `model_id` the published model (the previous one is retired)."""
    conn.execute(
        t.models.update()
        .where(t.models.c.status == "published", t.models.c.id != model_id)
        .values(status="retired")
    )
    conn.execute(
        t.models.update()
        .where(t.models.c.id == model_id)
        .values(status="published", published_at=now)
    )
    if conn.execute(sa.select(t.meta.c.key).where(t.meta.c.key == ACTIVE_KEY)).first():
        conn.execute(t.meta.update().where(t.meta.c.key == ACTIVE_KEY).values(value=str(model_id)))
    else:
        conn.execute(t.meta.insert().values(key=ACTIVE_KEY, value=str(model_id)))


@dataclass(frozen=True)
class StartModel:
    """What `leadscore serve --model FILE` does with FILE when the server starts."""

    action: Literal["publish", "live", "kept"]  # publish FILE; FILE is live; another stays live
    file: str
    file_model: str  # FILE's name and version
    live_model: str | None = None  # the live model that stays, when it is another one
    job_id: int | None = None  # the publishing job, when FILE is published

    def notice(self) -> str | None:
        """What to tell the operator when FILE was not published; None otherwise."""
        if self.action != "kept":
            return None
        return (
            f"the store's live model is {self.live_model}, published after or instead of "
            f"--model {self.file} ({self.file_model}), which is not published again: a restart "
            "must not undo a model published through the API or the dashboard. To publish the "
            f"file: leadscore serve --model {self.file} --republish (or upload it with "
            "POST /v1/models and publish it)."
        )


def start_model(conn: Connection, source: str, filename: str, *, republish: bool) -> StartModel:
    """Decide what a server started with a model file does with it (see `StartModel`).

    The file is only the first model: published when the store has none live. A different
    live model stays live unless `republish` asks for the file; the same source live is left
    as it is. The file is validated either way (ModelError names line and field).
    """
    model = parse_model(source, filename)
    named = f"{model.name!r} version {model.version}"
    current = active_id(conn)
    row = get_model_row(conn, current) if current is not None else None
    if row is None:
        return StartModel("publish", filename, named)
    if row["source"] == source:
        return StartModel("live", filename, named)
    when = row["published_at"]
    live = (
        f"{row['name']!r} version {row['version']} (model {row['id']}, published "
        f"{when.isoformat(sep=' ', timespec='seconds') if when else 'earlier'} UTC)"
    )
    return StartModel("publish" if republish else "kept", filename, named, live)


def previous_published(conn: Connection) -> int | None:
    """The model published before the current one (the target of a rollback)."""
    current = active_id(conn)
    query = (
        sa.select(t.models.c.id)
        .where(t.models.c.published_at.is_not(None), t.models.c.id != (current or -1))
        .order_by(t.models.c.published_at.desc(), t.models.c.id.desc())
        .limit(1)
    )
    value = conn.execute(query).scalar()
    return int(value) if value is not None else None


class Registry:
    """Compiled models by id, so each version is parsed and compiled once."""

    def __init__(self, artefacts: Path | None = None) -> None:
        # relative `prediction.artefact` paths of hybrid models are relative to this folder
        self.artefacts = artefacts
        self._compiled: dict[int, Active] = {}
        # One `leadscore serve` process owns a store, and publishing goes through it, so the
        # published id can be remembered until `forget_active`.
        self._active: tuple[int | None] | None = None

    def load(self, conn: Connection, model_id: int) -> Active:
        """The compiled model with this id."""
        found = self._compiled.get(model_id)
        if found is None:
            row = get_model_row(conn, model_id)
            if row is None:
                raise KeyError(model_id)
            model = parse_model(row["source"], f"model {model_id}")
            predictor = predictor_for(model, self.artefacts)  # ArtefactError names the file
            found = Active(model_id, model.name, model.version, CompiledModel(model), predictor)
            self._compiled[model_id] = found
        return found

    def active(self, conn: Connection) -> Active | None:
        """The published model, or None before the first publish."""
        if self._active is None:
            self._active = (active_id(conn),)
        model_id = self._active[0]
        return self.load(conn, model_id) if model_id is not None else None

    def forget_active(self) -> None:
        """Read the published model from the store again next time (after a publish)."""
        self._active = None
