"""The command line, run for real on generated data and the shipped models."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from leadscore.cli import app

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    result = runner.invoke(app, ["generate", "--leads", "400", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    return out


def test_check_accepts_every_shipped_model(data: Path) -> None:
    for path in sorted(MODELS.glob("*.yaml")):
        result = runner.invoke(app, ["check", str(path), "--data", str(data)])
        assert result.exit_code == 0, result.output
        assert "ok" in result.output


def test_check_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'name: x\nversion: "1"\nfit:\n  rules:\n'
        '    - {name: a, when: {field: t, regex: "("}, points: 1}\n'
    )
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:5" in result.output
    assert "fit.rules[0].when.regex" in result.output
    assert "Traceback" not in result.output


def test_check_with_data_reports_unknown_fields(tmp_path: Path, data: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text(
        'name: x\nversion: "1"\nfit:\n  rules:\n'
        "    - {name: a, when: {field: jobtitle, equals: ceo}, points: 1}\n"
    )
    result = runner.invoke(app, ["check", str(model), "--data", str(data)])
    assert result.exit_code == 2
    assert "unknown field 'jobtitle'" in result.output
    assert "job_title" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_score_writes_every_format(tmp_path: Path, data: Path, suffix: str) -> None:
    out = tmp_path / f"scores{suffix}"
    ledger = tmp_path / "ledger.parquet"
    args = ["score", str(MODELS / "starter.yaml"), "--data", str(data), "--as-of", "2026-01-01"]
    result = runner.invoke(app, [*args, "--out", str(out), "--ledger", str(ledger)])
    assert result.exit_code == 0, result.output
    assert "scored 400 leads" in result.output
    assert out.exists() and out.stat().st_size > 0
    table = pq.read_table(ledger)
    assert set(table.column_names) >= {"lead_id", "rule", "points"}


def test_score_rejects_a_bad_as_of_and_missing_data(tmp_path: Path, data: Path) -> None:
    model = str(MODELS / "starter.yaml")
    out = str(tmp_path / "s.csv")
    result = runner.invoke(
        app, ["score", model, "--data", str(data), "--as-of", "soon", "--out", out]
    )
    assert result.exit_code == 2
    assert "--as-of: cannot parse 'soon' as a timestamp" in " ".join(result.output.split())
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["score", model, "--data", str(empty), "--out", out])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# The forms files and the API accept (docs/data.md#timestamps), with the instant they mean
AS_OF_FORMS = [
    ("2025-05-31 23:30:00 +02:00", datetime(2025, 5, 31, 21, 30)),  # offset after a space
    ("2025-05-31T23:30:00+02:00:00", datetime(2025, 5, 31, 21, 30)),
    ("2025-05-31T23:30-0530", datetime(2025, 6, 1, 5, 0)),
    ("2025-05-31 21:30 UTC", datetime(2025, 5, 31, 21, 30)),
    ("2025-05-31T21:30:00z", datetime(2025, 5, 31, 21, 30)),
    ("2025-5-31", datetime(2025, 5, 31)),
    ("2025-05-31T2:05", datetime(2025, 5, 31, 2, 5)),
    ("2025-05-31T24:00", datetime(2025, 6, 1)),
]
# ... and forms they refuse, some of which Python's fromisoformat reads
REFUSED_FORMS = [
    "2025-05-31 23:30 CET",  # a zone name
    "2025-05-31 23:30 Europe/Berlin",
    "20250531",
    "2025-05-31x23:30",
    "2025-W22-6",
    "2025-05-31T23",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
]


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps long messages


@pytest.mark.parametrize(("text", "instant"), AS_OF_FORMS, ids=[t for t, _ in AS_OF_FORMS])
def test_as_of_reads_every_form_files_accept(data: Path, text: str, instant: datetime) -> None:
    model = str(MODELS / "starter.yaml")
    args = ["explain", model, "-d", str(data), "--lead", "L0000001", "--as-of", text, "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["as_of"] == str(instant)


@pytest.mark.parametrize("text", REFUSED_FORMS)
def test_as_of_and_cutoff_refuse_what_files_refuse_naming_the_option(
    data: Path, tmp_path: Path, text: str
) -> None:
    model = str(MODELS / "committee.yaml")
    base = [model, "--data", str(data)]
    for args, option in [
        (["score", *base, "--as-of", text, "--out", str(tmp_path / "s.csv")], "--as-of"),
        (["explain", *base, "--lead", "L0000001", "--as-of", text], "--as-of"),
        (["backtest", *base, "--cutoff", text], "--cutoff"),
        (["compare", model, model, "--data", str(data), "--cutoff", text], "--cutoff"),
        (["capacity", *base, "--per-week", "5", "--cutoff", text], "--cutoff"),
    ]:
        result = runner.invoke(app, args)
        said = _said(result.output)
        assert result.exit_code == 2, (args, said)
        assert f"error: {option}: " in said and repr(text) in said
        assert "accepted: a date (2026-03-01)" in said and "no zone names such as CET" in said
        assert "Traceback" not in said


def test_explain_prints_the_ledger_in_english_german_and_json(data: Path) -> None:
    model = str(MODELS / "committee.yaml")
    scores = runner.invoke(
        app,
        ["score", model, "-d", str(data), "--as-of", "2026-01-01", "-o", str(data / "s.parquet")],
    )
    assert scores.exit_code == 0, scores.output
    top = pq.read_table(data / "s.parquet").sort_by([("total", "descending")]).to_pylist()[0]
    base = ["explain", model, "-d", str(data), "--lead", top["lead_id"], "--as-of", "2026-01-01"]
    english = runner.invoke(app, base)
    assert english.exit_code == 0, english.output
    assert "Points" in english.output and top["lead_id"] in english.output
    german = runner.invoke(app, [*base, "--lang", "de"])
    assert "Punkte" in german.output and "Regel" in german.output
    as_json = runner.invoke(app, [*base, "--json"])
    record = json.loads(as_json.output)
    assert record["total"] == top["total"]
    assert round(sum(line["points"] for line in record["ledger"]), 2) == record["total"]


def test_explain_unknown_lead(data: Path) -> None:
    result = runner.invoke(
        app, ["explain", str(MODELS / "starter.yaml"), "-d", str(data), "--lead", "nobody"]
    )
    assert result.exit_code == 2
    assert "no lead with lead_id 'nobody'" in result.output


def test_schema_is_json(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert runner.invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text())["title"]


def test_demo_scores_with_every_model(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["demo", "--models", str(MODELS), "--leads", "300", "--out", str(tmp_path), "--top", "3"],
    )
    assert result.exit_code == 0, result.output
    for path in MODELS.glob("*.yaml"):
        assert (tmp_path / f"scores-{path.stem}.parquet").exists()


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("leadscore")
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "explain" in result.stdout


def test_keys_are_created_listed_and_revoked(database_url: str) -> None:
    db = database_url
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "crm sync", "--scope", "admin", "--db", db])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("ls_") and len(token) > 40
    listed = runner.invoke(app, ["keys", "list", "--db", db], terminal_width=200)
    assert "crm sync" in listed.output and "admin" in listed.output
    assert token not in listed.output  # only the prefix is ever shown again
    assert token.split("_")[1] in listed.output
    assert runner.invoke(app, ["keys", "revoke", "1", "--db", db]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", "1", "--db", db])
    assert again.exit_code == 2 and "no active key 1" in again.output
    bad = runner.invoke(app, ["keys", "create", "x", "--scope", "root", "--db", db])
    assert bad.exit_code == 2 and "scopes must be some of tracking, admin" in bad.output


def test_backtest_prints_a_summary_and_writes_json(tmp_path: Path) -> None:
    from leadscore.io import generate

    data = tmp_path / "data"
    generate(1500, seed=3, out=data)
    out = tmp_path / "bt.json"
    args = ["backtest", "models/starter.yaml", "--data", str(data), "--cutoff", "2025-10-01"]
    result = CliRunner().invoke(
        app,
        [*args, "--rolling", "1", "--out", str(out), "--report", str(tmp_path / "r.html")],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "AUC 0." in result.output and "Deciles" in result.output
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") >= 4 and 'data-plot="lift"' in page  # no matrix: no heat map
    assert "Rolling (drift)" in result.output
    report = json.loads(out.read_text())
    assert report["cutoff"] == "2025-10-01T00:00:00" and len(report["deciles"]) == 10
    assert [r["cutoff"] for r in report["rolling"]] == [
        "2025-09-01T00:00:00",
        "2025-10-01T00:00:00",
    ]
    assert report["rolling"][-1]["auc"] == report["auc"]
    bad = CliRunner().invoke(app, [*args[:-1], "2035-01-01"])
    assert bad.exit_code == 2 and "at or after the last outcome" in bad.output
    bad = CliRunner().invoke(app, [*args, "--horizon", "soon"])
    assert bad.exit_code == 2 and "--horizon 'soon' is not a duration" in bad.output


def test_cases_and_compare_print_and_write_json(tmp_path: Path) -> None:
    from leadscore.io import generate

    data = tmp_path / "data"
    generate(800, seed=2, out=data)
    runner = CliRunner()
    out = tmp_path / "cases.json"
    result = runner.invoke(
        app,
        [
            "cases",
            "models/starter.yaml",
            "--data",
            str(data),
            "--won",
            "2",
            "--lost",
            "1",
            "--recent",
            "1",
            "--as-of",
            "2026-01-01",
            "--out",
            str(out),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "before it was won" in result.output and "before it was lost" in result.output
    assert [c["kind"] for c in json.loads(out.read_text())["cases"]] == [
        "won",
        "won",
        "lost",
        "recent",
    ]
    result = runner.invoke(
        app,
        [
            "compare",
            "models/starter.yaml",
            "models/committee.yaml",
            "--data",
            str(data),
            "--as-of",
            "2026-01-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["models"][1]["name"] == "committee" and report["leads"] == 800


def test_channels_prints_value_columns_when_outcomes_carry_values(tmp_path: Path) -> None:
    from leadscore.io import generate

    data = tmp_path / "data"
    generate(800, seed=6, out=data)
    out = tmp_path / "ch.json"
    args = ["channels", "models/committee.yaml", "--data", str(data), "--as-of", "2026-01-01"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)], terminal_width=220)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert sum(r["leads"] for r in report["sources"]) == report["leads"]
    assert "By source" in result.output and "By campaign" in result.output
    assert ("lifetime value" in result.output) == report["has_values"]


def test_sample_and_capacity_print_and_write(tmp_path: Path) -> None:
    import csv

    from leadscore.io import generate

    data = tmp_path / "data"
    generate(1200, seed=8, out=data)
    runner = CliRunner()
    out = tmp_path / "sample.csv"
    result = runner.invoke(
        app,
        [
            "sample",
            "models/committee.yaml",
            "--data",
            str(data),
            "--per-stage",
            "3",
            "--seed",
            "4",
            "--as-of",
            "2026-01-01",
            "--out",
            str(out),
        ],
        terminal_width=220,
    )
    assert result.exit_code == 0, result.output
    assert "Sample of 3 per stage (seed 4)" in result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    ledger = list(csv.DictReader((tmp_path / "sample-ledger.csv").read_text().splitlines()))
    assert {r["stage"] for r in rows} >= {"SQL", "nurture"}
    for r in rows:  # each sampled lead's ledger sums to its total
        points = sum(float(x["points"]) for x in ledger if x["lead_id"] == r["lead_id"])
        assert round(points, 2) == float(r["total"])
    result = runner.invoke(
        app,
        [
            "capacity",
            "models/committee.yaml",
            "--data",
            str(data),
            "--per-week",
            "5",
            "--cutoff",
            "2025-10-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["leads_per_week"] <= 5 and report["threshold"] is not None
    bad = runner.invoke(
        app, ["capacity", "models/committee.yaml", "--data", str(data), "--per-week", "0"]
    )
    assert bad.exit_code == 2 and "per_week must be more than 0" in bad.output


def test_suggest_writes_a_model_that_check_accepts(tmp_path: Path) -> None:
    from leadscore.io import generate

    generate(5000, seed=5, out=tmp_path / "data")
    out = tmp_path / "suggested.yaml"
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["suggest", "--data", str(tmp_path / "data"), "--out", str(out), "--exclude", "stage"],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "rules written to" in result.output and "AUC 0." in result.output
    assert "stage =" not in out.read_text()  # excluded fields are not learned from
    checked = runner.invoke(app, ["check", str(out), "--data", str(tmp_path / "data")])
    assert checked.exit_code == 0, checked.output
