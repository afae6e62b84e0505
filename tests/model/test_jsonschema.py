"""The JSON Schema of model files: its shape, and that every example model satisfies it.

The examples are validated with the `jsonschema` package when it is installed, and always
with the small validator below, which knows exactly the keywords the schema uses (and fails
on any other, so that it cannot pass a schema it does not understand).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from leadscore.model import model_json_schema
from leadscore.model.conditions import OPERATORS

MODELS = sorted((Path(__file__).resolve().parents[2] / "models").glob("*.yaml"))
ANNOTATIONS = {"title", "description", "default", "discriminator", "$schema", "$id", "$defs"}
Keys = Callable[[type[BaseModel]], list[str]]


class Invalid(Exception):
    """The instance does not satisfy the schema."""


def _type_ok(value: Any, kind: str) -> bool:
    return {
        "object": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
        "string": lambda: isinstance(value, str),
        "boolean": lambda: isinstance(value, bool),
        "null": lambda: value is None,
        "integer": lambda: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda: isinstance(value, int | float) and not isinstance(value, bool),
    }[kind]()


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "") -> None:
    """Raise Invalid unless `value` satisfies `schema` (the subset of 2020-12 pydantic emits)."""
    unknown = set(schema) - ANNOTATIONS - set(CHECKS)
    if unknown:
        raise AssertionError(f"the test validator does not know {sorted(unknown)} at {at}")
    for keyword in schema:
        if keyword in CHECKS:
            CHECKS[keyword](value, schema, root, at)


def _ref(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    ref = schema["$ref"]
    assert ref.startswith("#/$defs/"), ref
    validate(value, root["$defs"][ref.removeprefix("#/$defs/")], root, at)


def _type(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_type_ok(value, k) for k in kinds):
        raise Invalid(f"{at}: {value!r} is not of type {kinds}")


def _properties(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if isinstance(value, dict):
        for key, sub in schema["properties"].items():
            if key in value:
                validate(value[key], sub, root, f"{at}.{key}")


def _additional(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    assert schema["additionalProperties"] is False
    if isinstance(value, dict):
        extra = set(value) - set(schema.get("properties", {}))
        if extra:
            raise Invalid(f"{at}: unexpected keys {sorted(extra)}")


def _required(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if isinstance(value, dict):
        missing = [k for k in schema["required"] if k not in value]
        if missing:
            raise Invalid(f"{at}: missing {missing}")


def _items(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if isinstance(value, list):
        start = len(schema.get("prefixItems", []))
        for i, item in enumerate(value[start:], start):
            validate(item, schema["items"], root, f"{at}[{i}]")


def _prefix(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if isinstance(value, list):
        for i, (item, sub) in enumerate(zip(value, schema["prefixItems"], strict=False)):
            validate(item, sub, root, f"{at}[{i}]")


def _any_of(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    count, why = _matching(value, schema["anyOf"], root, at)
    if count < 1:
        raise Invalid(f"{at}: {value!r} matches none of anyOf ({'; '.join(why)})")


def _one_of(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    count, why = _matching(value, schema["oneOf"], root, at)
    if count != 1:
        raise Invalid(f"{at}: {value!r} matches {count} of oneOf ({'; '.join(why)})")


def _matching(
    value: Any, options: list[dict[str, Any]], root: dict[str, Any], at: str
) -> tuple[int, list[str]]:
    count, why = 0, []
    for option in options:
        try:
            validate(value, option, root, at)
        except Invalid as exc:
            why.append(str(exc))
            continue
        count += 1
    return count, why


def _bound(name: str, ok: Callable[[Any, Any], bool]) -> Callable[..., None]:
    def check(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
        limit = schema[name]
        if name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            measured = value if _type_ok(value, "number") else None
        elif name in ("minLength", "maxLength"):
            measured = len(value) if isinstance(value, str) else None
        elif name in ("minItems", "maxItems"):
            measured = len(value) if isinstance(value, list) else None
        else:
            measured = len(value) if isinstance(value, dict) else None
        if measured is not None and not ok(measured, limit):
            raise Invalid(f"{at}: {value!r} fails {name} {limit}")

    return check


def _enum(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if value not in schema["enum"]:
        raise Invalid(f"{at}: {value!r} not in {schema['enum']}")


def _const(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str) -> None:
    if value != schema["const"]:
        raise Invalid(f"{at}: {value!r} is not {schema['const']!r}")


CHECKS: dict[str, Callable[..., None]] = {
    "$ref": _ref,
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "required": _required,
    "items": _items,
    "prefixItems": _prefix,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "enum": _enum,
    "const": _const,
    "minimum": _bound("minimum", lambda v, lim: v >= lim),
    "maximum": _bound("maximum", lambda v, lim: v <= lim),
    "exclusiveMinimum": _bound("exclusiveMinimum", lambda v, lim: v > lim),
    "exclusiveMaximum": _bound("exclusiveMaximum", lambda v, lim: v < lim),
    "minLength": _bound("minLength", lambda v, lim: v >= lim),
    "maxLength": _bound("maxLength", lambda v, lim: v <= lim),
    "minItems": _bound("minItems", lambda v, lim: v >= lim),
    "maxItems": _bound("maxItems", lambda v, lim: v <= lim),
    "minProperties": _bound("minProperties", lambda v, lim: v >= lim),
    "maxProperties": _bound("maxProperties", lambda v, lim: v <= lim),
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The schema, as a JSON round trip (what an editor would read from a file)."""
    result: dict[str, Any] = json.loads(json.dumps(model_json_schema()))
    return result


