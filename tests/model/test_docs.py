"""docs/model.md documents every key of the model, and its YAML examples are valid."""

from __future__ import annotations

import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from leadscore.model import ScoringModel, parse_model

DOC = Path(__file__).resolve().parents[2] / "docs" / "model.md"
Keys = Callable[[type[BaseModel]], list[str]]
SECTIONS = set(ScoringModel.model_fields)


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _yaml_blocks() -> list[tuple[int, str]]:
    """Every ```yaml block of the doc: (line of its fence, its text)."""
    blocks = []
    for match in re.finditer(r"^```yaml\n(.*?)^```$", _text(), re.M | re.S):
        line = _text().count("\n", 0, match.start()) + 1
        blocks.append((line, match.group(1)))
    return blocks


def _first_line(block: str) -> str:
    lines = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return lines[0] if lines else ""


def documented_keys(text: str) -> set[str]:
    """Keys shown as `key` in the first column of a table row or in a heading."""
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith("|"):
            cells = line.split("|")
            if len(cells) > 2:
                found.update(re.findall(r"`([A-Za-z_]+)`", cells[1]))
        elif line.startswith("#"):
            found.update(re.findall(r"`([A-Za-z_]+)`", line))
    return found


def _literal_values(cls: type[BaseModel]) -> set[str]:
    values: set[str] = set()

    def visit(annotation: Any) -> None:
        if typing.get_origin(annotation) is typing.Literal:
            values.update(str(a) for a in typing.get_args(annotation))
        for arg in typing.get_args(annotation):
            visit(arg)

    for field in cls.model_fields.values():
        visit(field.annotation)
    return values


BLOCKS = _yaml_blocks()
MODEL_BLOCKS = [(n, b) for n, b in BLOCKS if _first_line(b).startswith("name:")]
OTHER_BLOCKS = [(n, b) for n, b in BLOCKS if not _first_line(b).startswith("name:")]


def test_every_key_of_every_class_is_documented(
    model_classes: dict[str, type[BaseModel]], model_keys: Keys
) -> None:
    documented = documented_keys(_text())
    missing = {
        name: [k for k in model_keys(cls) if k not in documented]
        for name, cls in model_classes.items()
    }
    missing = {name: keys for name, keys in missing.items() if keys}
    assert not missing, f"keys not documented in {DOC.name}: {missing}"


def test_the_walk_finds_the_whole_model(model_classes: dict[str, type[BaseModel]]) -> None:
    # guards the test above against a walk that silently finds too little
    expected = {"ScoringModel", "FitRule", "Leaf", "All", "AnyOf", "Not", "BehaviourRule"}
    expected |= {"HalfLife", "Steps", "Step", "PerPeriod", "Velocity", "VelocityTier"}
    expected |= {"Stakeholders", "StakeholderTier", "Priority", "Route", "RouteWhen", "Tiers"}
    assert expected <= set(model_classes)
    assert len(model_classes) >= 30


def test_every_allowed_word_is_documented(model_classes: dict[str, type[BaseModel]]) -> None:
    text = _text()
    words = set().union(*(_literal_values(cls) for cls in model_classes.values()))
    assert {"half_life", "persona", "earliest", "week", "max", "b2c"} <= words
    missing = sorted(w for w in words if f"`{w}`" not in text)
    assert not missing, f"values not documented in {DOC.name}: {missing}"


def test_the_doc_has_its_parts() -> None:
    headings = [ln.lstrip("#").strip() for ln in _text().splitlines() if ln.startswith("## ")]
    assert headings[:4] == ["Overview", "Reference", "How scores are computed", "Errors"]


def test_the_doc_opens_with_a_complete_model() -> None:
    assert MODEL_BLOCKS, "the overview shows a complete model"
    first_line, _ = MODEL_BLOCKS[0]
    assert first_line == BLOCKS[0][0]
    model = parse_model(MODEL_BLOCKS[0][1], f"{DOC.name}:{first_line}")
    assert model.fit.rules and model.behaviour.rules and model.routing


@pytest.mark.parametrize(("line", "block"), MODEL_BLOCKS, ids=[f"line{n}" for n, _ in MODEL_BLOCKS])
def test_model_examples_parse(line: int, block: str) -> None:
    parse_model(block, f"{DOC.name} (block at line {line})")


@pytest.mark.parametrize(("line", "block"), OTHER_BLOCKS, ids=[f"line{n}" for n, _ in OTHER_BLOCKS])
def test_other_examples_are_valid_yaml(line: int, block: str) -> None:
    data = yaml.safe_load(block)
    assert data is not None, f"empty yaml block at line {line}"
    # a fragment made of model sections must be a valid model once named
    if isinstance(data, dict) and set(data) <= SECTIONS:
        parse_model("name: doc\nversion: '1'\n" + block, f"{DOC.name} (block at line {line})")


def test_documented_errors_look_like_real_ones() -> None:
    text = _text()
    errors = re.search(r"^## Errors$(.*?)^## ", text, re.M | re.S)
    assert errors is not None
    lines = re.findall(r"^models/m\.yaml:\d+: (\S+): ", errors.group(1), re.M)
    assert len(lines) >= 8
    real = (
        "name: m\nversion: 1\nbehaviour:\n  rules:\n"
        "    - {name: a, event: x, points: 1, pionts: 2}\n"
    )
    with pytest.raises(ValueError) as caught:
        parse_model(real, "models/m.yaml")
    assert str(caught.value).split(": ", 1)[1] in errors.group(1)
