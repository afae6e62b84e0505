"""`--rejections FILE` on every command that loads data; multi-file mappings through the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app

ROOT = Path(__file__).resolve().parents[1]
CRM = ROOT / "tests" / "io" / "data" / "crm-pipeline"
OLIST = ROOT.parent / "shared" / "data" / "olist-funnel"
runner = CliRunner()

MODEL = """name: files
version: "1"
fit:
  rules:
    - {name: de, when: {field: country, equals: DE}, points: 10}
behaviour:
  rules:
    - {name: visit, event: page_view, points: 5}
"""

OLIST_MODEL = """name: olist
version: "1"
fit:
  rules:
    - {name: organic, when: {field: source, equals: organic}, points: 15}
    - {name: paid, when: {field: source, equals: paid}, points: 10}
behaviour:
  rules:
    - {name: contacted, event: first_contact, points: 5}
"""

CRM_MODEL = """name: crm
version: "1"
fit:
  rules:
    - {name: software, when: {field: industry, equals: software}, points: 10}
    - {name: gtx, when: {field: series, equals: GTX}, points: 5}
behaviour:
  rules:
    - {name: engaged, event: engaged, points: 5}
"""


def flat(text: str) -> str:
    """The output without the line breaks the terminal width put into it."""
    return "".join(text.split())


@pytest.fixture
def bad_data(tmp_path: Path) -> Path:
    """25 leads of which 23 have an unreadable created_at, and one event of an unknown lead."""
    folder = tmp_path / "data"
    folder.mkdir()
    lines = ["lead_id,country,created_at", "L1,DE,2026-01-01", "L2,FR,2026-01-02"]
    lines += [f"B{i},DE,yesterday" for i in range(23)]
    (folder / "leads.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "events.csv").write_text(
        "event_id,lead_id,type,ts\ne1,L1,page_view,2026-01-05\ne2,=X9,page_view,2026-01-05\n",
        encoding="utf-8",
    )
    return folder


def model(tmp_path: Path, text: str = MODEL) -> Path:
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rejections_file_lists_every_rejected_row(tmp_path: Path, bad_data: Path) -> None:
    out = tmp_path / "rejected.csv"
    args = ["score", str(model(tmp_path)), "--data", str(bad_data), "--as-of", "2026-02-01"]
    args += ["--out", str(tmp_path / "scores.csv")]
    result = runner.invoke(app, [*args, "--rejections", str(out)])
    assert result.exit_code == 0, result.output
    assert "24 input rows were not accepted" in result.output
    assert flat(f"... and 4 more (all of them in {out})") in flat(result.output)
    with out.open(encoding="utf-8", newline="") as fh:
        found = list(csv.DictReader(fh))
    assert list(found[0]) == ["table", "file", "row", "reason", "status"]
    assert len(found) == 24
    leads = [r for r in found if r["table"] == "leads"]
    assert [r["row"] for r in leads] == [str(i) for i in range(3, 26)]
    assert leads[0]["file"] == "leads.csv" and leads[0]["status"] == "rejected"
    assert leads[0]["reason"].startswith("column created_at: cannot parse 'yesterday'")
    event = next(r for r in found if r["table"] == "events")
    assert (event["file"], event["row"], event["reason"]) == (
        "events.csv",
        "2",
        "unknown lead_id =X9",
    )
    # Without the option, the hint names it.
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "... and 4 more (write them all with --rejections FILE)" in result.output


def test_rejections_as_json_lines(tmp_path: Path, bad_data: Path) -> None:
    out = tmp_path / "rejected.jsonl"
    result = runner.invoke(
        app,
        ["check", str(model(tmp_path)), "--data", str(bad_data), "--rejections", str(out)],
    )
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(found) == 24
    assert found[0] == {
        "table": "leads",
        "file": "leads.csv",
        "row": 3,
        "reason": "column created_at: cannot parse 'yesterday' as a timestamp "
        + found[0]["reason"].split("as a timestamp ", 1)[1],
        "status": "rejected",
    }


def test_rejections_file_errors_are_messages(tmp_path: Path, bad_data: Path) -> None:
    result = runner.invoke(
        app,
        ["check", str(model(tmp_path)), "--data", str(bad_data), "--rejections", "r.txt"],
    )
    assert result.exit_code == 2
    assert "r.txt: a rejections file is .csv or JSON lines (.jsonl, .ndjson)" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["check", str(model(tmp_path)), "--rejections", "r.csv"])
    assert result.exit_code == 2
    assert "--rejections needs --data" in result.output


@pytest.mark.parametrize(
    "command",
    [
        *("explain", "backtest", "cases", "compare", "channels", "sample", "capacity"),
        *("suggest", "train", "predict"),
    ],
)
def test_every_command_that_loads_files_has_the_option(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--rejections" in result.output


def test_crm_pipeline_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "notes.csv"
    scores = tmp_path / "scores.csv"
    result = runner.invoke(
        app,
        [
            "score",
            str(model(tmp_path, CRM_MODEL)),
            "--data",
            str(CRM),
            "--mapping",
            "crm-pipeline",
            "--as-of",
            "2017-06-01",
            "--out",
            str(scores),
            "--rejections",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 input rows were kept with a note" in result.output
    with out.open(encoding="utf-8", newline="") as fh:
        (note,) = list(csv.DictReader(fh))
    assert (note["table"], note["file"], note["row"], note["status"]) == (
        "leads",
        "sales_pipeline.csv",
        "19",
        "kept",
    )
    with scores.open(encoding="utf-8", newline="") as fh:
        by_lead = {r["lead_id"]: r for r in csv.DictReader(fh)}
    assert len(by_lead) == 32
    # Codehow (software) bought GTX Pro, written "GTX Pro" here and "GTXPro" in products.csv.
    assert float(by_lead["WUYCV0HF"]["fit"]) == 15.0


def test_olist_funnel_check_and_score_on_the_real_files(tmp_path: Path) -> None:
    path = model(tmp_path, OLIST_MODEL)
    data = ["--data", str(OLIST), "--mapping", "olist-funnel"]
    result = runner.invoke(app, ["check", str(path), *data])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "not accepted" not in result.output
    scores = tmp_path / "scores.csv"
    result = runner.invoke(
        app, ["score", str(path), *data, "--as-of", "2018-06-01", "--out", str(scores)]
    )
    assert result.exit_code == 0, result.output
    with scores.open(encoding="utf-8", newline="") as fh:
        by_lead = {r["lead_id"]: r for r in csv.DictReader(fh)}
    assert len(by_lead) == 8000
    # first contact by organic search on 22-03-2018: 15 fit points, 5 for the contact
    lead = by_lead["b4bc852d233dfefc5131f593b538befa"]
    assert (float(lead["fit"]), float(lead["behaviour"])) == (15.0, 5.0)
