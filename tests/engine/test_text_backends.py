# ruff: noqa: RUF001  (the look-alike letters are the point of these tests)
"""Non-ASCII text compares the same in DuckDB, PostgreSQL, Spark and the reference predicates.

PostgreSQL folds text in SQL (normalize() around translate() and replace() tables taken from
Python); DuckDB and Spark run Python's function. Both must be the reference's `fold`.
"""

from __future__ import annotations

import gc
import sys
import unicodedata
import uuid
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import ibis
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from leadscore.engine.batch import compile_batch
from leadscore.engine.batch_conditions import folded
from leadscore.engine.folding import fold
from leadscore.engine.reference import score_many
from leadscore.io.backends import close_all, dataset_from
from leadscore.io.readers import arrow_table
from leadscore.model.scoring import ScoringModel
from leadscore.schema import Dataset

AS_OF = datetime(2026, 3, 2, 12, 0)
TEXTS = [
    *("Istanbul", "İstanbul", "ıstanbul", "ISTANBUL", "ΣΟΦΟΣ", "σοφος", "Σοφός"),
    *("STRASSE", "Straße", "ſtraße", "Mu\u0308ller", "Müller", "MÜLLER", "ǰ", "J\u030c"),
    *("ﬀ", "\u212aelvin", "Ⅻ", "ＡＢＣ", "Åström", "A\u030astro\u0308m", "Ǆemal", "ǅemal"),
    *("ΐ", "Ι\u0308\u0301", "ᾼ", "ꭰ", "Ꭰ", "𐐀", "東京", "", "a\nb"),
]
RULES: list[dict[str, Any]] = [
    {"field": "city", "equals": "istanbul"},
    {"field": "city", "in": ["İstanbul", "ıstanbul"]},
    {"field": "city", "regex": "^istanbul$"},
    {"field": "city", "regex": "^[iİı]stanbul$"},
    {"field": "city", "equals": "σοφος"},
    {"field": "city", "regex": "^σοφοσ$"},
    {"field": "city", "contains": "ß"},
    {"field": "city", "regex": "stra(ss|ß)e"},
    {"field": "city", "regex": "^stra[ß]e$"},
    {"field": "city", "equals": "müller"},
    {"field": "city", "regex": "^M[À-Ý]LLER$"},
    {"field": "city", "regex": "^m.ller$"},
    {"field": "city", "equals": "ǰ"},
    {"field": "city", "equals": "ff"},
    {"field": "city", "regex": "^kelvin$"},
    {"field": "city", "contains": "åSTRÖ"},
    {"field": "city", "equals": "ǆemal"},
    {"field": "city", "regex": "^ⅻ$"},
    {"field": "city", "equals": "ａｂｃ"},
    {"field": "city", "regex": "ΐ|ᾳ"},
    {"field": "city", "equals": "Ꭰ"},
    {"field": "city", "regex": "^𐐨$"},
    {"field": "city", "contains": "東"},
    {"field": "city", "regex": "^[a-z]+$"},
]
LEADS = pa.table(
    {"lead_id": [f"L{i}" for i in range(len(TEXTS))], "city": TEXTS},
    schema=pa.schema([("lead_id", pa.string()), ("city", pa.string())]),
)
EVENTS = pa.table(
    {"event_id": ["e1"], "lead_id": ["L0"], "type": ["view"], "ts": [AS_OF - timedelta(days=1)]},
    schema=pa.schema(
        [
            ("event_id", pa.string()),
            ("lead_id", pa.string()),
            ("type", pa.string()),
            ("ts", pa.timestamp("us")),
        ]
    ),
)


def _model() -> ScoringModel:
    fit = [{"name": f"r{i}", "points": 1, "when": rule} for i, rule in enumerate(RULES)]
    return ScoringModel.model_validate({"name": "t", "version": "1", "fit": {"rules": fit}})


def _hits(dataset: Dataset) -> list[tuple[str, str]]:
    ledger = compile_batch(_model(), dataset, AS_OF).ledger.to_pyarrow().to_pylist()
    return sorted((r["lead_id"], r["rule"]) for r in ledger if r["part"] == "fit")


def _reference() -> list[tuple[str, str]]:
    results = score_many(_model(), LEADS.to_pylist(), [], AS_OF)
    found = sorted((line.lead_id, line.rule) for r in results for line in r.ledger)
    assert len({rule for _, rule in found}) >= 20  # the rules do match something
    return found


@pytest.fixture(scope="module")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database holding the leads above."""
    name = f"leadscore_text_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{postgres_server}/{name}"
    con = ibis.connect(url.replace("postgresql://", "postgres://"))
    con.create_table("leads", LEADS)
    con.create_table("events", EVENTS)
    con.disconnect()
    try:
        yield url
    finally:
        close_all()
        with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_duckdb_folds_as_the_reference() -> None:
    con = ibis.duckdb.connect()
    dataset = Dataset(arrow_table(con, "leads", LEADS), arrow_table(con, "events", EVENTS))
    assert _hits(dataset) == _reference()


def test_postgresql_folds_as_the_reference(postgres_url: str) -> None:
    assert _hits(dataset_from(postgres_url)) == _reference()


def _tricky_texts() -> list[str]:
    """Every character folding changes, in NFC and NFD, in both cases, with combining marks."""
    out: list[str] = []
    for i in range(1, sys.maxunicode + 1):
        if 0xD800 <= i < 0xE000:
            continue
        c = chr(i)
        if fold(c) != c or 0x80 <= i < 0x530 or unicodedata.combining(c):
            nfd = unicodedata.normalize("NFD", c)
            out += [c, nfd + "A", "É" + nfd, c.upper(), c.lower() + "\u0301\u0323"]
    return list(dict.fromkeys(out))


def test_postgresql_sql_folding_is_pythons(postgres_url: str) -> None:
    texts = _tricky_texts()
    assert len(texts) > 10_000
    con = ibis.connect(postgres_url.replace("postgresql://", "postgres://"))
    try:
        name = f"fold_{uuid.uuid4().hex[:8]}"
        table = con.create_table(name, pa.table({"k": range(len(texts)), "s": texts}), temp=True)
        got = table.select("k", f=folded(table.s)).order_by("k").to_pyarrow().to_pylist()
    finally:
        con.disconnect()
    wrong = [(texts[r["k"]], r["f"]) for r in got if r["f"] != fold(texts[r["k"]])]
    assert wrong == []


@pytest.fixture(scope="module")
def spark_dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """The leads as Parquet files read by local Spark."""
    folder = tmp_path_factory.mktemp("spark-text")
    pq.write_table(LEADS, folder / "leads.parquet")
    pq.write_table(EVENTS, folder / "events.parquet")
    yield dataset_from("local[2]", folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        close_all()
        gc.collect()


@pytest.mark.filterwarnings("ignore:unclosed <socket:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_folds_as_the_reference(spark_dataset: Dataset) -> None:
    assert _hits(spark_dataset) == _reference()


def test_texts_are_those_of_the_leads() -> None:
    # the data is what the rules are about: non-ASCII, in NFC and NFD spellings
    assert sum(not t.isascii() for t in TEXTS) > 20
    assert any(unicodedata.normalize("NFC", t) != t for t in TEXTS)
