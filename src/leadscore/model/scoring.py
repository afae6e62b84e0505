"""The scoring model as typed data: what marketing and sales agreed, nothing that runs.

Points are given with at most two decimals; the engine works in hundredths of a point
("centipoints") so that every engine adds up exactly the same way.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path, PureWindowsPath
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from leadscore.model.base import Strict
from leadscore.model.conditions import Condition, fields_of

MICROS_PER_DAY = 86_400_000_000
# Centipoints stay far inside 64-bit integers (SQL engines) even summed over many lines.
MAX_POINTS = 1_000_000_000

# YAML reads `level: 1` or `version: 2` as a number; such keys are text either way.
Text = Annotated[
    str, Field(coerce_numbers_to_str=True, json_schema_extra={"type": ["string", "number"]})
]


def _fmt(value: float) -> str:
    """A number as written: 40, not 40.0."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _cents(points: float) -> int:
    return round(points * 100)


def _check_two_decimals(value: float | None) -> float | None:
    if value is None:
        return value
    if abs(value) > MAX_POINTS:
        raise ValueError(f"points must lie within +-{MAX_POINTS:,}, got {value}")
    if abs(value * 100 - round(value * 100)) > 1e-6:
        raise ValueError(f"points take at most two decimals, got {value}")
    return value


def days_to_micros(days: float) -> int:
    """A number of days as whole microseconds (the engine's unit of time)."""
    return round(days * MICROS_PER_DAY)


class Labels(Strict):
    """Display texts of a rule in other languages: `labels: {de: Preisseite besucht}`."""

    de: str | None = Field(None, description="German label.")
    en: str | None = Field(None, description="English label (defaults to the rule's name).")


class Named(Strict):
    """Something with a unique name, an optional label and description."""

    name: str = Field(min_length=1, description="Unique name; shown in ledgers and reports.")
    label: str | None = Field(None, description="Readable text for ledgers (default: the name).")
    labels: Labels | None = Field(None, description="Labels in other languages.")
    description: str | None = Field(None, description="Why this rule exists.")

    def text(self, lang: str = "en") -> str:
        """The label in `lang`, falling back to `label`, then the name."""
        if self.labels is not None:
            found = getattr(self.labels, lang, None)
            if found:
                return str(found)
        return self.label or self.name


# --- fit --------------------------------------------------------------------------------------


class FitRule(Named):
    """Points for who the lead is: `{name: ceo, when: {...}, points: 30}`."""

    when: Condition = Field(description="Condition on lead fields and `account.<field>`.")
    points: float | None = Field(
        None,
        description="Points when the condition holds; negative subtracts. Not in tiered models.",
    )
    tier: Literal["persona", "factor"] | None = Field(
        None, description="Tiered models only: stage 1 `persona` or stage 2 `factor`."
    )

    _two_decimals = field_validator("points")(_check_two_decimals)

    @property
    def cents(self) -> int:
        """Points in hundredths."""
        return _cents(self.points or 0.0)


class GradeBand(Strict):
    """A letter grade for fit points at or above `min`; the last band has no `min`."""

    grade: Text = Field(min_length=1, description="The grade, e.g. A.")
    min: float | None = Field(None, description="Lowest fit points for this grade.")


def _rising(values: list[float] | list[int]) -> bool:
    """Each value above the one before (no ties)."""
    return all(a < b for a, b in pairwise(values))


def _check_bands(mins: list[float | None], noun: str, key: str) -> None:
    """Bands are highest first, each but the last with a falling `min`; the last is the default."""
    if not mins:
        return
    if any(m is None for m in mins[:-1]):
        raise ValueError(f"every {noun} but the last needs `min`")
    values = [m for m in mins[:-1] if m is not None]
    if not _rising(values[::-1]):
        raise ValueError(f"{key} `min` values must fall from first to last, got {values}")
    if mins[-1] is not None:
        raise ValueError(f"the last {noun} is the default: leave out its `min`")


class Fit(Strict):
    """Explicit (profile) scoring: rules on lead and account fields, and grades."""

    rules: list[FitRule] = Field(default_factory=list, description="Fit rules, all applied.")
    grades: list[GradeBand] = Field(
        default_factory=list, description="Grades from fit points, highest first."
    )

    @field_validator("grades")
    @classmethod
    def _grades_ordered(cls, bands: list[GradeBand]) -> list[GradeBand]:
        _check_bands([b.min for b in bands], "grade", "grade")
        return bands


