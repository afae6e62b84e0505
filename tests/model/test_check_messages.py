"""What `leadscore check` says: every problem at once, in words that survive the terminal."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import ModelError
from leadscore.model import parse_model


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def error_of(text: str) -> list[str]:
    with pytest.raises(ModelError) as caught:
        parse_model(text, "m.yaml")
    return str(caught.value).splitlines()


def test_every_problem_of_one_object_is_listed() -> None:
    lines = error_of(
        y("""
        name: m
        version: "1"
        fit:
          rules:
            - {name: a, pionts: 3, whn: {field: x, equals: 1}, points: lots}
        """)
    )
    assert lines == [
        "m.yaml:5: fit.rules[0].pionts: unknown key 'pionts'; expected one of: description, "
        "label, labels, name, points, tier, when",
        "m.yaml:5: fit.rules[0].whn: unknown key 'whn'; expected one of: description, label, "
        "labels, name, points, tier, when",
        "m.yaml:5: fit.rules[0].when: required key is missing",
        "m.yaml:5: fit.rules[0].points: Input should be a valid number, unable to parse string "
        "as a number (got 'lots')",
    ]


def test_unknown_keys_at_the_top_do_not_hide_the_rest() -> None:
    lines = error_of('name: m\nversion: "1"\nfitt: {}\nbehaviour: {floor: low}\n')
    assert [line.split(": ")[1] for line in lines] == ["fitt", "behaviour.floor"]


def test_every_problem_across_the_model_is_listed() -> None:
    lines = error_of(
        y("""
        name: m
        version: "1"
        fit:
          rules:
            - {name: a, when: {field: x, equals: 1}, points: 1}
            - {name: a, when: {field: x, equals: 1}, points: 1}
          grades: [{grade: A, min: 1}, {grade: B}]
        behaviour:
          rules:
            - {name: b, event: x, points: 1}
            - {name: b, event: x, points: 1}
          velocity:
            - {name: v, steps: [zz, b, b], tiers: [{within_days: 1, points: 1}]}
        routing:
          - {when: {grade: [Z]}, stage: SQL}
        """)
    )
    assert lines == [
        "m.yaml:6: fit.rules[1].name: duplicate name 'a', already used at fit.rules[0]",
        "m.yaml:11: behaviour.rules[1].name: duplicate name 'b', already used at "
        "behaviour.rules[0]",
        "m.yaml:13: behaviour.velocity[0].steps[0]: step 'zz' is not a behaviour rule (known: b)",
        "m.yaml:13: behaviour.velocity[0].steps[2]: step 'b' is named twice",
        "m.yaml:15: routing[0].when.grade[0]: 'Z' is not one of the model's grade values (A, B)",
    ]


def test_repeatable_false_with_keep_latest_is_refused_with_what_to_write() -> None:
    text = 'name: m\nversion: "1"\nbehaviour:\n  rules:\n'
    rule = "  - {name: r, event: x, points: 1, repeatable: false, keep: latest}\n"
    (line,) = error_of(text + rule)
    assert line == (
        "m.yaml:5: behaviour.rules[0]: `keep: latest` contradicts `repeatable: false`, which "
        "counts only the lead's first matching event; to count only the newest one, write "
        "`max_count: 1` instead of `repeatable: false`"
    )
    # what it advises loads, and so does the first time only, spelt out or not
    newest = parse_model(text + "  - {name: r, event: x, points: 1, max_count: 1}\n")
    assert newest.behaviour.rules[0].order == "latest"
    assert newest.behaviour.rules[0].count_limit == 1
    for keep in ("", ", keep: earliest", ", max_count: 1"):
        first = parse_model(
            text + f"  - {{name: r, event: x, points: 1, repeatable: false{keep}}}\n"
        )
        assert first.behaviour.rules[0].order == "earliest"
        assert first.behaviour.rules[0].count_limit == 1


def test_repeatable_false_with_a_max_count_it_would_overrule_is_refused() -> None:
    text = 'name: m\nversion: "1"\nbehaviour:\n  rules:\n'
    rule = "  - {name: r, event: x, points: 1, repeatable: false, max_count: 3}\n"
    (line,) = error_of(text + rule)
    assert line == (
        "m.yaml:5: behaviour.rules[0]: `max_count: 3` has no effect with `repeatable: false`, "
        "which counts one event; leave out one of them"
    )


def test_check_prints_brackets_and_markup_of_messages_as_they_are(tmp_path: Path) -> None:
    # `[low, high]` was read as rich markup: "needs  with low <= high"
    path = tmp_path / "m.yaml"
    path.write_text(
        y("""
        name: m
        version: "1"
        fit:
          rules:
            - {name: b, when: {field: x, between: [5, 1]}, points: 1}
            - {name: c, when: {field: '[/bold]', equals: null}, points: 1}
        """)
    )
    result = CliRunner().invoke(app, ["check", str(path)], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: {path}:5: fit.rules[0].when.between: `between` needs [low, high] with "
        "low <= high, got [5.0, 1.0]",
        f"{path}:6: fit.rules[1].when: `equals: null` on field '[/bold]': null is not a value "
        "to compare with; to test for an empty field write `exists: false` (for one with a "
        "value, `exists: true`)",
    ]


def test_routing_tests_that_never_hold_are_refused() -> None:
    head = 'name: m\nversion: "1"\nengagement: [{level: 1}]\nrouting:\n'
    (line,) = error_of(head + "  - {when: {min_total: 80, max_total: 40}, stage: SQL}\n")
    assert line == (
        "m.yaml:5: routing[0].when: `min_total: 80` and `max_total: 40` never both hold "
        "(min_total means at least, max_total below); min_total must be lower"
    )
    (line,) = error_of(head + "  - {when: {min_fit: 2.5, max_fit: 2.5}, stage: SQL}\n")
    assert "`min_fit: 2.5` and `max_fit: 2.5` never both hold" in line
    (line,) = error_of(head + "  - {when: {engagement: []}, stage: SQL}\n")
    assert line == (
        "m.yaml:5: routing[0].when: `engagement: []` never holds; leave out `engagement` to "
        "accept any engagement"
    )
    assert parse_model(head + "  - {when: {min_total: 40, max_total: 80}, stage: SQL}\n")


def test_routing_entries_after_one_that_always_holds_are_refused() -> None:
    head = 'name: m\nversion: "1"\nrouting:\n'
    (line,) = error_of(head + "  - {stage: nurture}\n  - {when: {min_total: 80}, stage: SQL}\n")
    assert line == (
        "m.yaml:5: routing[1]: never reached: routing[0] has no tests and always holds (the "
        "first entry that holds decides); move it to the end"
    )
    assert parse_model(head + "  - {when: {min_total: 80}, stage: SQL}\n  - {stage: nurture}\n")


def test_null_in_a_list_of_in_points_to_exists() -> None:
    text = 'name: m\nversion: "1"\nfit:\n  rules:\n'
    (line,) = error_of(text + "  - {name: r, points: 1, when: {field: x, in: [a, null]}}\n")
    assert line.startswith("m.yaml:5: fit.rules[0].when.in: `in` lists null, which is not a value")
    assert "`exists: false`" in line
