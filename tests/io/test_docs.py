"""docs/data.md lists every canonical column exactly as schema.TABLES declares it."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.io.readers import MAX_REJECTIONS_PER_KIND, SUPPORTED_SUFFIXES
from leadscore.schema import TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"


@pytest.mark.parametrize("table", list(TABLES))
def test_every_canonical_column_is_documented(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"### {table} " in text
    section = text.split(f"### {table} ", 1)[1].split("\n### ", 1)[0]
    for column in TABLES[table]:
        required = "yes" if column.required else ""
        row = f"| `{column.name}` | {column.type} | {required} | {column.doc} |"
        assert row in section, row


def test_limits_and_formats_in_the_docs_are_the_code_s() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert f"at most **{MAX_REJECTIONS_PER_KIND:,} rejections per table" in text
    for suffix in SUPPORTED_SUFFIXES:
        assert f"`{suffix}`" in text