# --- behaviour --------------------------------------------------------------------------------


class HalfLife(Strict):
    """Points halve every `days` days: factor = 0.5 ** (age / days)."""

    type: Literal["half_life"]
    days: float = Field(gt=0, description="Half-life in days.")


class Linear(Strict):
    """Points fall in a straight line to 0 at `days`: factor = max(0, 1 - age / days)."""

    type: Literal["linear"]
    days: float = Field(gt=0, description="Days until the points are gone.")


class Step(Strict):
    """After `after_days`, points are multiplied by `factor`."""

    after_days: float = Field(ge=0, description="Age in days from which the factor applies.")
    factor: float = Field(ge=0, le=1, description="Multiplier from then on.")


class Steps(Strict):
    """Stepwise decay: the factor of the last step reached applies (1 before the first)."""

    type: Literal["step"]
    steps: list[Step] = Field(min_length=1, description="Steps in order of `after_days`.")

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: list[Step]) -> list[Step]:
        days = [s.after_days for s in steps]
        if not _rising(days):
            raise ValueError(f"step `after_days` must rise, got {days}")
        return steps


class NoDecay(Strict):
    """Points keep their full value."""

    type: Literal["none"]


Decay = HalfLife | Linear | Steps | NoDecay


class PerPeriod(Strict):
    """At most `count` events per calendar `period` (UTC; weeks start on Monday)."""

    count: int = Field(ge=1, description="Events counted per period.")
    period: Literal["day", "week", "month"] = Field(description="Calendar period.")


class EventMatch(Named):
    """Which events a rule looks at: their type and an optional condition on their columns."""

    event: str | list[str] = Field(description="Event type, or a list of types.")
    where: Condition | None = Field(
        None, description="Condition on event columns (url, asset, channel, content_stage, ...)."
    )

    @property
    def types(self) -> tuple[str, ...]:
        """The event types, as a tuple."""
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)

    @field_validator("event")
    @classmethod
    def _types_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("`event` needs at least one event type")
        return value


class BehaviourRule(EventMatch):
    """Points per matching event, with caps, a recency window and decay."""

    points: float = Field(description="Points per event; negative for negative actions.")
    repeatable: bool = Field(
        True, description="false: only the first matching event ever counts (first-time only)."
    )
    keep: Literal["latest", "earliest"] | None = Field(
        None,
        description="Which events caps keep: the most recent (default) or the first "
        "(default when `repeatable: false`).",
    )
    max_count: int | None = Field(None, ge=1, description="At most this many events count.")
    max_points: float | None = Field(
        None, gt=0, description="The rule adds (or, if negative, takes) at most this many points."
    )
    max_per: PerPeriod | None = Field(
        None, description="At most so many events per day/week/month."
    )
    once_per: str | None = Field(
        None,
        min_length=1,
        description="Count one event per distinct value of this column, e.g. `asset`.",
    )
    within_days: float | None = Field(
        None, gt=0, description="Only events of the last so many days before as_of count."
    )
    decay: Decay | None = Field(
        None, discriminator="type", description="Overrides the model's decay for this rule."
    )

    _two_decimals = field_validator("points", "max_points")(_check_two_decimals)

    @property
    def cents(self) -> int:
        """Points in hundredths."""
        return _cents(self.points)

    @property
    def cap_cents(self) -> int | None:
        """The max_points cap in hundredths."""
        return None if self.max_points is None else _cents(self.max_points)

    @model_validator(mode="after")
    def _first_time_only(self) -> BehaviourRule:
        # `repeatable: false` is "the first time only": a key that says otherwise would be
        # silently overruled (or, for `keep`, overrule it), so it is refused instead.
        if self.repeatable:
            return self
        if self.keep == "latest":
            raise ValueError(
                "`keep: latest` contradicts `repeatable: false`, which counts only the lead's "
                "first matching event; to count only the newest one, write `max_count: 1` "
                "instead of `repeatable: false`"
            )
        if self.max_count is not None and self.max_count > 1:
            raise ValueError(
                f"`max_count: {self.max_count}` has no effect with `repeatable: false`, which "
                "counts one event; leave out one of them"
            )
        return self

    @property
    def order(self) -> Literal["latest", "earliest"]:
        """Which events are kept first when a cap applies."""
        if self.keep is not None:
            return self.keep
        return "latest" if self.repeatable else "earliest"

    @property
    def count_limit(self) -> int | None:
        """The effective cap on the number of counted events."""
        if not self.repeatable:
            return 1 if self.max_count is None else min(1, self.max_count)
        return self.max_count


