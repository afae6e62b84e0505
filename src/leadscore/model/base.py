"""The base of every model class: unknown keys are errors that list the keys allowed."""

from __future__ import annotations

from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


class Strict(BaseModel):
    """A frozen pydantic model that rejects unknown keys, naming the ones it knows."""

    # `.inf` and `.nan` are valid YAML floats, but no point value or number of days can be one.
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, dict):
            return handler(data)
        known = {f.alias or name for name, f in cls.model_fields.items()}
        unknown = [k for k in data if k not in known and k not in cls.model_fields]
        if not unknown:
            return handler(data)
        # Every problem of the object at once: each unknown key, then what the rest has.
        expected = ", ".join(sorted(known))
        errors = [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_key", f"unknown key {key!r}; expected one of: {expected}"
                ),
                loc=(),
                input=data,
            )
            for key in unknown
        ]
        try:
            handler({k: v for k, v in data.items() if k not in unknown})
        except ValidationError as exc:
            errors += [
                InitErrorDetails(
                    type=PydanticCustomError(e["type"], e["msg"]), loc=e["loc"], input=e["input"]
                )
                for e in exc.errors()
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)
