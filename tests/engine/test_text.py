# ruff: noqa: RUF001  (the look-alike letters are the point of these tests)
"""Comparison semantics of conditions: Unicode text, the regex engine and wrong-typed values.

Every case runs through both engines (the reference predicates, as `explain` and the service
use them, and the batch expression on DuckDB, as `score` does) and must agree.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest

from leadscore.engine.batch_conditions import _fold_python_udf, condition_expr
from leadscore.engine.folding import casefold_tables, fold, fold_pattern
from leadscore.engine.predicates import compile_condition, compile_regex
from leadscore.engine.reference import score_many
from leadscore.model import parse_model
from leadscore.model.conditions import Leaf
from leadscore.model.scoring import ScoringModel

AS_OF = datetime(2026, 3, 2, 12, 0)

CITIES = [
    "Istanbul",
    "istanbul",
    "İstanbul",
    "ıstanbul",
    "ISTANBUL",
    "ΣΟΦΟΣ",
    "σοφος",
    "Σοφός",
    "STRASSE",
    "Straße",
    "straße",
    "Mu\u0308ller",  # NFD: u and a combining diaeresis
    "Müller",
    "MÜLLER",
    "ǰ",
    "J\u030c",
    "ﬀ",
    "KELVIN",
    "\u212aelvin",  # the Kelvin sign
    "ſtraße",  # long s
    "",
    None,
]

RULES = [
    {"field": "city", "equals": "istanbul"},
    {"field": "city", "equals": "İstanbul"},
    {"field": "city", "regex": "^istanbul$"},
    {"field": "city", "regex": "^İstanbul$"},
    {"field": "city", "regex": "^[iİı]stanbul$"},
    {"field": "city", "equals": "σοφος"},
    {"field": "city", "regex": "^σοφοσ$"},
    {"field": "city", "regex": "Σ$"},
    {"field": "city", "in": ["strasse", "x"]},
    {"field": "city", "equals": "STRAẞE"},
    {"field": "city", "contains": "ß"},
    {"field": "city", "regex": "stra(ss|ß)e"},
    {"field": "city", "regex": "^stra[ß]e$"},
    {"field": "city", "regex": "ß+"},
    {"field": "city", "regex": r"\xDF"},
    {"field": "city", "equals": "müller"},
    {"field": "city", "contains": "Mu\u0308l"},
    {"field": "city", "regex": "^m[uü]ller$"},
    {"field": "city", "regex": "^m.ller$"},
    {"field": "city", "regex": "^M[À-Ý]LLER$"},
    {"field": "city", "equals": "J\u030c"},
    {"field": "city", "regex": "^ǰ$"},
    {"field": "city", "equals": "ff"},
    {"field": "city", "regex": "^kelvin$"},
    {"field": "city", "regex": "^[a-z]+$"},
    {"field": "city", "regex": "^[^a-z]"},
    {"field": "city", "regex": "^$"},
]


def _model(rules: list[dict[str, Any]]) -> ScoringModel:
    fit = [{"name": f"r{i}", "points": 1, "when": rule} for i, rule in enumerate(rules)]
    return ScoringModel.model_validate({"name": "t", "version": "1", "fit": {"rules": fit}})


def _matches(engines: Any, rules: list[dict[str, Any]], values: list[Any]) -> dict[str, Any]:
    """Per rule, the values it matches (reference); asserts the batch engine agrees."""
    model = _model(rules)
    schema = pa.schema([("lead_id", pa.string()), ("city", pa.string())])
    leads = [{"lead_id": f"L{i}", "city": v} for i, v in enumerate(values)]
    dataset = engines.dataset(leads, [], lead_schema=schema)
    _, batch_ledger = engines.batch(model, dataset, AS_OF)
    reference = score_many(model, leads, [], AS_OF)
    ref = sorted((line.lead_id, line.rule) for r in reference for line in r.ledger)
    got = sorted((row["lead_id"], row["rule"]) for row in batch_ledger)
    assert got == ref
    by_rule: dict[str, list[Any]] = {f"r{i}": [] for i in range(len(rules))}
    for lead_id, rule in ref:
        by_rule[rule].append(values[int(lead_id[1:])])
    return {repr(rules[int(k[1:])]): v for k, v in by_rule.items()}


def test_score_and_explain_agree_on_non_ascii_text(engines: Any) -> None:
    found = _matches(engines, RULES, CITIES)

    def hits(rule: dict[str, Any]) -> list[Any]:
        return sorted(found[repr(rule)], key=str)

    # dotted and dotless i are letters of their own: neither folds to plain i
    assert hits(RULES[0]) == sorted(["Istanbul", "istanbul", "ISTANBUL"])
    assert hits(RULES[1]) == ["İstanbul"]
    assert hits(RULES[2]) == hits(RULES[0])
    assert hits(RULES[3]) == ["İstanbul"]
    # a set holds what its members fold to: İ there also matches the i and dot it folds to
    assert hits(RULES[4]) == sorted(CITIES[:5])
    # final and capital sigma fold to small sigma; an accent is not folded away
    assert hits(RULES[5]) == sorted(["ΣΟΦΟΣ", "σοφος"])
    assert hits(RULES[6]) == hits(RULES[5])
    assert hits(RULES[7]) == sorted(["ΣΟΦΟΣ", "σοφος", "Σοφός"])
    # ß folds to ss, in the data and in the model
    strasse = sorted(["STRASSE", "Straße", "straße", "ſtraße"])
    assert hits(RULES[8]) == hits(RULES[9]) == hits(RULES[10]) == hits(RULES[11]) == strasse
    assert hits(RULES[12]) == strasse and hits(RULES[13]) == strasse
    assert hits(RULES[14]) == strasse
    # NFD and NFC spellings are the same text
    muller = sorted(["Mu\u0308ller", "Müller", "MÜLLER"])
    assert hits(RULES[15]) == hits(RULES[16]) == hits(RULES[17]) == hits(RULES[18]) == muller
    assert hits(RULES[19]) == muller
    assert hits(RULES[20]) == hits(RULES[21]) == sorted(["ǰ", "J\u030c"])
    assert hits(RULES[22]) == ["ﬀ"]
    assert hits(RULES[23]) == sorted(["KELVIN", "\u212aelvin"])
    assert "Straße" in hits(RULES[24]) and "Müller" not in hits(RULES[24])
    assert "ΣΟΦΟΣ" in hits(RULES[25]) and "Istanbul" not in hits(RULES[25])
    assert hits(RULES[26]) == [""]


def test_events_compare_folded_text_too(engines: Any) -> None:
    model = parse_model(
        """
