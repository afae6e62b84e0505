"""GDPR export and erasure are derived from the schema: a table cannot escape them.

Every table with a lead column gets a row naming the lead (built from its columns, so a table
added later is covered without changing this test); the export lists each, erasure deletes
each, the counts agree, and merged leads and reports that name the lead go with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore.store import database, records, tables

NOW = datetime(2026, 3, 2, 9, 0)
# Id columns that hold something other than a lead's id. A new `*_id` column must be named
# here or be a lead column (`tables.lead_columns`): nobody adds a lead reference unnoticed.
NOT_LEADS = {
    "account_id",
    "event_id",
    "cause_id",
    "webhook_id",
    "model_id",
    "user_id",
    "id_hash",
}


@pytest.fixture
def store(database_url: str) -> Iterator[database.Store]:
    opened = database.open_store(database_url)
    yield opened
    opened.close()


_serial = itertools.count(1)


def _value(column: sa.Column[Any]) -> Any:
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer | sa.Float | sa.Numeric):
        return next(_serial)
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.JSON):
        return {}
    return f"x{next(_serial)}"


def _row(table: sa.Table, lead_id: str) -> dict[str, Any]:
    """A row of `table` whose every lead column names `lead_id`, other columns filled in."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name == "lead_id" or column.info.get("lead"):
            row[column.name] = lead_id
        elif column.autoincrement is True or (
            column.primary_key and isinstance(column.type, sa.Integer)
        ):
            continue
        elif not column.nullable or column.primary_key:
            row[column.name] = _value(column)
    return row


def test_every_id_column_is_a_lead_column_or_known_not_to_be_one() -> None:
    leads = {(c.table.name, c.name) for c in tables.lead_columns()}
    for table in tables.metadata.sorted_tables:
        for column in table.columns:
            if (table.name, column.name) in leads:
                continue
            if not isinstance(column.type, sa.String):
                continue  # ids are text (a count of leads is no reference)
            assert "lead" not in column.name, f"{table.name}.{column.name} names a lead"
            if column.name.endswith("_id"):
                assert column.name in NOT_LEADS, (
                    f"{table.name}.{column.name}: a lead reference? mark it info={{'lead': True}}"
                    " (then export and erasure cover it), or add it to NOT_LEADS"
                )
    assert ("lead_merges", "into_id") in leads and ("leads", "lead_id") in leads


def test_a_row_naming_the_lead_in_any_table_is_exported_and_erased(
    store: database.Store,
) -> None:
    referring = sorted({c.table.name for c in tables.lead_columns()})
    with store.write() as conn:
        for name in referring:
            table = tables.metadata.tables[name]
            conn.execute(table.insert(), [_row(table, "ann"), _row(table, "bob")])
    with store.read() as conn:
        data = records.lead_data(conn, "ann")
    exported = {("leads" if k == "lead" else k): len(rows) for k, rows in data.items()}
    # one row per table, and the leads merged into ann: the lead_merges row says x* into ann
    assert exported == {**{name: 1 for name in referring}, "report_runs": 0, "jobs": 0}
    with store.write() as conn:
        assert records.erase_lead(conn, "ann") == exported
    with store.read() as conn:
        for column in tables.lead_columns():
            rows = conn.execute(sa.select(column).where(column == "ann")).all()
            assert rows == [], f"{column.table.name}.{column.name}"
        bob = records.lead_data(conn, "bob")
    assert all(len(bob["lead" if n == "leads" else n]) == 1 for n in referring)


def test_merged_leads_and_reports_naming_the_lead_go_with_it(store: database.Store) -> None:
    runs = tables.report_runs
    report = {
        "kind": "sample",
        "params": {},
        "requested_by": "admin",
        "status": "done",
        "created_at": NOW,
    }
    with store.write() as conn:
        for lead_id, email in (("u1", "u1@example.com"), ("a1", "a&b@example.com"), ("a2", None)):
            conn.execute(
                tables.leads.insert(),
                {"lead_id": lead_id, "email": email, "attributes": {}, "updated_at": NOW},
            )
        # a2 went into a1, a1 into u1: u1's family is all three (and a cycle is cut)
        records.record_merge(conn, "a1", "u1", NOW)
        records.record_merge(conn, "a1", "u1", NOW)  # identify repeats it: one row
        records.record_merge(conn, "a2", "a1", NOW)
        records.record_merge(conn, "u1", "a2", NOW)
        conn.execute(
            runs.insert(),
            [
                {**report, "result": "<td>u1</td>"},
                {**report, "result": "<td>u10</td><td>u1x</td>"},  # other leads
                {**report, "result": "mail: a&amp;b@example.com"},  # a1's e-mail, in HTML
                {**report, "params": {"lead": "a2"}, "result": None},
                {**report, "result": "<p>AUC 0.81</p>"},
            ],
        )
        job = {"kind": "publish", "status": "done", "total": 3, "done": 3, "created_at": NOW}
        conn.execute(
            tables.jobs.insert(),
            [
                {**job, "error": "2 leads could not be scored (a2: seats 'x'; u10: seats 'y')"},
                {**job, "error": "1 leads could not be scored (u10: seats 'y')"},
            ],
        )
    with store.read() as conn:
        assert sorted(records.merged_family(conn, "u1")) == ["a1", "a2", "u1"]
        assert records.merged_family(conn, "nobody") == ["nobody"]
        data = records.lead_data(conn, "u1")
    assert sorted(r["lead_id"] for r in data["lead"]) == ["a1", "a2", "u1"]
    assert len(data["lead_merges"]) == 3
    assert sorted(r["id"] for r in data["report_runs"]) == [1, 3, 4]
    assert [r["id"] for r in data["jobs"]] == [1]
    with store.write() as conn:
        counts = records.erase_lead(conn, "u1")
    assert counts["leads"] == 3 and counts["lead_merges"] == 3 and counts["report_runs"] == 3
    assert counts["jobs"] == 1
    with store.read() as conn:
        assert conn.execute(sa.select(runs.c.id).order_by(runs.c.id)).scalars().all() == [2, 5]
        errors = conn.execute(sa.select(tables.jobs.c.error).order_by(tables.jobs.c.id))
        # the job stays (publishing history) without the lead; other leads keep their words
        assert errors.scalars().all() == [
            "2 leads could not be scored ((erased lead): seats 'x'; u10: seats 'y')",
            "1 leads could not be scored (u10: seats 'y')",
        ]
        assert conn.execute(sa.select(tables.leads.c.lead_id)).all() == []
