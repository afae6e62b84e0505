"""Request bodies: leads, accounts, events and outcomes as the API accepts them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from leadscore.timestamps import ACCEPTED, TimestampError, parse_timestamp


def naive_utc(value: datetime) -> datetime:
    """Aware times become naive UTC; naive times are taken as UTC already."""
    if value.tzinfo is not None:
        try:
            value = value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before year 1 in UTC
            raise ValueError("timestamp out of range once converted to UTC") from None
    return value


def no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters; refuse them on every backend alike."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


def timestamp_text(value: object) -> object:
    """Texts are read by the one timestamp rule of files and mappings (leadscore.timestamps)."""
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except TimestampError as exc:
            raise ValueError(f"{exc}; {ACCEPTED}") from None
    if not isinstance(value, datetime):
        # pydantic would read a number as Unix time, which no file or mapping accepts
        raise ValueError("expected an ISO 8601 text like 2026-03-01T12:00:00+02:00")
    return value


Timestamp = Annotated[datetime, BeforeValidator(timestamp_text), AfterValidator(naive_utc)]


def not_dot_segment(value: str) -> str:
    """Ids are one URL path segment in links and forms; browsers drop `.` and `..` segments."""
    if value in (".", ".."):
        raise ValueError(f"{value!r} cannot be an id: it names no page in a URL")
    return value


Id = Annotated[
    str,
    Field(min_length=1, max_length=200),
    AfterValidator(no_nul),
    AfterValidator(not_dot_segment),
]
Text = Annotated[str, Field(max_length=10_000), AfterValidator(no_nul)]
# The store's integers are 64-bit: a larger id, count or offset would overflow the database
# driver (a 500), so every integer the API takes, in bodies, paths and queries, is one of these.
Integer = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Offset = Annotated[int, Field(ge=0, le=2**63 - 1, description="How many rows to skip.")]
# NaN and infinity are no JSON and no amount.
Number = Annotated[float, Field(allow_inf_nan=False)]


def int64(value: object) -> object:
    """Refuse an integer beyond 64 bits instead of rounding it into a float."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ValueError("integer beyond 64 bits; send a long id as a string")
    return value


# Attributes are stored as JSON, which holds NUL characters; their integers are 64-bit like
# every other, as scoring and evaluation read them into 64-bit columns.
Scalar = Annotated[str | Integer | Number | bool | None, BeforeValidator(int64)]


def empty_is_missing(value: object) -> object:
    """An empty text is a missing value, as in every file format (docs/data.md)."""
    return None if value == "" else value


Attributes = dict[
    Annotated[str, Field(min_length=1, max_length=200)],
    Annotated[Scalar, AfterValidator(empty_is_missing)],
]


class Body(BaseModel):
    """Strict request bodies: unknown fields are errors that name the field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class LeadIn(Body):
    """A lead (person); only the fields given are changed on an existing lead."""

    lead_id: Id
    email: Text | None = None
    name: Text | None = None
    job_title: Text | None = None
    account_id: Id | None = None
    company: Text | None = None
    industry: Text | None = None
    employees: Integer | None = None
    annual_revenue: Number | None = None
    country: Text | None = None
    source: Text | None = None
    created_at: Timestamp | None = None
    stage: Text | None = None
    attributes: Attributes | None = Field(
        None, description="Custom attributes, usable by rules by name; null removes one."
    )


class AccountIn(Body):
    """An account (company); only the fields given are changed on an existing account."""

    account_id: Id
    name: Text | None = None
    domain: Text | None = None
    industry: Text | None = None
    employees: Integer | None = None
    annual_revenue: Number | None = None
    country: Text | None = None
    priority: Text | None = None
    attributes: Attributes | None = None


class EventIn(Body):
    """One tracking event; `event_id` makes sending it twice harmless."""

    event_id: Id
    lead_id: Id
    type: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)]
    ts: Timestamp
    url: Text | None = None
    asset: Text | None = None
    campaign: Text | None = None
    channel: Text | None = None
    content_stage: Text | None = None
    topic: Text | None = None
    value: Number | None = None
    attributes: Attributes | None = None


class OutcomeIn(Body):
    """Won or lost, with the deal value; `ts` defaults to now."""

    outcome: Literal["won", "lost"]
    ts: Timestamp | None = None
    value: Number | None = None


def describe(error: ValidationError) -> str:
    """One line per problem: the field's path and what was expected."""
    parts = []
    for e in error.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"field '{loc}': {e['msg']}")
    return "; ".join(parts)


def fields_set(item: BaseModel) -> dict[str, Any]:
    """The fields a client actually sent (so upserts change only those)."""
    return item.model_dump(exclude_unset=True)
