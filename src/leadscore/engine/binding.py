"""Binding a model to the data's columns: every field a rule reads exists, with a usable type.

Both engines bind before they evaluate, so a model and data that disagree fail the same way,
with a message that names the rule, the field and the columns that are there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from leadscore.errors import EngineError
from leadscore.model.conditions import (
    NUMERIC_OPERATORS,
    TEXT_OPERATORS,
    All,
    AnyOf,
    Condition,
    Leaf,
)
from leadscore.model.scoring import ScoringModel

Kind = Literal["text", "number", "boolean", "timestamp", "other"]


def kind_of(type_name: str) -> Kind:
    """The comparison kind of a DuckDB/Ibis/Arrow type name."""
    t = type_name.lower()
    if t.startswith(("string", "varchar", "str", "large_string", "utf8", "large_utf8", "text")):
        return "text"
    if t.startswith(("int", "uint", "float", "double", "decimal", "bigint", "smallint", "tinyint")):
        return "number"
    if t.startswith(("bool",)):
        return "boolean"
    if t.startswith(("timestamp", "date")):
        return "timestamp"
    return "other"


@dataclass(frozen=True)
class Columns:
    """The columns (name -> kind) of the tables a model is evaluated on."""

    leads: Mapping[str, Kind]
    events: Mapping[str, Kind]
    accounts: Mapping[str, Kind] | None = None


def _leaf_problem(leaf: Leaf, kind: Kind) -> str | None:
    op = leaf.op
    value = leaf.value
    if op == "exists":
        return None
    if kind == "timestamp" or kind == "other":
        return f"column {leaf.field!r} holds {kind} values; only `exists` can test it"
    if op in NUMERIC_OPERATORS and kind != "number":
        return f"`{op}` compares numbers but column {leaf.field!r} holds {kind} values"
    if op in TEXT_OPERATORS and kind != "text":
        return f"`{op}` reads text but column {leaf.field!r} holds {kind} values"
    if op in ("equals", "in"):
        values = value if isinstance(value, list) else [value]
        for v in values:
            if kind == "number" and (isinstance(v, str | bool)):
                return f"column {leaf.field!r} holds numbers; `{op}` got {v!r}"
            if kind == "boolean" and not isinstance(v, bool):
                return f"column {leaf.field!r} holds true/false; `{op}` got {v!r}"
    return None


def _check(
    condition: Condition,
    where: str,
    resolve: dict[str, Kind],
    available: str,
    problems: list[str],
) -> None:
    if isinstance(condition, Leaf):
        kind = resolve.get(condition.field)
        if kind is None:
            problems.append(
                f"{where}: unknown field {condition.field!r}; the data has: {available}"
            )
            return
        problem = _leaf_problem(condition, kind)
        if problem:
            problems.append(f"{where}: {problem}")
    elif isinstance(condition, All):
        for c in condition.all:
            _check(c, where, resolve, available, problems)
    elif isinstance(condition, AnyOf):
        for c in condition.any:
            _check(c, where, resolve, available, problems)
    else:
        _check(condition.not_, where, resolve, available, problems)


def problems(model: ScoringModel, columns: Columns) -> list[str]:
    """Every mismatch between the model and the data's columns (empty when they fit)."""
    out: list[str] = []
    fit_fields: dict[str, Kind] = dict(columns.leads)
    if model.prediction is not None:
        # written to every lead before scoring (leadscore.learn.hybrid)
        fit_fields.setdefault(model.prediction.field, "number")
    for name, kind in (columns.accounts or {}).items():
        fit_fields[f"account.{name}"] = kind
    fit_available = ", ".join(sorted(fit_fields))
    event_fields = dict(columns.events)
    event_available = ", ".join(sorted(event_fields))
    for i, fr in enumerate(model.fit.rules):
        _check(fr.when, f"fit.rules[{i}] ({fr.name})", fit_fields, fit_available, out)
    if model.account is not None and model.account.priority is not None:
        _check(model.account.priority.when, "account.priority", fit_fields, fit_available, out)
    for i, br in enumerate(model.behaviour.rules):
        where = f"behaviour.rules[{i}] ({br.name})"
        if br.where is not None:
            _check(br.where, where, event_fields, event_available, out)
        if br.once_per is not None and br.once_per not in event_fields:
            out.append(
                f"{where}: once_per names unknown column {br.once_per!r}; "
                f"the data has: {event_available}"
            )
    for i, fq in enumerate(model.behaviour.frequency):
        if fq.where is not None:
            where = f"behaviour.frequency[{i}] ({fq.name})"
            _check(fq.where, where, event_fields, event_available, out)
    for i, it in enumerate(model.interests):
        _check(it.where, f"interests[{i}] ({it.name})", event_fields, event_available, out)
    return out


def bind(model: ScoringModel, columns: Columns) -> None:
    """Raise EngineError listing every mismatch between model and data."""
    found = problems(model, columns)
    if found:
        raise EngineError(
            f"model {model.name!r} does not fit the data:\n" + "\n".join(f"  {p}" for p in found)
        )
