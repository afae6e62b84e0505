"""Suite-wide fixtures: a real PostgreSQL server started for the session, and database URLs.

`database_url` runs a test once on a SQLite file and once on a fresh PostgreSQL database.
The server is started only when a test asks for the PostgreSQL case, once per session, on
127.0.0.1 and a free port, with its data in a temporary directory removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgserver import PostgresUnavailable, postgres_server


@pytest.fixture(scope="session", name="postgres_server")
def postgres_server_fixture() -> Iterator[str]:
    """A PostgreSQL server for this session; yields `postgresql://postgres@127.0.0.1:PORT`."""
    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh database on the session server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/leadscore.db"
        return

    server: str = request.getfixturevalue("postgres_server")
    name = f"leadscore_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