class FrequencyRule(EventMatch):
    """Points once when at least `min_count` matching events fall in the last `within_days`."""

    min_count: int = Field(ge=1, description="How many events are needed.")
    within_days: float = Field(gt=0, description="Window before as_of, in days.")
    points: float = Field(description="Points when the frequency is reached.")

    _two_decimals = field_validator("points")(_check_two_decimals)

    @property
    def cents(self) -> int:
        """Points in hundredths."""
        return _cents(self.points)


class VelocityTier(Strict):
    """Points when all steps were done within `within_days`."""

    within_days: float = Field(ge=0, description="Longest span from first to last step, in days.")
    points: float = Field(description="Points for this speed.")

    _two_decimals = field_validator("points")(_check_two_decimals)


class Velocity(Named):
    """Faster is hotter: points by how quickly a lead did every step.

    A step is a behaviour rule, by name; its time is the lead's first matching event (before
    as_of). When every step was done, span = latest step time - earliest step time; the first
    tier (fastest first) whose `within_days` covers the span gives its points.
    """

    steps: list[str] = Field(min_length=2, description="Names of behaviour rules, the journey.")
    tiers: list[VelocityTier] = Field(min_length=1, description="Fastest first.")

    @field_validator("tiers")
    @classmethod
    def _fastest_first(cls, tiers: list[VelocityTier]) -> list[VelocityTier]:
        days = [t.within_days for t in tiers]
        if not _rising(days):
            raise ValueError(
                f"tiers go from fastest to slowest: `within_days` must rise, got {days}"
            )
        return tiers


class InactivityStep(Strict):
    """Points (a penalty) after `after_days` without any event."""

    after_days: float = Field(gt=0, description="Days since the last event (or creation).")
    points: float = Field(description="Usually negative.")

    _two_decimals = field_validator("points")(_check_two_decimals)


class Behaviour(Strict):
    """Implicit (engagement) scoring: what leads did."""

    decay: Decay = Field(
        default_factory=lambda: NoDecay(type="none"),
        discriminator="type",
        description="How event points fade with age; fit points never decay.",
    )
    floor: float | None = Field(
        0, description="Behaviour points never fall below this (null: no floor)."
    )
    rules: list[BehaviourRule] = Field(default_factory=list, description="Points per event.")
    frequency: list[FrequencyRule] = Field(
        default_factory=list, description="Points for N events within D days."
    )
    velocity: list[Velocity] = Field(default_factory=list, description="Points for speed.")
    inactivity: list[InactivityStep] = Field(
        default_factory=list, description="Penalties for silence; the longest reached applies."
    )

    _two_decimals = field_validator("floor")(_check_two_decimals)

    @field_validator("inactivity")
    @classmethod
    def _inactivity_ordered(cls, steps: list[InactivityStep]) -> list[InactivityStep]:
        days = [s.after_days for s in steps]
        if not _rising(days):
            raise ValueError(f"inactivity `after_days` must rise, got {days}")
        return steps


# --- account ----------------------------------------------------------------------------------


class StakeholderTier(Strict):
    """Points for each lead of an account with at least `min_leads` engaged leads."""

    min_leads: int = Field(ge=1, description="Engaged leads of the account, this one included.")
    points: float = Field(description="Points for each of the account's leads.")

    _two_decimals = field_validator("points")(_check_two_decimals)


