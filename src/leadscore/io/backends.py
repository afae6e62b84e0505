"""Canonical tables where the data already lives: a database the batch engine runs in.

`--backend URL` names it: `duckdb` (in memory, the default for files), `duckdb:///path.db`,
`postgres://user@host:port/db` (or `postgresql://`), and Apache Spark: `local[N]`,
`spark://host:port`, or `spark` for the session the process runs in (spark-submit, a
Databricks or EMR job); Spark URLs take `?database=NAME` (the catalog database with the tables)
and `?catalog=hive` (a Hive metastore; needs `pip install leadscore[spark]`). The database (for
Spark: its catalog, or a folder of Parquet files or Delta tables) holds tables named `leads` and
`events` and, optionally, `accounts` and `outcomes`, with the canonical columns (docs/data.md);
the engine's expression runs there and nothing is copied out but the results.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import ibis

from leadscore.engine.batch import check_tables
from leadscore.errors import DataError, EngineError
from leadscore.io.readers import ibis_table
from leadscore.schema import Dataset
from leadscore.timestamps import MAX as MAX_TIMESTAMP
from leadscore.timestamps import MIN as MIN_TIMESTAMP

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
            return _in_utc(ibis.duckdb.connect())
        if scheme == "duckdb":
            return _in_utc(ibis.connect(url))
        if scheme in ("postgres", "postgresql"):
            return _in_utc(ibis.connect("postgres" + url[len(scheme) :]))
        if is_spark(url):
            return _spark(url)
    except DataError:
        raise
    except Exception as exc:  # drivers raise their own types; the message is what matters
        first = _first_line(exc)
        raise DataError(f"backend {describe(url)}: cannot connect: {first}") from None
    raise DataError(
        f"backend {describe(url)}: unknown kind {scheme!r}; expected duckdb, "
        "duckdb:///path.db, postgres://user@host:port/database, local[N], spark://host:port "
        "or spark"
    )


def _in_utc(con: Any) -> Any:
    """The connection with its session in UTC: a time with a zone (TIMESTAMPTZ) becomes the
    engine's naive UTC time there, not the wall time of the server's or machine's zone."""
    if con.name == "duckdb":
        con.raw_sql("SET TimeZone = 'UTC'")
    else:
        con.raw_sql("SET TIME ZONE 'UTC'").close()  # a cursor, with nothing to fetch
    return con


def _first_line(exc: Exception) -> str:
    """The first line of a driver's error (they run to pages), or its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_spark(url: str) -> bool:
    """Whether `url` names Spark: a master (local[N], spark://...) or `spark`."""
    master = url.split("?", 1)[0]
    return master.startswith(("local[", "spark://")) or master in ("local", "spark")


_SPARK_OPTIONS = {"database", "catalog"}


def spark_options(url: str) -> tuple[str, dict[str, str]]:
    """The master of a Spark URL and its options (`?database=crm&catalog=hive`)."""
    master, _, query = url.partition("?")
    options = {key: values[-1] for key, values in parse_qs(query).items()}
    unknown = set(options) - _SPARK_OPTIONS
    if unknown:
        raise DataError(
            f"backend {url}: unknown option {', '.join(sorted(unknown))}; "
            "expected database=NAME or catalog=hive"
        )
    if options.get("catalog", "hive") != "hive":
        raise DataError(f"backend {url}: catalog={options['catalog']}; expected catalog=hive")
    return master, options


def _spark(url: str) -> Any:
    master, options = spark_options(url)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError(
            f"backend {url}: Spark needs PySpark: pip install 'leadscore[spark]'"
        ) from None
    builder = SparkSession.builder
    if options.get("catalog") == "hive":
        builder = builder.enableHiveSupport()
    if master == "spark":
        # the session spark-submit or the platform set up: its master, its catalog, its config,
        # but times with a zone read as UTC, as everywhere else
        session = builder.getOrCreate()
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return ibis.pyspark.connect(session)
    local = master.startswith("local")
    if local:
        # local Spark binds to the machine's address unless told otherwise
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        builder.master(master)
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
            .config("spark.sql.warehouse.dir", str(_warehouse(options.get("catalog") == "hive")))
        )
    if options.get("catalog") == "hive" and local:
        # the embedded metastore beside the warehouse, not in the current directory
        metastore = f"jdbc:derby:;databaseName={_LOCAL / 'metastore_db'};create=true"
        builder = builder.config("spark.hadoop.javax.jdo.option.ConnectionURL", metastore)
    session = builder.getOrCreate()
    if local and options.get("catalog") == "hive":
        # Derby writes derby.log into its home, the current directory unless told; the
        # metastore starts on first use, after this
        jvm: Any = session._jvm
        jvm.java.lang.System.setProperty("derby.system.home", str(_LOCAL))
    return ibis.pyspark.connect(session)


_LOCAL = Path(tempfile.gettempdir()) / "leadscore-spark"  # local Spark's warehouse and metastore


