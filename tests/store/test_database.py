"""The store's database layer on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from leadscore.store import database
from leadscore.store.tables import meta, metadata


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _revision(store: database.Store) -> str | None:
    with store.read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _tables(store: database.Store) -> set[str]:
    return set(sa.inspect(store.engine).get_table_names())


def test_open_store_migrates_an_empty_database_to_head(database_url: str) -> None:
    store = database.open_store(database_url)
    try:
        assert store.is_sqlite == database_url.startswith("sqlite")
        assert _revision(store) == _head()
        assert set(metadata.tables) <= _tables(store)
    finally:
        store.close()


def test_migrations_match_the_tables(database_url: str) -> None:
    """The newest revision builds exactly `tables.metadata`: no change lacks a migration."""
    store = database.open_store(database_url)
    try:
        with store.read() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        store.close()


def test_open_store_twice_is_harmless(database_url: str) -> None:
    store = database.open_store(database_url)
    try:
        with store.write() as conn:
            conn.execute(sa.insert(meta).values(key="kept", value="yes"))
        tables = _tables(store)
    finally:
        store.close()

    store = database.open_store(database_url)
    try:
        assert _revision(store) == _head()
        assert _tables(store) == tables
        with store.read() as conn:
            assert conn.execute(sa.select(meta.c.value).where(meta.c.key == "kept")).scalar() == (
                "yes"
            )
        # Migrating an open, up-to-date store again is a no-op as well.
        store.migrate()
        assert _revision(store) == _head()
    finally:
        store.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_mode(database_url: str) -> None:
    store = database.open_store(database_url)
    try:
        with store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        store.close()


def test_a_failed_write_leaves_nothing_written(database_url: str) -> None:
    store = database.open_store(database_url)
    try:
        with pytest.raises(RuntimeError, match="boom"), store.write() as conn:
            conn.execute(sa.insert(meta).values(key="lost", value="no"))
            assert conn.execute(sa.select(sa.func.count()).select_from(meta)).scalar() == 1
            raise RuntimeError("boom")
        with store.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(meta)).scalar() == 0

        # The store is still usable, and a successful write is committed.
        with store.write() as conn:
            conn.execute(sa.insert(meta).values(key="kept", value="yes"))
        with store.read() as conn:
            assert conn.execute(sa.select(meta.c.key)).scalars().all() == ["kept"]
    finally:
        store.close()


def test_open_store_reads_the_url_from_the_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(database.URL_VARIABLE, database_url)
    store = database.open_store()
    try:
        assert store.url == database.database_url(database_url)
        assert set(metadata.tables) <= _tables(store)
    finally:
        store.close()


def test_database_url_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(database.URL_VARIABLE, raising=False)
    assert database.database_url() == database.DEFAULT_URL == "sqlite:///leadscore.db"
    assert database.database_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert (
        database.database_url("postgresql://u:p@db:5432/leads")
        == "postgresql+psycopg://u:p@db:5432/leads"
    )
    assert database.database_url("postgres://u@db/leads") == "postgresql+psycopg://u@db/leads"
    assert (
        database.database_url("postgresql+psycopg://u@db/leads")
        == "postgresql+psycopg://u@db/leads"
    )

    monkeypatch.setenv("LEADSCORE_DATABASE_URL", "postgresql://env@db/leads")
    assert database.database_url() == "postgresql+psycopg://env@db/leads"
    # An explicit URL wins over the environment.
    assert database.database_url("sqlite:///other.db") == "sqlite:///other.db"
