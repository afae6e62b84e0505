"""Shared fixtures of the model tests (fixtures only: test modules import nothing from here)."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from leadscore.errors import ModelError
from leadscore.model import ScoringModel, parse_model


def _reachable(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in typing.get_args(annotation):
            visit(arg)

    visit(root)
    return found


@pytest.fixture(scope="session")
def model_classes() -> dict[str, type[BaseModel]]:
    """Every pydantic class a model file can contain (reachable from ScoringModel), by name."""
    return _reachable(ScoringModel)


@pytest.fixture(scope="session")
def model_keys() -> Callable[[type[BaseModel]], list[str]]:
    """The YAML keys of a class: aliases where given (`in`, `not`), else field names."""

    def keys(cls: type[BaseModel]) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    return keys


@pytest.fixture(scope="session")
def model_error() -> Callable[..., str]:
    """Parse YAML text that must fail; return the ModelError's message."""

    def error(text: str, source: str = "model.yaml") -> str:
        with pytest.raises(ModelError) as caught:
            parse_model(text, source)
        return str(caught.value)

    return error
