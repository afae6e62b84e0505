"""The canonical tables every input is turned into: leads, accounts, events, outcomes.

This module is the lowest layer: plain declarations that the model, engine and io layers share.
Types are DuckDB/Ibis type names. Timestamps are naive UTC (`timestamp`), to the microsecond.
Any further column of a table is a custom attribute and may be used by rules by its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import ibis

ColumnType = Literal["string", "int64", "float64", "timestamp", "boolean"]


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, type, whether it must be present and a description."""

    name: str
    type: ColumnType
    required: bool
    doc: str


LEADS: Final = (
    Column("lead_id", "string", True, "Unique id of the lead (person)."),
    Column("email", "string", False, "E-mail address."),
    Column("name", "string", False, "Full name."),
    Column("job_title", "string", False, "Position / job title, free text."),
    Column("account_id", "string", False, "The lead's company (B2B); joins `accounts`."),
    Column("company", "string", False, "Company name as the lead gave it."),
    Column("industry", "string", False, "Industry."),
    Column("employees", "int64", False, "Number of employees of the company."),
    Column("annual_revenue", "float64", False, "Expected annual revenue of the company."),
    Column("country", "string", False, "Country (name or ISO code, as your data has it)."),
    Column(
        "source", "string", False, "Channel the lead came from: social, organic, paid, email, ..."
    ),
    Column("created_at", "timestamp", False, "When the lead was created."),
    Column("stage", "string", False, "Lifecycle stage recorded in your CRM, if any."),
)

ACCOUNTS: Final = (
    Column("account_id", "string", True, "Unique id of the account (company)."),
    Column("name", "string", False, "Company name."),
    Column("domain", "string", False, "Web domain."),
    Column("industry", "string", False, "Industry."),
    Column("employees", "int64", False, "Number of employees."),
    Column("annual_revenue", "float64", False, "Annual revenue."),
    Column("country", "string", False, "Country."),
    Column("priority", "string", False, "Target tier agreed by marketing and sales (e.g. tier1)."),
)

EVENTS: Final = (
    Column("event_id", "string", True, "Unique id of the event; duplicates count once."),
    Column("lead_id", "string", True, "The lead who acted."),
    Column("type", "string", True, "What happened: page_view, email_open, download, ..."),
    Column("ts", "timestamp", True, "When it happened (UTC)."),
    Column("url", "string", False, "Page URL for visits and clicks."),
    Column("asset", "string", False, "Content asset (whitepaper, video, webinar id)."),
    Column("campaign", "string", False, "Campaign the event belongs to."),
    Column("channel", "string", False, "Channel: social, organic, paid, email, direct, ..."),
    Column("content_stage", "string", False, "Funnel stage of the content: TOFU, MOFU or BOFU."),
    Column("topic", "string", False, "Topic or product the event is about."),
    Column("value", "float64", False, "A numeric value (cart value, duration, ...)."),
)

OUTCOMES: Final = (
    Column("lead_id", "string", True, "The lead."),
    Column("outcome", "string", True, "won or lost."),
    Column("ts", "timestamp", True, "When the outcome was recorded."),
    Column("value", "float64", False, "Deal value."),
)

TABLES: Final[dict[str, tuple[Column, ...]]] = {
    "leads": LEADS,
    "accounts": ACCOUNTS,
    "events": EVENTS,
    "outcomes": OUTCOMES,
}

OUTCOME_VALUES: Final = ("won", "lost")


@dataclass(frozen=True)
class Rejection:
    """One input row that was not accepted, with the reason (row numbers are 1-based data rows)."""

    table: str
    source: str
    row: int | None
    reason: str


@dataclass(frozen=True)
class Dataset:
    """The canonical tables as Ibis tables on one backend (DuckDB by default).

    `rejections` lists every input row that was not accepted; nothing is dropped silently.
    `notes` lists rows that were accepted with a remark, e.g. a deal whose account a mapping's
    left join did not find (the deal is kept without the account's columns).
    `validated` says the events were checked on the way in (leadscore's readers and generator
    guarantee it): event ids are unique and every event's lead is in `leads`, so the engine
    need not check again. Leave it False for tables from anywhere else.
    """

    leads: ibis.Table
    events: ibis.Table
    accounts: ibis.Table | None = None
    outcomes: ibis.Table | None = None
    rejections: tuple[Rejection, ...] = ()
    validated: bool = False
    notes: tuple[Rejection, ...] = ()
