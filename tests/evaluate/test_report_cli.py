"""`--report FILE.html` on cases, compare, channels, capacity and sample writes the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.io import generate

ROOT = Path(__file__).resolve().parents[2]
COMMITTEE = str(ROOT / "models" / "committee.yaml")
STARTER = str(ROOT / "models" / "starter.yaml")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("cli-report") / "data"
    generate(800, seed=11, out=out)
    return str(out)


@pytest.mark.parametrize(
    ("args", "plots", "tables"),
    [
        (
            ["cases", COMMITTEE, "--won", "2", "--lost", "1", "--recent", "1"],
            ['data-plot="trajectory-won"', 'data-plot="trajectory-recent"'],
            ['id="case-won-2"', 'id="case-lost-1"', 'id="case-recent-1"'],
        ),
        (
            ["compare", STARTER, COMMITTEE, "--cutoff", "2025-10-01"],
            ['data-plot="moves"', 'data-plot="backtest"'],
            ['id="stage-moves"', 'id="backtest-handover"', 'id="examples-table"'],
        ),
        (
            ["channels", COMMITTEE],
            ['data-plot="conversion-source"', 'data-plot="conversion-campaign"'],
            ['id="source-table"', 'id="content_stage-table"'],
        ),
        (
            ["capacity", COMMITTEE, "--per-week", "5", "--cutoff", "2025-10-01"],
            ['data-plot="capacity"'],
            ['id="conversion-table"', 'id="handover-table"'],
        ),
        (
            ["sample", STARTER, "--per-stage", "2", "--seed", "3"],
            ['data-plot="stages"'],
            ['id="stage-1-leads"', 'id="stage-1-ledger-2"'],
        ),
    ],
    ids=["cases", "compare", "channels", "capacity", "sample"],
)
def test_report_writes_the_page(
    data: str, tmp_path: Path, args: list[str], plots: list[str], tables: list[str]
) -> None:
    page = tmp_path / "out" / f"{args[0]}.html"
    as_of = [] if "--cutoff" in args and args[0] == "capacity" else ["--as-of", "2026-01-01"]
    result = CliRunner().invoke(
        app, [*args, "--data", data, *as_of, "--json", "--report", str(page)]
    )
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
    for expected in [*plots, *tables]:
        assert expected in text, expected
    assert "<script" not in text