def _warehouse(hive: bool) -> Path:
    """Where local Spark keeps the tables it writes.

    With a Hive metastore, tables outlive the process, and so does their folder. Without one the
    catalog is in memory and forgets its tables when the process ends: their files go with it
    (a folder of this process), or the next run could not write a table of the same name.
    """
    if hive:
        return _LOCAL / "warehouse"
    _LOCAL.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="warehouse-", dir=_LOCAL))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def dataset_from(url: str, folder: Path | None = None) -> Dataset:
    """The canonical tables in the backend's database, as a Dataset (nothing is copied).

    With `folder` (Spark), the tables are its `leads.parquet`, `events.parquet`, ... files.
    """
    con = connect(url)
    database = spark_options(url)[1].get("database") if is_spark(url) else None
    if folder is not None:
        _read_folder(con, url, Path(folder))
        database = None  # the files are read as the session's temporary views
    try:
        present = _table_names(con, database)
    except Exception as exc:  # an unknown database, a metastore that cannot be reached
        first = _first_line(exc)
        raise DataError(f"backend {describe(url)}: cannot list tables: {first}") from None
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise DataError(
            f"backend {describe(url)}: no table {', '.join(repr(m) for m in missing)}; "
            f"it has: {', '.join(sorted(present)) or 'no tables'}"
        )

    def read(name: str) -> Any:
        if con.name == "duckdb":
            return ibis_table(con, name)
        return con.table(name, database=database) if database else con.table(name)

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
    for name, table in tables.items():
        _check_time_range(url, name, table)
    return data


_KEYS = {"leads": "lead_id", "accounts": "account_id", "events": "event_id", "outcomes": "lead_id"}


def _check_time_range(url: str, name: str, table: Any) -> None:
    """Refuse times outside years 1-9999, which a database may hold and Python cannot (files
    reject such rows on the way in; a database's rows are not rejected one by one)."""
    columns = [c for c, t in table.schema().items() if t.is_timestamp() or t.is_date()]
    if not columns:
        return
    lo, hi = ibis.literal(MIN_TIMESTAMP), ibis.literal(MAX_TIMESTAMP)

    def outside(column: str) -> Any:
        value = table[column].cast("timestamp")
        return (value < lo) | (value > hi)

    flags = {f"outside_{i}": outside(c) for i, c in enumerate(columns)}
    bad = flags["outside_0"]
    for flag in list(flags.values())[1:]:
        bad = bad | flag
    key = _KEYS[name]
    shown = {f"shown_{i}": table[c].cast("string") for i, c in enumerate(columns)}
    try:
        found = table.filter(bad).select(key=table[key].cast("string"), **shown, **flags)
        rows = found.limit(3).to_pyarrow().to_pylist()
    except Exception as exc:  # drivers raise their own types; the message is what matters
        first_line = _first_line(exc)
        raise DataError(
            f"backend {describe(url)}: cannot read table {name}: {first_line}"
        ) from None
    if rows:
        row = rows[0]
        i = next(i for i in range(len(columns)) if row[f"outside_{i}"])
        raise DataError(
            f"backend {describe(url)}: {name}.{columns[i]} of {key} {row['key']} is "
            f"{row[f'shown_{i}']}, outside the years 1-9999 that timestamps may have "
            "(docs/data.md#timestamps); correct or remove such rows"
        )


def _table_names(con: Any, database: str | None) -> set[str]:
    if database:
        return set(con.list_tables(database=database))
    if con.name == "duckdb":
        # Ibis 12's list_tables calls a method DuckDB 2.0 no longer has
        rows = con.raw_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {str(row[0]) for row in rows}
    return set(con.list_tables())


def _read_folder(con: Any, url: str, folder: Path) -> None:
    """Each table from `name.parquet` (a file or a folder of part files) or `name/` (a Delta
    table, or a folder of Parquet part files)."""
    if not is_spark(url):
        raise DataError(
            f"backend {describe(url)}: reads its own tables; --data with a backend is for Spark"
        )
    if not folder.is_dir():
        raise DataError(f"backend {url}: --data {folder} is not a folder")
    for name in (*REQUIRED, *OPTIONAL):
        path = next((p for p in (folder / f"{name}.parquet", folder / name) if p.exists()), None)
        if path is None:
            if name in REQUIRED:
                raise DataError(
                    f"backend {url}: {folder} has no {name}.parquet or {name}/ "
                    "(Parquet files or a Delta table)"
                )
            continue
        if (path / "_delta_log").is_dir():
            _read_delta(con, url, name, path)
        else:
            con.read_parquet(str(path), table_name=name)


def _read_delta(con: Any, url: str, name: str, path: Path) -> None:
    try:
        con.read_delta(str(path), table_name=name)
    except Exception as exc:
        if "delta" in str(exc).lower() and "data source" in str(exc).lower():
            raise DataError(
                f"backend {url}: {path} is a Delta table, and this Spark has no Delta Lake: "
                "add io.delta:delta-spark (docs/scale.md#delta-tables)"
            ) from None
        first = _first_line(exc)
        raise DataError(f"backend {url}: cannot read the Delta table {path}: {first}") from None


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
        first = _first_line(exc)
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
