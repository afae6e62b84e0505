"""docs/scale.md describes the backends, options and commands that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import DataError
from leadscore.io.backends import describe, is_spark, spark_options

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "scale.md").read_text(encoding="utf-8")


def _backends() -> list[str]:
    """Every backend URL the document shows, in its tables, its text and its commands."""
    kinds = r"(?:duckdb\b|postgres:|local\b|spark\b(?![-.]))"
    found = re.findall(rf"--backend '?({kinds}[^ '\n`]*)'?", DOC)
    found += re.findall(rf"`({kinds}[^`\s]*)`", DOC)
    return [url for url in dict.fromkeys(found) if "..." not in url]


def test_every_backend_the_document_shows_is_one_leadscore_knows() -> None:
    backends = _backends()
    expected = {"duckdb", "local[2]", "spark", "spark://host:7077", "local[8]"}
    assert expected | {"postgres://scoring@db.internal/crm"} <= set(backends)
    for url in backends:
        if is_spark(url):
            master, _ = spark_options(url)
            assert is_spark(master), url
        else:
            assert url == "duckdb" or url.split("://", 1)[0] in ("duckdb", "postgres"), url


def test_the_spark_options_the_document_names_are_the_ones_accepted() -> None:
    assert spark_options("local[4]?catalog=hive&database=crm") == (
        "local[4]",
        {"catalog": "hive", "database": "crm"},
    )
    for option in ("?database=crm", "?catalog=hive"):
        assert option in DOC
    with pytest.raises(DataError):
        spark_options("local[4]?warehouse=/x")


def test_the_write_back_options_exist() -> None:
    done = CliRunner().invoke(app, ["score", "--help"], env={"COLUMNS": "200"})
    for option in ("--table", "--ledger-table", "--backend"):
        assert option in done.output
        assert f"`{option}" in DOC or f"{option} " in DOC


def test_the_module_spark_submit_runs_is_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", "score", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "--table" in done.stdout
    assert "import leadscore.__main__ as m" in DOC


def test_passwords_are_masked_as_the_document_says() -> None:
    assert (
        describe("postgres://scoring:hunter2@db:5432/crm") == "postgres://scoring:***@db:5432/crm"
    )
    assert "postgres://scoring:***@db:5432/crm" in DOC


def test_the_cost_model_is_plotted_and_measured() -> None:
    assert "(scale-cost.svg)" in DOC and (ROOT / "docs" / "scale-cost.svg").is_file()
    assert "COST_TABLE" not in DOC and "COST_MODEL" not in DOC
    for events in ("1,000,822", "9,969,332"):
        assert events in DOC
