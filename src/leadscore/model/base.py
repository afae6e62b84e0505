"""The base of every model class: unknown keys are errors that list the keys allowed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Strict(BaseModel):
    """A frozen pydantic model that rejects unknown keys, naming the ones it knows."""

    # `.inf` and `.nan` are valid YAML floats, but no point value or number of days can be one.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {f.alias or name for name, f in cls.model_fields.items()}
            unknown = [k for k in data if k not in known and k not in cls.model_fields]
            if unknown:
                raise ValueError(
                    f"unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(known))}"
                )
        return data
