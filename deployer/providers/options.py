"""Validating a target's options (deployer.yaml ``targets.NAME``) with a pydantic model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from deployer.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from deployer.providers.types import Target

OptionsT = TypeVar("OptionsT", bound="BaseModel")


class OptionsError(ConfigError):
    """A target's options are invalid; ``errors`` are pydantic's, located at
    ``("targets", NAME, FIELD, ...)`` so the core can add deployer.yaml's line numbers."""

    def __init__(self, source: str, problems: list[str], errors: list[dict[str, Any]]) -> None:
        super().__init__(source, problems)
        self.errors = errors


def parse_options(model: type[OptionsT], target: Target, source: str = "deployer.yaml") -> OptionsT:
    """Validate a target's options with a pydantic model; errors name ``targets.NAME.FIELD``."""
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(target.options))
    except ValidationError as exc:
        problems, errors = [], []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field"
            elif error["type"] == "missing":
                message = "required field is missing"
            problems.append(f"targets.{target.name}.{field}: {message}")
            errors.append({**error, "loc": ("targets", target.name, *error["loc"])})
        raise OptionsError(source, problems, errors) from None
