"""docs/evaluation.md: its X Education command runs as written and gives the figures shown."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")


def test_the_x_education_backtest_gives_the_documented_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = re.search(r"leadscore backtest examples/x-education.*?--horizon 1d", DOC, re.S)
    assert command is not None
    args = shlex.split(command.group(0).replace("\\\n", " "))[1:]
    monkeypatch.chdir(ROOT)
    out = tmp_path / "x.json"
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    row = re.search(r"^\| 9,240 \| 3,561 \| 38\.5 % \| \*\*(0\.\d+)\*\* \| (\d\.\d+) \|", DOC, re.M)
    assert row is not None
    assert (report["truth"]["leads"], report["truth"]["won"]) == (9240, 3561)
    assert f"{report['auc']:.3f}" == row.group(1)
    assert f"{report['deciles'][0]['lift']:.2f}" == row.group(2)
    hot = next(r for r in report["conversion"]["temperature"] if r["value"] == "hot")
    assert f"{100 * hot['conversion']:.1f} % ({hot['leads']} leads)" in DOC
