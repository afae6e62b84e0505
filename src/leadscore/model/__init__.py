"""The scoring model: typed data loaded from YAML (layer 1, no I/O beyond reading the file)."""

from leadscore.model.conditions import All, AnyOf, Condition, Leaf, Not, fields_of
from leadscore.model.jsonschema import model_json_schema
from leadscore.model.loader import load_model, parse_model
from leadscore.model.scoring import (
    BehaviourRule,
    FitRule,
    FrequencyRule,
    ScoringModel,
    Velocity,
    days_to_micros,
)

__all__ = [
    "All",
    "AnyOf",
    "BehaviourRule",
    "Condition",
    "FitRule",
    "FrequencyRule",
    "Leaf",
    "Not",
    "ScoringModel",
    "Velocity",
    "days_to_micros",
    "fields_of",
    "load_model",
    "model_json_schema",
    "parse_model",
]
