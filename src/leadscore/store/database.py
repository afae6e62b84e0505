"""The store: a SQLAlchemy engine on SQLite (the default) or PostgreSQL, migrated by Alembic."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

DEFAULT_URL: Final = "sqlite:///leadscore.db"
URL_VARIABLE: Final = "LEADSCORE_DATABASE_URL"
MIGRATIONS: Final = Path(__file__).parent / "migrations"


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else $LEADSCORE_DATABASE_URL, else ./leadscore.db."""
    url = url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
    # psycopg 3 is the driver we ship; plain postgresql:// URLs mean it.
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# How long a write waits for another process's write lock (a CLI command beside a server).
BUSY_TIMEOUT_MS: Final = 10_000
# The execution option that marks a connection of `Store.write`.
_WRITES: Final = "leadscore_writes"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling skips BEGIN before reads and DDL; turning it off
    # and emitting BEGIN ourselves (see `_sqlite_begin`) makes every transaction real.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync survives a killed process.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Deleted rows are overwritten with zeros, not left in free pages: an erased lead's
    # e-mail must not stay readable in the file (GDPR erasure, see `Store.scrub`).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # SQLAlchemy's recipe for pysqlite transaction control. A write takes the write lock at
    # BEGIN IMMEDIATE, waiting up to the busy timeout while another process holds it; a
    # deferred BEGIN would take it only at the first write, and when another process wrote
    # since this transaction's first read, SQLite fails it at once ("database is locked").
    writes = conn.get_execution_options().get(_WRITES, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class Store:
    """Connections to the service database; this process writes one transaction at a time."""

    def __init__(self, url: str | None = None) -> None:
        self.url = database_url(url)
        self.engine: Engine = sa.create_engine(self.url, future=True, pool_pre_ping=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        # One writer at a time: SQLite has only one anyway (queueing here avoids busy
        # errors), and on PostgreSQL it rules out deadlocks between our own transactions,
        # whose writes are short; reads run in parallel on both.
        self._write_lock = threading.Lock()

    def migrate(self) -> None:
        """Bring the schema to the newest revision."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        # a write: two processes starting at once migrate one after the other
        with self.write() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in a transaction: committed on success, rolled back on any error.

        On SQLite the transaction holds the database's write lock from its start, so writes
        of other processes (`leadscore users`, `leadscore keys` beside a server) queue for
        it instead of failing.
        """
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_WRITES: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading."""
        with self.engine.connect() as conn:
            yield conn

    def scrub(self) -> bool:
        """Leave no deleted bytes in SQLite's write-ahead log: checkpoint it and truncate it.

        With `secure_delete` the database file holds zeros where deleted rows were, but the
        log still holds the pages as they were before. False when readers kept the log busy
        for longer than the busy timeout (the next checkpoint then overwrites it).
        """
        if not self.is_sqlite:
            return True
        with self._write_lock:
            raw = self.engine.raw_connection()
            try:
                cursor = raw.cursor()
                # outside any transaction: a checkpoint cannot run inside one
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy, _frames, _moved = cursor.fetchone() or (1, 0, 0)
                cursor.close()
            finally:
                raw.close()
        return not busy

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def open_store(url: str | None = None) -> Store:
    """A migrated store at `url` (see `database_url`)."""
    store = Store(url)
    store.migrate()
    return store
