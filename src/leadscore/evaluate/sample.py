"""A stratified random sample of scored leads, with their ledgers, for review before deployment.

Before a model goes live, the committee of marketing and sales reads a handful of leads from
every stage and asks of each "would we have routed this one so?" (S21). `sample` draws them:

* every lead is scored as of `as_of`, and grouped by the stage the model routes it to; leads
  the model gives no stage form the group "(none)";
* from every group, the `per_stage` leads with the smallest key md5("<seed>:<lead_id>") are
  taken (ties, which md5 makes all but impossible, by lead id). That is a uniform random
  sample without replacement, drawn in DuckDB, the same for the same seed and data on any
  machine, and reproducible by hand with any md5 tool; another seed gives another sample;
* a group with fewer than `per_stage` leads is taken whole, and the notes say so;
* every sampled lead comes with its score row and its full ledger (whose points sum to its
  total).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import ibis

from leadscore.engine.batch import compile_batch
from leadscore.engine.result import KINDS, PARTS
from leadscore.engine.timebase import utc_naive
from leadscore.errors import DataError
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

# The group of leads the model gives no stage.
NO_STAGE: Final = "(none)"

# Score columns that are the same for every lead: given once, on the sample.
_CONSTANT: Final = ("model", "model_version", "as_of")

_GROUP, _KEY, _RANK, _SIZE = "_sample_group", "_sample_key", "_sample_rank", "_sample_size"


def _plain(value: Any) -> Any:
    """A JSON- and CSV-ready value: datetimes and dates as ISO text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


@dataclass(frozen=True)
class SampledLead:
    """One sampled lead: its stage group, its score row and its ledger lines."""

    stage: str  # the group: the lead's stage, or "(none)"
    score: dict[str, Any]  # the score row (without model, model_version and as_of)
    ledger: list[dict[str, Any]]  # ledger lines: part, kind, rule, event_id, ts, points, ...

    @property
    def lead_id(self) -> Any:
        """The lead's id."""
        return self.score["lead_id"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "lead_id": _plain(self.lead_id),
            "score": _plain_row(self.score),
            "ledger": [
                _plain_row({k: v for k, v in line.items() if k != "lead_id"})
                for line in self.ledger
            ],
        }


@dataclass(frozen=True)
class Stratum:
    """One stage: how many leads it holds and the ones sampled from it."""

    stage: str
    size: int  # leads at this stage
    leads: list[SampledLead]

    @property
    def whole(self) -> bool:
        """True when the stage was taken whole (it held at most `per_stage` leads)."""
        return len(self.leads) == self.size

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "stage": self.stage,
            "size": self.size,
            "sampled": len(self.leads),
            "whole": self.whole,
            "leads": [lead.as_dict() for lead in self.leads],
        }


