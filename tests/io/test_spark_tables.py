"""Spark reads the tables where a data lake keeps them (issue #6): databases of a Hive metastore,
folders of Parquet part files, Delta tables; and says clearly what it cannot read."""

from __future__ import annotations

import gc
import json
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import DataError
from leadscore.io.backends import close_all, connect, dataset_from, spark_options
from leadscore.io.generate import generate

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "starter.yaml")
AS_OF = datetime(2026, 1, 1)
LEADS = 200
KEY = ["lead_id", "total", "fit", "behaviour", "grade", "stage"]

pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lake")
    generate(LEADS, seed=7, out=folder, as_of=AS_OF)
    return folder


@pytest.fixture(scope="module")
def expected(files: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("expected") / "scores.parquet"
    done = _score(["--data", str(files), "--out", str(out)])
    assert done.exit_code == 0, done.output
    return _key(out)


@pytest.fixture(autouse=True)
def _stop_spark() -> Iterator[None]:
    yield
    with warnings.catch_warnings():  # py4j's sockets: see tests/engine/test_backends.py
        warnings.simplefilter("ignore", ResourceWarning)
        close_all()
        gc.collect()


def _score(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["score", MODEL, "--as-of", "2026-01-01", *args])


def _key(path: Path) -> list[dict[str, Any]]:
    rows = pq.read_table(path).select(KEY).to_pylist()
    return sorted(rows, key=lambda r: str(r["lead_id"]))


def test_tables_in_a_hive_metastore_database(
    files: Path, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    database = f"crm_{uuid.uuid4().hex[:10]}"
    url = f"local[2]?catalog=hive&database={database}"
    session = connect(url)._session
    assert session.conf.get("spark.sql.catalogImplementation") == "hive"
    session.sql(f"CREATE DATABASE {database}")
    try:
        for name in ("leads", "events", "accounts"):
            frame = session.read.parquet(str(files / f"{name}.parquet"))
            frame.write.format("parquet").saveAsTable(f"{database}.{name}")
        out = tmp_path / "scores.parquet"
        done = _score(["--backend", url, "--out", str(out)])
        assert done.exit_code == 0, done.output
        # Spark writes a folder of part files; pyarrow reads it as one table
        assert _key(out) == expected
    finally:
        session.sql(f"DROP DATABASE IF EXISTS {database} CASCADE")


def test_a_database_the_catalog_does_not_have_is_named() -> None:
    with pytest.raises(DataError, match=r"^backend local\[1\]\?database=nowhere: cannot list"):
        dataset_from("local[1]?database=nowhere")


def test_folders_of_parquet_part_files(
    files: Path, expected: list[dict[str, Any]], tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    for name in ("leads", "events", "accounts"):
        rows = pq.read_table(files / f"{name}.parquet")
        (lake / name).mkdir(parents=True)
        half = rows.num_rows // 2
        pq.write_table(rows.slice(0, half), lake / name / "part-0.parquet")
        pq.write_table(rows.slice(half), lake / name / "part-1.parquet")
    out = tmp_path / "scores.parquet"
    done = _score(["--backend", "local[2]", "--data", str(lake), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert _key(out) == expected


def test_a_delta_table_on_a_spark_without_delta_lake_is_named(files: Path, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    pq.write_table(pq.read_table(files / "leads.parquet"), lake / "leads.parquet")
    log = lake / "events" / "_delta_log"
    log.mkdir(parents=True)
    (log / "00000000000000000000.json").write_text(json.dumps({"protocol": {}}) + "\n")
    with pytest.raises(DataError) as caught:
        dataset_from("local[1]", lake)
    message = str(caught.value)
    assert str(lake / "events") in message and "is a Delta table" in message
    assert "io.delta:delta-spark" in message


def test_the_ambient_session_is_the_one_already_running(files: Path) -> None:
    running = connect("local[1]")._session
    data = dataset_from("spark", files)
    assert connect("spark")._session is running
    assert data.leads.count().to_pyarrow().as_py() == LEADS


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("local[2]?db=crm", "unknown option db; expected database=NAME or catalog=hive"),
        ("spark://127.0.0.1:7077?catalog=glue", "catalog=glue; expected catalog=hive"),
    ],
)
def test_bad_spark_options_are_refused(url: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        spark_options(url)
    done = _score(["--backend", url, "--out", "x.parquet"])
    assert done.exit_code == 2 and message in " ".join(done.output.split())


def test_a_folder_without_the_tables_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"has no leads\.parquet or leads/ \(Parquet files or a"):
        dataset_from("local[1]", tmp_path)


def test_a_backtest_on_spark_reads_the_outcomes_there_and_agrees(
    files: Path, tmp_path: Path
) -> None:
    reports = []
    for source in (["--data", str(files)], ["--backend", "local[2]", "--data", str(files)]):
        out = tmp_path / f"backtest-{len(reports)}.json"
        args = ["backtest", MODEL, "--cutoff", "2025-10-01", "--horizon", "90d", "--out", str(out)]
        done = CliRunner().invoke(app, [*args, *source])
        assert done.exit_code == 0, done.output
        reports.append(json.loads(out.read_text()))
    assert reports[0]["truth"] == reports[1]["truth"] and reports[0]["truth"]["won"] > 0
    assert reports[0]["auc"] == reports[1]["auc"]
