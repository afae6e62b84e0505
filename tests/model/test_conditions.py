"""Conditions: leaves with exactly one operator, all/any/not, RE2-portable regexes."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from leadscore.model import All, AnyOf, Condition, Leaf, Not, fields_of, parse_model
from leadscore.model.conditions import (
    OPEN_BRACE,
    OPERATORS,
    READ_DIFFERENTLY,
    SET_OPERATION,
    unportable_regex,
)

ErrorOf = Callable[..., str]
CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def condition(data: Any) -> Condition:
    """A condition validated from plain data, as the loader would build it."""
    return CONDITION.validate_python(data)


# --- leaves -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "op", "value"),
    [
        ({"field": "country", "equals": "DE"}, "equals", "DE"),
        ({"field": "employees", "equals": 50}, "equals", 50),
        ({"field": "active", "equals": False}, "equals", False),
        ({"field": "country", "in": ["DE", "AT"]}, "in", ["DE", "AT"]),
        ({"field": "job_title", "contains": "head"}, "contains", "head"),
        ({"field": "job_title", "regex": "ceo|chief"}, "regex", "ceo|chief"),
        ({"field": "employees", "gt": 10}, "gt", 10.0),
        ({"field": "employees", "gte": 10}, "gte", 10.0),
        ({"field": "employees", "lt": 10}, "lt", 10.0),
        ({"field": "employees", "lte": 10.5}, "lte", 10.5),
        ({"field": "employees", "between": [10, 20]}, "between", (10.0, 20.0)),
        ({"field": "email", "exists": False}, "exists", False),
    ],
)
def test_leaf_has_one_operator(data: dict[str, Any], op: str, value: Any) -> None:
    leaf = condition(data)
    assert isinstance(leaf, Leaf)
    assert (leaf.op, leaf.value) == (op, value)
    assert leaf.operand(op) == value
    assert all(leaf.operand(other) is None for other in OPERATORS if other != op)


def test_equals_keeps_the_type_written() -> None:
    # `equals: 1` and `equals: "1"` differ: a number column compares numbers.
    assert condition({"field": "x", "equals": 1}).value == 1  # type: ignore[union-attr]
    assert condition({"field": "x", "equals": "1"}).value == "1"  # type: ignore[union-attr]
    assert condition({"field": "x", "equals": True}).value is True  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        {"field": "x"},
        {"field": "x", "equals": 1, "in": [1]},
        {"field": "x", "gt": 1, "lt": 5},
        {"field": "x", "exists": True, "regex": "a"},
    ],
)
def test_leaf_needs_exactly_one_operator(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="needs exactly one operator"):
        condition(data)


@pytest.mark.parametrize("op", ["equals", "in", "contains", "gt", "between", "exists"])
def test_a_null_operand_says_null_is_no_value_and_points_to_exists(op: str) -> None:
    # `equals: null` read as "no operator given" was reported as "found none"
    with pytest.raises(ValidationError) as caught:
        condition({"field": "email", op: None})
    message = str(caught.value)
    assert f"`{op}: null` on field 'email': null is not a value to compare with" in message
    assert "write `exists: false`" in message and "found none" not in message


def test_exists_false_counts_as_an_operator() -> None:
    leaf = condition({"field": "email", "exists": False})
    assert isinstance(leaf, Leaf) and leaf.op == "exists" and leaf.value is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"field": "x", "in": []}, "at least one value"),
        ({"field": "x", "between": [3, 1]}, "low <= high"),
        ({"field": "x", "between": [1, 2, 3]}, "at most 2 items"),
        ({"field": "x", "regex": "("}, "does not compile"),
        ({"field": "x", "equalz": 1}, "unknown key 'equalz'"),
        ({"all": [], "field": "x"}, "unknown key 'field'"),
        ({"all": []}, "at least 1 item"),
        ({"any": []}, "at least 1 item"),
        ({"not": "x"}, "a condition must be a mapping"),
        ("field: x", "a condition must be a mapping"),
    ],
)
def test_bad_conditions(data: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        condition(data)


def test_between_is_inclusive_pair() -> None:
    leaf = condition({"field": "employees", "between": [200, 200]})
    assert isinstance(leaf, Leaf) and leaf.value == (200.0, 200.0)


# --- combinations -----------------------------------------------------------------------------


def test_nested_combinations() -> None:
    cond = condition(
        {
            "all": [
                {"field": "job_title", "regex": "head|director"},
                {
                    "any": [
                        {"field": "account.employees", "gte": 200},
                        {"not": {"field": "email", "regex": "@gmail\\."}},
                    ]
                },
            ]
        }
    )
    assert isinstance(cond, All)
    inner = cond.all[1]
    assert isinstance(inner, AnyOf)
    assert isinstance(inner.any[1], Not)
    assert fields_of(cond) == ["job_title", "account.employees", "email"]


def test_not_is_spelled_not_in_yaml() -> None:
    cond = condition({"not": {"field": "url", "contains": "/careers"}})
    assert isinstance(cond, Not)
    dumped = cond.model_dump(by_alias=True, exclude_none=True)
    assert dumped == {"not": {"field": "url", "contains": "/careers"}}


def test_in_is_spelled_in_yaml() -> None:
    leaf = condition({"field": "country", "in": ["DE"]})
    assert leaf.model_dump(by_alias=True, exclude_none=True) == {"field": "country", "in": ["DE"]}


def test_a_field_may_be_called_like_a_combinator() -> None:
    leaf = condition({"field": "all", "equals": "x"})
    assert isinstance(leaf, Leaf) and leaf.field == "all"


def test_conditions_are_frozen() -> None:
    leaf = condition({"field": "x", "equals": 1})
    assert isinstance(leaf, Leaf)
    with pytest.raises(ValidationError):
        leaf.field = "y"  # type: ignore[misc]


# --- regular expressions ----------------------------------------------------------------------


PORTABLE = [
    "ceo|chief executive",
    "^/pricing",
    "/product/[a-z-]+$",
    r"\b(vp|head of)\b",
    r"@(gmail|yahoo)\.",
    "(?i)ceo",
    "(?i:ceo)",
    "(?:a|b)+",
    "(?P<name>a)",
    "a+?",
    "x{2,}?",
    "a{2}",
    "a{}",
    "{}+",
    r"\x41",
    r"[\0]",
    r"\A",
    "[(?=]",
    "[^]a]+",
    r"[\]]+",
    r"a\\1",
    r"\123",
    r"\d+\s*\w",
    "",
]


@pytest.mark.parametrize("pattern", PORTABLE)
def test_portable_regexes(pattern: str) -> None:
    assert unportable_regex(pattern) is None
    assert isinstance(condition({"field": "x", "regex": pattern}), Leaf)


UNPORTABLE = [
    ("a(?=b)", "look-around"),
    ("a(?!b)", "look-around"),
    ("(?<=a)b", "look-around"),
    ("(?<!a)b", "look-around"),
    (r"(a)\1", "a back-reference"),
    ("(?P<x>a)(?P=x)", "a back-reference"),
    ("(?>a)", "an atomic group"),
    ("a++", "a possessive quantifier"),
    ("a*+", "a possessive quantifier"),
    ("a?+", "a possessive quantifier"),
    ("a{2}+", "a possessive quantifier"),
    ("(?:ab)++", "a possessive quantifier"),
    (r"a\Z", r"\Z (write $ instead)"),
    ("(?x)a b", "the inline flag(s) x"),
    ("(?a)a", "the inline flag(s) a"),
    ("(?#note)a", "a comment group"),
    ("[[:alpha:]]+", SET_OPERATION),
    ("[a[:digit:]]", SET_OPERATION),
    ("[a-z--]", SET_OPERATION),
    ("[a&&b]", SET_OPERATION),
    ("[a||b]", SET_OPERATION),
    ("[a~~b]", SET_OPERATION),
    ("a{,3}", OPEN_BRACE),
    ("a{,}", OPEN_BRACE),
    (r"[-\b]", "\\b inside a [...] set (write \\x08)"),
    (r"[\1]", "an octal escape like \\1 (write \\x01)"),
    (r"\u0041", "the escape \\u (write the character itself)"),
    (r"[\U00000041]", "the escape \\U (write the character itself)"),
    (r"\N{DIGIT ONE}", "the escape \\N (write the character itself)"),
]


@pytest.mark.parametrize(("pattern", "what"), UNPORTABLE)
def test_unportable_regexes(pattern: str, what: str) -> None:
    assert unportable_regex(pattern) == what
    how = "read differently" if what in READ_DIFFERENTLY else "do not support"
    with pytest.raises(ValidationError, match=f"which SQL engines \\(RE2\\) {how}"):
        condition({"field": "x", "regex": pattern})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_escaped_text_is_always_portable(text: str) -> None:
    assert unportable_regex(re.escape(text)) is None


def _compiles(pattern: str) -> bool:
    """Whether Python's re compiles the pattern (the scan is only asked about those)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except (re.error, OverflowError, RecursionError):
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab()[]?*+{}|^$.\\=!<>:P1Z-", max_size=12))
def test_the_scan_never_fails_on_compiling_patterns(pattern: str) -> None:
    if not _compiles(pattern):
        return
    result = unportable_regex(pattern)
    assert result is None or isinstance(result, str)