@dataclass
class Sample:
    """A seeded sample of `per_stage` leads from every stage, with scores and ledgers."""

    model: str
    model_version: str
    as_of: datetime
    seed: int
    per_stage: int
    strata: list[Stratum]
    notes: list[str] = field(default_factory=list)

    @property
    def leads(self) -> list[SampledLead]:
        """Every sampled lead, stage by stage."""
        return [lead for stratum in self.strata for lead in stratum.leads]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record (datetimes as ISO text)."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "as_of": self.as_of.isoformat(),
            "seed": self.seed,
            "per_stage": self.per_stage,
            "stages": [s.as_dict() for s in self.strata],
            "notes": self.notes,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per sampled lead: stage (group), lead_id, then the score columns."""
        out = []
        for lead in self.leads:
            rest = {k: v for k, v in lead.score.items() if k not in ("lead_id", "stage")}
            out.append(_plain_row({"stage": lead.stage, "lead_id": lead.lead_id, **rest}))
        return out

    def ledger_rows(self) -> list[dict[str, Any]]:
        """One flat row per ledger line of the sampled leads: stage (group), lead_id, line."""
        out = []
        for lead in self.leads:
            for line in lead.ledger:
                rest = {k: v for k, v in line.items() if k != "lead_id"}
                out.append(_plain_row({"stage": lead.stage, "lead_id": lead.lead_id, **rest}))
        return out


def model_stages(model: ScoringModel) -> list[str]:
    """The stages a model routes leads to, in the order its routing names them."""
    seen: dict[str, None] = {}
    priority = model.account.priority if model.account is not None else None
    if priority is not None and priority.route is not None and priority.route.stage is not None:
        seen.setdefault(priority.route.stage)
    for entry in model.routing:
        if entry.stage is not None:
            seen.setdefault(entry.stage)
    return list(seen)


def _line_order(line: dict[str, Any]) -> tuple[Any, ...]:
    """Fit, behaviour, account; within them by kind, then in time (lines without time last)."""
    part, kind, ts = line["part"], line["kind"], line["ts"]
    return (
        PARTS.index(part) if part in PARTS else len(PARTS),
        KINDS.index(kind) if kind in KINDS else len(KINDS),
        ts is None,
        ts or datetime.min,
        line["rule"] or "",
        line["event_id"] or "",
    )


def _ids(table: ibis.Table) -> set[str]:
    return {str(v) for v in table.to_pyarrow().column(0).to_pylist()}


def _around(data: Dataset, ids: list[str], accounts: list[str]) -> Dataset:
    """The part of the data that decides the ledgers of the leads `ids` (of `accounts`).

    A lead's score reads its own events and, through stakeholders and the account roll-up,
    the leads of its account; nothing else. Where event ids were not checked to be unique,
    the engine keeps the first of the events that share an id, so the leads holding those
    events come along too. Scoring this part gives the very ledgers of scoring everything,
    at a fraction of the cost.
    """
    leads, events = data.leads, data.events
    lead_id = leads.lead_id.cast("string")
    near = lead_id.isin(ids)
    if accounts and "account_id" in leads.columns:
        near = near | leads.account_id.cast("string").isin(accounts)
    keep = _ids(leads.filter(near).select(lead_id))
    if not data.validated:
        held = events.filter(events.lead_id.cast("string").isin(sorted(keep)))
        shared = events.semi_join(held.select("event_id"), "event_id")
        keep |= _ids(shared.select(shared.lead_id.cast("string")).distinct())
    chosen = sorted(keep)
    return Dataset(
        leads=leads.filter(lead_id.isin(chosen)),
        events=events.filter(events.lead_id.cast("string").isin(chosen)),
        accounts=data.accounts,
        validated=data.validated,
    )


def sample(
    model: ScoringModel,
    data: Dataset,
    as_of: datetime,
    per_stage: int = 10,
    seed: int = 0,
) -> Sample:
    """Draw `per_stage` leads at random (seeded) from every stage, with scores and ledgers."""
    if isinstance(per_stage, bool) or not isinstance(per_stage, int) or per_stage < 1:
        raise DataError(f"per_stage must be a whole number of at least 1, got {per_stage!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"seed must be a whole number, got {seed!r}")
    as_of = utc_naive(as_of)
    t = compile_batch(model, data, as_of).scores
    group = t.stage.fill_null(NO_STAGE)
    key = (ibis.literal(f"{seed}:") + t.lead_id.cast("string")).hexdigest("md5")
    t = t.mutate(**{_GROUP: group, _KEY: key})
    by_group = ibis.window(group_by=t[_GROUP])
    ranked = ibis.window(group_by=t[_GROUP], order_by=[t[_KEY], t.lead_id])
    t = t.mutate(**{_RANK: ibis.row_number().over(ranked), _SIZE: t.lead_id.count().over(by_group)})
    picked = t.filter(t[_RANK] < per_stage).order_by([_GROUP, _RANK]).drop(_KEY, _RANK)
    rows: list[dict[str, Any]] = picked.to_pyarrow().to_pylist()
    if not rows:
        raise DataError("the data holds no leads: nothing to sample")

    ids = sorted({str(r["lead_id"]) for r in rows})
    accounts = sorted({str(r["account_id"]) for r in rows if r.get("account_id") is not None})
    ledger = compile_batch(model, _around(data, ids, accounts), as_of).ledger
    lines: list[dict[str, Any]] = ledger.filter(ledger.lead_id.isin(ids)).to_pyarrow().to_pylist()
    by_lead: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for line in lines:
        by_lead[str(line["lead_id"])].append(line)
    for found in by_lead.values():
        found.sort(key=_line_order)

    groups: dict[str, Stratum] = {}
    for row in rows:
        name, size = row.pop(_GROUP), row.pop(_SIZE)
        for column in _CONSTANT:
            row.pop(column, None)
        stratum = groups.setdefault(name, Stratum(stage=name, size=int(size), leads=[]))
        stratum.leads.append(SampledLead(name, row, by_lead[str(row["lead_id"])]))

    declared = model_stages(model)
    order = [s for s in declared if s in groups]
    order += sorted(s for s in groups if s not in declared and s != NO_STAGE)
    order += [NO_STAGE] if NO_STAGE in groups else []
    strata = [groups[s] for s in order]

    notes = []
    for stratum in strata:
        if stratum.size < per_stage:
            held = "1 lead" if stratum.size == 1 else f"{stratum.size} leads"
            notes.append(
                f"stage {stratum.stage!r} holds only {held}, fewer than the {per_stage} asked "
                "for: all of them are in the sample"
            )
    missing = [s for s in declared if s not in groups]
    if missing:
        named = ", ".join(repr(s) for s in missing)
        notes.append(
            f"no lead is at stage{'s' if len(missing) > 1 else ''} {named} as of "
            f"{as_of.isoformat()}: nothing to sample there"
        )
    return Sample(
        model=model.name,
        model_version=model.version,
        as_of=as_of,
        seed=seed,
        per_stage=per_stage,
        strata=strata,
        notes=notes,
    )
