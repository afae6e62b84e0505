"""The service's tables (SQLAlchemy Core); Alembic migrations create and evolve them.

Canonical columns mirror `leadscore.schema`; custom attributes live in a JSON `attributes`
column and are handed to the engine as ordinary fields. Timestamps are naive UTC.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa

from leadscore import schema

metadata: Final = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

_TYPES: Final[dict[str, Any]] = {
    "string": sa.Text(),
    "int64": sa.BigInteger(),
    "float64": sa.Float(),
    "timestamp": sa.DateTime(),
    "boolean": sa.Boolean(),
}
# Ids are indexed strings; PostgreSQL and SQLite both index TEXT well.
ID: Final = sa.String(200)


def _canonical(columns: tuple[schema.Column, ...], key: str) -> list[sa.Column[object]]:
    return [
        sa.Column(c.name, ID if c.name.endswith("_id") else _TYPES[c.type], nullable=c.name != key)
        for c in columns
        if c.name != key
    ]


# Serial primary keys: BigInteger on PostgreSQL, INTEGER (the rowid) on SQLite.
SERIAL: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

leads: Final = sa.Table(
    "leads",
    metadata,
    sa.Column("lead_id", ID, primary_key=True),
    *[c for c in _canonical(schema.LEADS, "lead_id")],
    sa.Column("attributes", sa.JSON(), nullable=False, default=dict),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Index(None, "account_id"),
)

accounts: Final = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", ID, primary_key=True),
    *_canonical(schema.ACCOUNTS, "account_id"),
    sa.Column("attributes", sa.JSON(), nullable=False, default=dict),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)

# Append-only; `seq` is the order of arrival, `event_id` makes ingest idempotent.
events: Final = sa.Table(
    "events",
    metadata,
    sa.Column("seq", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("event_id", ID, nullable=False, unique=True),
    sa.Column("lead_id", ID, nullable=False),
    *[
        sa.Column(c.name, _TYPES[c.type], nullable=not c.required)
        for c in schema.EVENTS
        if c.name not in ("event_id", "lead_id")
    ],
    # NULL when there are none: most events have none, and parsing '{}' a million times
    # is a tenth of a full rescoring.
    sa.Column("attributes", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Index(None, "lead_id", "ts"),
)

outcomes: Final = sa.Table(
    "outcomes",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("lead_id", ID, nullable=False, index=True),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("ts", sa.DateTime(), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("recorded_at", sa.DateTime(), nullable=False),
    # the dashboard's default cut-off reads the first and last outcome (migration 0004)
    sa.Index(None, "ts"),
)

# Every uploaded model; `published_at` is set each time it goes live.
models: Final = sa.Table(
    "models",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("version", sa.Text(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # draft, published, retired
    sa.Column("uploaded_at", sa.DateTime(), nullable=False),
    sa.Column("published_at", sa.DateTime(), nullable=True),
)

# The current score of each lead; the ledger is recomputed on demand from
# (model_id, as_of), which the deterministic engine reproduces exactly.
scores: Final = sa.Table(
    "scores",
    metadata,
    sa.Column("lead_id", ID, primary_key=True),
    sa.Column("total", sa.Float(), nullable=False),
    sa.Column("fit", sa.Float(), nullable=False),
    sa.Column("behaviour", sa.Float(), nullable=False),
    sa.Column("account", sa.Float(), nullable=False),
    sa.Column("grade", sa.Text()),
    sa.Column("engagement", sa.Text()),
    sa.Column("cell", sa.Text()),
    sa.Column("temperature", sa.Text()),
    sa.Column("stage", sa.Text()),
    sa.Column("queue", sa.Text()),
    sa.Column("sla_hours", sa.Float()),
    sa.Column("priority", sa.Boolean(), nullable=False),
    sa.Column("account_id", ID),
    sa.Column("primary_interest", sa.Text()),
    sa.Column("interests", sa.JSON(), nullable=False),
    # the rules that gave the most points, [{rule, points}], best first (for the sales queue)
    sa.Column("reasons", sa.JSON()),
    sa.Column("model_id", sa.BigInteger(), nullable=False),
    sa.Column("model_version", sa.Text(), nullable=False),
    sa.Column("as_of", sa.DateTime(), nullable=False),
    # the newest event (by arrival) the score has seen: with as_of it decides which of two
    # concurrent computations is current
    sa.Column("events_seq", sa.BigInteger(), nullable=False),
    sa.Index(None, "total"),
    sa.Index(None, "account_id"),
    # the sales queue walks priority and hot leads best first
    sa.Index(None, "priority", "total"),
    sa.Index(None, "temperature", "total"),
)

# The roll-up of each account's lead totals (sum or max, as the model says): one row per
# account, so that a change touches one row instead of every lead of the account.
account_scores: Final = sa.Table(
    "account_scores",
    metadata,
    sa.Column("account_id", ID, primary_key=True),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("leads", sa.Integer(), nullable=False),
)

# One row per change of a lead's score, with what caused it.
score_history: Final = sa.Table(
    "score_history",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("lead_id", ID, nullable=False),
    sa.Column("as_of", sa.DateTime(), nullable=False),
    sa.Column("total", sa.Float(), nullable=False),
    sa.Column("delta", sa.Float(), nullable=False),
    sa.Column("grade", sa.Text()),
    sa.Column("temperature", sa.Text()),
    sa.Column("stage", sa.Text()),
    sa.Column("model_id", sa.BigInteger(), nullable=False),
    sa.Column("model_version", sa.Text(), nullable=False),
    sa.Column("cause", sa.String(20), nullable=False),  # event, lead, account, job, schedule
    sa.Column("cause_id", sa.Text()),
    sa.Index(None, "lead_id", "id"),
)

# Which lead was merged into which (Segment identify with an anonymousId, alias): what is
# still stored under the first id is the same person's, so GDPR export and erasure of the
# second include it. `into_id` is a lead reference too (`info["lead"]`, see `lead_columns`).
lead_merges: Final = sa.Table(
    "lead_merges",
    metadata,
    sa.Column("lead_id", ID, primary_key=True),
    sa.Column("into_id", ID, primary_key=True, info={"lead": True}),
    sa.Column("merged_at", sa.DateTime(), nullable=False),
    sa.Index(None, "into_id"),
)

# Entering or leaving a stage or temperature.
transitions: Final = sa.Table(
    "transitions",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("lead_id", ID, nullable=False),
    sa.Column("field", sa.String(20), nullable=False),  # stage or temperature
    sa.Column("from_value", sa.Text()),
    sa.Column("to_value", sa.Text()),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("model_version", sa.Text(), nullable=False),
    sa.Column("cause", sa.String(20), nullable=False),
    sa.Column("cause_id", sa.Text()),
    sa.Index(None, "lead_id", "id"),
)

# Service level agreements (S19): opened on entering a stage whose route has sla_hours.
sla_tasks: Final = sa.Table(
    "sla_tasks",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("lead_id", ID, nullable=False, index=True),
    sa.Column("stage", sa.Text()),
    sa.Column("queue", sa.Text()),
    sa.Column("cell", sa.Text()),
    sa.Column("sla_hours", sa.Float(), nullable=False),
    sa.Column("opened_at", sa.DateTime(), nullable=False),
    sa.Column("deadline", sa.DateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # open, met, breached, cancelled
    sa.Column("closed_at", sa.DateTime()),
    sa.Column("note", sa.Text()),
    sa.Index(None, "status", "deadline"),
)

# Background work with progress: publishing (retroactive rescoring) and scheduled rescoring.
jobs: Final = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),  # publish, rescore
    sa.Column("model_id", sa.BigInteger()),
    sa.Column("status", sa.String(20), nullable=False),  # queued, running, done, failed
    sa.Column("total", sa.BigInteger(), nullable=False, default=0),
    sa.Column("done", sa.BigInteger(), nullable=False, default=0),
    sa.Column("changed", sa.BigInteger(), nullable=False, default=0),
    sa.Column("as_of", sa.DateTime()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime()),
    sa.Column("error", sa.Text()),
)

# Leads whose events arrived but whose score is not yet recomputed; written in the
# ingest transaction so that a crash between ingest and scoring loses nothing.
dirty_leads: Final = sa.Table(
    "dirty_leads",
    metadata,
    sa.Column("lead_id", ID, primary_key=True),
    # a fresh mark per change: the scorer clears a lead only if nothing arrived meanwhile
    sa.Column("mark", sa.BigInteger(), nullable=False),
    sa.Column("cause", sa.String(20), nullable=False),
    sa.Column("cause_id", sa.Text()),
)

api_keys: Final = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("prefix", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.Text(), nullable=False),  # space-separated: tracking, admin
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("revoked_at", sa.DateTime()),
)

webhooks: Final = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("topics", sa.JSON(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

# The outbox and delivery log in one: written with the change that caused it, sent after.
webhook_deliveries: Final = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.BigInteger(), nullable=False),
    sa.Column("topic", sa.String(40), nullable=False),
    sa.Column("lead_id", ID),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
    sa.Column("last_status", sa.Integer()),
    sa.Column("last_error", sa.Text()),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("delivered_at", sa.DateTime()),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "webhook_id", "id"),
)

# People who sign in to the dashboard; passwords only as scrypt hashes.
dashboard_users: Final = sa.Table(
    "dashboard_users",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text(), nullable=False),
    sa.Column("admin", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)

# One row per signed-in browser: the session cookie carries a random id, the store only its
# SHA-256, so a copy of the database signs nobody in. Signing out deletes the row.
dashboard_sessions: Final = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Index(None, "user_id", "created_at"),
    sa.Index(None, "created_at"),
)

# Reports (backtest, capacity, ...) asked for in the dashboard and run in the background:
# the stored result is the report's HTML, so reading it again never reruns the evaluation.
report_runs: Final = sa.Table(
    "report_runs",
    metadata,
    sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),  # backtest, capacity, channels, ...
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("requested_by", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # queued, running, done, failed
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime()),
    sa.Column("seconds", sa.Float()),  # measured run time, not the service clock's
    sa.Column("summary", sa.Text()),
    sa.Column("result", sa.Text()),
    sa.Column("error", sa.Text()),
    sa.Index(None, "status"),
)

meta: Final = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)


def lead_columns() -> list[sa.Column[Any]]:
    """Every column that holds a lead's id: those named `lead_id`, and those marked
    `info={"lead": True}`. GDPR export and erasure are derived from this list, so a new
    table with a `lead_id` column is covered without naming it anywhere."""
    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if column.name == "lead_id" or column.info.get("lead")
    ]
