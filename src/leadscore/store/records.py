"""Reading and writing leads, accounts, events and outcomes in the store.

Rows handed in are already validated (the service validates request bodies); rows handed out
are engine records: canonical columns plus custom attributes as ordinary fields.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from leadscore import schema
from leadscore.store import tables as t

Record = dict[str, Any]

LEAD_FIELDS: Final = tuple(c.name for c in schema.LEADS)
ACCOUNT_FIELDS: Final = tuple(c.name for c in schema.ACCOUNTS)
EVENT_FIELDS: Final = tuple(c.name for c in schema.EVENTS)
# SQLite allows 32,766 bound parameters; chunks stay far below it on every backend.
CHUNK: Final = 900

# Dirty marks only need to differ between changes of one lead; a counter seeded from the
# clock keeps them increasing across restarts too.
_marks = itertools.count(time.time_ns() // 1000)


def among(conn: Connection, column: Any, values: Sequence[Any]) -> Any:
    """`column IN values`, as `= ANY(array)` on PostgreSQL.

    One array parameter keeps the statement's text the same for any number of values, so
    the driver parses it once, not once per request.
    """
    if conn.dialect.name == "postgresql":
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(values)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(conn: Connection, table: sa.Table) -> Any:
    # Upserts are dialect-specific in SQLAlchemy; both dialects spell them alike.
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# Building an upsert (its `excluded` alias copies every column) costs more than running it
# on the hot path, so each is built once per dialect.
_statements: dict[tuple[str, str, str], Any] = {}


def upsert(conn: Connection, table: sa.Table, key: str) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE of every other column, built once per dialect."""
    cache_key = (conn.dialect.name, table.name, "upsert")
    stmt = _statements.get(cache_key)
    if stmt is None:
        stmt = _insert(conn, table)
        columns = [c.name for c in table.columns if c.name != key]
        stmt = stmt.on_conflict_do_update(
            index_elements=[key], set_={c: stmt.excluded[c] for c in columns}
        )
        _statements[cache_key] = stmt
    return stmt


def _insert_events(conn: Connection) -> Any:
    cache_key = (conn.dialect.name, "events", "insert")
    stmt = _statements.get(cache_key)
    if stmt is None:
        stmt = _insert(conn, t.events).on_conflict_do_nothing(index_elements=["event_id"])
        _statements[cache_key] = stmt
    return stmt


def _record(row: Any, fields: Sequence[str]) -> Record:
    record = {name: row[name] for name in fields}
    for name, value in (row["attributes"] or {}).items():
        record.setdefault(name, value)
    return record


# -- leads and accounts ---------------------------------------------------------------------------


def _merge(
    table: sa.Table,
    key: str,
    fields: Sequence[str],
    existing: Mapping[str, Any] | None,
    update: Mapping[str, Any],
    now: datetime,
) -> Record:
    # Given fields replace stored ones; attributes merge key by key (None removes one).
    row: Record = {name: None for name in fields}
    attributes: dict[str, Any] = {}
    if existing is not None:
        row.update({name: existing[name] for name in fields})
        attributes = dict(existing["attributes"] or {})
    for name, value in update.items():
        if name == "attributes":
            for attr, attr_value in (value or {}).items():
                if attr_value is None:
                    attributes.pop(attr, None)
                else:
                    attributes[attr] = attr_value
        elif name in row:
            row[name] = value
    row[key] = update[key]
    row["attributes"] = attributes
    row["updated_at"] = now
    return row


def _upsert(
    conn: Connection,
    table: sa.Table,
    key: str,
    fields: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    now: datetime,
) -> dict[str, Record | None]:
    """Merge `rows` into `table`; returns each key's row as it was before (None if new)."""
    merged: dict[str, Record] = {}
    before: dict[str, Record | None] = {}
    for part in chunks([r[key] for r in rows]):
        for r in conn.execute(sa.select(table).where(among(conn, table.c[key], part))).mappings():
            before[r[key]] = dict(r)
    for update in rows:
        ident = update[key]
        previous = merged.get(ident) or before.get(ident)
        merged[ident] = _merge(table, key, fields, previous, update, now)
        before.setdefault(ident, None)
    if merged:
        # Rows in key order: concurrent writers then lock rows in the same order and
        # cannot deadlock (PostgreSQL).
        conn.execute(upsert(conn, table, key), [merged[k] for k in sorted(merged)])
    return before


