"""The JSON Schema of a scoring model file, for editors and other tools.

Point the YAML language server at a saved copy with a first line such as
`# yaml-language-server: $schema=./scoring-model.schema.json`. The schema checks the shape
of a model (keys, types, allowed words); `leadscore check` also checks what a schema cannot
say, such as unique rule names or grades in falling order.
"""

from __future__ import annotations

import copy
from typing import Any

from leadscore.model.conditions import OPERATORS
from leadscore.model.scoring import ScoringModel

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:leadscore:scoring-model"


def model_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scoring model file, keys by their YAML names."""
    generated = ScoringModel.model_json_schema(by_alias=True, mode="validation")
    schema = copy.deepcopy(generated)
    defs: dict[str, Any] = schema.get("$defs", {})
    if "Leaf" in defs:
        _one_operator(defs["Leaf"])
    body = {k: v for k, v in schema.items() if k not in ("title", "description")}
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "leadscore scoring model",
        "description": (
            "A lead-scoring model: fit, behaviour, account signals, tiers, interests and "
            "routing. See docs/model.md."
        ),
        **body,
    }


def _one_operator(leaf: dict[str, Any]) -> None:
    # pydantic reads an operator given as null as "not given"; a schema cannot count those,
    # so operators are never null here and a leaf has exactly two keys: field and operator.
    for op in OPERATORS:
        prop = leaf["properties"].get(op)
        if prop is None:
            continue
        options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        prop.pop("default", None)
    leaf["minProperties"] = 2
    leaf["maxProperties"] = 2
