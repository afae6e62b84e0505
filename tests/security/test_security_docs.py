"""docs/security.md names the tests that hold each defence: every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")


def test_every_test_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`(tests/[\w/]+\.py)`", DOC))
    # `tests/dashboard/a.py`, `b.py`: a bare name continues the folder named before it
    for folder, rest in re.findall(r"`(tests/[\w/]+)/\w+\.py`((?:, `\w+\.py`)+)", DOC):
        named |= {f"{folder}/{name}" for name in re.findall(r"`(\w+\.py)`", rest)}
    assert len(named) >= 20
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert not missing, missing


def test_every_file_under_tests_security_is_on_the_page() -> None:
    files = {p.name for p in (ROOT / "tests" / "security").glob("test_*.py")}
    files.discard(Path(__file__).name)
    assert files, "no security tests found"
    assert {f for f in files if f not in DOC} == set()