def _instance(path: Path) -> Any:
    # Editors validate the YAML as written; dates and such do not occur in models.
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the schema itself ------------------------------------------------------------------------


def test_schema_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"name", "version"}
    assert schema["additionalProperties"] is False


def test_schema_is_fresh_each_time() -> None:
    first = model_json_schema()
    first["$defs"]["Leaf"]["properties"].clear()
    assert model_json_schema()["$defs"]["Leaf"]["properties"]


def test_properties_are_the_yaml_keys_of_every_class(
    schema: dict[str, Any], model_classes: dict[str, type[BaseModel]], model_keys: Keys
) -> None:
    defs = schema["$defs"]
    for name, cls in model_classes.items():
        found = schema if name == "ScoringModel" else defs[name]
        assert list(found["properties"]) == model_keys(cls), name
        assert found["additionalProperties"] is False, name
        required = [
            field.alias or key for key, field in cls.model_fields.items() if field.is_required()
        ]
        assert sorted(found.get("required", [])) == sorted(required), name
    assert set(defs) == set(model_classes) - {"ScoringModel"}


def test_aliases_not_python_names(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert '"in_"' not in text and '"not_"' not in text
    assert "in" in schema["$defs"]["Leaf"]["properties"]
    assert "not" in schema["$defs"]["Not"]["properties"]


def test_leaf_has_field_and_exactly_one_operator(schema: dict[str, Any]) -> None:
    leaf = schema["$defs"]["Leaf"]
    assert leaf["required"] == ["field"]
    assert leaf["minProperties"] == leaf["maxProperties"] == 2
    assert set(leaf["properties"]) == {"field", *OPERATORS}
    for op in OPERATORS:
        assert "null" not in json.dumps(leaf["properties"][op]), op


def test_numbers_accepted_where_yaml_authors_write_them(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    assert schema["properties"]["version"]["type"] == ["string", "number"]
    assert defs["GradeBand"]["properties"]["grade"]["type"] == ["string", "number"]
    assert defs["EngagementLevel"]["properties"]["level"]["type"] == ["string", "number"]


def test_decay_is_chosen_by_type(schema: dict[str, Any]) -> None:
    decay = schema["$defs"]["Behaviour"]["properties"]["decay"]
    assert decay["discriminator"]["propertyName"] == "type"
    assert set(decay["discriminator"]["mapping"]) == {"half_life", "linear", "step", "none"}


def test_schema_is_valid_draft_2020_12(schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)


# --- the examples against the schema ----------------------------------------------------------


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_example_satisfies_the_schema(schema: dict[str, Any], path: Path) -> None:
    validate(_instance(path), schema, schema)


@pytest.mark.parametrize("path", MODELS, ids=[p.name for p in MODELS])
def test_example_satisfies_the_schema_per_jsonschema(schema: dict[str, Any], path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator(schema).validate(_instance(path))


@pytest.mark.parametrize(
    ("instance", "why"),
    [
        ({"version": "1"}, "missing"),
        ({"name": "m", "version": "1", "colour": "red"}, "unexpected keys"),
        ({"name": "m", "version": "1", "kind": "b2x"}, "not in"),
        (
            {
                "name": "m",
                "version": "1",
                "fit": {"rules": [{"name": "a", "when": {"field": "x"}}]},
            },
            "oneOf",
        ),
        (
            {
                "name": "m",
                "version": "1",
                "fit": {
                    "rules": [{"name": "a", "when": {"field": "x", "gt": 1, "lt": 2}, "points": 1}]
                },
            },
            "oneOf",
        ),
        ({"name": "m", "version": "1", "behaviour": {"decay": {"type": "half_life"}}}, "oneOf"),
        ({"name": "m", "version": "1", "tiers": {"persona_points": 0}}, "exclusiveMinimum"),
        ({"name": "m", "version": math.pi, "interests": [{"name": "i"}]}, "missing"),
    ],
)
def test_schema_rejects_bad_models(schema: dict[str, Any], instance: Any, why: str) -> None:
    with pytest.raises(Invalid, match=why):
        validate(instance, schema, schema)