class Stakeholders(Strict):
    """Several people of one company engaging raise each of them (buying committee)."""

    within_days: float = Field(gt=0, description="A lead is engaged with an event this recent.")
    event: str | list[str] | None = Field(
        None, description="Only these event types count as engagement (default: all)."
    )
    tiers: list[StakeholderTier] = Field(min_length=1, description="Fewest leads first.")

    @property
    def types(self) -> tuple[str, ...] | None:
        """The engagement event types, or None for all."""
        if self.event is None:
            return None
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)

    @field_validator("event")
    @classmethod
    def _types_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("`event` needs at least one event type (leave it out for all)")
        return value

    @field_validator("tiers")
    @classmethod
    def _ordered(cls, tiers: list[StakeholderTier]) -> list[StakeholderTier]:
        mins = [t.min_leads for t in tiers]
        if not _rising(mins):
            raise ValueError(f"`min_leads` must rise from tier to tier, got {mins}")
        return tiers


class Route(Strict):
    """Where a lead goes: any of temperature, stage, queue and SLA hours."""

    temperature: str | None = Field(None, description="hot, warm or cold (or your words).")
    stage: str | None = Field(None, description="Lifecycle stage: MQL, SQL, nurture, ...")
    queue: str | None = Field(None, description="Routing queue (team or owner).")
    sla_hours: float | None = Field(None, gt=0, description="Hours sales has to act.")


class Priority(Strict):
    """Target accounts agreed by marketing and sales: a boost and/or straight to sales."""

    when: Condition = Field(description="Condition on `account.<field>` (and lead fields).")
    points: float = Field(0, description="Boost for each lead of a priority account.")
    route: Route | None = Field(None, description="Overrides the routing for these leads.")

    _two_decimals = field_validator("points")(_check_two_decimals)


class Account(Strict):
    """Account-level (B2B) signals."""

    stakeholders: Stakeholders | None = Field(None, description="Buying-committee signal.")
    priority: Priority | None = Field(None, description="Target accounts.")
    rollup: Literal["sum", "max"] = Field(
        "sum", description="Account score: sum or max of its leads' totals."
    )


# --- tiers, interests, engagement, routing ----------------------------------------------------


class Tiers(Strict):
    """The three-stage model: persona | factors | behaviour, each tier out of reach of the next.

    Total = persona_points (any persona rule) + factor_points per factor rule (at most
    max_factors) + behaviour clipped to [0, behaviour_max]. It reads as e.g. 1|4|37 = 1437.
    """

    persona_points: int = Field(1000, gt=0, description="Stage 1: points for a persona match.")
    factor_points: int = Field(100, gt=0, description="Stage 2: points per factor.")
    max_factors: int = Field(9, ge=1, description="Stage 2: at most this many factors count.")
    behaviour_max: int = Field(99, ge=0, description="Stage 3: behaviour is clipped to this.")

    @model_validator(mode="after")
    def _order_guaranteed(self) -> Tiers:
        if self.behaviour_max >= self.factor_points:
            raise ValueError(
                f"behaviour_max ({self.behaviour_max}) must be below factor_points "
                f"({self.factor_points}) so behaviour never outweighs a factor"
            )
        if self.factor_points * self.max_factors >= self.persona_points:
            raise ValueError(
                f"factor_points x max_factors ({self.factor_points * self.max_factors}) must be "
                f"below persona_points ({self.persona_points})"
            )
        return self


class Interest(Named):
    """A topic or product: its sub-score sums the lead's event points that match `where`."""

    where: Condition = Field(description="Condition on event columns, e.g. {field: topic, ...}.")


class EngagementLevel(Strict):
    """An engagement level for behaviour points at or above `min`; the last has no `min`."""

    level: Text = Field(min_length=1, description="Level name, e.g. 1 (most engaged) to 4.")
    min: float | None = Field(None, description="Lowest behaviour points for this level.")


