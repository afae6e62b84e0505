"""Hostile YAML: size, nesting and alias expansion are bounded, with errors naming the limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from leadscore.errors import ModelError
from leadscore.model import load_model, parse_model
from leadscore.model.loader import MAX_DEPTH, MAX_MODEL_BYTES, MAX_VALUES, ModelTooLarge

HEAD = 'name: m\nversion: "1"\n'


def billion_laughs() -> str:
    """Nine levels of nine aliases: 9**9 (387 million) strings from under 500 bytes."""
    text = HEAD + "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def test_a_billion_laughs_is_refused_quickly_naming_the_limit() -> None:
    text = billion_laughs()
    assert len(text.encode()) < 500
    started = time.monotonic()
    with pytest.raises(ModelError) as caught:
        parse_model(text, "bomb.yaml")
    assert time.monotonic() - started < 5  # it was 46 s for a 469-byte upload
    message = str(caught.value)
    assert message.startswith("bomb.yaml:3: ")  # the anchored list the aliases repeat
    assert f"more than {MAX_VALUES:,} values" in message and "aliases" in message


def test_aliases_within_the_bound_still_work() -> None:
    rules = "".join(f"  - {{<<: *visit, name: r{i}}}\n" for i in range(50))
    text = HEAD + "behaviour:\n  rules:\n  - &visit {name: r, event: page_view, points: 1}\n"
    model = parse_model(text + rules)
    assert len(model.behaviour.rules) == 51
    assert {r.points for r in model.behaviour.rules} == {1}


def test_merges_share_the_bound() -> None:
    # the expansion goes through `<<` merges only: they must count as much as aliases
    text = HEAD + "a: &a {k0: lol, k1: lol, k2: lol, k3: lol, k4: lol, k5: lol, k6: lol}\n"
    previous = "a"
    for level, name in enumerate("bcdefgh"):
        keys = ", ".join(f"m{level}{i}: *{previous}" for i in range(8))
        text += f"{name}: &{name} {{{keys}}}\n"
        previous = name
    with pytest.raises(ModelError, match=f"more than {MAX_VALUES:,} values"):
        parse_model(text, "merges.yaml")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_flow_nesting_is_an_error_with_its_line(depth: int) -> None:
    text = HEAD + "fit: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ModelError) as caught:
        parse_model(text, "deep.yaml")
    assert str(caught.value) == (
        f"deep.yaml:3: nested more than {MAX_DEPTH} levels deep; a model needs far fewer"
    )


def test_deep_block_nesting_names_the_line_where_the_limit_is_crossed() -> None:
    text = HEAD + "fit:\n" + "".join("  " * i + "  a:\n" for i in range(200))
    with pytest.raises(ModelError) as caught:
        parse_model(text, "deep.yaml")
    # the file is level 1, `fit:` (line 3) level 2, and each line one level deeper
    assert str(caught.value).startswith(f"deep.yaml:{MAX_DEPTH + 2}: nested more than 64")


def test_nesting_through_aliases_is_bounded_too() -> None:
    inner = "[" * 40 + "]" * 40
    text = HEAD + f"x: &a {inner}\ny: " + "[" * 40 + "*a" + "]" * 40 + "\n"
    with pytest.raises(ModelError, match=f"nested more than {MAX_DEPTH} levels deep"):
        parse_model(text, "m.yaml")


def test_nesting_a_real_model_uses_is_fine() -> None:
    # 20 nested `not`s in a fit rule: 2 + 20 + the rule's own levels, well inside the bound
    condition = "{not: " * 20 + "{field: x, equals: 1}" + "}" * 20
    text = HEAD + f"fit:\n  rules:\n  - {{name: r, points: 1, when: {condition}}}\n"
    assert parse_model(text).fit.rules[0].name == "r"


def test_an_oversized_model_is_refused_before_it_is_parsed() -> None:
    text = HEAD + "description: " + "x" * MAX_MODEL_BYTES + "\n"
    with pytest.raises(ModelTooLarge) as caught:
        parse_model(text, "big.yaml")
    size = len(text.encode())
    assert str(caught.value) == (
        f"big.yaml: the model is {size:,} bytes, more than the {MAX_MODEL_BYTES:,} bytes a "
        "model may have"
    )
    # exactly at the limit is still read (and here fails for its own reason, not its size)
    at_limit = HEAD + "x: " + "y" * (MAX_MODEL_BYTES - len(HEAD) - 4) + "\n"
    assert len(at_limit.encode()) == MAX_MODEL_BYTES
    with pytest.raises(ModelError, match="unknown key 'x'"):
        parse_model(at_limit)


def test_an_oversized_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.write(HEAD.encode())
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB that were never written
    with pytest.raises(ModelTooLarge, match=r"the model is 52,428,800 bytes, more than the"):
        load_model(path)
