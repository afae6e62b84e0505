"""The README's examples run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.io import generate

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README, re.S)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").symlink_to(ROOT / "models")
    generate(300, seed=1, out=tmp_path / "out" / "demo" / "data")
    exec(compile(block, "README.md", "exec"), {})


def test_x_education_example_scores_won_leads_higher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = re.search(r"leadscore score examples/x-education.*?scores\.csv", README, re.S)
    assert command is not None
    args = shlex.split(command.group(0).replace("\\\n", " "))[1:]
    monkeypatch.chdir(ROOT)
    out = tmp_path / "x.csv"
    args[args.index("--out") + 1] = str(out)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = {r["lead_id"]: r["total"] for r in pacsv.read_csv(out).to_pylist()}
    assert len(scores) == 9240
    leads = pacsv.read_csv(ROOT.parent / "shared/data/x-education/Leads.csv").to_pylist()
    won = [scores[r["Prospect ID"]] for r in leads if r["Converted"] == 1]
    lost = [scores[r["Prospect ID"]] for r in leads if r["Converted"] == 0]
    assert sum(won) / len(won) > sum(lost) / len(lost) + 10
