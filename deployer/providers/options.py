"""Validating a target's options (deployer.yaml ``targets.NAME``) with a pydantic model."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from deployer.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from deployer.providers.types import Target

OptionsT = TypeVar("OptionsT", bound="BaseModel")


def parse_options(model: type[OptionsT], target: Target, source: str = "deployer.yaml") -> OptionsT:
    """Validate a target's options with a pydantic model; errors name ``targets.NAME.FIELD``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(target.options))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "missing":
                message = "required field is missing"
            problems.append(f"targets.{target.name}.{field}: {message}")
        raise ConfigError(source, problems) from None