# --- errors in a model file name file, line and path ------------------------------------------


def test_condition_errors_in_a_file(model_error: ErrorOf) -> None:
    text = (
        "name: m\n"
        "version: 1\n"
        "interests:\n"
        "  - name: crm\n"
        "    where:\n"
        "      any:\n"
        "        - {field: topic, equals: crm}\n"
        "        - {field: url, regex: '(?=crm)'}\n"
    )
    message = model_error(text, "interests.yaml")
    assert message == (
        "interests.yaml:8: interests[0].where.any[1].regex: regular expression '(?=crm)' uses "
        "look-around, which SQL engines (RE2) do not support"
    )


# --- round trip: generated valid conditions survive YAML dump -> parse_model ------------------

FIELD = st.from_regex(r"(account\.)?[a-z][a-z_]{0,12}", fullmatch=True)
TEXT = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\x85"),
    max_size=20,
)
NUMBER = st.one_of(
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
)
SCALAR = st.one_of(TEXT, st.integers(min_value=-(10**9), max_value=10**9), NUMBER, st.booleans())
REGEX = st.one_of(
    TEXT.map(re.escape),
    st.sampled_from(["ceo|chief", "^/pricing", r"\b(vp|head)\b", "[a-z]+$", "(?i)x{2,3}"]),
)


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    """A valid leaf as plain data."""
    op = draw(st.sampled_from(OPERATORS))
    value: Any
    if op == "equals":
        value = draw(SCALAR)
    elif op == "in":
        value = draw(st.lists(SCALAR, min_size=1, max_size=4))
    elif op == "contains":
        value = draw(TEXT)
    elif op == "regex":
        value = draw(REGEX)
    elif op == "between":
        value = sorted(draw(st.lists(NUMBER, min_size=2, max_size=2)))
    elif op == "exists":
        value = draw(st.booleans())
    else:
        value = draw(NUMBER)
    return {"field": draw(FIELD), op: value}


