"""Data health against a model: event types in the data that no rule of the model names.

Event types are compared exactly, case included (docs/model.md), so `PAGE_VIEW` in an export
gives no points to a rule on `page_view`; such events are counted and named here rather than
ignored in silence.
"""

from __future__ import annotations

from typing import Any, Final

from leadscore.model.scoring import ScoringModel

__all__ = ["MAX_LISTED", "named_event_types", "unmatched_event_types"]

#: At most this many unmatched types are listed by name; the rest are counted.
MAX_LISTED: Final = 10


def named_event_types(model: ScoringModel) -> set[str]:
    """Every event type a behaviour rule, frequency rule or stakeholder count names."""
    named = {t for m in [*model.behaviour.rules, *model.behaviour.frequency] for t in m.types}
    stakeholders = model.account.stakeholders if model.account is not None else None
    if stakeholders is not None and stakeholders.types is not None:
        named |= set(stakeholders.types)
    return named


def unmatched_event_types(model: ScoringModel, events: Any) -> list[str]:
    """Notes naming the event types of `events` (an Ibis table) that no rule of `model` names,
    with their counts and a hint for types that differ from a named one only by case."""
    named = named_event_types(model)
    if not named:
        return []  # a model without event rules reads no events: nothing is missed
    counts = events.group_by("type").aggregate(n=events.count()).to_pyarrow().to_pylist()
    unmatched = sorted(
        ((str(r["type"]), int(r["n"])) for r in counts if r["type"] not in named),
        key=lambda item: (-item[1], item[0]),
    )
    if not unmatched:
        return []
    by_fold: dict[str, str] = {}
    for name in sorted(named):
        by_fold.setdefault(name.casefold(), name)
    listed = []
    for kind, n in unmatched[:MAX_LISTED]:
        near = by_fold.get(kind.casefold())
        hint = f" (the model has {near!r}: event types are case-sensitive)" if near else ""
        listed.append(f"{kind!r} {n:,}{hint}")
    rest = unmatched[MAX_LISTED:]
    more = f"; and {len(rest):,} more types with {sum(n for _, n in rest):,} events" if rest else ""
    total = sum(n for _, n in unmatched)
    return [
        f"{total:,} events are of types no rule of model {model.name!r} names, so they give "
        f"no points: {', '.join(listed)}{more}"
    ]