name: t
version: "1"
behaviour:
  rules:
    - {name: de, event: view, points: 1, where: {field: url, contains: /straße}}
    - {name: gr, event: view, points: 2, where: {field: topic, regex: '^σοφοσ$'}}
    - {name: tr, event: view, points: 4, where: {field: topic, in: [ıstanbul]}}
interests:
  - {name: m, where: {field: asset, equals: müller}}
"""
    )
    ts = AS_OF - timedelta(days=1)
    rows = [
        ("e1", "/STRASSE/1", "ΣΟΦΟΣ", "Mu\u0308ller"),
        ("e2", "/strasse", "σοφος", "MÜLLER"),
        ("e3", "/strase", "Σοφός", "muller"),
        ("e4", "/x", "ISTANBUL", None),
        ("e5", "/x", "ıstanbul", None),
    ]
    events = [
        {"event_id": e, "lead_id": "L1", "type": "view", "ts": ts, "url": u, "topic": t, "asset": a}
        for e, u, t, a in rows
    ]
    scores, _ = engines.check(model, [{"lead_id": "L1"}], events, AS_OF)
    assert scores["L1"]["behaviour"] == 1 + 1 + 2 + 2 + 4
    assert scores["L1"]["primary_interest"] == "m"


def test_fold_is_nfc_of_full_case_folding() -> None:
    assert fold("STRASSE") == fold("straße") == fold("Straße") == "strasse"
    assert (
        fold("Mu\u0308ller") == fold("MÜLLER") == "müller" == unicodedata.normalize("NFC", "müller")
    )
    assert fold("ΣΟΦΟΣ") == fold("σοφος") == "σοφοσ"
    assert fold("İstanbul") == "i\u0307stanbul" and fold("ıstanbul") == "ıstanbul"
    assert fold("J\u030c") == fold("ǰ") == "ǰ"


def test_every_character_folds_the_same_in_each_copy_of_the_definition() -> None:
    # the Python function Spark runs, and the translate()/replace() tables PostgreSQL applies
    # between two NFC normalisations, are the definition itself for every code point
    spark_fold = _fold_python_udf()
    singles_from, singles_to, multi = casefold_tables()
    table = str.maketrans(singles_from, singles_to)
    replacements = dict(multi)
    nfc = unicodedata.normalize
    for i in range(sys.maxunicode + 1):
        if 0xD800 <= i < 0xE000:
            continue
        c = chr(i)
        expected = fold(c + "x")
        assert spark_fold(c + "x") == expected, hex(i)
        sql = nfc("NFC", "".join(replacements.get(ch, ch) for ch in nfc("NFC", c + "x")))
        assert nfc("NFC", sql.translate(table)) == expected, hex(i)


@pytest.mark.parametrize(
    ("pattern", "folded"),
    [
        ("^istanbul$", "(?i)^istanbul$"),
        ("ΣΟΦΟΣ", "(?i)σοφοσ"),
        ("straße", "(?i)strasse"),
        ("ß+", "(?i)(?:ss)+"),
        ("[a-zß]", "(?i)(?:[a-zß]|ss)"),
        ("[^ß]", "(?i)[^ß]"),
        (r"\xDF\.", r"(?i)ss\."),
        ("(?P<Name>AB)", "(?i)(?P<Name>ab)"),
        ("(?s)A.b", "(?is)a.b"),
        (r"\bCEO\b|\w+\d", r"(?i)\bceo\b|\w+\d"),
        ("[Ä-Ö]", "(?i)[Ä-Öäåæçèéêëìíîïðñòóôõö]"),
        ("Mu\u0308ller", "(?i)müller"),
        ("a{2}{", r"(?i)a{2}\{"),
    ],
)
def test_patterns_are_folded_as_text_is(pattern: str, folded: str) -> None:
    assert fold_pattern(pattern) == folded
    compile_regex(pattern)  # RE2 reads what the rewriting gives


def test_a_pathological_pattern_runs_in_linear_time() -> None:
    # Python's backtracking `re` takes seconds for 25 characters here (and doubles with each
    # one more); the service held its write lock meanwhile
    leaf = Leaf.model_validate({"field": "job_title", "regex": "(x+x+)+y"})
    predicate = compile_condition(leaf)
    done: list[bool] = []
    start = time.perf_counter()
    worker = threading.Thread(target=lambda: done.append(predicate({"job_title": "x" * 25})))
    worker.start()
    worker.join(timeout=5)
    assert done == [False], "the match did not finish within 5 s"
    assert time.perf_counter() - start < 0.5
    assert predicate({"job_title": "x" * 100_000 + "y"}) is True


# --- wrong-typed values ---------------------------------------------------------------------

ODD_VALUES: list[Any] = [
    "many",
    "",
    "12",
    "-2.5",
    "1e3",
    " 12",
    "12\n",
    "true",
    "True",
    "1",
    "1.0",
    12,
    5,
    1,
    0,
    1.0,
    2.5,
    -0.0,
    math.nan,
    math.inf,
    True,
    False,
    ["a", 12],
    {"a": 1},
    None,
]

LEAVES: list[dict[str, Any]] = [
    {"gt": 10},
    {"gte": 1},
    {"lt": 3},
    {"lte": 1},
    {"between": [0, 20]},
    {"contains": "1"},
    {"contains": "tru"},
    {"regex": "^1"},
    {"regex": "^(t|f)"},
    {"equals": 1},
    {"equals": 1.0},
    {"equals": "1"},
    {"equals": True},
    {"equals": "true"},
    {"in": [12, "many"]},
    {"in": [False, 0]},
    {"exists": True},
    {"exists": False},
]


def _compiled(op: dict[str, Any]) -> Any:
    return compile_condition(Leaf.model_validate({"field": "seats", **op}))


@pytest.mark.parametrize("op", LEAVES, ids=[repr(o) for o in LEAVES])
def test_a_value_of_any_type_never_raises(op: dict[str, Any]) -> None:
    predicate = _compiled(op)
    for value in ODD_VALUES:
        assert predicate({"seats": value}) in (True, False), value
        assert predicate({}) is ("exists" in op and not op["exists"])


def test_the_rules_for_wrong_typed_values() -> None:
    def holds(op: dict[str, Any], value: Any) -> bool:
        return bool(_compiled(op)({"seats": value}))

    # a number operator reads numbers, and text that is a decimal number
    assert not holds({"gt": 10}, "many")
    assert holds({"gt": 10}, "12") and holds({"gt": 10}, 12) and not holds({"gt": 10}, 5)
    assert holds({"between": [-3, 0]}, "-2.5")
    for not_a_number in ("1e3", " 12", "12\n", "", True, math.nan, ["a", 12], {"a": 1}):
        assert not holds({"gte": -100}, not_a_number), not_a_number
    assert holds({"gt": 10}, math.inf)
    # a text operator reads a number or true/false as its text
    assert holds({"contains": "1"}, 12) and holds({"regex": "^1"}, 1.0)
    assert holds({"contains": "tru"}, True) and not holds({"contains": "1"}, ["a", 12])
    # equals: numbers with numbers, flags with flags, either with text by its text
    assert holds({"equals": 1}, 1.0) and holds({"equals": 1}, "1") and holds({"equals": "1"}, 1)
    assert not holds({"equals": 1}, True) and not holds({"equals": True}, 1)
    assert holds({"equals": True}, "true") and holds({"equals": "true"}, True)
    assert not holds({"in": [False, 0]}, "0.0") and holds({"in": [False, 0]}, -0.0)
    assert not holds({"equals": 1}, "1.0") and not holds({"equals": 1}, ["1"])
    assert holds({"exists": True}, {"a": 1}) and not holds({"exists": False}, [])


def test_one_lead_with_a_wrong_typed_value_does_not_stop_scoring() -> None:
    model = _model([{"field": "seats", "gt": 10}, {"field": "plan", "contains": "pro"}])
    leads: list[dict[str, Any]] = [
        {"lead_id": "A", "seats": "many", "plan": 5},
        {"lead_id": "B", "seats": 50, "plan": "Pro"},
        {"lead_id": "C", "seats": [1], "plan": {"x": "pro"}},
    ]
    totals = {r.lead_id: r.total for r in score_many(model, leads, [], AS_OF)}
    assert totals == {"A": 0, "B": 2, "C": 0}


COLUMNS: dict[str, tuple[pa.DataType, list[Any]]] = {
    "text": (pa.string(), ["many", "", "12", "-2.5", "1e3", " 12", "12\n", "true", "1", "1.0"]),
    "int": (pa.int64(), [12, 5, 1, 0, -3]),
    "float": (pa.float64(), [1.0, 2.5, -0.0, math.nan, math.inf, 12.0]),
    "bool": (pa.bool_(), [True, False]),
}


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_batch_reads_each_column_type_as_the_reference_does(engines: Any, column: str) -> None:
    # what a column of this type can hold, under every operator (also those `check` refuses
    # for the column's type: the expressions are total as the predicates are)
    dtype, values = COLUMNS[column]
    rows = [{"k": i, "seats": v} for i, v in enumerate([*values, None])]
    con = engines.con
    table = engines.table("odd", pa.schema([("k", pa.int64()), ("seats", dtype)]), rows)
    compared = 0
    for op in LEAVES:
        leaf = Leaf.model_validate({"field": "seats", **op})
        if not _batch_defines(column, op):
            continue
        expr = table.select("k", hit=condition_expr(leaf, lambda name: table[name])).order_by("k")
        got = [r["hit"] for r in con.to_pyarrow(expr).to_pylist()]
        predicate = compile_condition(leaf)
        want = [predicate(row) for row in rows]
        assert got == want, (column, op)
        compared += 1
    assert compared >= 3


def _batch_defines(column: str, op: dict[str, Any]) -> bool:
    """Whether the batch engine evaluates `op` on a column of this type (else `check` refuses)."""
    operands = op.get("in", [op.get("equals")])
    if column == "text":
        return True  # number operators read the decimal numbers a text holds
    if set(op) & {"contains", "regex"}:
        return False  # a number's text differs between engines (1.0 is "1" in PostgreSQL)
    if column == "bool":
        numeric = set(op) & {"gt", "gte", "lt", "lte", "between"}
        return not numeric and all(isinstance(v, bool) for v in operands if v is not None)
    return not any(isinstance(v, str | bool) for v in operands)


def test_a_pattern_re2_refuses_does_not_load() -> None:
    # Python's `re` takes `a{1001}`; RE2, which every path runs, does not: refused at load,
    # not when the service first scores a lead
    with pytest.raises(ValueError, match=r"'a\{1001\}': RE2 refuses it: invalid repetition size"):
        Leaf.model_validate({"field": "job_title", "regex": "a{1001}"})
    with pytest.raises(ValueError, match=r"RE2 refuses it"):
        compile_regex("(a{1000}){1000}")


def test_once_per_tells_values_of_any_type_apart() -> None:
    model = parse_model(
        """
name: t
version: "1"
behaviour:
  rules: [{name: r, event: view, points: 1, once_per: asset}]
"""
    )
    ts = AS_OF - timedelta(days=1)
    assets: list[Any] = [["a"], ["a"], {"k": 1}, True, 1, 1.0, "1", None]
    events = [
        {"event_id": f"e{i}", "lead_id": "L1", "type": "view", "ts": ts, "asset": a}
        for i, a in enumerate(assets)
    ]
    (result,) = score_many(model, [{"lead_id": "L1"}], events, AS_OF)
    # ["a"] once, {"k": 1}, true, 1 (and 1.0, the same number), "1", and the empty one
    assert result.behaviour == 6