CONDITIONS = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(CONDITIONS, st.booleans())
def test_valid_conditions_round_trip_through_yaml(data: dict[str, Any], flow: bool) -> None:
    model = {
        "name": "m",
        "version": "1",
        "fit": {"rules": [{"name": "r", "when": data, "points": 1}]},
        "behaviour": {"rules": [{"name": "b", "event": "page_view", "where": data, "points": 1}]},
        "interests": [{"name": "i", "where": data}],
    }
    text = yaml.safe_dump(model, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    parsed = parse_model(text, "generated.yaml")
    expected = condition(data)
    assert parsed.fit.rules[0].when == expected
    assert parsed.behaviour.rules[0].where == expected
    assert parsed.interests[0].where == expected
    # and back: the model dumps to the same YAML keys it was read from
    again = parsed.fit.rules[0].model_dump(mode="json", by_alias=True, exclude_none=True)
    assert condition(again["when"]) == expected


# --- against RE2 itself (DuckDB runs RE2) --------------------------------------------------------


@pytest.fixture(scope="module")
def re2() -> Callable[[str], bool]:
    """Whether RE2 (through DuckDB) accepts a pattern."""
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()

    def accepts(pattern: str) -> bool:
        try:
            con.execute("select regexp_matches('x', ?, 'i')", [pattern]).fetchall()
        except duckdb.Error:
            return False
        return True

    return accepts


def test_portable_examples_run_on_re2(re2: Callable[[str], bool]) -> None:
    for pattern in PORTABLE:
        assert re2(pattern), pattern


def test_unsupported_examples_fail_on_re2(re2: Callable[[str], bool]) -> None:
    for pattern, what in UNPORTABLE:
        if what not in READ_DIFFERENTLY:
            assert not re2(pattern), pattern


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab()[]?*+{}|^$.\\=!<>:P1Z-&~,2uNdswx0", max_size=10))
def test_what_passes_the_scan_runs_on_re2(re2: Callable[[str], bool], pattern: str) -> None:
    if not _compiles(pattern):
        return
    if unportable_regex(pattern) is None:
        assert re2(pattern), pattern