class RouteWhen(Strict):
    """When a routing entry applies; every given test must hold (none given: always)."""

    grade: list[Text] | None = Field(None, description="Fit grade is one of these.")
    engagement: list[Text] | None = Field(None, description="Engagement level is one of these.")
    min_total: float | None = Field(None, description="Total at least this.")
    max_total: float | None = Field(None, description="Total below this.")
    min_fit: float | None = Field(None, description="Fit points at least this.")
    max_fit: float | None = Field(None, description="Fit points below this.")
    min_behaviour: float | None = Field(None, description="Behaviour points at least this.")
    max_behaviour: float | None = Field(None, description="Behaviour points below this.")
    priority: bool | None = Field(None, description="Lead is (true) or is not (false) priority.")

    @model_validator(mode="after")
    def _can_hold(self) -> RouteWhen:
        # An entry whose tests can never all hold routes nobody, silently: a typo.
        for key in ("grade", "engagement"):
            if getattr(self, key) == []:
                raise ValueError(f"`{key}: []` never holds; leave out `{key}` to accept any {key}")
        for what in ("total", "fit", "behaviour"):
            low, high = getattr(self, f"min_{what}"), getattr(self, f"max_{what}")
            if low is not None and high is not None and low >= high:
                raise ValueError(
                    f"`min_{what}: {_fmt(low)}` and `max_{what}: {_fmt(high)}` never both hold "
                    f"(min_{what} means at least, max_{what} below); min_{what} must be lower"
                )
        return self


class RoutingEntry(Route):
    """One row of the routing table: the first entry whose `when` holds decides."""

    name: str | None = Field(None, description="Name of the band or cell, e.g. hot.")
    when: RouteWhen = Field(default_factory=RouteWhen, description="Tests; empty = otherwise.")


class Prediction(Strict):
    """A predictive model (`leadscore train`) whose probability of winning becomes a lead field.

    Rules use it like any field, e.g. `{field: predicted_won, gte: 0.6}`: rules and prediction
    combine into a hybrid model.
    """

    artefact: str = Field(
        min_length=1,
        description=(
            "The file `leadscore train` wrote, as a path inside the model file's folder "
            "(in the service: inside its --artefacts folder); no absolute path, no `..`."
        ),
    )
    field: str = Field(
        "predicted_won",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Lead field the probability of winning (0 to 1) is written to.",
    )

    @field_validator("artefact")
    @classmethod
    def _inside_the_folder(cls, value: str) -> str:
        # The artefact is unpickled, which runs code: it may only come from the one folder
        # its operators trust, whoever wrote the model.
        parts = re.split(r"[/\\]", value)
        if (
            value.startswith(("/", "\\"))
            or PureWindowsPath(value).drive
            or ".." in parts
            or any(ord(c) < 32 for c in value)
        ):
            raise ValueError(
                f"{value!r}: the artefact must be a path inside the artefacts folder (the "
                "model file's folder, or `serve --artefacts`): relative, without `..`"
            )
        return value

    def inside(self, folder: Path) -> Path:
        """The artefact's real path in `folder`; ValueError if a symbolic link leads outside."""
        root = folder.resolve()
        path = (root / self.artefact).resolve()
        if not path.is_relative_to(root):
            raise ValueError(
                f"prediction.artefact: {self.artefact!r} leads outside the artefacts folder "
                f"{str(root)!r} (through a symbolic link)"
            )
        return path


