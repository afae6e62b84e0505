"""Loading models: good input loads, bad input fails with `file:line: field: message`."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from leadscore.errors import ModelError
from leadscore.model import load_model, parse_model

ErrorOf = Callable[..., str]

HEAD = "name: m\nversion: 1\n"


def y(text: str) -> str:
    """Dedented YAML, so that the line numbers below are the lines of the text as shown."""
    return textwrap.dedent(text).lstrip("\n")


def expect(message: str, line: int, path: str, fragment: str, source: str = "model.yaml") -> None:
    """One line of `message` reads `source:line: path: ...fragment...`."""
    prefix = f"{source}:{line}: {path}: "
    hits = [m for m in message.splitlines() if m.startswith(prefix)]
    assert hits, f"no line starts with {prefix!r} in:\n{message}"
    assert any(fragment in h for h in hits), f"{fragment!r} not in:\n{message}"


# --- good input -------------------------------------------------------------------------------


def test_minimal_model_loads_with_defaults() -> None:
    model = parse_model(HEAD)
    assert model.name == "m"
    assert model.version == "1"
    assert model.kind == "b2b"
    assert model.fit.rules == [] and model.behaviour.rules == []
    assert model.behaviour.decay.type == "none"
    assert model.behaviour.floor == 0
    assert model.account is None and model.tiers is None


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("1", "1"),
        ("1.10", "1.10"),
        ("2.0", "2.0"),
        ('"1.10"', "1.10"),
        ("2025-01-31", "2025-01-31"),
    ],
)
def test_version_is_read_as_written(written: str, read: str) -> None:
    assert parse_model(f"name: m\nversion: {written}\n").version == read


def test_levels_and_grades_written_as_numbers_are_text() -> None:
    model = parse_model(
        y("""
        name: m
        version: 1
        fit:
          grades: [{grade: 1, min: 10}, {grade: 2}]
        engagement: [{level: 1, min: 10}, {level: 2}]
        routing:
          - when: {grade: [1], engagement: [1, 2]}
            stage: SQL
        """)
    )
    assert [g.grade for g in model.fit.grades] == ["1", "2"]
    assert [lv.level for lv in model.engagement] == ["1", "2"]
    assert model.routing[0].when.engagement == ["1", "2"]


def test_byte_order_mark_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfname: m\r\nversion: 1\r\n")
    assert load_model(path).name == "m"


def test_merge_keys_fill_in_missing_keys_only() -> None:
    model = parse_model(
        y("""
        name: m
        version: 1
        behaviour:
          rules:
            - &visit
              name: visit
              event: page_view
              points: 1
              max_count: 5
            - <<: *visit
              name: pricing
              points: 10
              where: {field: url, contains: /pricing}
        """)
    )
    visit, pricing = model.behaviour.rules
    assert (pricing.name, pricing.points, pricing.max_count) == ("pricing", 10, 5)
    assert pricing.event == visit.event == "page_view"


def test_errors_with_merge_keys_point_at_the_line_written(model_error: ErrorOf) -> None:
    text = y("""
        name: m
        version: 1
        behaviour:
          rules:
            - &r
              name: a
              event: page_view
              points: 1
              max_per: {count: 0, period: day}
            - <<: *r
              name: b
              max_count: zero
        """)
    message = model_error(text)
    expect(message, 9, "behaviour.rules[0].max_per.count", "greater than or equal to 1")
    # the merged-in key is reported where it is written: at the anchor
    expect(message, 9, "behaviour.rules[1].max_per.count", "greater than or equal to 1")
    expect(message, 12, "behaviour.rules[1].max_count", "valid integer")


def test_errors_name_the_given_source() -> None:
    with pytest.raises(ModelError, match=r"^models/x\.yaml:3: foo: unknown key"):
        parse_model(HEAD + "foo: 1\n", "models/x.yaml")


# --- malformed YAML ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (HEAD + "fit:\n  rules: [\n    - a\n", 5, "not valid YAML"),
        (HEAD + "fit:\n\trules: []\n", 4, "cannot start any token"),
        ("name: m\n version: 1\n", 2, "mapping values are not allowed"),
        (HEAD + "description: 'open\n", 4, "not valid YAML"),
        (HEAD + "---\nname: n\n", 3, "another document"),
        (HEAD + "kind: \x07\n", 3, "special characters are not allowed"),
        (HEAD + "fit: {rules: [}\n", 3, "not valid YAML"),
    ],
    ids=[
        "unclosed-flow",
        "tab",
        "bad-indent",
        "unclosed-quote",
        "two-documents",
        "control-char",
        "flow",
    ],
)
def test_malformed_yaml_names_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ModelError) as caught:
        parse_model(text, "model.yaml")
    message = str(caught.value)
    assert message.startswith(f"model.yaml:{line}: not valid YAML: "), message
    assert fragment in message


@pytest.mark.parametrize(
    ("text", "line", "path", "fragment"),
    [
        ("name: 2024-13-45\nversion: 1\n", 1, "name", "month must be in 1..12"),
        (HEAD + "kind: !fancy b2b\n", 3, "kind", "could not determine a constructor"),
        (HEAD + "description: !!binary xyz\n", 3, "description", "base64"),
        (HEAD + "? [a, b]\n: 1\n", 3, "(top)", "a key must be plain text"),
        (HEAD + "interests: &a [*a]\n", 3, "interests[0]", "alias refers to a node that contains"),
        (HEAD + "<<: 5\n", 3, "<<", "merges mappings only"),
    ],
    ids=["bad-date", "unknown-tag", "bad-binary", "list-as-key", "recursive-alias", "merge-scalar"],
)
def test_unreadable_values(
    model_error: ErrorOf, text: str, line: int, path: str, fragment: str
) -> None:
    expect(model_error(text), line, path, fragment)


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "path", "first"),
    [
        ("name: m\nversion: 1\nname: n\n", 3, "name", 1),
        (
            y("""
            name: m
            version: 1
            fit:
              rules:
                - name: a
                  when: {field: x, equals: 1}
                  points: 1
                  points: 2
            """),
            8,
            "fit.rules[0].points",
            7,
        ),
        (
            HEAD + "fit:\n  rules:\n    - {name: a, when: {field: x, field: y, exists: true}}\n",
            5,
            "fit.rules[0].when.field",
            5,
        ),
        (HEAD + "behaviour:\n  floor: 1\nbehaviour: {}\n", 5, "behaviour", 3),
    ],
    ids=["top", "in-rule", "in-flow-condition", "section"],
)
def test_duplicate_keys(model_error: ErrorOf, text: str, line: int, path: str, first: int) -> None:
    expect(model_error(text), line, path, f"duplicate key {path.split('.')[-1]!r}")
    assert f"(first at line {first})" in model_error(text)


# --- unknown keys -----------------------------------------------------------------------------


RULE = y("""
    name: m
    version: 1
    behaviour:
      rules:
        - name: a
          event: page_view
          points: 1
    """)


@pytest.mark.parametrize(
    ("text", "line", "path", "allowed"),
    [
        (HEAD + "foo: 1\n", 3, "foo", "account, behaviour, description, engagement, fit"),
        (RULE + "      pionts: 2\n", 8, "behaviour.rules[0].pionts", "max_count, max_per"),
        (
            RULE + "      max_per: {count: 1, period: day, per: 2}\n",
            8,
            "behaviour.rules[0].max_per.per",
            "count, period",
        ),
        (
            HEAD + "behaviour:\n  decay: {type: half_life, days: 3, half: 1}\n",
            4,
            "behaviour.decay.half",
            "days, type",
        ),
        (HEAD + "tiers:\n  persona: 1000\n", 4, "tiers.persona", "behaviour_max, factor_points"),
        (HEAD + "fit:\n  rule: []\n", 4, "fit.rule", "grades, rules"),
        (
            HEAD + "routing:\n  - when: {min_score: 5}\n",
            4,
            "routing[0].when.min_score",
            "min_total",
        ),
        (
            HEAD + "account:\n  priority:\n    when: {field: x, exists: true}\n    boost: 5\n",
            6,
            "account.priority.boost",
            "points, route, when",
        ),
    ],
    ids=["top", "rule", "max_per", "decay", "tiers", "fit", "routing-when", "priority"],
)
def test_unknown_keys_list_the_allowed_ones(
    model_error: ErrorOf, text: str, line: int, path: str, allowed: str
) -> None:
    message = model_error(text)
    expect(message, line, path, f"unknown key {path.split('.')[-1].split(']')[-1]!r}")
    assert f"expected one of: {allowed}" in message or allowed in message


@settings(max_examples=40, deadline=None)
@given(
    at=st.integers(min_value=0, max_value=4),
    key=st.from_regex(r"[a-z][a-z_]{0,12}", fullmatch=True).filter(
        lambda k: (
            k
            not in {
                "name",
                "version",
                "description",
                "kind",
                "fit",
                "behaviour",
                "account",
                "tiers",
                "interests",
                "engagement",
                "routing",
                "y",
                "n",
                "yes",
                "no",
                "on",
                "off",
                "true",
                "false",
                "null",
            }
        )
    ),
)
def test_unknown_top_level_key_reports_its_own_line(at: int, key: str) -> None:
    lines = ["name: m", "version: 1", "kind: b2b", "description: x", "interests: []"]
    lines.insert(at, f"{key}: 1")
    with pytest.raises(ModelError) as caught:
        parse_model("\n".join(lines) + "\n", "model.yaml")
    assert str(caught.value).startswith(f"model.yaml:{at + 1}: {key}: unknown key {key!r}")


# --- operators --------------------------------------------------------------------------------


def fit_when(condition: str) -> str:
    """A model whose one fit rule has the condition `condition` (flow style) on line 6."""
    return HEAD + f"fit:\n  rules:\n    - name: a\n      when: {condition}\n      points: 1\n"


@pytest.mark.parametrize(
    ("condition", "key"),
    [
        ("{field: x, eq: 1}", "eq"),
        ("{field: x, regexp: a}", "regexp"),
        ("{field: x, matches: a}", "matches"),
    ],
)
def test_unknown_operator(model_error: ErrorOf, condition: str, key: str) -> None:
    message = model_error(fit_when(condition))
    expect(message, 6, f"fit.rules[0].when.{key}", f"unknown key {key!r}")
    assert "between, contains, equals, exists, field, gt, gte, in, lt, lte, regex" in message


def test_two_operators_in_one_leaf(model_error: ErrorOf) -> None:
    text = y("""
        name: m
        version: 1
        fit:
          rules:
            - name: a
              when:
                field: employees
                gt: 10
                lt: 100
              points: 1
        """)
    expect(model_error(text), 6, "fit.rules[0].when", "found gt, lt")


def test_two_operators_deep_inside(model_error: ErrorOf) -> None:
    text = y("""
        name: m
        version: 1
        behaviour:
          rules:
            - name: a
              event: page_view
              points: 1
              where:
                any:
                  - {field: url, contains: /a}
                  - not:
                      all:
                        - {field: url, contains: /b, regex: c}
        """)
    expect(
        model_error(text),
        13,
        "behaviour.rules[0].where.any[1].not.all[0]",
        "needs exactly one operator",
    )


def test_no_operator(model_error: ErrorOf) -> None:
    expect(model_error(fit_when("{field: x}")), 6, "fit.rules[0].when", "found none")


def test_leaf_without_field(model_error: ErrorOf) -> None:
    expect(model_error(fit_when("{equals: 1}")), 6, "fit.rules[0].when.field", "required")


@pytest.mark.parametrize("condition", ["5", "[a, b]", "", "'x'"])
def test_condition_that_is_not_a_mapping(model_error: ErrorOf, condition: str) -> None:
    expect(
        model_error(fit_when(condition)), 6, "fit.rules[0].when", "a condition must be a mapping"
    )


# --- wrong types ------------------------------------------------------------------------------


WRONG = [
    (
        fit_when("{field: x, equals: 1}").replace("points: 1", "points: lots"),
        7,
        "fit.rules[0].points",
        "got 'lots'",
    ),
    (fit_when("{field: x, gt: many}"), 6, "fit.rules[0].when.gt", "got 'many'"),
    (fit_when("{field: x, in: abc}"), 6, "fit.rules[0].when.in", "valid list (got 'abc')"),
    (fit_when("{field: x, exists: perhaps}"), 6, "fit.rules[0].when.exists", "got 'perhaps'"),
    (fit_when("{field: x, contains: 5}"), 6, "fit.rules[0].when.contains", "valid string (got 5)"),
    (
        fit_when("{field: x, equals: [1, 2]}"),
        6,
        "fit.rules[0].when.equals",
        "a valid string, a valid integer",
    ),
    (fit_when("{field: x, between: [1]}"), 6, "fit.rules[0].when.between[1]", "missing"),
    (fit_when("{field: x, between: [5, 1]}"), 6, "fit.rules[0].when.between", "low <= high"),
    (fit_when("{field: x, in: []}"), 6, "fit.rules[0].when.in", "at least one value"),
    (fit_when("{all: []}"), 6, "fit.rules[0].when.all", "at least 1 item"),
    (fit_when("{field: x, gt: .nan}"), 6, "fit.rules[0].when.gt", "finite number"),
    (RULE + "      repeatable: maybe\n", 8, "behaviour.rules[0].repeatable", "got 'maybe'"),
    (
        RULE + "      keep: newest\n",
        8,
        "behaviour.rules[0].keep",
        "'latest' or 'earliest' (got 'newest')",
    ),
    (RULE + "      max_count: 1.5\n", 8, "behaviour.rules[0].max_count", "got 1.5"),
    (
        RULE + "      max_count: 0\n",
        8,
        "behaviour.rules[0].max_count",
        "greater than or equal to 1",
    ),
    (RULE + "      max_points: -5\n", 8, "behaviour.rules[0].max_points", "greater than 0"),
    (RULE + "      within_days: .inf\n", 8, "behaviour.rules[0].within_days", "finite number"),
    (
        RULE + "      max_per: {count: 2, period: year}\n",
        8,
        "behaviour.rules[0].max_per.period",
        "got 'year'",
    ),
    (
        RULE + "      max_per: {count: 2}\n",
        8,
        "behaviour.rules[0].max_per.period",
        "required key is missing",
    ),
    (
        RULE + "      decay: {type: linear, days: -1}\n",
        8,
        "behaviour.rules[0].decay.days",
        "greater than 0 (got -1)",
    ),
    (
        RULE + "      decay: {type: exp, days: 3}\n",
        8,
        "behaviour.rules[0].decay",
        "'half_life', 'linear', 'step', 'none'",
    ),
    (
        RULE.replace("event: page_view", "event: 5"),
        6,
        "behaviour.rules[0].event",
        "valid string or a valid list (got 5)",
    ),
    (
        RULE.replace("event: page_view", "event: []"),
        6,
        "behaviour.rules[0].event",
        "at least one event type",
    ),
    (
        RULE.replace("points: 1", "points: 1.234"),
        7,
        "behaviour.rules[0].points",
        "at most two decimals",
    ),
    (
        RULE.replace("points: 1", "points: 1e12"),
        7,
        "behaviour.rules[0].points",
        "points must lie within",
    ),
    (RULE.replace("points: 1", "points: .inf"), 7, "behaviour.rules[0].points", "finite number"),
    (HEAD + "kind: b2x\n", 3, "kind", "'b2b' or 'b2c' (got 'b2x')"),
    (HEAD + "fit: []\n", 3, "fit", "mapping"),
    (HEAD + "fit:\n  rules: {a: 1}\n", 4, "fit.rules", "valid list"),
    (HEAD + "behaviour:\n  floor: 1.234\n", 4, "behaviour.floor", "two decimals"),
    (HEAD + "tiers: {persona_points: 1000.5}\n", 3, "tiers.persona_points", "got 1000.5"),
    (HEAD + "routing:\n  - when: {grade: A}\n", 4, "routing[0].when.grade", "valid list (got 'A')"),
    (HEAD + "routing:\n  - sla_hours: 0\n", 4, "routing[0].sla_hours", "greater than 0"),
    (HEAD + "account:\n  rollup: avg\n", 4, "account.rollup", "'sum' or 'max'"),
    (
        HEAD
        + "behaviour:\n  decay:\n    type: step\n    steps:\n"
        + "      - {after_days: 30, factor: 1.5}\n",
        7,
        "behaviour.decay.steps[0].factor",
        "less than or equal to 1",
    ),
    (
        HEAD
        + "behaviour:\n  decay:\n    type: step\n    steps:\n"
        + "      - {after_days: 30, factor: 0.5}\n      - {after_days: 10, factor: 0.2}\n",
        6,
        "behaviour.decay.steps",
        "must rise, got [30.0, 10.0]",
    ),
    (
        HEAD + "behaviour:\n  decay: {type: half_life}\n",
        4,
        "behaviour.decay.days",
        "required key is missing",
    ),
    (
        HEAD
        + "behaviour:\n  inactivity:\n"
        + "    - {after_days: 60, points: -10}\n    - {after_days: 30, points: -5}\n",
        4,
        "behaviour.inactivity",
        "must rise",
    ),
    (
        HEAD
        + "account:\n  stakeholders:\n    within_days: 30\n    event: []\n"
        + "    tiers: [{min_leads: 2, points: 5}]\n",
        6,
        "account.stakeholders.event",
        "at least one event type",
    ),
    (
        HEAD
        + "account:\n  stakeholders:\n    within_days: 30\n"
        + "    tiers: [{min_leads: 3, points: 5}, {min_leads: 2, points: 9}]\n",
        6,
        "account.stakeholders.tiers",
        "must rise",
    ),
    (
        HEAD
        + "behaviour:\n  rules:\n    - {name: a, event: x, points: 1}\n  velocity:\n"
        + "    - name: v\n      steps: [a, a]\n"
        + "      tiers: [{within_days: 7, points: 1}, {within_days: 3, points: 2}]\n",
        9,
        "behaviour.velocity[0].tiers",
        "fastest to slowest",
    ),
    (HEAD + "name: \n", 3, "name", "duplicate key"),
]


@pytest.mark.parametrize(
    ("text", "line", "path", "fragment"), WRONG, ids=[case[2] for case in WRONG]
)
def test_wrong_values_name_field_and_value(
    model_error: ErrorOf, text: str, line: int, path: str, fragment: str
) -> None:
    expect(model_error(text), line, path, fragment)


def test_null_name(model_error: ErrorOf) -> None:
    expect(model_error("name:\nversion: 1\n"), 1, "name", "valid string (got None)")


# --- regular expressions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regex", "fragment"),
    [
        ("'(ab'", "does not compile"),
        ("'[a-'", "does not compile"),
        ("'*a'", "does not compile"),
        ("'a(?=b)'", "look-around"),
        ("'(?<!a)b'", "look-around"),
        ("'(a)\\1'", "back-reference"),
        ("'(?P<x>a)(?P=x)'", "back-reference"),
        ("'(?>a)'", "atomic group"),
        ("'a++'", "possessive quantifier"),
        ("'a\\Z'", "\\Z"),
        ("'(?x) a b'", "inline flag"),
    ],
)
def test_bad_regex(model_error: ErrorOf, regex: str, fragment: str) -> None:
    message = model_error(fit_when(f"{{field: job_title, regex: {regex}}}"))
    expect(message, 6, "fit.rules[0].when.regex", fragment)


# --- checks across the model ------------------------------------------------------------------


def test_duplicate_names_across_sections(model_error: ErrorOf) -> None:
    text = y("""
        name: m
        version: 1
        fit:
          rules:
            - name: pricing
              when: {field: x, exists: true}
              points: 1
        behaviour:
          rules:
            - name: visit
              event: page_view
              points: 1
          frequency:
            - name: pricing
              event: page_view
              min_count: 3
              within_days: 7
              points: 5
        """)
    expect(
        model_error(text),
        14,
        "behaviour.frequency[0].name",
        "duplicate name 'pricing', already used at fit.rules[0]",
    )


def test_duplicate_name_between_interest_and_rule(model_error: ErrorOf) -> None:
    text = HEAD + y("""
        behaviour:
          rules:
            - {name: crm, event: download, points: 1}
        interests:
          - name: crm
            where: {field: topic, equals: crm}
        """)
    expect(model_error(text), 7, "interests[0].name", "already used at behaviour.rules[0]")


def test_velocity_step_naming_an_unknown_rule(model_error: ErrorOf) -> None:
    text = HEAD + y("""
        behaviour:
          rules:
            - {name: webinar, event: webinar_attended, points: 1}
            - {name: demo, event: demo_request, points: 1}
          velocity:
            - name: fast
              steps:
                - webinar
                - demo_requst
              tiers: [{within_days: 7, points: 5}]
        """)
    expect(
        model_error(text),
        11,
        "behaviour.velocity[0].steps[1]",
        "step 'demo_requst' is not a behaviour rule (known: demo, webinar)",
    )


def test_velocity_step_naming_a_fit_rule(model_error: ErrorOf) -> None:
    text = HEAD + y("""
        fit:
          rules: [{name: ceo, when: {field: job_title, equals: ceo}, points: 1}]
        behaviour:
          rules: [{name: demo, event: demo_request, points: 1}]
          velocity:
            - {name: v, steps: [ceo, demo], tiers: [{within_days: 7, points: 5}]}
        """)
    expect(model_error(text), 8, "behaviour.velocity[0].steps[0]", "'ceo' is not a behaviour rule")


@pytest.mark.parametrize(
    ("bands", "fragment"),
    [
        ("[{grade: A, min: 10}, {grade: B, min: 20}, {grade: C}]", "must fall from first to last"),
        ("[{grade: A, min: 10}, {grade: B, min: 10}, {grade: C}]", "must fall from first to last"),
        ("[{grade: A, min: 10}, {grade: B}, {grade: C}]", "every grade but the last needs `min`"),
        ("[{grade: A, min: 10}, {grade: B, min: 5}]", "the last grade is the default"),
        ("[{grade: '', min: 10}, {grade: B}]", "at least 1 character"),
    ],
)
def test_grades_out_of_order(model_error: ErrorOf, bands: str, fragment: str) -> None:
    message = model_error(HEAD + f"fit:\n  grades: {bands}\n")
    assert message.startswith("model.yaml:4: fit.grades"), message
    assert fragment in message


@pytest.mark.parametrize(
    ("levels", "fragment"),
    [
        ("[{level: 1, min: 10}, {level: 2, min: 20}, {level: 3}]", "must fall from first to last"),
        ("[{level: 1, min: 10}, {level: 2}, {level: 3}]", "every engagement level but the last"),
        ("[{level: 1, min: 10}, {level: 2, min: 0}]", "the last engagement level is the default"),
    ],
)
def test_engagement_out_of_order(model_error: ErrorOf, levels: str, fragment: str) -> None:
    expect(model_error(HEAD + f"engagement: {levels}\n"), 3, "engagement", fragment)


@pytest.mark.parametrize(
    ("tiers", "fragment"),
    [
        ("{behaviour_max: 100}", "behaviour_max (100) must be below factor_points (100)"),
        ("{factor_points: 200}", "factor_points x max_factors (1800) must be below persona_points"),
        ("{max_factors: 10}", "(1000) must be below persona_points (1000)"),
        ("{persona_points: 0}", "greater than 0"),
    ],
)
def test_tiers_whose_order_is_not_guaranteed(
    model_error: ErrorOf, tiers: str, fragment: str
) -> None:
    message = model_error(HEAD + f"tiers: {tiers}\n")
    assert message.startswith("model.yaml:3: tiers"), message
    assert fragment in message


def test_tiered_fit_rules(model_error: ErrorOf) -> None:
    base = HEAD + "tiers: {}\nfit:\n  rules:\n    - name: a\n      when: {field: x, exists: true}\n"
    expect(model_error(base), 6, "fit.rules[0]", "tiered models need `tier: persona`")
    expect(
        model_error(base + "      tier: persona\n      points: 5\n"),
        9,
        "fit.rules[0].points",
        "the tier sets the points",
    )
    expect(
        model_error(base + "      tier: boss\n"), 8, "fit.rules[0].tier", "'persona' or 'factor'"
    )
    assert parse_model(base + "      tier: factor\n").fit.rules[0].tier == "factor"


def test_untiered_fit_rules(model_error: ErrorOf) -> None:
    base = HEAD + "fit:\n  rules:\n    - name: a\n      when: {field: x, exists: true}\n"
    expect(model_error(base), 5, "fit.rules[0]", "`points` is required")
    expect(
        model_error(base + "      points: 1\n      tier: persona\n"),
        8,
        "fit.rules[0].tier",
        "needs a `tiers` section",
    )


def test_routing_names_unknown_grade_or_level(model_error: ErrorOf) -> None:
    text = HEAD + y("""
        fit:
          grades: [{grade: A, min: 10}, {grade: B}]
        engagement: [{level: 1, min: 10}, {level: 2}]
        routing:
          - when: {grade: [A], engagement: [1]}
          - when: {grade: [a]}
        """)
    expect(
        model_error(text),
        8,
        "routing[1].when.grade[0]",
        "'a' is not one of the model's grade values (A, B)",
    )
    text = HEAD + "routing:\n  - when: {engagement: [1]}\n"
    expect(model_error(text), 4, "routing[0].when.engagement[0]", "(none defined)")


# --- missing parts, empty and odd files -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "path"),
    [
        ("version: 1\n", 1, "name"),
        ("name: m\n", 1, "version"),
        ("# a comment first\nname: m\n", 2, "version"),
        (
            HEAD + "fit:\n  rules:\n    - when: {field: x, exists: true}\n      points: 1\n",
            5,
            "fit.rules[0].name",
        ),
        (
            HEAD + "behaviour:\n  rules:\n    - {name: a, points: 1}\n",
            5,
            "behaviour.rules[0].event",
        ),
        (HEAD + "interests:\n  - name: crm\n", 4, "interests[0].where"),
    ],
)
def test_missing_keys(model_error: ErrorOf, text: str, line: int, path: str) -> None:
    expect(model_error(text), line, path, "required key is missing")


def test_both_name_and_version_missing_are_reported(model_error: ErrorOf) -> None:
    message = model_error("kind: b2b\n")
    expect(message, 1, "name", "required")
    expect(message, 1, "version", "required")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(model_error: ErrorOf, text: str) -> None:
    assert model_error(text) == (
        "model.yaml: the file is empty; a model needs at least `name` and `version`"
    )


@pytest.mark.parametrize("text", ["- name: m\n", "just text\n", "42\n"])
def test_not_a_mapping(model_error: ErrorOf, text: str) -> None:
    assert model_error(text).startswith("model.yaml:1: a model is a mapping of keys")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ModelError, match=r"nope\.yaml: no such model file"):
        load_model(path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read the model file"):
        load_model(tmp_path)


def test_non_utf8_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: m\nversion: 1\ndescription: Größe\n".encode("latin-1"))
    with pytest.raises(ModelError) as caught:
        load_model(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: not UTF-8 text"), message
    assert "save it as UTF-8" in message


def test_load_model_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        HEAD + "fit:\n  rules:\n    - name: a\n      when: {field: x}\n      points: 1\n"
    )
    with pytest.raises(ModelError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}:6: fit.rules[0].when: ")


def test_several_problems_are_all_reported(model_error: ErrorOf) -> None:
    text = HEAD + y("""
        fit:
          rules:
            - name: a
              when: {field: x, gt: many}
              points: lots
        behaviour:
          decay: {type: half_life, days: 0}
        """)
    message = model_error(text)
    assert len(message.splitlines()) == 3, message
    expect(message, 6, "fit.rules[0].when.gt", "got 'many'")
    expect(message, 7, "fit.rules[0].points", "got 'lots'")
    expect(message, 9, "behaviour.decay.days", "greater than 0")


def test_model_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_model("")


def test_round_trip_of_a_dumped_model() -> None:
    text = HEAD + y("""
        fit:
          rules:
            - name: ceo
              when: {field: job_title, regex: 'ceo|chief'}
              points: 20
          grades: [{grade: A, min: 20}, {grade: B}]
        behaviour:
          decay: {type: step, steps: [{after_days: 30, factor: 0.5}]}
          rules:
            - name: visit
              event: [page_view, chat]
              points: 1.5
              max_per: {count: 2, period: week}
        """)
    model = parse_model(text)
    dumped = yaml.safe_dump(model.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert parse_model(dumped) == model
