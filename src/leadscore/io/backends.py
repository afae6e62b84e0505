"""Canonical tables where the data already lives: a database the batch engine runs in.

`--backend URL` names it: `duckdb` (in memory, the default for files), `duckdb:///path.db`,
`postgres://user@host:port/db` (or `postgresql://`), and Apache Spark: `local[N]` or
`spark://host:port` (needs `pip install leadscore[spark]`). The database (for Spark: its
catalog, or a folder of Parquet files) holds tables named `leads` and `events` and, optionally,
`accounts` and `outcomes`, with the canonical columns (docs/data.md); the engine's expression
runs there and nothing is copied out but the results.
"""

from __future__ import annotations

import atexit
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import ibis

from leadscore.engine.batch import check_tables
from leadscore.errors import DataError, EngineError
from leadscore.io.readers import ibis_table
from leadscore.schema import Dataset

REQUIRED = ("leads", "events")
OPTIONAL = ("accounts", "outcomes")


def describe(url: str) -> str:
    """The URL without its password, to name the backend in messages."""
    return re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)


# One connection per backend for the life of the process (tables read from it stay usable),
# closed when the process ends.
_open: dict[str, Any] = {}
_lock = threading.Lock()


def connect(url: str) -> Any:
    """An Ibis connection to the backend `url` names; a clear error when it cannot be reached."""
    with _lock:
        found = _open.get(url)
        if found is None:
            found = _open[url] = _connect(url)
    return found


@atexit.register
def close_all() -> None:
    """Close every connection `connect` opened."""
    with _lock:
        for con in _open.values():
            con.disconnect()
        _open.clear()


def _connect(url: str) -> Any:
    scheme = url.split(":", 1)[0].lower()
    try:
        if url == "duckdb":
            return ibis.duckdb.connect()
        if scheme == "duckdb":
            return ibis.connect(url)
        if scheme in ("postgres", "postgresql"):
            return ibis.connect("postgres" + url[len(scheme) :])
        if is_spark(url):
            return _spark(url)
    except DataError:
        raise
    except Exception as exc:  # drivers raise their own types; the message is what matters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"backend {describe(url)}: cannot connect: {first}") from None
    raise DataError(
        f"backend {describe(url)}: unknown kind {scheme!r}; expected duckdb, "
        "duckdb:///path.db, postgres://user@host:port/database, local[N] or spark://host:port"
    )


def is_spark(url: str) -> bool:
    """Whether `url` names a Spark master."""
    return url.startswith(("local[", "spark://")) or url == "local"


def _spark(master: str) -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(
            f"backend {master}: Spark needs PySpark: pip install 'leadscore[spark]'"
        ) from None
    local = master.startswith("local")
    if local:
        # local Spark binds to the machine's address unless told otherwise
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName("leadscore")
        .config("spark.sql.session.timeZone", "UTC")  # timestamps are naive UTC
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # our own progress goes to stderr
    )
    if local:
        builder = (
            builder.config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "4")
            # not a spark-warehouse folder in whatever directory the command runs in
            .config("spark.sql.warehouse.dir", str(Path(tempfile.gettempdir()) / "leadscore-spark"))
        )
    return ibis.pyspark.connect(builder.getOrCreate())


def dataset_from(url: str, folder: Path | None = None) -> Dataset:
    """The canonical tables in the backend's database, as a Dataset (nothing is copied).

    With `folder` (Spark), the tables are its `leads.parquet`, `events.parquet`, ... files.
    """
    con = connect(url)
    if folder is not None:
        _read_parquet(con, url, Path(folder))
    present = _table_names(con)
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise DataError(
            f"backend {describe(url)}: no table {', '.join(repr(m) for m in missing)}; "
            f"it has: {', '.join(sorted(present)) or 'no tables'}"
        )
    read = (lambda name: ibis_table(con, name)) if con.name == "duckdb" else con.table
    tables = {name: read(name) for name in (*REQUIRED, *OPTIONAL) if name in present}
    data = Dataset(
        leads=tables["leads"],
        events=tables["events"],
        accounts=tables.get("accounts"),
        outcomes=tables.get("outcomes"),
    )
    try:
        check_tables(data)  # tables in a database are not validated on the way in
    except EngineError as exc:
        raise DataError(f"backend {describe(url)}: {exc}") from None
    return data


def _table_names(con: Any) -> set[str]:
    if con.name == "duckdb":
        # Ibis 12's list_tables calls a method DuckDB 2.0 no longer has
        rows = con.raw_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(row[0]) for row in rows}
    return set(con.list_tables())


def _read_parquet(con: Any, url: str, folder: Path) -> None:
    if not is_spark(url):
        raise DataError(
            f"backend {describe(url)}: reads its own tables; --data with a backend is for Spark"
        )
    for name in (*REQUIRED, *OPTIONAL):
        path = folder / f"{name}.parquet"
        if path.exists():
            con.read_parquet(str(path), table_name=name)
        elif name in REQUIRED:
            raise DataError(f"backend {url}: {path} is missing; Spark reads Parquet files")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def check_table_name(name: str) -> None:
    """Refuse a name that is not `table` or `schema.table` of letters, digits and underscores."""
    if not _NAME.fullmatch(name):
        raise DataError(
            f"table name {name!r}: expected letters, digits and underscores, "
            "optionally after a schema (analytics.lead_scores)"
        )


def write_back(table: Any, name: str) -> None:
    """Write `table` into the database it is computed in as table `name` (`schema.table` for
    another schema or database), replacing any table of that name in one step."""
    check_table_name(name)
    con = table.get_backend()
    database, _, bare = name.rpartition(".")
    try:
        if con.name == "duckdb":
            # Ibis 12's create_table(overwrite=True) emits SQL DuckDB 2.0 rejects; CTAS does the
            # same in one statement. In-memory tables the expression reads are registered first.
            con._run_pre_execute_hooks(table)
            target = ".".join(f'"{part}"' for part in name.split("."))
            con.raw_sql(f"CREATE OR REPLACE TABLE {target} AS {con.compile(table)}")
        elif con.name == "pyspark":
            # the cluster's default table format (Delta on Databricks, Parquet elsewhere)
            fmt = con._session.conf.get("spark.sql.sources.default", "parquet")
            con.create_table(bare, table, database=database or None, overwrite=True, format=fmt)
        elif con.name == "postgres":
            _replace_in_postgres(con, table, database, bare)
        else:
            con.create_table(bare, table, database=database or None, overwrite=True)
    except Exception as exc:  # drivers raise their own types; the message is what matters
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"backend {con.name}: cannot write table {name!r}: {first}") from None


def _replace_in_postgres(con: Any, table: Any, schema: str, name: str) -> None:
    # Ibis 12 names a schema as a catalog when it replaces a table; this is its plan (build
    # beside, then swap in one transaction, so readers never see a half-written table) in SQL.
    con._run_pre_execute_hooks(table)
    where = f'"{schema}".' if schema else ""
    temp = f"{name}__leadscore_new"
    with con.con.cursor() as cursor, con.con.transaction():
        cursor.execute(f'DROP TABLE IF EXISTS {where}"{temp}"')
        cursor.execute(f'CREATE TABLE {where}"{temp}" AS {con.compile(table)}')
        cursor.execute(f'DROP TABLE IF EXISTS {where}"{name}"')
        cursor.execute(f'ALTER TABLE {where}"{temp}" RENAME TO "{name}"')