def upsert_leads(
    conn: Connection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Record | None]:
    """Insert or merge leads; returns each lead's previous row (None if new)."""
    return _upsert(conn, t.leads, "lead_id", LEAD_FIELDS, rows, now)


def upsert_accounts(
    conn: Connection, rows: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Record | None]:
    """Insert or merge accounts; returns each account's previous row (None if new)."""
    return _upsert(conn, t.accounts, "account_id", ACCOUNT_FIELDS, rows, now)


def ensure_leads(conn: Connection, lead_ids: Iterable[str], now: datetime) -> list[str]:
    """Create bare leads for ids not yet known (tracking SDKs send events before identify)."""
    wanted = sorted(set(lead_ids))
    known = existing_ids(conn, t.leads, "lead_id", wanted)
    new = [i for i in wanted if i not in known]
    if new:
        # Another transaction may create the same lead meanwhile (PostgreSQL runs them side by
        # side): that lead is as good as ours, not an error.
        stmt = _insert(conn, t.leads).on_conflict_do_nothing(index_elements=["lead_id"])
        conn.execute(stmt, [{"lead_id": i, "attributes": {}, "updated_at": now} for i in new])
    return new


def existing_ids(conn: Connection, table: sa.Table, key: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` exist in `table`."""
    found: set[str] = set()
    for part in chunks(list(ids)):
        found.update(
            conn.execute(sa.select(table.c[key]).where(among(conn, table.c[key], part))).scalars()
        )
    return found


def get_lead(conn: Connection, lead_id: str) -> Record | None:
    """One lead as stored (canonical fields and `attributes`), or None."""
    row = conn.execute(sa.select(t.leads).where(t.leads.c.lead_id == lead_id)).mappings().first()
    return dict(row) if row is not None else None


def get_account(conn: Connection, account_id: str) -> Record | None:
    """One account as stored, or None."""
    row = (
        conn.execute(sa.select(t.accounts).where(t.accounts.c.account_id == account_id))
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def lead_records(conn: Connection, lead_ids: Sequence[str]) -> list[Record]:
    """Engine records of these leads (unknown ids are left out)."""
    out: list[Record] = []
    for part in chunks(list(lead_ids)):
        rows = conn.execute(
            sa.select(t.leads).where(among(conn, t.leads.c.lead_id, part))
        ).mappings()
        out.extend(_record(r, LEAD_FIELDS) for r in rows)
    return out


def account_records(conn: Connection, account_ids: Iterable[str]) -> list[Record]:
    """Engine records of these accounts."""
    out: list[Record] = []
    for part in chunks(sorted(set(account_ids))):
        rows = conn.execute(
            sa.select(t.accounts).where(among(conn, t.accounts.c.account_id, part))
        ).mappings()
        out.extend(_record(r, ACCOUNT_FIELDS) for r in rows)
    return out


def account_lead_ids(conn: Connection, account_ids: Iterable[str]) -> list[str]:
    """Ids of every lead of these accounts."""
    out: list[str] = []
    for part in chunks(sorted(set(account_ids))):
        out.extend(
            conn.execute(
                sa.select(t.leads.c.lead_id).where(among(conn, t.leads.c.account_id, part))
            ).scalars()
        )
    return out


_EVENT_SELECT: Final = [
    *(t.events.c[name] for name in EVENT_FIELDS),
    t.events.c.attributes,
    t.events.c.seq,
]


def event_records(
    conn: Connection,
    lead_ids: Sequence[str],
    before: datetime | None = None,
    seqs: dict[str, int] | None = None,
) -> list[Record]:
    """Engine records of these leads' events (only those before `before` when given).

    `seqs` receives each lead's newest arrival sequence number among them.
    """
    out: list[Record] = []
    for part in chunks(list(lead_ids)):
        query = sa.select(*_EVENT_SELECT).where(among(conn, t.events.c.lead_id, part))
        if before is not None:
            query = query.where(t.events.c.ts < before)
        for row in conn.execute(query):
            record = dict(zip(EVENT_FIELDS, row, strict=False))
            if seqs is not None:
                lead, seq = record["lead_id"], row[-1]
                if seq > seqs.get(lead, 0):
                    seqs[lead] = seq
            attributes = row[-2]
            if attributes:
                for name, value in attributes.items():
                    record.setdefault(name, value)
            out.append(record)
    return out


# -- events -------------------------------------------------------------------------------------


@dataclass
class Ingested:
    """What an ingest did: event ids accepted, and those already stored (duplicates)."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]], now: datetime) -> Ingested:
    """Append events; an event id already stored (or repeated in `rows`) counts once."""
    result = Ingested()
    if not rows:
        return result
    seen = existing_ids(conn, t.events, "event_id", [str(r["event_id"]) for r in rows])
    payload = []
    leads: dict[str, None] = {}
    for row in rows:
        event_id = row["event_id"]
        if event_id in seen:
            result.duplicates.append(event_id)
            continue
        seen.add(event_id)
        result.accepted.append(event_id)
        leads[row["lead_id"]] = None
        record = {name: row.get(name) for name in EVENT_FIELDS}
        record["attributes"] = row.get("attributes") or None
        record["received_at"] = now
        payload.append(record)
    # Without RETURNING both drivers run a plain executemany of one cached statement.
    # ON CONFLICT keeps a second writer (another process) from failing the batch.
    payload.sort(key=lambda r: str(r["event_id"]))  # one lock order for all writers
    for part in chunks(payload, 1000):
        conn.execute(_insert_events(conn), list(part))
    result.lead_ids = list(leads)
    return result


def mark_dirty(
    conn: Connection,
    lead_ids: Iterable[str],
    cause: str,
    cause_id: str | None = None,
    *,
    cause_ids: Mapping[str, str | None] | None = None,
    events_moved: bool = False,
) -> None:
    """Queue leads for rescoring, in the caller's transaction (so a crash loses nothing).

    `cause_ids` gives a lead its own cause id (its newest event), else `cause_id` applies.
    `events_moved` says events left these leads (a merge): their stored scores then forget
    which events they saw, so that a score with fewer events may replace them.
    """
    ids = cause_ids or {}
    rows = [
        {"lead_id": i, "mark": next(_marks), "cause": cause, "cause_id": ids.get(i, cause_id)}
        for i in sorted(set(lead_ids))  # one lock order for all writers
    ]
    if not rows:
        return
    if events_moved:
        conn.execute(
            t.scores.update().where(t.scores.c.lead_id == sa.bindparam("l")).values(events_seq=0),
            [{"l": r["lead_id"]} for r in rows],
        )
    stmt = upsert(conn, t.dirty_leads, "lead_id")
    for part in chunks(rows, 500):
        conn.execute(stmt, list(part))


def dirty(
    conn: Connection, limit: int, lead_ids: Sequence[str] | None = None
) -> list[tuple[str, int, str, str | None]]:
    """Queued leads (all, or those of `lead_ids`) as (lead_id, mark, cause, cause_id)."""
    d = t.dirty_leads
    query = sa.select(d.c.lead_id, d.c.mark, d.c.cause, d.c.cause_id)
    if lead_ids is None:
        return [(r[0], r[1], r[2], r[3]) for r in conn.execute(query.limit(limit))]
    out: list[tuple[str, int, str, str | None]] = []
    for part in chunks(list(lead_ids)):
        rows = conn.execute(query.where(among(conn, d.c.lead_id, part)))
        out.extend((r[0], r[1], r[2], r[3]) for r in rows)
    return out


def clear_dirty(conn: Connection, marks: Sequence[tuple[str, int]]) -> None:
    """Forget dirty leads whose mark is unchanged (newer changes stay queued)."""
    if marks:
        d = t.dirty_leads
        conn.execute(
            d.delete().where(d.c.lead_id == sa.bindparam("l"), d.c.mark == sa.bindparam("m")),
            [{"l": lead, "m": mark} for lead, mark in sorted(marks)],
        )


# -- scores -------------------------------------------------------------------------------------


def score_of(conn: Connection, lead_id: str) -> Record | None:
    """A lead's stored score with its account's roll-up (`account_score`), or None."""
    s, a = t.scores, t.account_scores
    row = (
        conn.execute(
            sa.select(s, a.c.score.label("account_score"))
            .select_from(s.outerjoin(a, a.c.account_id == s.c.account_id))
            .where(s.c.lead_id == lead_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


# -- outcomes -----------------------------------------------------------------------------------


def add_outcome(conn: Connection, row: Mapping[str, Any], now: datetime) -> int:
    """Record won/lost for a lead; returns the outcome's id."""
    result = conn.execute(
        t.outcomes.insert().returning(t.outcomes.c.id),
        {**row, "recorded_at": now},
    )
    return int(result.scalar_one())


# -- merges, GDPR access and erasure --------------------------------------------------------------


def record_merge(conn: Connection, source: str, target: str, now: datetime) -> None:
    """Remember that `source` was merged into `target` (once per pair)."""
    stmt = _insert(conn, t.lead_merges).on_conflict_do_nothing(
        index_elements=["lead_id", "into_id"]
    )
    conn.execute(stmt, {"lead_id": source, "into_id": target, "merged_at": now})


def merged_family(conn: Connection, lead_id: str) -> list[str]:
    """The lead and every lead merged into it, directly or through others (cycles cut)."""
    m = t.lead_merges
    family = [lead_id]
    seen = {lead_id}
    frontier = [lead_id]
    while frontier:
        found: list[str] = []
        for part in chunks(frontier):
            found.extend(
                conn.execute(sa.select(m.c.lead_id).where(among(conn, m.c.into_id, part))).scalars()
            )
        frontier = sorted(set(found) - seen)
        seen.update(frontier)
        family.extend(frontier)
    return family


def _lead_tables() -> list[tuple[sa.Table, list[sa.Column[Any]]]]:
    by_table: dict[str, tuple[sa.Table, list[sa.Column[Any]]]] = {}
    for column in t.lead_columns():
        table = column.table
        assert isinstance(table, sa.Table)
        by_table.setdefault(table.name, (table, []))[1].append(column)
    # leads last: erasure deletes what refers to a lead before the lead
    return sorted(by_table.values(), key=lambda tc: (tc[0] is t.leads, tc[0].name))


def _naming(conn: Connection, columns: Sequence[sa.Column[Any]], ids: Sequence[str]) -> Any:
    return sa.or_(*(among(conn, c, ids) for c in columns))


# Report text outside a lead's id: neither a letter, digit or underscore (so that L1 is not
# found in L10), on both sides.
_OUTSIDE = r"[^\w]"


def _spellings(value: str) -> set[str]:
    # how a stored report may spell a value: as is, in HTML, in JSON, in a URL
    return {
        value,
        html.escape(value),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        urllib.parse.quote(value, safe=""),
    }


@dataclass(frozen=True)
class _Naming:
    """Spellings of a lead's id and e-mail address, found in free text as whole words."""

    spellings: tuple[str, ...]

    @classmethod
    def of(cls, values: Iterable[str]) -> _Naming:
        return cls(tuple(sorted({s for v in values if v for s in _spellings(v)}, key=len)[::-1]))

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile(
            "|".join(f"(?:^|(?<={_OUTSIDE})){re.escape(s)}(?=$|{_OUTSIDE})" for s in self.spellings)
        )

    def rows(self, conn: Connection, key: Any, texts: Sequence[Any]) -> list[int]:
        """Keys of the rows where one of `texts` names the lead."""
        if not self.spellings:
            return []
        # the database finds candidates; the whole-word check runs here, on those few
        candidates = sa.or_(
            *(text.contains(s, autoescape=True) for s in self.spellings for text in texts)
        )
        pattern = self.pattern
        found: list[int] = []
        for row in conn.execute(sa.select(key, *texts).where(candidates)):
            if any(text is not None and pattern.search(str(text)) for text in row[1:]):
                found.append(int(row[0]))
        return found


# Free text that may name a lead without a lead column. A stored report run is deleted
# whole (run it again); a job's error (the leads it could not score) keeps its other words
# and loses the lead's.
_REPORT_TEXTS: Final = (
    sa.cast(t.report_runs.c.params, sa.Text),
    t.report_runs.c.summary,
    t.report_runs.c.result,
    t.report_runs.c.error,
)
ERASED: Final = "(erased lead)"


def reports_naming(conn: Connection, values: Iterable[str]) -> list[int]:
    """Ids of stored report runs whose parameters, summary, result or error name one of
    `values` (lead ids, e-mail addresses) as a whole word."""
    return _Naming.of(values).rows(conn, t.report_runs.c.id, _REPORT_TEXTS)


def jobs_naming(conn: Connection, values: Iterable[str]) -> list[int]:
    """Ids of jobs whose error names one of `values` as a whole word."""
    return _Naming.of(values).rows(conn, t.jobs.c.id, (t.jobs.c.error,))


def _redact_jobs(conn: Connection, job_ids: Sequence[int], values: Iterable[str]) -> int:
    pattern = _Naming.of(values).pattern
    jobs = t.jobs
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.error).where(among(conn, jobs.c.id, job_ids)))
    changed = [{"i": i, "e": pattern.sub(ERASED, error)} for i, error in rows if error]
    if changed:
        conn.execute(
            jobs.update().where(jobs.c.id == sa.bindparam("i")).values(error=sa.bindparam("e")),
            changed,
        )
    return len(changed)


def _by_ids(conn: Connection, table: sa.Table, ids: Sequence[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    query = sa.select(table).where(among(conn, table.c.id, ids)).order_by(table.c.id)
    return [dict(r) for r in conn.execute(query).mappings()]


def _identifying(conn: Connection, ids: Sequence[str]) -> list[str]:
    # what a report may name a lead by: its id and its e-mail address
    emails = conn.execute(
        sa.select(t.leads.c.email).where(among(conn, t.leads.c.lead_id, ids))
    ).scalars()
    return [*ids, *(e for e in emails if e)]


def lead_data(conn: Connection, lead_id: str) -> dict[str, list[dict[str, Any]]]:
    """Everything stored about one lead, table by table (GDPR access).

    The lead's own rows in every table that refers to a lead (`tables.lead_columns`), the
    rows of the leads merged into it, and the stored reports that name it: exactly what
    `erase_lead` deletes. The leads table's rows are under "lead".
    """
    ids = merged_family(conn, lead_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for table, columns in _lead_tables():
        query = sa.select(table).where(_naming(conn, columns, ids))
        order = [c for c in table.primary_key.columns]
        rows = [dict(r) for r in conn.execute(query.order_by(*order)).mappings()]
        out["lead" if table is t.leads else table.name] = rows
    names = _identifying(conn, ids)
    out[t.report_runs.name] = _by_ids(conn, t.report_runs, reports_naming(conn, names))
    out[t.jobs.name] = _by_ids(conn, t.jobs, jobs_naming(conn, names))
    return dict(sorted(out.items(), key=lambda kv: kv[0] != "lead"))


def erase_lead(conn: Connection, lead_id: str) -> dict[str, int]:
    """Delete a lead and everything stored about it (GDPR erasure); counts per table.

    What `lead_data` lists: every row that refers to the lead or a lead merged into it,
    every stored report that names one of them (deleted whole: run it again), and every job
    whose error names one (the lead's id and e-mail in it replaced by "(erased lead)").
    """
    ids = merged_family(conn, lead_id)
    names = _identifying(conn, ids)  # before the leads' rows, which hold the e-mail, go
    runs = reports_naming(conn, names)
    jobs = jobs_naming(conn, names)
    counts: dict[str, int] = {}
    for table, columns in _lead_tables():
        deleted = conn.execute(table.delete().where(_naming(conn, columns, ids)))
        counts[table.name] = deleted.rowcount
    report_runs = t.report_runs
    counts[report_runs.name] = (
        conn.execute(report_runs.delete().where(among(conn, report_runs.c.id, runs))).rowcount
        if runs
        else 0
    )
    counts[t.jobs.name] = _redact_jobs(conn, jobs, names) if jobs else 0
    return counts
