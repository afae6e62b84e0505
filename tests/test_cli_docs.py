"""docs/cli.md is generated from the CLI's own --help; this test fails when they drift.

Regenerate with: UPDATE_DOCS=1 .venv/bin/pytest tests/test_cli_docs.py
"""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from leadscore.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
COMMANDS = (
    "check",
    "score",
    "explain",
    "generate",
    "demo",
    "schema",
    "backtest",
    "cases",
    "compare",
    "channels",
    "sample",
    "capacity",
    "suggest",
    "train",
    "predict",
    "serve",
    "keys",
    "keys create",
    "keys list",
    "keys revoke",
    "users",
    "users add",
    "users list",
    "users password",
    "users signout",
    "users remove",
)


def _tidy(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()).strip("\n")


def render() -> str:
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    parts = [
        "# CLI reference\n",
        "Generated from `leadscore --help`; `tests/test_cli_docs.py` keeps it true.\n",
    ]
    top = runner.invoke(app, ["--help"], env=env, terminal_width=100, prog_name="leadscore")
    parts.append(f"## leadscore\n\n```\n{_tidy(top.output)}\n```\n")
    for name in COMMANDS:
        result = runner.invoke(
            app, [*name.split(), "--help"], env=env, terminal_width=100, prog_name="leadscore"
        )
        assert result.exit_code == 0, result.output
        parts.append(f"## leadscore {name}\n\n```\n{_tidy(result.output)}\n```\n")
    return "\n".join(parts)


def test_cli_reference_is_current() -> None:
    text = render()
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, "docs/cli.md is stale: regenerate it"