class ScoringModel(Strict):
    """A lead-scoring model: fit, behaviour, account signals, tiers, interests and routing."""

    name: str = Field(min_length=1, description="Model name.")
    version: Text = Field(min_length=1, description="Model version, stored with every score.")
    description: str | None = Field(None, description="What the model is for.")
    kind: Literal["b2b", "b2c"] = Field("b2b", description="B2B or B2C (informational).")
    fit: Fit = Field(default_factory=Fit, description="Explicit scoring.")
    behaviour: Behaviour = Field(default_factory=Behaviour, description="Implicit scoring.")
    account: Account | None = Field(None, description="Account-level signals (B2B).")
    tiers: Tiers | None = Field(None, description="Makes this a three-stage (tiered) model.")
    interests: list[Interest] = Field(default_factory=list, description="Topic sub-scores.")
    engagement: list[EngagementLevel] = Field(
        default_factory=list, description="Engagement levels from behaviour points, highest first."
    )
    routing: list[RoutingEntry] = Field(
        default_factory=list, description="Temperature, stage, queue and SLA; first match wins."
    )
    prediction: Prediction | None = Field(
        None, description="A predictive model's probability as a lead field (hybrid model)."
    )

    @field_validator("engagement")
    @classmethod
    def _levels_ordered(cls, levels: list[EngagementLevel]) -> list[EngagementLevel]:
        _check_bands([lv.min for lv in levels], "engagement level", "engagement")
        return levels

    @model_validator(mode="after")
    def _consistent(self) -> ScoringModel:
        # One problem a line, every one of them: the loader splits them again.
        problems = self._problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _problems(self) -> list[str]:
        out: list[str] = []
        names: dict[str, str] = {}
        groups: list[tuple[str, list[Named]]] = [
            ("fit.rules", list(self.fit.rules)),
            ("behaviour.rules", list(self.behaviour.rules)),
            ("behaviour.frequency", list(self.behaviour.frequency)),
            ("behaviour.velocity", list(self.behaviour.velocity)),
            ("interests", list(self.interests)),
        ]
        for where, items in groups:
            for i, item in enumerate(items):
                if item.name in names:
                    out.append(
                        f"{where}[{i}].name: duplicate name {item.name!r}, already used at "
                        f"{names[item.name]}"
                    )
                else:
                    names[item.name] = f"{where}[{i}]"
        behaviour_names = {r.name for r in self.behaviour.rules}
        for i, v in enumerate(self.behaviour.velocity):
            for j, step in enumerate(v.steps):
                if step not in behaviour_names:
                    out.append(
                        f"behaviour.velocity[{i}].steps[{j}]: step {step!r} is not a behaviour "
                        f"rule (known: {', '.join(sorted(behaviour_names)) or 'none'})"
                    )
                elif step in v.steps[:j]:
                    out.append(f"behaviour.velocity[{i}].steps[{j}]: step {step!r} is named twice")
        for i, rule in enumerate(self.fit.rules):
            if self.tiers is not None:
                if rule.tier is None:
                    out.append(
                        f"fit.rules[{i}]: rule {rule.name!r}: tiered models need "
                        "`tier: persona` or `tier: factor`"
                    )
                if rule.points is not None:
                    out.append(
                        f"fit.rules[{i}].points: rule {rule.name!r}: in tiered models the tier "
                        "sets the points; leave out `points`"
                    )
            else:
                if rule.tier is not None:
                    out.append(
                        f"fit.rules[{i}].tier: rule {rule.name!r}: `tier` needs a `tiers` section"
                    )
                if rule.points is None:
                    out.append(f"fit.rules[{i}]: rule {rule.name!r}: `points` is required")
        # A routing test on a grade or level the model never gives can never hold: a typo.
        known = {
            "grade": [g.grade for g in self.fit.grades],
            "engagement": [lv.level for lv in self.engagement],
        }
        always = next((i for i, e in enumerate(self.routing) if e.when == RouteWhen()), None)
        if always is not None and always < len(self.routing) - 1:
            out.append(
                f"routing[{always + 1}]: never reached: routing[{always}] has no tests and "
                "always holds (the first entry that holds decides); move it to the end"
            )
        for i, entry in enumerate(self.routing):
            for key, allowed in known.items():
                for j, value in enumerate(getattr(entry.when, key) or []):
                    if value not in allowed:
                        out.append(
                            f"routing[{i}].when.{key}[{j}]: {value!r} is not one of the model's "
                            f"{key} values ({', '.join(allowed) or 'none defined'})"
                        )
        return out

    def rule_labels(self, lang: str = "en") -> dict[str, str]:
        """Readable text of every named rule in `lang`, by rule name (for ledgers)."""
        named: list[Named] = [
            *self.fit.rules,
            *self.behaviour.rules,
            *self.behaviour.frequency,
            *self.behaviour.velocity,
        ]
        return {n.name: n.text(lang) for n in named}

    def fit_fields(self) -> list[str]:
        """Every lead/account field the fit rules and priority read."""
        out = [f for r in self.fit.rules for f in fields_of(r.when)]
        if self.account is not None and self.account.priority is not None:
            out += fields_of(self.account.priority.when)
        return list(dict.fromkeys(out))

    def event_fields(self) -> list[str]:
        """Every event column the behaviour rules and interests read."""
        out: list[str] = []
        for m in [*self.behaviour.rules, *self.behaviour.frequency]:
            if m.where is not None:
                out += fields_of(m.where)
        for r in self.behaviour.rules:
            if r.once_per:
                out.append(r.once_per)
        for it in self.interests:
            out += fields_of(it.where)
        return list(dict.fromkeys(out))
